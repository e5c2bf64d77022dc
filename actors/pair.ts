import { logEvent } from "../src/log.ts";
import { Server, type Connection, type ConnectionContext, type WSMessage } from "partyserver";
import type { Tick, Timeframe } from "../src/domain/candle.ts";
import { getInstrument, type Instrument } from "../src/domain/instruments.ts";
import { defaultTickRules } from "../src/domain/tick-validation.ts";
import type { PairInFlight, TradingStatus } from "../src/domain/portfolio/messages.ts";
import { configFor, type RuntimeConfig } from "../src/config.ts";
import type { RoomConnectionState } from "../src/room/connection-params.ts";
import type { toWireSignal } from "../src/wire.ts";
import type { CandleList, CandleQuery } from "../schemas/candle.ts";
import type { StrategyConfig } from "../schemas/strategy.ts";
import type { StrategySuspension } from "../src/domain/strategy/run.ts";
import type { TickBatchConflict, TickBatchResult, WireTick } from "../schemas/tick.ts";
import type { FillModelConfig, RiskLimits } from "../schemas/trading.ts";
import type { ExecuteBody, WireOrder, WirePosition } from "../schemas/trading-events.ts";
import { PAIR_MIGRATIONS } from "../migrations/pair/index.ts";
import { readAudit, writeAudit, type AuditEntry } from "./audit-entry.ts";
import type { BrokerLink } from "../src/broker/broker-link.ts";
import { ActorBackup } from "./backup/actor-backup.ts";
import type { ArchiveBucket } from "./candle-archive.ts";
import { closeSocketsOfEndedKeys } from "./key-sockets.ts";
import { migrate } from "./migrate.ts";
import { OrderStore, type OrderRejection } from "./order-store.ts";
import { PairMarket } from "./pair-market.ts";
import { PairRetention, type PairRetentionReport } from "./pair-retention.ts";
import { PairRoom } from "./pair-room.ts";
import { PairSettings } from "./pair-settings.ts";
import { PairStore } from "./pair-store.ts";
import type { FaultPoint, PairTrader } from "./pair-trader.ts";
import { PairTrading, type ManualOrderResult } from "./pair-trading.ts";
import { TradingStore } from "./trading-store.ts";

export { ROLE_HEADER } from "./pair-room.ts";

/** How often the synthetic feed wakes the actor to generate ticks. */
const FEED_STEP_MS = 250;

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
 * One currency pair: a shell that wires its parts, answers RPC and runs the
 * one alarm. The parts, each behind its own host interface:
 * - market (pair-market.ts): ticks validated, stored and aggregated; closed
 *   candles, indicators, the strategies stepped, signals stored; the clocks.
 * - trading (pair-trading.ts): broker and trader (pair-trader.ts), the trade
 *   step after each batch, manual orders, flatten.
 * - room (pair-room.ts): connections, the room protocol, snapshots, frames.
 * - settings (pair-settings.ts): risk limits, fill model, trading state.
 * A tick: ingest -> market.ingest -> room (candles, signals, the tick frame)
 * -> trading.trade -> trader (orders, fills, positions out to the room).
 */
export interface StrategyList {
  strategies: StrategyConfig[];
  suspended: ({ id: string } & StrategySuspension)[];
}

export class Pair extends Server<Env> {
  static override options = { hibernate: true };

