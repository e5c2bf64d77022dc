/**
 * The trading kernel of one pair: the whole pipeline from a closed candle to
 * a booked fill, written once and driven by both the pair actor (live) and
 * the backtester (replay). Pure and deterministic: no Cloudflare, no clock,
 * no storage, no I/O; time and prices come in with the events.
 *
 *   candle --> strategies --> signal --> order --> risk --> portfolio --> send
 *   quote  --> trailing stop / break-even --> exit or add level --> order ...
 *   fill   --> position (netting, protection, exact money) --> closed trade
 *
 * `step(config, state, event)` returns the new state and the effects; the
 * state passed in is never changed, but for one part: a strategy run's
 * memory (candle history and trading-signals indicator objects, which cannot
 * be copied cheaply) advances in place on each candle event, once per candle. An adapter carries the effects out: the
 * actor persists them in SQLite, sends orders through its outbox to the
 * broker and publishes to its room (actors/pair-trader.ts); the backtester
 * fills them at the next quote in memory and draws the equity curve
 * (src/replay/backtester.ts). What only one side has stays at its edge: the
 * actor's outbox, close-attempt numbering and coordinator RPC; the
 * backtester's fill timing, financing and metrics.
 *
 * Several strategies may run on one pair: each holds at most one open
 * position (netting per strategy), and the pair's risk sees them all.
 */
import type { RiskLimits } from "../../../schemas/trading.ts";
import type { Candle, Timeframe } from "../candle.ts";
import type { Instrument } from "../instruments.ts";
import { midDecimal } from "../price.ts";
import type { ApprovalRequest, TradingStatus } from "../portfolio/messages.ts";
import type { ConversionRate } from "./money.ts";
import { applyFill, nextAddLevel, onQuote, type ExitReason, type Position, type PositionError } from "./position.ts";
import { checkOrder, signedUnits, trimOrderWindow } from "./risk.ts";
import { runStrategies, runTickStrategies, type StrategiesStep } from "./signal-engine.ts";
import { addLevelIntent, intentForSignal, protectionOf, protectionOfIntent } from "./signal-intent.ts";
import type { StrategyAccount } from "../strategy/api.ts";
import type { StrategyRun } from "../strategy/run.ts";
import type { StrategyFault } from "../strategy/step.ts";
import type { Fill, OrderIntent, OrderRejection, Quote, Signal } from "./types.ts";

export interface KernelConfig {
  instrument: Instrument;
  /** The currency P&L is booked in (a position keeps the one it opened with). */
  accountCurrency: string;
}

export interface KernelState {
  /** The strategies on the pair, with their own state, in their configured order. */
  readonly runs: readonly StrategyRun[];
  /** The pair's open positions, at most one per strategy. */
  readonly positions: readonly Position[];
  /** Creation times of the orders sent in the last minute, oldest first: the order-rate window. */
  readonly orderTimesMs: readonly number[];
}

/** What the kernel needs to judge an order, besides its state. */
export interface OrderContext {
  nowMs: number;
  /** The pair's latest quote; null before the first. */
  quote: Quote | null;
  /** The pair's risk limits; null = none checked (a backtest without limits). */
  limits: RiskLimits | null;
  /** Whether the broker lets the pair trade now (OANDA's `tradeable`). */
  tradeable: boolean;
  /** Whether the broker is answering (a failing broker is given time: BrokerLink). */
  brokerAvailable: boolean;
  /** The portfolio's trading state as this pair last heard it. */
  tradingState: TradingStatus;
}

