import { logEvent } from "../src/log.ts";
import type { Tick } from "../src/domain/candle.ts";
import { getInstrument, type Instrument } from "../src/domain/instruments.ts";
import { toPoints } from "../src/domain/price.ts";
import type { RuntimeConfig } from "../src/config.ts";
import { clientOrderId as deriveClientOrderId, isRuntimeId } from "../src/domain/trading/client-order-id.ts";
import { conversionPairs, midRate, type ConversionRate } from "../src/domain/trading/money.ts";
import { MANUAL_STRATEGY_ID, signedUnits } from "../src/domain/trading/risk.ts";
import { sameOrder } from "../src/domain/trading/same-order.ts";
import type { StrategyRun } from "../src/domain/strategy/run.ts";
import type { OrderIntent, Signal } from "../src/domain/trading/types.ts";
import { BrokerLink, BrokerUnavailable } from "../src/broker/broker-link.ts";
import { OandaBroker } from "../src/broker/oanda/oanda-broker.ts";
import { OandaHttp } from "../src/broker/oanda/oanda-http.ts";
import { PaperBroker } from "../src/broker/paper-broker.ts";
import type { ExecuteBody, WireOrder } from "../schemas/trading-events.ts";
import type { OrderStore } from "./order-store.ts";
import type { PairHooks } from "./pair.ts";
import type { PairSettings } from "./pair-settings.ts";
import { PairTrader, type ExecuteResult } from "./pair-trader.ts";

type CoordinatorStub = ReturnType<Env["Coordinator"]["getByName"]>;

export type ManualOrderResult = ExecuteResult | { ok: false; brokerError: string; clientOrderId: string | null } | { ok: false; conflict: WireOrder };

/** What the pair's trading needs from its actor (the Pair shell). */
export interface TradingHost {
  readonly instrument: Instrument;
  readonly config: Pick<RuntimeConfig, "broker" | "accountCurrency" | "advisor" | "pairs">;
  readonly storage: DurableObjectStorage;
  readonly orders: OrderStore;
  readonly settings: PairSettings;
  readonly hooks: Pick<PairHooks, "clock" | "coordinatorDown" | "faultPoint">;
  /** The market's trading clock and last quote (pair-market.ts). */
  tradingClock(): number;
  lastQuote(): Tick | null;
  /** The strategies as they step, for the signals they left to decide. */
  runs(): readonly StrategyRun[];
  /** A trading event for the room's keyed connections. */
  publish(frame: string): void;
  coordinator(): CoordinatorStub;
  /** Another served pair's last quote (currency conversion of cross pairs). */
  quoteOf(symbol: string): Promise<Tick | null>;
}

/**
 * The pair's order side: its broker and trader (made here, and made again
 * after a restore), the trade step after each market batch, manual orders and
 * the kill switch flatten. Orders, risk and positions are the trader's
 * (pair-trader.ts).
 */
export class PairTrading {
  trader!: PairTrader;
  /** The trader's broker, for its state in metrics (replaced with the trader after a restore). */
  broker!: BrokerLink;

  constructor(private readonly host: TradingHost) {
    this.remake();
  }

  /** A new broker link and trader (at start, and after a restore: it reconciles with the broker before it sends anything). */
  remake(): void {
    const { host } = this;
    const { instrument, settings, hooks } = host;
    this.broker = this.makeBroker();
    this.trader = new PairTrader({
      storage: host.storage,
      store: host.orders,
      faultPoint: () => hooks.faultPoint,
      broker: this.broker,
      instrument,
      accountCurrency: host.config.accountCurrency,
      clock: () => host.tradingClock(),
      lastQuote: () => host.lastQuote(),
      limits: () => settings.riskLimits(),
      publish: (msg) => host.publish(JSON.stringify(msg)),
      conversionRates: () => this.conversionRates(),
      advisor: host.config.advisor,
      tradingState: () => settings.tradingState(),
      tradeable: () => settings.tradeable(),
      approve: (req) => {
        if (hooks.coordinatorDown) return Promise.reject(new Error("coordinator unreachable (test hook)"));
        return host.coordinator().approve(req);
      },
      report: async (report, clientOrderId) => {
        const status = await host.coordinator().report(report, clientOrderId);
        settings.storeTradingState(status);
      },
      onPositionMismatch: async (check) => {
        // Every pair halts (the kill switch), not only this one: the account is shared by all of them.
        const reason = `reconciliation: broker holds ${check.brokerUnits} ${instrument.symbol} units, runtime ${check.runtimeUnits}`;
        const answer = await host.coordinator().killSwitch("halt", reason, "system:reconciliation");
        settings.storeTradingState(answer.status);
      },
    });
  }

  /** The configured broker (BROKER): the paper book in this actor, or OANDA with the coordinator's credentials. */
  private makeBroker(): BrokerLink {
    const { instrument, settings } = this.host;
    if (this.host.config.broker.kind === "paper") {
      const paper = new PaperBroker(this.host.orders.paperBook(), () => settings.fillModel(), instrument);
      return new BrokerLink("paper", async () => paper, false);
    }
    return new BrokerLink(
      "oanda",
      async () => {
        const endpoint = await this.host.coordinator().brokerEndpoint();
        // Exits stay with the runtime (protectionOnFill false): see OandaBroker.
        return new OandaBroker(new OandaHttp(endpoint), instrument, () => Date.now(), false);
      },
      true,
    );
  }

