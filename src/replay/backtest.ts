/**
 * Pure backtest of one strategy on one pair over closed candles, reusing the
 * live domain code (strategy registry, signal -> intent, netting positions with
 * exact money), so live and replay agree. Fill rule of the issue-5 reference
 * run: a decision at the close of candle i fills at the open of candle i+1; a
 * buy pays bid open + spread, a sell gets the bid open. A position still open
 * after the last candle is closed at its close (bid, or bid + spread for a
 * buy). No commission, slippage or financing. Candles may be bid-only (ask =
 * bid): only the bid side is read for fills and marks.
 */
import type { StrategyConfig } from "../../schemas/strategy.ts";
import type { Candle } from "../domain/candle.ts";
import { bucketEnd } from "../domain/fx-time.ts";
import type { Instrument } from "../domain/instruments.ts";
import { pipsToPoints, toDecimal } from "../domain/price.ts";
import { clientOrderId, signalId } from "../domain/trading/client-order-id.ts";
import { centsToDecimal, microsToDecimal } from "../domain/trading/money.ts";
import { applyFill, markToMarket, type Position } from "../domain/trading/position.ts";
import { intentForSignal } from "../domain/trading/signal-intent.ts";
import { runTimeframe, startRun, stepRun } from "../domain/trading/strategy-registry.ts";
import type { Fill, OrderIntent, Side, Signal } from "../domain/trading/types.ts";
import { computeMetrics, type BacktestMetrics } from "./metrics.ts";

export interface FillSettings {
  /** Added to the bid for buys, in pips. Default 1.0. */
  spreadPips?: number;
}

export interface BacktestTrade {
  side: Side;
  units: number;
  /** Fill times, epoch ms (the open of the candle after the decision, or the last close). */
  entryT: number;
  /** Average entry, decimal price. */
  entryPrice: number;
  exitT: number;
  exitPrice: number;
  pnlQuoteMicros: number;
  pnlUsdCents: number;
}

export interface EquityPoint {
  /** Close time of the candle, epoch ms. */
  t: number;
  /** Realised + unrealised (marked at the price the position would exit at), USD cents. */
  usdCents: number;
}

export interface BacktestResult {
  pair: string;
  strategyId: string;
  candles: number;
  trades: BacktestTrade[];
  tradeCount: number;
  pnlQuoteMicros: number;
  pnlUsdCents: number;
  /** Decimal forms of the two totals above (exact digits). */
  pnlQuote: number;
  pnlUsd: number;
  equity: EquityPoint[];
  metrics: BacktestMetrics;
}

function unwrap<T>(r: { ok: true; value: T } | { ok: false; error: unknown }, what: string): T {
  if (!r.ok) throw new Error(`backtest: ${what} refused: ${JSON.stringify(r.error)}`);
  return r.value;
}

/**
 * Run `config` over `candles` (closed candles of the strategy's timeframe, in
 * time order; other timeframes are ignored by the strategy). Deterministic.
 */
export function runBacktest(candles: Iterable<Candle>, instrument: Instrument, config: StrategyConfig, fill: FillSettings = {}): BacktestResult {
  const spread = pipsToPoints(fill.spreadPips ?? 1.0, instrument);
  if (!Number.isSafeInteger(spread) || spread < 0) throw new RangeError(`spreadPips must give a non-negative integer spread, got ${fill.spreadPips}`);
  const tf = runTimeframe(startRun(config));
  let run = startRun(config);
  let position: Position | null = null;
  let pending: OrderIntent | null = null;
  let realisedMicros = 0n;
  let realisedCents = 0n;
  const trades: BacktestTrade[] = [];
  const equity: EquityPoint[] = [];
  let last: Candle | null = null;
  let count = 0;

  // Largest size each position reached (a closed position reports 0 units).
  const peakUnits = new Map<string, number>();
  const record = (closed: Position, exitT: number, exitPrice: number): void => {
    realisedMicros += BigInt(closed.realisedPnlQuoteMicros);
    realisedCents += BigInt(closed.realisedPnlAccountCents);
    trades.push({
      side: closed.side,
      units: peakUnits.get(closed.id) ?? 0,
      entryT: closed.openedAt,
      entryPrice: toDecimal(closed.entryPrice, instrument),
      exitT,
      exitPrice: toDecimal(exitPrice, instrument),
      pnlQuoteMicros: closed.realisedPnlQuoteMicros,
      pnlUsdCents: closed.realisedPnlAccountCents,
    });
  };

  const execute = (side: Side, units: number, coid: string, bid: number, ts: number): void => {
    const price = side === "buy" ? bid + spread : bid;
    const f: Fill = { id: `${coid}:1`, clientOrderId: coid, pair: instrument.symbol, side, units, price, commissionQuoteMicros: 0, ts };
    const out = unwrap(applyFill(position, f, { instrument, strategyId: config.id, accountCurrency: "USD" }), "fill");
    const closed = out.closed ?? (out.position.status === "CLOSED" ? out.position : undefined);
    if (closed) {
      record(closed, ts, price);
      peakUnits.delete(closed.id);
    }
    position = out.position.status === "OPEN" ? out.position : null;
    if (position) peakUnits.set(position.id, Math.max(peakUnits.get(position.id) ?? 0, position.units));
  };

  for (const candle of candles) {
    count++;
    if (pending) {
      execute(pending.side, pending.units, pending.clientOrderId, candle.bo, candle.t);
      pending = null;
    }
    const closeTs = bucketEnd(tf, candle.t);
    const out = stepRun(run, { tf, candle, indicators: null, closeTs }, instrument);
    run = out.run;
    if (out.signal) {
      const draft = out.signal;
      const signal: Signal = {
        id: signalId(instrument.symbol, config.id, tf, candle.t, draft.type),
        pair: instrument.symbol,
        strategyId: config.id,
        type: draft.type,
        confidence: draft.confidence,
        reason: draft.reason,
        timeframe: tf,
        candleT: candle.t,
        ts: closeTs,
        metadata: draft.metadata,
      };
      const p = position as Position | null;
      const net = p ? (p.side === "buy" ? p.units : -p.units) : 0;
      pending = intentForSignal(signal, net, config.units);
    }
    let cents = realisedCents;
    const open = position as Position | null;
    if (open) {
      const mark = unwrap(markToMarket(open, { ts: closeTs, bid: candle.bc, ask: candle.bc + spread }, { instrument }), "mark");
      cents += BigInt(mark.unrealisedPnlAccountCents);
    }
    equity.push({ t: closeTs, usdCents: Number(cents) });
    last = candle;
  }

  // A decision on the last candle has no next open: it is dropped. Close what is open at the last close.
  const open = position as Position | null;
  if (open && last) {
    const side: Side = open.side === "buy" ? "sell" : "buy";
    execute(side, open.units, clientOrderId(instrument.symbol, config.id, `end:${last.t}`), last.bc, bucketEnd(tf, last.t));
    const final = equity[equity.length - 1];
    if (final) final.usdCents = Number(realisedCents);
  }

  const pnlQuoteMicros = Number(realisedMicros);
  const pnlUsdCents = Number(realisedCents);
  return {
    pair: instrument.symbol,
    strategyId: config.id,
    candles: count,
    trades,
    tradeCount: trades.length,
    pnlQuoteMicros,
    pnlUsdCents,
    pnlQuote: microsToDecimal(pnlQuoteMicros),
    pnlUsd: centsToDecimal(pnlUsdCents),
    equity,
    metrics: computeMetrics(trades, equity),
  };
}