export type KernelEvent =
  /** A candle of `tf` closed: the strategies that read it advance, those that watch it step (seeing their positions and resting entries). */
  | { type: "candle"; tf: Timeframe; candle: Candle; entries?: readonly OrderIntent[]; account?: StrategyAccount }
  /** A tick: the strategies that watch ticks step (after the candles it closed), as on a candle. */
  | { type: "tick"; quote: Quote; entries?: readonly OrderIntent[]; account?: StrategyAccount }
  /** A strategy's signal is to be decided (live: when its turn in the queue comes; replay: at once). */
  | { type: "signal"; signal: Signal }
  /** A quote: protective levels move, exits and add levels fall due. */
  | { type: "quote"; quote: Quote }
  /** An order wants to go out: per-pair risk, then the portfolio's word. */
  | { type: "order"; intent: OrderIntent; context: OrderContext }
  /** An order was recorded as sent (after its approval): it counts in the order-rate window. */
  | { type: "order_sent"; intent: OrderIntent; nowMs: number }
  /** The broker filled (part of) an order. Each fill is stepped once (the adapter keeps fill ids). */
  | { type: "fill"; intent: OrderIntent; fill: Fill; rates: readonly ConversionRate[] }
  /** The kill switch: every open position is to be closed. */
  | { type: "flatten" };

export type KernelEffect =
  /** Strategies whose state changed on a candle: to be persisted. */
  | { type: "runs_changed"; runs: readonly StrategyRun[] }
  /** A strategy signalled: to be stored, published, and stepped back in as a `signal` event. */
  | { type: "signal"; signal: Signal }
  /** A strategy withdrew one of its resting entries: to be cancelled at the broker (before its signals are decided). */
  | { type: "cancel"; intent: OrderIntent }
  /** A strategy's step failed (it threw, acted wrongly, returned a state that is not JSON): no signal, its state unchanged, the run suspended (in runs_changed). */
  | { type: "strategy_fault"; strategyId: string; fault: StrategyFault }
  /** An order to step back in as an `order` event (a signal's order, an add level). */
  | { type: "order"; intent: OrderIntent }
  /** A position must be closed: an exit (stop loss, take profit, trailing stop) or the kill switch's flatten. */
  | { type: "exit"; position: Position; purpose: "exit" | "flatten"; reason: ExitReason | "flatten" }
  /** A position changed (protection moved, a fill, closed): to be persisted and published. `before` is it as it was, null when new. */
  | { type: "position"; position: Position; before: Position | null }
  /** The order may not go out; it is recorded as refused with this reason. */
  | { type: "refused"; intent: OrderIntent; rejection: OrderRejection }
  /** A non-strategy order met a failing broker: fail now, the caller tries again (a strategy's is refused instead). */
  | { type: "retry_later"; intent: OrderIntent }
  /** The order adds risk: the portfolio must reserve room for it before it is sent (refused if it will not). */
  | { type: "approve"; intent: OrderIntent; request: ApprovalRequest }
  /** The order may go out now. */
  | { type: "send"; intent: OrderIntent }
  /** The fill closed a position: a finished trade. */
  | { type: "closed"; position: Position; fill: Fill }
  /** A fill the kernel cannot book (no conversion rate, a malformed broker fill): the broker's units now differ. */
  | { type: "unbooked"; fill: Fill; error: PositionError }
  /** The fill was booked without its protection, which could not be applied. */
  | { type: "protection_dropped"; fill: Fill; error: PositionError }
  /** A position could not be evaluated on a quote (a defect or a corrupt row): left as it was, the others went on. */
  | { type: "fault"; position: Position; error: unknown };

export interface StepResult {
  state: KernelState;
  effects: KernelEffect[];
}

export function emptyKernelState(runs: readonly StrategyRun[] = []): KernelState {
  return { runs, positions: [], orderTimesMs: [] };
}

export function step(config: KernelConfig, state: KernelState, event: KernelEvent): StepResult {
  switch (event.type) {
    case "candle":
      return strategiesStepped(state, runStrategies(state.runs, { tf: event.tf, candle: event.candle }, state.positions, config.instrument, event.entries ?? [], event.account));
    case "tick":
      return strategiesStepped(state, runTickStrategies(state.runs, event.quote, state.positions, config.instrument, event.entries ?? [], event.account));
    case "signal":
      return onSignal(state, event.signal);
    case "quote":
      return onQuoteEvent(config, state, event.quote);
    case "order":
      return { state, effects: [decideOrder(config, state, event.intent, event.context)] };
    case "order_sent": {
      const times = [...state.orderTimesMs, event.nowMs];
      trimOrderWindow(times, event.nowMs);
      return { state: { ...state, orderTimesMs: times }, effects: [] };
    }
    case "fill":
      return onFill(config, state, event.intent, event.fill, event.rates);
    case "flatten":
      return { state, effects: state.positions.map((position) => ({ type: "exit", position, purpose: "flatten", reason: "flatten" }) as const) };
  }
}

