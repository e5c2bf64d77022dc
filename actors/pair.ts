import { logEvent } from "../src/log.ts";
import { Server, type Connection, type ConnectionContext, type WSMessage } from "partyserver";
import * as v from "valibot";
import { CandleAggregator, type AggregatorState, type ClosedCandle } from "../src/domain/candle-aggregator.ts";
import { TIMEFRAMES, type Candle, type Tick, type Timeframe } from "../src/domain/candle.ts";
import { candleToMidHLC, IndicatorSet, roundIndicatorValues, type IndicatorValues } from "../src/domain/indicators.ts";
import { getInstrument, type Instrument } from "../src/domain/instruments.ts";
import { SyntheticFeed, type SyntheticFeedState } from "../src/domain/synthetic-feed.ts";
import { checkTick, defaultTickRules, type TickRules } from "../src/domain/tick-validation.ts";
import { configFor, type RuntimeConfig } from "../src/config.ts";
import type { RoomConnectionState } from "../src/room/connection-params.ts";
import { PairRoom, type ClosedWithIndicators } from "./pair-room.ts";
import { closeSocketsOfEndedKeys } from "./key-sockets.ts";
import { toWireCandle, toWireTick } from "../src/wire.ts";
import type { CandleList, CandleQuery } from "../schemas/candle.ts";
import type { TickBatchConflict, TickBatchResult, WireTick } from "../schemas/tick.ts";
import { PAIR_MIGRATIONS } from "../migrations/pair/index.ts";
import { migrate } from "./migrate.ts";
import { PairStore } from "./pair-store.ts";
import { PairRetention, type PairRetentionReport } from "./pair-retention.ts";
import type { ArchiveBucket } from "./candle-archive.ts";
import { LatencyWindow } from "../src/metrics/latency-window.ts";
import { readAudit, writeAudit, type AuditEntry } from "./audit-entry.ts";
import { TradingStore } from "./trading-store.ts";
import { runStrategies } from "../src/domain/trading/signal-engine.ts";
import { startRun, type StrategyRun } from "../src/domain/trading/strategy-registry.ts";
import type { OrderIntent, Signal } from "../src/domain/trading/types.ts";
import { sameOrder } from "../src/domain/trading/same-order.ts";
import type { StrategyConfig } from "../schemas/strategy.ts";
import type { PairInFlight, TradingStatus } from "../src/domain/portfolio/messages.ts";
import { toWireSignal } from "../src/wire.ts";
import { OrderStore, type OrderRejection } from "./order-store.ts";
import { PairTrader, type ExecuteResult, type FaultPoint } from "./pair-trader.ts";
import { ActorBackup } from "./backup/actor-backup.ts";
import { PaperBroker } from "../src/broker/paper-broker.ts";
import { BrokerLink, BrokerUnavailable } from "../src/broker/broker-link.ts";
import { OandaBroker } from "../src/broker/oanda/oanda-broker.ts";
import { OandaHttp } from "../src/broker/oanda/oanda-http.ts";
import { DEFAULT_FILL_MODEL, DEFAULT_RISK_LIMITS, FillModelConfig, RiskLimits } from "../schemas/trading.ts";
import type { ExecuteBody, WireOrder, WirePosition } from "../schemas/trading-events.ts";
import { toPoints } from "../src/domain/price.ts";
import { conversionPairs, type ConversionRate } from "../src/domain/trading/money.ts";
import { clientOrderId as deriveClientOrderId, fnv1a64Hex, isRuntimeId } from "../src/domain/trading/client-order-id.ts";
import { MANUAL_STRATEGY_ID, signedUnits } from "../src/domain/trading/risk.ts";

/** Closed candles replayed into the indicators when the actor starts (decay of EMA seeds is < 1e-15 by then). */
const INDICATOR_WARMUP_CANDLES = 500;
/** How often the synthetic feed wakes the actor to generate ticks. */
const FEED_STEP_MS = 250;

export { ROLE_HEADER } from "./pair-room.ts";

interface PersistedState {
  aggregator: AggregatorState;
  lastTick: Tick | null;
  /** Wall clock minus data clock at the last tick: how far behind real time the feed's data is. */
  lagMs: number;
  /** The last batch was history being replayed: trading runs on the data clock (see tradingClock). */
  replay?: boolean;
}

/**
 * The pair's test hooks, passed to its parts as dependencies: tests replace
 * them through runInDurableObject (`i.hooks.clock = () => t`) to drive time
 * without sleeping, cut the coordinator off (fail-closed), stop the trader at
 * a crash point, or swap the lake for a failing one.
 */
export interface PairHooks {
  /** Wall clock. */
  clock: () => number;
  /** Behave as if the coordinator could not be reached. */
  coordinatorDown: boolean;
  /** Throw at this point of the order pipeline, as if the actor died there. */
  faultPoint: FaultPoint | null;
  /** Where closed 1m candles are archived (the DATA bucket). */
  lake: ArchiveBucket | undefined;
}