  private readonly config: RuntimeConfig;
  private readonly instrument: Instrument;
  private readonly store: PairStore;
  private readonly orders: OrderStore;
  private readonly settings: PairSettings;
  private readonly room: PairRoom;
  private readonly trading: PairTrading;
  private readonly market: PairMarket;
  private readonly backupTarget: ActorBackup;
  private readonly retention: PairRetention;
  private alarmAt: number | null = null;
  /** What tests may change from outside (runInDurableObject): the clock, faults, the lake; production defaults. */
  readonly hooks: PairHooks = { clock: () => Date.now(), coordinatorDown: false, faultPoint: null, lake: this.env.DATA };
  /** When this life of the actor began (alert rules give a pair without ticks time from here). */
  private readonly startedAt = Date.now();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const config = (this.config = configFor(env));
    migrate(ctx.storage, PAIR_MIGRATIONS);
    const store = (this.store = new PairStore(ctx.storage.sql));
    const orders = (this.orders = new OrderStore(ctx.storage.sql));
    const instrument = (this.instrument = getInstrument(this.resolveSymbol()));
    const hooks = this.hooks;
    const clock = () => hooks.clock();
    const transaction = <T>(fn: () => T): T => ctx.storage.transactionSync(fn);
    const audit = (actor: string, action: string, before: unknown, after: unknown) =>
      writeAudit(ctx.storage.sql, hooks.clock(), actor, action, instrument.symbol, before, after);
    const coordinator = () => env.Coordinator.getByName("main");
    // Parts built before the market read it only later, through these closures.
    const settings = (this.settings = new PairSettings({ symbol: instrument.symbol, store, transaction, audit, coordinatorStatus: () => coordinator().status(), coordinatorAccount: () => coordinator().account() }));
    const room = (this.room = new PairRoom({
      instrument, config, clock,
      connections: () => this.getConnections<RoomConnectionState>(),
      lastTick: () => this.market.lastTick,
      openCandle: (tf) => this.market.openCandle(tf),
      candles: (query) => this.market.candles(query),
      latestIndicators: (tf) => store.latestIndicators(tf),
      ingest: (ticks, batchId) => (batchId === undefined ? this.ingest(ticks) : this.ingestBatch(ticks, false, batchId)),
      streamSignal: (message) =>
        void env.SignalHub.getByName("all").publish(message)
          .catch((err: unknown) => logEvent("warn", "signal.hub_unreachable", { pair: instrument.symbol, error: String(err) })),
    }));
    const trading = (this.trading = new PairTrading({
      instrument, config, storage: ctx.storage, orders, settings, hooks, coordinator,
      tradingClock: () => this.market.tradingClock(),
      lastQuote: () => this.market.lastTick,
      runs: () => this.market.runs,
      publish: (frame) => room.sendToKeyed(frame),
      quoteOf: (symbol) => env.Pair.getByName(symbol).lastQuote(),
    }));
    const spreadCap = config.maxSpreadPips[instrument.symbol];
    this.market = new PairMarket({
      instrument, config, store, room, trading, clock, transaction, audit,
      tradingStore: new TradingStore(ctx.storage.sql),
      orderStore: orders,
      rules: { ...defaultTickRules(instrument), ...(spreadCap ? { maxSpreadPips: spreadCap } : {}) },
      scheduleAlarm: (nowMs) => this.scheduleAlarm(nowMs),
      rolledBack: () => settings.forget(),
      account: () => settings.account() ?? { currency: config.accountCurrency, equity: null },
    });
    this.retention = new PairRetention({
      storage: ctx.storage, store, orders, pair: instrument.symbol, days: config.retention,
      candleCap1m: config.candleRetention["1m"],
      lake: () => hooks.lake,
    });
    this.backupTarget = new ActorBackup(ctx.storage, env.BACKUPS, `pair:${instrument.symbol}`, {
      intervalMs: config.backupIntervalMs,
      // No order may be mid-way while the database is replaced.
      exclusive: (fn) => this.trading.trader.exclusive(fn),
      afterRestore: () => this.reloadAfterRestore(),
      clock,
    });
    // The account's equity for the strategies, before the first candle can close (and every minute, from wake).
    void settings.pullAccount();
    // A previous life left orders unsent (or unapplied): resume them first thing.
    if (orders.outbox().length > 0 || orders.pendingSignals().length > 0) void ctx.storage.setAlarm(Date.now());
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

  /**
   * After a restore replaced the database: bring its schema up to date and
   * rebuild everything held in memory. The new trader reconciles with the
   * broker before it sends anything, as after a restart.
   */
  private reloadAfterRestore(): void {
    migrate(this.ctx.storage, PAIR_MIGRATIONS);
    this.orders.forgetTotals();
    this.settings.forget();
    this.market.load();
    this.trading.remake();
    this.scheduleAlarm(this.hooks.clock());
    logEvent("warn", "pair.restored", { pair: this.instrument.symbol });
  }

  /** The pair's trader (tests call it directly); a new one after a restore. */
  get trader(): PairTrader {
    return this.trading.trader;
  }

  /** The trader's broker link (tests hold it back), for its state in metrics. */
  private get broker(): BrokerLink {
    return this.trading.broker;
  }

  /** The last accepted tick (tests read it). */
  private get lastTick(): Tick | null {
    return this.market.lastTick;
  }

  /** The actor's backups in R2 (an RPC target: `stub.backups().backup()`). */
  backups(): ActorBackup {
    return this.backupTarget;
  }

  // ---- RPC: market (pair-market.ts) ----------------------------------------------

  /**
   * Validate, store and aggregate a batch of wire ticks; broadcast what changed, then trade.
   * `replay`: the ticks are history replayed into the room (see PairMarket.tradingClock).
   */
  async ingest(ticks: readonly WireTick[], replay = false): Promise<TickBatchResult> {
    return this.market.ingest(ticks, this.hooks.clock(), replay, null);
  }

  /** As ingest, under a feed's `batchId` (see PairMarket.ingest): a batch sent again stores nothing twice. */
  async ingestBatch(ticks: readonly WireTick[], replay: boolean, batchId: string): Promise<TickBatchResult | TickBatchConflict> {
    return this.market.ingest(ticks, this.hooks.clock(), replay, batchId);
  }

  candles(query: CandleQuery): CandleList {
    return this.market.candles(query);
  }

  /** The last accepted tick, integer points (used by other pairs for currency conversion). */
  lastQuote(): Tick | null {
    return this.lastTick;
  }