// ---- events ------------------------------------------------------------------------

/** What the strategies did on a candle or a tick, as effects. */
function strategiesStepped(state: KernelState, out: StrategiesStep): StepResult {
  if (state.runs.length === 0) return { state, effects: [] };
  const effects: KernelEffect[] = [];
  if (out.changed.length > 0) effects.push({ type: "runs_changed", runs: out.changed });
  for (const intent of out.cancels) effects.push({ type: "cancel", intent });
  for (const signal of out.signals) effects.push({ type: "signal", signal });
  for (const { strategyId, fault } of out.faults) effects.push({ type: "strategy_fault", strategyId, fault });
  return { state: { ...state, runs: out.runs }, effects };
}

/** The order that takes the signal's strategy to what it asks, from its position now; none when already there. */
function onSignal(state: KernelState, signal: Signal): StepResult {
  const run = state.runs.find((r) => r.config.id === signal.strategyId);
  const intent = run ? intentForSignal(signal, strategyNetUnits(state, signal.strategyId), run.config.units, protectionOf(run.config)) : null;
  return { state, effects: intent ? [{ type: "order", intent }] : [] };
}

/**
 * Each open position on the quote: trail and break-even move; then its exit,
 * or else its next add level. Each position on its own: one that cannot be
 * evaluated (a corrupt row) is reported as `fault` and never keeps the stops
 * of the others from firing.
 */
function onQuoteEvent(config: KernelConfig, state: KernelState, quote: Quote): StepResult {
  if (state.positions.length === 0) return { state, effects: [] };
  const effects: KernelEffect[] = [];
  let positions: Position[] | null = null;
  state.positions.forEach((position, i) => {
    try {
      const out = onQuote(position, quote, config.instrument);
      const due = out.exit ? null : nextAddLevel(out.position, quote, config.instrument);
      const addLevel = due ? addLevelIntent(out.position, due, quote.ts) : null;
      if (out.position !== position) {
        (positions ??= [...state.positions])[i] = out.position;
        effects.push({ type: "position", position: out.position, before: position });
      }
      if (out.exit) effects.push({ type: "exit", position: out.position, purpose: "exit", reason: out.exit.reason });
      else if (addLevel) effects.push({ type: "order", intent: addLevel });
    } catch (error) {
      effects.push({ type: "fault", position, error });
    }
  });
  return { state: positions ? { ...state, positions } : state, effects };
}

/**
 * In this order: the market must be tradeable; per-pair risk (when limits are
 * set); a failing broker refuses a strategy's order (its signal would be stale
 * by the time the broker is back) and fails any other now; the portfolio:
 * HALTED lets only protective exits and flattening through, REDUCING only
 * risk-reducing orders, and a risk-adding order needs the portfolio's approval.
 */
export function decideOrder(config: KernelConfig, state: KernelState, intent: OrderIntent, ctx: OrderContext): KernelEffect {
  const refuse = (rejection: OrderRejection): KernelEffect => ({ type: "refused", intent, rejection });
  if (!ctx.tradeable) return refuse({ type: "market_halted" });
  let riskIncreasing = true;
  if (ctx.limits !== null) {
    const decision = checkOrder(intent, {
      limits: ctx.limits,
      instrument: config.instrument,
      pairNetUnits: pairNetUnits(state.positions),
      strategyNetUnits: strategyNetUnits(state, intent.strategyId),
      quote: ctx.quote,
      recentOrderTimesMs: state.orderTimesMs,
      nowMs: ctx.nowMs,
    });
    if (!decision.accepted) return refuse(decision.rejection);
    riskIncreasing = decision.riskIncreasing;
  }
  if (!ctx.brokerAvailable) {
    if (intent.signalId === undefined) return { type: "retry_later", intent };
    return refuse({ type: "broker_unavailable", detail: "the broker is failing; the order was not sent" });
  }
  const status = ctx.tradingState;
  if (status.state === "HALTED" && !(intent.reduceOnly && intent.purpose !== undefined)) return refuse({ type: "trading_halted", reason: status.reason });
  if (!riskIncreasing) return { type: "send", intent };
  if (status.state === "REDUCING") return refuse({ type: "reduce_only", reason: status.reason });
  return { type: "approve", intent, request: approvalRequest(config, state, intent, ctx.quote) };
}