export interface PairStatus {
  pair: string;
  lastTick: { ts: number; bid: number; ask: number } | null;
  ticksStored: number;
  candlesStored: Record<Timeframe, number>;
  connections: number;
  feed: RuntimeConfig["feed"];
  /** False while the broker marks the pair not tradeable (orders are refused: market_halted). */
  tradeable: boolean;
}

/**
 * One currency pair: owns its ticks, candles and indicators in SQLite, and its
 * WebSocket room. A thin shell: validation and candle logic live in the domain.
 */
export class Pair extends Server<Env> {
  static override options = { hibernate: true };

  private readonly config: RuntimeConfig;
  private readonly instrument: Instrument;
  private readonly rules: TickRules;
  private readonly store: PairStore;
  private readonly trading: TradingStore;
  private readonly orders: OrderStore;
  /** The coordinator's trading state has been read or pushed in this life of the actor. */
  private tradingStateConfirmed = false;
  trader: PairTrader;
  /** The trader's broker, for its state in metrics (replaced with the trader after a restore). */
  private broker!: BrokerLink;
  private readonly backupTarget: ActorBackup;
  private runs: StrategyRun[] = [];
  private aggregator!: CandleAggregator;
  private lastTick: Tick | null = null;
  private lagMs = 0;
  private replay = false;
  private readonly indicators = new Map<Timeframe, IndicatorSet>();
  /** See setting(). */
  private readonly settings = new Map<string, unknown>();
  private readonly room: PairRoom;
  private alarmAt: number | null = null;
  /**
   * Recent latencies, ms. Workers advance their clocks only across I/O, so in
   * production these count time spent waiting on storage and other actors,
   * not pure CPU (the benchmarks measure that from outside).
   */
  private readonly latency = { ingest: new LatencyWindow(), decision: new LatencyWindow() };
  /** What tests may change from outside (runInDurableObject): the clock, faults, the lake; production defaults. */
  readonly hooks: PairHooks = { clock: () => Date.now(), coordinatorDown: false, faultPoint: null, lake: this.env.DATA };
  /** When this life of the actor began (alert rules give a pair without ticks time from here). */
  private readonly startedAt = Date.now();
  private readonly retention: PairRetention;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.config = configFor(env);
    migrate(ctx.storage, PAIR_MIGRATIONS);
    this.store = new PairStore(ctx.storage.sql);
    this.trading = new TradingStore(ctx.storage.sql);
    this.orders = new OrderStore(ctx.storage.sql);
    this.instrument = getInstrument(this.resolveSymbol());
    const spreadCap = this.config.maxSpreadPips[this.instrument.symbol];
    this.rules = { ...defaultTickRules(this.instrument), ...(spreadCap ? { maxSpreadPips: spreadCap } : {}) };
    this.retention = new PairRetention({
      storage: ctx.storage,
      store: this.store,
      orders: this.orders,
      pair: this.instrument.symbol,
      days: this.config.retention,
      candleCap1m: this.config.candleRetention["1m"],
      lake: () => this.hooks.lake,
    });
    this.loadState();
    const instrument = this.instrument;
    this.room = new PairRoom({
      instrument,
      config: this.config,
      clock: () => this.hooks.clock(),
      connections: () => this.getConnections<RoomConnectionState>(),
      lastTick: () => this.lastTick,
      openCandle: (tf) => this.aggregator.current(tf),
      candles: (query) => this.candles(query),
      latestIndicators: (tf) => this.store.latestIndicators(tf),
      ingest: (ticks, batchId) => (batchId === undefined ? this.ingest(ticks) : this.ingestBatch(ticks, false, batchId)),
      streamSignal: (message) =>
        void env.SignalHub.getByName("all").publish(message)
          .catch((err: unknown) => logEvent("warn", "signal.hub_unreachable", { pair: instrument.symbol, error: String(err) })),
    });
    this.trader = this.makeTrader();
    this.backupTarget = new ActorBackup(ctx.storage, env.BACKUPS, `pair:${this.instrument.symbol}`, {
      intervalMs: this.config.backupIntervalMs,
      // No order may be mid-way while the database is replaced.
      exclusive: (fn) => this.trader.exclusive(fn),
      afterRestore: () => this.reloadAfterRestore(),
      clock: () => this.hooks.clock(),
    });
    // A previous life left orders unsent (or unapplied): resume them first thing.
    if (this.orders.outbox().length > 0 || this.orders.pendingSignals().length > 0) void ctx.storage.setAlarm(Date.now());
  }

  /** The configured broker (BROKER): the paper book in this actor, or OANDA with the coordinator's credentials. */
  private makeBroker(): BrokerLink {
    const config = this.config.broker;
    if (config.kind === "paper") {
      const paper = new PaperBroker(this.orders.paperBook(), () => this.fillModel(), this.instrument);
      return new BrokerLink("paper", async () => paper, false);
    }
    return new BrokerLink(
      "oanda",
      async () => {
        const endpoint = await this.env.Coordinator.getByName("main").brokerEndpoint();
        // Exits stay with the runtime (protectionOnFill false): see OandaBroker.
        return new OandaBroker(new OandaHttp(endpoint), this.instrument, () => Date.now(), false);
      },
      true,
    );
  }

  private makeTrader(): PairTrader {
    this.broker = this.makeBroker();
    return new PairTrader({
      storage: this.ctx.storage,
      store: this.orders,
      faultPoint: () => this.hooks.faultPoint,
      broker: this.broker,
      instrument: this.instrument,
      accountCurrency: this.config.accountCurrency,
      clock: () => this.tradingClock(),
      lastQuote: () => this.lastTick,
      limits: () => this.riskLimits(),
      publish: (msg) => this.room.sendToKeyed(JSON.stringify(msg)),
      conversionRates: () => this.conversionRates(),
      advisor: this.config.advisor,
      tradingState: () => this.tradingState(),
      tradeable: () => this.tradeable(),
      approve: (req) => {
        if (this.hooks.coordinatorDown) return Promise.reject(new Error("coordinator unreachable (test hook)"));
        return this.env.Coordinator.getByName("main").approve(req);
      },
      report: async (report, clientOrderId) => {
        const status = await this.env.Coordinator.getByName("main").report(report, clientOrderId);
        this.storeTradingState(status);
      },
      onPositionMismatch: async (check) => {
        // Every pair halts (the kill switch), not only this one: the account is shared by all of them.
        const reason = `reconciliation: broker holds ${check.brokerUnits} ${this.instrument.symbol} units, runtime ${check.runtimeUnits}`;
        const answer = await this.env.Coordinator.getByName("main").killSwitch("halt", reason, "system:reconciliation");
        this.storeTradingState(answer.status);
      },
    });
  }

  /** New broker credentials were stored: connect with them from the next call on. */
  reconnectBroker(): void {
    this.broker.reset();
  }

  /** The actor's backups in R2 (an RPC target: `stub.backups().backup()`). */
  backups(): ActorBackup {
    return this.backupTarget;
  }

  /**
   * After a restore replaced the database: bring its schema up to date and
   * rebuild everything held in memory. The new trader reconciles with the
   * broker before it sends anything, as after a restart.
   */
  private reloadAfterRestore(): void {
    migrate(this.ctx.storage, PAIR_MIGRATIONS);
    this.orders.forgetTotals();
    this.loadState();
    this.trader = this.makeTrader();
    this.scheduleAlarm(this.hooks.clock());
    logEvent("warn", "pair.restored", { pair: this.instrument.symbol });
  }

  /**
   * The pair this actor owns. Alarms restored from disk after a local restart
   * can arrive without `ctx.id.name`, so the symbol is also kept in SQLite.
   */
  private resolveSymbol(): string {
    const fromId = this.ctx.id.name;
    const stored = this.store.getState<string>("symbol");
    if (fromId !== undefined) {
      if (stored !== fromId) this.store.putState("symbol", fromId);
      return fromId;
    }
    if (stored === undefined) throw new Error("pair actor addressed without a name and none stored");
    return stored;
  }

  private loadState(): void {
    this.settings.clear();
    const saved = this.store.getState<PersistedState>("pair");
    this.aggregator = new CandleAggregator(saved?.aggregator);
    this.lastTick = saved?.lastTick ?? null;
    this.lagMs = saved?.lagMs ?? 0;
    this.replay = saved?.replay ?? false;
    this.runs = this.trading.loadRuns();
    this.indicators.clear();
    for (const tf of TIMEFRAMES) {
      const set = new IndicatorSet();
      for (const c of this.store.candles(tf, { limit: INDICATOR_WARMUP_CANDLES })) {
        set.update(candleToMidHLC(c, this.instrument.displayPrecision));
      }
      this.indicators.set(tf, set);
    }
  }

  // ---- RPC used by the Worker -------------------------------------------------

  /**
   * Validate, store and aggregate a batch of wire ticks; broadcast what changed.
   * `replay`: the ticks are history replayed into the room (see tradingClock).
   */
  async ingest(ticks: readonly WireTick[], replay = false): Promise<TickBatchResult> {
    return this.ingestAt(ticks, this.hooks.clock(), replay, null);
  }

  /** As ingest, under a feed's `batchId` (see ingestAt): a batch sent again stores nothing twice. */
  async ingestBatch(ticks: readonly WireTick[], replay: boolean, batchId: string): Promise<TickBatchResult | TickBatchConflict> {
    return this.ingestAt(ticks, this.hooks.clock(), replay, batchId);
  }

  /**
   * The clock orders and risk checks run on. Live it is the wall clock, so a
   * quote that arrives late is stale however it is stamped. For replayed
   * history it is the data clock (wall clock minus the replay's lag), so a
   * replay trades as it would have then: quote ages, the orders-per-minute
   * window and the weekend guard follow the ticks' own time.
   */
  private tradingClock(): number {
    const now = this.hooks.clock();
    return this.replay ? now - this.lagMs : now;
  }

  candles(query: CandleQuery): CandleList {
    const limit = query.limit ?? 500;
    const open = this.aggregator.current(query.tf);
    const openInRange =
      open !== undefined && (query.from === undefined || open.t >= query.from) && (query.to === undefined || open.t < query.to);
    const closed = this.store.candles(query.tf, {
      ...(query.from !== undefined ? { from: query.from } : {}),
      ...(query.to !== undefined ? { to: query.to } : {}),
      limit: openInRange && query.from === undefined ? Math.max(limit - 1, 0) : limit,
    });
    const wire = closed.map((c) => toWireCandle(c, this.instrument, true));
    if (openInRange && wire.length < limit) wire.push(toWireCandle(open, this.instrument, false));
    return { pair: this.instrument.symbol, tf: query.tf, candles: wire };
  }

  status(): PairStatus {
    const candlesStored = {} as Record<Timeframe, number>;
    for (const tf of TIMEFRAMES) candlesStored[tf] = this.store.candleCount(tf);
    return {
      pair: this.instrument.symbol,
      lastTick: this.lastTick ? toWireTick(this.lastTick, this.instrument) : null,
      ticksStored: this.store.tickCount(),
      candlesStored,
      connections: this.room.size,
      feed: this.config.feed,
      tradeable: this.tradeable(),
    };
  }

  strategies(): StrategyConfig[] {
    return this.runs.map((r) => r.config);
  }

  /**
   * Replace the pair's strategy configuration (validated by the caller).
   * A strategy whose configuration is unchanged keeps its state; a new or
   * changed one starts fresh.
   */
  setStrategies(configs: readonly StrategyConfig[], actor = "system"): StrategyConfig[] {
    const before = this.strategies();
    const previous = new Map(this.runs.map((r) => [r.config.id, r]));
    const runs = configs.map((config) => {
      const old = previous.get(config.id);
      return old && JSON.stringify(old.config) === JSON.stringify(config) ? old : startRun(config);
    });
    this.ctx.storage.transactionSync(() => {
      this.trading.replaceRuns(runs, this.hooks.clock());
      writeAudit(this.ctx.storage.sql, this.hooks.clock(), actor, "strategies", this.instrument.symbol, before, runs.map((r) => r.config));
    });
    this.runs = runs;
    return this.strategies();
  }

  signals(limit: number): { pair: string; signals: ReturnType<typeof toWireSignal>[] } {
    return {
      pair: this.instrument.symbol,
      signals: this.trading.recentSignals(this.instrument.symbol, limit).map((s) => toWireSignal(s, this.instrument)),
    };
  }

  /** Place a manual order (POST /api/trade/execute); prices arrive as decimals. */
  async execute(body: ExecuteBody): Promise<ExecuteResult | { ok: false; brokerError: string; clientOrderId: string | null } | { ok: false; conflict: WireOrder }> {
    // The schema refuses them already; the actor trusts no caller: a client may never name a runtime id.
    if (body.clientOrderId !== undefined && isRuntimeId(body.clientOrderId)) throw new Error("a client order id may not have the form of a runtime id");
    const clientOrderId = body.clientOrderId ?? deriveClientOrderId(this.instrument.symbol, MANUAL_STRATEGY_ID, crypto.randomUUID());
    try {
      return await this.executeOrder(body, clientOrderId);
    } catch (err) {
      // The broker did not answer (or refused the call): the order, if it was recorded, waits in
      // the outbox and goes out once, before anything else, when the broker answers again.
      if (!(err instanceof BrokerUnavailable)) throw err;
      const recorded = this.orders.getOrder(clientOrderId) !== undefined;
      return { ok: false, brokerError: String(err instanceof Error ? err.message : err).slice(0, 300), clientOrderId: recorded ? clientOrderId : null };
    }
  }

  private async executeOrder(body: ExecuteBody, clientOrderId: string): Promise<ExecuteResult | { ok: false; conflict: WireOrder }> {
    await this.confirmTradingState();
    // Anything a previous life left unsent settles first, so the position below is current.
    await this.trader.drainOutbox();
    const points = (x: number | undefined) => (x === undefined ? undefined : toPoints(x, this.instrument));
    const strategyId = MANUAL_STRATEGY_ID;
    const open = this.orders.openPosition(strategyId);
    const current = open ? signedUnits(open.side, open.units) : 0;
    const delta = signedUnits(body.side, body.units);
    const price = points(body.price), stopLoss = points(body.stopLoss), takeProfit = points(body.takeProfit);
    const intent: OrderIntent = {
      clientOrderId,
      pair: this.instrument.symbol,
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
      createdAt: this.hooks.clock(),
    };
    // A client id sent again is an idempotent retry only with the same order: anything else is a conflict, not a silent success.
    const known = this.orders.getOrder(clientOrderId);
    if (known && !sameOrder(known.intent, intent)) return { ok: false, conflict: this.trader.wireOrder(known) };
    return this.trader.execute(intent);
  }

  recentOrders(limit: number): WireOrder[] {
    return this.trader.orders(limit);
  }

  recentPositions(limit: number): WirePosition[] {
    return this.trader.positions(limit);
  }

  /** Orders refused by per-pair risk or the portfolio, newest first: the room's `risk` events so far. */
  recentRejections(limit: number): { clientOrderId: string; strategyId: string; rejection: OrderRejection; time: number }[] {
    return this.orders.recentRejections(limit);
  }

  riskLimits(): RiskLimits {
    return this.setting("risk_limits", () => ({ ...DEFAULT_RISK_LIMITS }));
  }

  /**
   * Settings read on every tick and order (risk limits, fill model, trading
   * state), cached: a SQLite read and JSON parse each time was a profile's top
   * cost. Frozen, so no caller can change the cached copy; a setter drops its
   * key once its transaction committed, and loadState (restore, rollback) drops all.
   */
  private setting<T>(key: string, fallback: () => T): T {
    if (!this.settings.has(key)) this.settings.set(key, Object.freeze(this.store.getState<T>(key) ?? fallback()));
    return this.settings.get(key) as T;
  }

  /** Replace the pair's risk limits (validated again here: the actor trusts no caller). */
  setRiskLimits(limits: unknown, actor = "system"): RiskLimits {
    const parsed = v.parse(RiskLimits, limits);
    const before = this.riskLimits();
    this.ctx.storage.transactionSync(() => {
      this.store.putState("risk_limits", parsed);
      writeAudit(this.ctx.storage.sql, this.hooks.clock(), actor, "risk_limits", this.instrument.symbol, before, parsed);
    });
    this.settings.delete("risk_limits");
    return parsed;
  }

  fillModel(): FillModelConfig {
    return this.setting("fill_model", () => ({ ...DEFAULT_FILL_MODEL }));
  }

  setFillModel(model: unknown, actor = "system"): FillModelConfig {
    const parsed = v.parse(FillModelConfig, model);
    const before = this.fillModel();
    this.ctx.storage.transactionSync(() => {
      this.store.putState("fill_model", parsed);
      writeAudit(this.ctx.storage.sql, this.hooks.clock(), actor, "fill_model", this.instrument.symbol, before, parsed);
    });
    this.settings.delete("fill_model");
    return parsed;
  }

  auditLog(limit: number): AuditEntry[] {
    return readAudit(this.ctx.storage.sql, limit);
  }

  /** Mid price of the pair that converts this pair's quote currency to the account currency (cross pairs). */
  private async conversionRates(): Promise<ConversionRate[]> {
    const rates: ConversionRate[] = [];
    for (const symbol of conversionPairs(this.instrument.quote, this.config.accountCurrency)) {
      // This pair's own price is the fill price, which the position code uses first.
      if (symbol === this.instrument.symbol || !this.config.pairs.includes(symbol)) continue;
      const quote = await this.env.Pair.getByName(symbol).lastQuote();
      if (quote) rates.push({ instrument: getInstrument(symbol), points: Math.round((quote.bid + quote.ask) / 2) });
    }
    return rates;
  }

  tradingState(): TradingStatus {
    return this.setting<TradingStatus>("trading_state", () => ({ state: "ACTIVE", reason: "", since: 0 }));
  }

  /** The coordinator's trading state (kill switch), kept here so a restarted pair still obeys it. */
  setTradingState(status: TradingStatus): TradingStatus {
    this.storeTradingState(status);
    this.tradingStateConfirmed = true;
    return status;
  }

  /**
   * Once per life, before the first order work: the coordinator's trading
   * state, in case a push was lost (a crash of either actor between a kill
   * switch and this pair hearing of it). Risk-adding orders need the
   * coordinator's approval anyway, which refuses them when it is halted or
   * unreachable; this keeps a reducing order from going out under a halt the
   * pair missed. Unreachable: the state kept here stands, and the next order asks again.
   */
  private async confirmTradingState(): Promise<void> {
    if (!this.tradingStateConfirmed) await this.pullTradingState();
  }

  /** Ask the coordinator for the trading state (also every minute, from wake). */
  private async pullTradingState(): Promise<void> {
    try {
      this.storeTradingState(await this.env.Coordinator.getByName("main").status());
      this.tradingStateConfirmed = true;
    } catch (err) {
      logEvent("warn", "pair.trading_state_unconfirmed", { pair: this.instrument.symbol, error: String(err).slice(0, 200) });
    }
  }

  private storeTradingState(status: TradingStatus): void {
    const before = this.tradingState();
    // A report's answer can arrive after a newer kill-switch push: never go back in time.
    if (status.since < before.since || (before.state === status.state && before.since === status.since)) return;
    this.ctx.storage.transactionSync(() => {
      this.store.putState("trading_state", status);
      // A flatten stands while the portfolio stays halted; any other state ends it.
      if (status.state !== "HALTED") this.store.putState("flattening", false);
      writeAudit(this.ctx.storage.sql, this.hooks.clock(), "coordinator", "trading_state", this.instrument.symbol, before, status);
    });
    this.settings.delete("trading_state");
    this.settings.delete("flattening");
  }

  /**
   * Kill switch flatten: close every open position on this pair. Returns how
   * many were open. The request stands until the pair is flat or trading
   * resumes: a close the broker refused (a halted market, a lost answer) is
   * sent again on the next quotes, so a flatten never ends with a position left open.
   */
  async flatten(): Promise<number> {
    this.setFlattening(true);
    return this.trader.flatten();
  }

  private flattening(): boolean {
    return this.setting<boolean>("flattening", () => false);
  }

  private setFlattening(on: boolean): void {
    if (this.flattening() === on) return;
    this.store.putState("flattening", on);
    this.settings.delete("flattening");
  }

  /**
   * Whether the broker lets the pair trade (OANDA marks an instrument not
   * tradeable while its market is halted or closed; the feed tells the pair).
   * While it does not, every order is refused (`market_halted`) instead of
   * being sent to certain cancellation.
   */
  tradeable(): boolean {
    return this.setting<boolean>("tradeable", () => true);
  }

  setTradeable(tradeable: boolean): void {
    if (this.tradeable() === tradeable) return;
    this.store.putState("tradeable", tradeable);
    this.settings.delete("tradeable");
    logEvent(tradeable ? "info" : "warn", "pair.tradeable", { pair: this.instrument.symbol, tradeable });
  }

  /** Figures for GET /api/metrics. */
  metrics() {
    const { connections, keyed } = this.room.counts();
    const since = this.hooks.clock() - 60_000;
    return {
      pair: this.instrument.symbol,
      lastTickTs: this.lastTick?.ts ?? null,
      upSinceMs: this.startedAt,
      connections,
      keyedConnections: keyed,
      ordersLastMinute: this.orders.ordersSince(since),
      rejectionsLastMinute: this.orders.recentRejections(1000).filter((r) => r.time >= since).length,
      tradingState: this.tradingState().state,
      broker: this.broker.state,
      positionCheck: this.trader.positionCheck,
      latencyMs: {
        ingest: this.latency.ingest.summary(),
        tickToDecision: this.latency.decision.summary(),
        roomBroadcast: this.room.broadcastLatency.summary(),
        orderRoundTrip: this.trader.orderRoundTrip.summary(),
        coordinatorApproval: this.trader.approval.summary(),
      },
    };
  }

  /** The last accepted tick, integer points (used by other pairs for currency conversion). */
  lastQuote(): Tick | null {
    return this.lastTick;
  }

  /** For a new life of the coordinator: this pair's figures and what its approvals may cover (PairTrader.inFlight). */
  inFlight(): PairInFlight {
    return this.trader.inFlight();
  }

  /**
   * Make sure the alarm loop runs (synthetic feed, candle closes), and run the
   * hourly retention and candle archive when due. Idempotent; called by the cron.
   */
  async wake(): Promise<PairRetentionReport | null> {
    this.scheduleAlarm(this.hooks.clock());
    await this.pullTradingState();
    if (this.broker.openUnits) {
      // Every minute: the position still what the broker holds (a trade by hand, a margin closeout).
      await this.trader.checkPositions().catch((err: unknown) => logEvent("error", "trade.position_check_failed", { pair: this.instrument.symbol, error: String(err) }));
    }
    return this.retention.runIfDue(this.hooks.clock(), this.tradingClock()).catch((err: unknown) => {
      // Retention must never stop the cron's other work (backups, alerts); the next minute retries.
      logEvent("error", "retention.failed", { pair: this.instrument.symbol, error: String(err) });
      return null;
    });
  }

  // ---- ingest ---------------------------------------------------------------------

  /**
   * With a `batchId`, a batch sent again (its answer lost, or cut by a crash)
   * is answered with what was stored and goes on where it stopped: its ticks
   * are never stored twice. The same id with other ticks is a conflict.
   */
  private async ingestAt(ticks: readonly WireTick[], nowMs: number, replay: boolean, batchId: null): Promise<TickBatchResult>;
  private async ingestAt(ticks: readonly WireTick[], nowMs: number, replay: boolean, batchId: string | null): Promise<TickBatchResult | TickBatchConflict>;
  private async ingestAt(ticks: readonly WireTick[], nowMs: number, replay: boolean, batchId: string | null): Promise<TickBatchResult | TickBatchConflict> {
    const started = performance.now();
    const batch = batchId === null ? null : { id: batchId, digest: fnv1a64Hex(JSON.stringify([replay, ticks])) };
    const seen = batch ? this.store.tickBatch(batch.id) : undefined;
    if (batch && seen && seen.digest !== batch.digest) return { conflict: { batchId: batch.id } };
    const rejected: TickBatchResult["rejected"] = seen ? [...seen.rejected] : [];
    let signalled = false;
    let last: Tick | null = null;
    for (let from = seen?.next ?? 0; from < ticks.length; ) {
      const part = this.ingestUntilSignal(ticks, from, nowMs, replay, rejected, batch);
      this.room.publishClosed(part.closed);
      this.room.publishSignals(part.signals);
      signalled ||= part.signals.length > 0;
      if (part.last) last = part.last;
      from = part.next;
      if (from >= ticks.length) {
        // The room hears of the batch before any trading on it: clients should not wait for orders.
        if (last) this.room.quote(last, ticks.length - rejected.length);
        this.scheduleAlarm(nowMs);
      }
      // A signal is acted on at the quote that produced it (the tick that closed
      // its candle), not at the end of the batch: the first quote after the
      // decision, as in a backtest, whatever the batch size.
      if (part.signals.length > 0 || from >= ticks.length) await this.trade(part.signals, part.last);
    }
    const elapsed = performance.now() - started;
    this.latency.ingest.record(elapsed);
    if (signalled) this.latency.decision.record(elapsed);
    return { accepted: ticks.length - rejected.length, rejected };
  }

  /**
   * Store and aggregate ticks from index `from`, in one transaction, up to and
   * including the first tick whose candle closes produced a signal.
   */
  private ingestUntilSignal(
    ticks: readonly WireTick[],
    from: number,
    nowMs: number,
    replay: boolean,
    rejected: TickBatchResult["rejected"],
    batch: { id: string; digest: string } | null,
  ): { next: number; closed: ClosedWithIndicators[]; signals: Signal[]; last: Tick | null } {
    const closed: ClosedWithIndicators[] = [];
    const signals: Signal[] = [];
    let last: Tick | null = null;
    let next = from;
    try {
      this.ctx.storage.transactionSync(() => {
        let lastAccepted: Tick | null = this.lastTick;
        while (next < ticks.length && signals.length === 0) {
          const index = next++;
          const check = checkTick(ticks[index] as WireTick, {
            instrument: this.instrument,
            rules: this.rules,
            nowMs,
            lastTs: lastAccepted?.ts ?? Number.NEGATIVE_INFINITY,
            closedUntil: this.aggregator.closedUntil,
            last: lastAccepted,
          });
          if (!check.ok) {
            rejected.push({ index, reason: check.reason });
            continue;
          }
          const done = this.aggregator.onTick(check.tick);
          this.store.insertTick(check.tick);
          closed.push(...this.persistClosed(done, signals, nowMs));
          last = check.tick;
          lastAccepted = check.tick;
        }
        if (last) {
          this.lastTick = last;
          this.lagMs = Math.max(0, nowMs - (last as Tick).ts);
          this.replay = replay;
        }
        this.store.pruneTicks(this.config.tickRetentionCount);
        if (batch) this.store.putTickBatch(batch.id, batch.digest, next, rejected, nowMs);
        // A batch whose every tick was refused changes nothing.
        if (last) this.saveState();
      });
    } catch (err) {
      // Storage rolled back: rebuild memory from it so both agree, then fail the batch.
      this.loadState();
      throw err;
    }
    return { next, closed, signals, last };
  }

  /** Signals to orders, then resting orders and protective exits on the latest quote. Never fails the ingest. */
  private async trade(signals: readonly Signal[], quote: Tick | null): Promise<void> {
    try {
      await this.confirmTradingState();
      await this.trader.drainOutbox();
      if (signals.length > 0) await this.trader.decideSignals(this.runs);
      if (quote) await this.trader.onQuote(quote);
      if (quote && this.flattening() && (await this.trader.flatten()) === 0) this.setFlattening(false);
    } catch (err) {
      // A broker left alone after a failure fails every call at once: its state is in the metrics
      // and alerts, and logging each tick batch would flood the log.
      if (err instanceof BrokerUnavailable && !this.broker.available()) return;
      logEvent("error", "trade.step_failed", { pair: this.instrument.symbol, error: String(err) });
    }
  }

  /** Store closed candles and their indicators, run the strategies on them; new signals go to `signalsOut`. */
  private persistClosed(closed: readonly ClosedCandle[], signalsOut: Signal[], nowMs: number): ClosedWithIndicators[] {
    return closed.map(({ tf, candle }) => {
      this.store.upsertCandle(tf, candle);
      const indicators = this.updateIndicators(tf, candle);
      this.store.putIndicators(tf, candle.t, indicators);
      this.store.pruneCandles(tf, this.config.candleRetention[tf]);
      if (this.runs.length > 0) {
        const out = runStrategies(this.runs, { tf, candle, indicators }, this.instrument);
        this.runs = out.runs;
        for (const run of out.changed) this.trading.saveRunState(run, nowMs);
        for (const signal of out.signals) {
          if (!this.trading.insertSignal(signal)) continue;
          this.orders.queueSignal(signal, nowMs);
          signalsOut.push(signal);
        }
      }
      return { tf, candle, indicators };
    });
  }

  private updateIndicators(tf: Timeframe, candle: Candle): IndicatorValues {
    const set = this.indicators.get(tf) ?? new IndicatorSet();
    this.indicators.set(tf, set);
    return roundIndicatorValues(set.update(candleToMidHLC(candle, this.instrument.displayPrecision)), this.instrument.displayPrecision + 3);
  }

  private saveState(): void {
    const state: PersistedState = { aggregator: this.aggregator.state(), lastTick: this.lastTick, lagMs: this.lagMs, replay: this.replay };
    this.store.putState("pair", state);
  }

  // ---- alarm: candle closes on time, synthetic feed -------------------------------

  override async onAlarm(): Promise<void> {
    this.alarmAt = null;
    const now = this.hooks.clock();
    const dataNow = now - this.lagMs - this.config.candleCloseGraceMs;
    const closed = this.aggregator.closeDue(dataNow);
    if (closed.length > 0) {
      const signals: Signal[] = [];
      const withIndicators = this.ctx.storage.transactionSync(() => {
        const persisted = this.persistClosed(closed, signals, now);
        this.saveState();
        return persisted;
      });
      this.room.publishClosed(withIndicators);
      this.room.publishSignals(signals);
      await this.trade(signals, null);
    }
    try {
      await this.trader.drainOutbox();
      await this.trader.decideSignals(this.runs);
    } catch (err) {
      logEvent("error", "trade.outbox_drain_failed", { pair: this.instrument.symbol, error: String(err) });
    }
    if (this.config.feed === "synthetic") await this.runFeed(now);
    this.scheduleAlarm(now);
  }

  private async runFeed(now: number): Promise<void> {
    const saved = this.store.getState<SyntheticFeedState>("feed");
    const feed = new SyntheticFeed(this.instrument, this.config.feedSeed, this.config.feedHours, now - FEED_STEP_MS, saved);
    const ticks = feed.generate(now);
    this.store.putState("feed", feed.state());
    if (ticks.length > 0) await this.ingestAt(ticks.map((t) => toWireTick(t, this.instrument)), now, false, null);
  }

  private scheduleAlarm(now: number): void {
    let next = Number.POSITIVE_INFINITY;
    const closeAt = this.aggregator.nextCloseAt();
    if (closeAt !== undefined) next = closeAt + this.lagMs + this.config.candleCloseGraceMs;
    if (this.config.feed === "synthetic") next = Math.min(next, now + FEED_STEP_MS);
    if (!Number.isFinite(next)) return;
    next = Math.max(next, now + 1);
    // An alarm already set for no later than needed (even if due and about to
    // run) is enough; re-setting it would cancel the pending run.
    if (this.alarmAt !== null && this.alarmAt <= next) return;
    this.alarmAt = next;
    void this.ctx.storage.setAlarm(next);
  }

  // ---- the room (pair-room.ts) ---------------------------------------------------------

  override onConnect(connection: Connection<RoomConnectionState>, ctx: ConnectionContext): void {
    this.room.connect(connection, ctx);
  }

  override onMessage(connection: Connection<RoomConnectionState>, message: WSMessage): void {
    this.room.message(connection, message);
  }

  override onClose(connection: Connection<RoomConnectionState>): void {
    this.room.leave(connection);
  }

  override onError(connection: Connection<RoomConnectionState>): void {
    this.room.leave(connection);
  }

  /** Close the sockets whose key was revoked (actors/key-sockets.ts); how many. */
  async closeEndedKeySockets(): Promise<number> {
    return this.room.closeEndedKeySockets((sockets) => closeSocketsOfEndedKeys(this.env, sockets));
  }
}