  /** The configured strategies, and those suspended by a failed step (GET /api/admin/pairs/:pair/strategies). */
  strategies(): StrategyList {
    return { strategies: this.market.strategies(), suspended: this.market.suspendedStrategies() };
  }

  /** Replace the pair's strategy configuration (validated by the caller): see PairMarket.setStrategies. */
  setStrategies(configs: readonly StrategyConfig[], actor = "system"): StrategyList {
    this.market.setStrategies(configs, actor);
    return this.strategies();
  }

  /** Resume a suspended strategy: see PairMarket.resumeStrategy. */
  resumeStrategy(id: string, actor: string): { resumed: boolean } | null {
    const resumed = this.market.resumeStrategy(id, actor);
    return resumed === undefined ? null : { resumed };
  }

  signals(limit: number): { pair: string; signals: ReturnType<typeof toWireSignal>[] } {
    return this.market.signals(limit);
  }

  // ---- RPC: orders (pair-trading.ts) ----------------------------------------------

  /** Place a manual order (POST /api/trade/execute); prices arrive as decimals. */
  async execute(body: ExecuteBody): Promise<ManualOrderResult> {
    return this.trading.execute(body);
  }

  /** Kill switch flatten: close every open position on this pair (see PairTrading.flatten); how many were open. */
  async flatten(): Promise<number> {
    return this.trading.flatten();
  }

  /** New broker credentials were stored: connect with them from the next call on. */
  reconnectBroker(): void {
    this.broker.reset();
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

  /** For a new life of the coordinator: this pair's figures and what its approvals may cover (PairTrader.inFlight). */
  inFlight(): PairInFlight {
    return this.trader.inFlight();
  }

  // ---- RPC: settings (pair-settings.ts) ---------------------------------------------

  riskLimits(): RiskLimits {
    return this.settings.riskLimits();
  }

  /** Replace the pair's risk limits (validated again: the actor trusts no caller). */
  setRiskLimits(limits: unknown, actor = "system"): RiskLimits {
    return this.settings.setRiskLimits(limits, actor);
  }

  fillModel(): FillModelConfig {
    return this.settings.fillModel();
  }

  setFillModel(model: unknown, actor = "system"): FillModelConfig {
    return this.settings.setFillModel(model, actor);
  }

  tradingState(): TradingStatus {
    return this.settings.tradingState();
  }

  /** The coordinator's trading state (kill switch), kept here so a restarted pair still obeys it. */
  setTradingState(status: TradingStatus): TradingStatus {
    return this.settings.setTradingState(status);
  }

  /** Whether the broker lets the pair trade (see PairSettings.tradeable). */
  tradeable(): boolean {
    return this.settings.tradeable();
  }

  setTradeable(tradeable: boolean): void {
    this.settings.setTradeable(tradeable);
  }

  auditLog(limit: number): AuditEntry[] {
    return readAudit(this.ctx.storage.sql, limit);
  }

  // ---- RPC: status and metrics ------------------------------------------------------

  status(): PairStatus {
    return { ...this.market.status(), connections: this.room.size, feed: this.config.feed, tradeable: this.tradeable() };
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
      suspendedStrategies: this.market.suspendedStrategies().map(({ id, code, message }) => ({ id, code, message })),
      latencyMs: {
        ingest: this.market.latency.ingest.summary(),
        tickToDecision: this.market.latency.decision.summary(),
        roomBroadcast: this.room.broadcastLatency.summary(),
        orderRoundTrip: this.trader.orderRoundTrip.summary(),
        coordinatorApproval: this.trader.approval.summary(),
      },
    };
  }

  // ---- the alarm (candle closes on time, the synthetic feed) and the cron's wake -----

  /**
   * Make sure the alarm loop runs (synthetic feed, candle closes), and run the
   * hourly retention and candle archive when due. Idempotent; called by the cron.
   */
  async wake(): Promise<PairRetentionReport | null> {
    this.scheduleAlarm(this.hooks.clock());
    await this.settings.pullTradingState();
    await this.settings.pullAccount();
    await this.trading.checkPositions();
    return this.retention.runIfDue(this.hooks.clock(), this.market.tradingClock()).catch((err: unknown) => {
      // Retention must never stop the cron's other work (backups, alerts); the next minute retries.
      logEvent("error", "retention.failed", { pair: this.instrument.symbol, error: String(err) });
      return null;
    });
  }

  override async onAlarm(): Promise<void> {
    this.alarmAt = null;
    const now = this.hooks.clock();
    await this.market.closeDue(now);
    await this.trading.resume();
    if (this.config.feed === "synthetic") await this.market.syntheticFeed(now, FEED_STEP_MS);
    this.scheduleAlarm(now);
  }

  private scheduleAlarm(now: number): void {
    let next = this.market.nextCloseAt() ?? Number.POSITIVE_INFINITY;
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