/**
 * Book one fill on its strategy's position. A fill whose protection cannot be
 * applied is booked without it (the units are at the broker whatever their
 * protection); one that cannot be booked at all is reported, never thrown, so
 * a single bad fill can never jam the pair.
 */
function onFill(config: KernelConfig, state: KernelState, intent: OrderIntent, fill: Fill, rates: readonly ConversionRate[]): StepResult {
  const effects: KernelEffect[] = [];
  const before = state.positions.find((p) => p.strategyId === intent.strategyId) ?? null;
  const context = { instrument: config.instrument, strategyId: intent.strategyId, rates, accountCurrency: config.accountCurrency };
  let out = applyFill(before, fill, { ...context, protection: protectionOfIntent(intent), ...(intent.addLevel ? { addLevel: true } : {}) });
  if (!out.ok && (out.error.type === "invalid_protection" || out.error.type === "add_levels_exhausted")) {
    effects.push({ type: "protection_dropped", fill, error: out.error });
    out = applyFill(before, fill, context);
  }
  if (!out.ok) {
    effects.push({ type: "unbooked", fill, error: out.error });
    return { state, effects };
  }
  const { position, closed } = out.value;
  if (closed && before) effects.push({ type: "position", position: closed, before });
  effects.push({ type: "position", position, before: before !== null && before.id === position.id ? before : null });
  const trade = closed ?? (position.status === "CLOSED" ? position : undefined);
  if (trade) effects.push({ type: "closed", position: trade, fill });
  const others = state.positions.filter((p) => p.strategyId !== intent.strategyId);
  return { state: { ...state, positions: position.status === "OPEN" ? [...others, position] : others }, effects };
}

// ---- reads -------------------------------------------------------------------------

/** Signed net units of the pair: all its open positions together. */
export function pairNetUnits(positions: readonly Position[]): number {
  let net = 0;
  for (const p of positions) net += signedUnits(p.side, p.units);
  return net;
}

export function strategyNetUnits(state: KernelState, strategyId: string): number {
  const p = state.positions.find((q) => q.strategyId === strategyId);
  return p ? signedUnits(p.side, p.units) : 0;
}

/** What the portfolio is asked to reserve for a risk-adding order (also rebuilt for a new life of the coordinator). */
export function approvalRequest(config: KernelConfig, state: KernelState, intent: OrderIntent, quote: Quote | null): ApprovalRequest {
  return {
    clientOrderId: intent.clientOrderId,
    pair: intent.pair,
    deltaUnits: signedUnits(intent.side, intent.units),
    mid: quote ? midDecimal(quote, config.instrument) : 0,
    opensPosition: !state.positions.some((p) => p.strategyId === intent.strategyId),
  };
}

/** Some enabled, running strategy steps on every tick. */
export function watchesTicks(runs: readonly StrategyRun[]): boolean {
  return runs.some((r) => r.memory.watch.ticks && r.config.enabled && r.suspended === null);
}

/** Whether any open position has levels a quote can move or trigger (stops, targets, trails, break-even, add levels). */
export function watchesQuotes(state: KernelState): boolean {
  // A plain loop: the backtester asks on every bar while a position is open.
  for (const p of state.positions) {
    if (p.stopLoss !== undefined || p.takeProfit !== undefined || p.trailingStopPips !== undefined || p.breakEven !== undefined || p.addLevels !== undefined) return true;
  }
  return false;
}