  /** Mid price of the pair that converts this pair's quote currency to the account currency (cross pairs). */
  private async conversionRates(): Promise<ConversionRate[]> {
    const { instrument, config } = this.host;
    const rates: ConversionRate[] = [];
    for (const symbol of conversionPairs(instrument.quote, config.accountCurrency)) {
      // This pair's own price is the fill price, which the position code uses first.
      if (symbol === instrument.symbol || !config.pairs.includes(symbol)) continue;
      const quote = await this.host.quoteOf(symbol);
      if (quote) rates.push(midRate(getInstrument(symbol), quote));
    }
    return rates;
  }

  /** Signals to orders, then resting orders and protective exits on the latest quote. Never fails the ingest. */
  async trade(signals: readonly Signal[], quote: Tick | null): Promise<void> {
    const { settings } = this.host;
    try {
      await settings.confirmTradingState();
      await this.trader.drainOutbox();
      if (signals.length > 0) await this.trader.decideSignals(this.host.runs());
      if (quote) await this.trader.onQuote(quote);
      if (quote && settings.flattening() && (await this.trader.flatten()) === 0) settings.setFlattening(false);
    } catch (err) {
      // A broker left alone after a failure fails every call at once: its state is in the metrics
      // and alerts, and logging each tick batch would flood the log.
      if (err instanceof BrokerUnavailable && !this.broker.available()) return;
      logEvent("error", "trade.step_failed", { pair: this.host.instrument.symbol, error: String(err) });
    }
  }

  /** The alarm's part: what a previous step left unsent goes out, and signals left undecided are decided. */
  async resume(): Promise<void> {
    try {
      await this.trader.drainOutbox();
      await this.trader.decideSignals(this.host.runs());
    } catch (err) {
      logEvent("error", "trade.outbox_drain_failed", { pair: this.host.instrument.symbol, error: String(err) });
    }
  }

  /** Every minute (the cron's wake), with units open: the position still what the broker holds (a trade by hand, a margin closeout). */
  async checkPositions(): Promise<void> {
    if (!this.broker.openUnits) return;
    await this.trader.checkPositions().catch((err: unknown) => logEvent("error", "trade.position_check_failed", { pair: this.host.instrument.symbol, error: String(err) }));
  }

  /** Place a manual order (POST /api/trade/execute); prices arrive as decimals. */
  async execute(body: ExecuteBody): Promise<ManualOrderResult> {
    // The schema refuses them already; the actor trusts no caller: a client may never name a runtime id.
    if (body.clientOrderId !== undefined && isRuntimeId(body.clientOrderId)) throw new Error("a client order id may not have the form of a runtime id");
    const clientOrderId = body.clientOrderId ?? deriveClientOrderId(this.host.instrument.symbol, MANUAL_STRATEGY_ID, crypto.randomUUID());
    try {
      return await this.executeOrder(body, clientOrderId);
    } catch (err) {
      // The broker did not answer (or refused the call): the order, if it was recorded, waits in
      // the outbox and goes out once, before anything else, when the broker answers again.
      if (!(err instanceof BrokerUnavailable)) throw err;
      const recorded = this.host.orders.getOrder(clientOrderId) !== undefined;
      return { ok: false, brokerError: String(err instanceof Error ? err.message : err).slice(0, 300), clientOrderId: recorded ? clientOrderId : null };
    }
  }

  private async executeOrder(body: ExecuteBody, clientOrderId: string): Promise<ExecuteResult | { ok: false; conflict: WireOrder }> {
    const { instrument, orders } = this.host;
    await this.host.settings.confirmTradingState();
    // Anything a previous life left unsent settles first, so the position below is current.
    await this.trader.drainOutbox();
    const points = (x: number | undefined) => (x === undefined ? undefined : toPoints(x, instrument));
    const strategyId = MANUAL_STRATEGY_ID;
    const open = orders.openPosition(strategyId);
    const current = open ? signedUnits(open.side, open.units) : 0;
    const delta = signedUnits(body.side, body.units);
    const price = points(body.price), stopLoss = points(body.stopLoss), takeProfit = points(body.takeProfit);
    const intent: OrderIntent = {
      clientOrderId,
      pair: instrument.symbol,
      strategyId,
      side: body.side,
      units: body.units,
      type: body.type,
      ...(price !== undefined ? { price } : {}),
      ...(stopLoss !== undefined ? { stopLoss } : {}),
      ...(takeProfit !== undefined ? { takeProfit } : {}),
      ...(body.trailingStopPips !== undefined ? { trailingStopPips: body.trailingStopPips } : {}),
      ...(body.breakEven !== undefined ? { breakEven: body.breakEven } : {}),
      ...(body.addLevels !== undefined ? { addLevels: body.addLevels } : {}),
      reduceOnly: current !== 0 && Math.sign(delta) !== Math.sign(current) && Math.abs(delta) <= Math.abs(current),
      createdAt: this.host.hooks.clock(),
    };
    // A client id sent again is an idempotent retry only with the same order: anything else is a conflict, not a silent success.
    const known = orders.getOrder(clientOrderId);
    if (known && !sameOrder(known.intent, intent)) return { ok: false, conflict: this.trader.wireOrder(known) };
    return this.trader.execute(intent);
  }

  /**
   * Kill switch flatten: close every open position on this pair. Returns how
   * many were open. The request stands until the pair is flat or trading
   * resumes: a close the broker refused (a halted market, a lost answer) is
   * sent again on the next quotes, so a flatten never ends with a position left open.
   */
  async flatten(): Promise<number> {
    this.host.settings.setFlattening(true);
    return this.trader.flatten();
  }
}
