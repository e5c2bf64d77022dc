import { CandleAggregator, type AggregatorState, type ClosedCandle } from "../src/domain/candle-aggregator.ts";
import { TIMEFRAMES, type Candle, type Tick, type Timeframe } from "../src/domain/candle.ts";
import { candleToMidHLC, IndicatorSet, roundIndicatorValues, type IndicatorValues } from "../src/domain/indicators.ts";
import type { Instrument } from "../src/domain/instruments.ts";
import { SyntheticFeed, type SyntheticFeedState } from "../src/domain/synthetic-feed.ts";
import { checkTick, type TickRules } from "../src/domain/tick-validation.ts";
import { step, watchesTicks, type KernelConfig, type StepResult } from "../src/domain/trading/kernel.ts";
import { resumeRun, runTimeframes, startRun, warmUp, type StrategyRun, type StrategySuspension } from "../src/domain/strategy/run.ts";
import type { StrategyAccount } from "../src/domain/strategy/api.ts";
import { logEvent } from "../src/log.ts";
import type { OrderIntent, Signal } from "../src/domain/trading/types.ts";
import type { Position } from "../src/domain/trading/position.ts";
import { fnv1a64Hex } from "../src/domain/trading/client-order-id.ts";
import type { RuntimeConfig } from "../src/config.ts";
import { LatencyWindow } from "../src/metrics/latency-window.ts";
import { toWireCandle, toWireSignal, toWireTick } from "../src/wire.ts";
import type { CandleList, CandleQuery } from "../schemas/candle.ts";
import type { StrategyConfig } from "../schemas/strategy.ts";
import type { TickBatchConflict, TickBatchResult, WireTick } from "../schemas/tick.ts";
import type { OrderStore } from "./order-store.ts";
import type { PairRoom } from "./pair-room.ts";
import type { PairStore } from "./pair-store.ts";
import type { PairTrading } from "./pair-trading.ts";
import type { TradingStore } from "./trading-store.ts";

/** Closed candles replayed into the indicators when the actor starts (decay of EMA seeds is < 1e-15 by then). */
const INDICATOR_WARMUP_CANDLES = 500;

/** A closed candle with the indicators it produced: what is stored and published. */
export type ClosedWithIndicators = ClosedCandle & { indicators: IndicatorValues };

interface PersistedState {
  aggregator: AggregatorState;
  lastTick: Tick | null;
  /** Wall clock minus data clock at the last tick: how far behind real time the feed's data is. */
  lagMs: number;
  /** The last batch was history being replayed: trading runs on the data clock (see tradingClock). */
  replay?: boolean;
}

/** The trading side a strategy step sees. */
interface TradingView {
  positions: Position[];
  entries: OrderIntent[];
}

/** What the market needs from its actor (the Pair shell). */
export interface MarketHost {
  readonly instrument: Instrument;
  readonly rules: TickRules;
  readonly config: Pick<RuntimeConfig, "candleRetention" | "tickRetentionCount" | "candleCloseGraceMs" | "feedSeed" | "feedHours" | "accountCurrency">;
  readonly store: PairStore;
  readonly tradingStore: TradingStore;
  readonly orderStore: Pick<OrderStore, "queueSignal" | "openPositions" | "hasOpenPositionOrWorkingOrder" | "workingOrders" | "requestCancel">;
  /** Where closed candles, signals and each batch's last tick go out (pair-room.ts). */
  readonly room: Pick<PairRoom, "publishClosed" | "publishSignals" | "quote">;
  /** Where signals and quotes become orders (pair-trading.ts, over pair-trader.ts). */
  readonly trading: Pick<PairTrading, "trade">;
  /** Wall clock (the test hook). */
  clock(): number;
  /** Run `fn` in one storage transaction. */
  transaction<T>(fn: () => T): T;
  /** Write an audit entry (inside the caller's transaction). */
  audit(actor: string, action: string, before: unknown, after: unknown): void;
  /** Candles may close at another time now: make sure the actor's alarm is set. */
  scheduleAlarm(nowMs: number): void;
  /** Storage rolled back under a failed batch and the market was reloaded from it: drop what else is cached. */
  rolledBack(): void;
  /** The account's equity as last heard from the coordinator, for the strategies' steps. */
  account(): StrategyAccount;
}

/**
 * The pair's market: ticks in (validation, storage, aggregation), closed
 * candles out with their indicators, the strategies stepped on them, their
 * signals stored and queued for the trader; the data and trading clocks.
 * Everything here is rebuilt from SQLite by load().
 */
export class PairMarket {
  private aggregator!: CandleAggregator;
  private last: Tick | null = null;
  private lagMs = 0;
  private replay = false;
  private strategyRuns: StrategyRun[] = [];
  private readonly indicators = new Map<Timeframe, IndicatorSet>();
  /**
   * Recent latencies, ms. Workers advance their clocks only across I/O, so in
   * production these count time spent waiting on storage and other actors,
   * not pure CPU (the benchmarks measure that from outside).
   */
  readonly latency = { ingest: new LatencyWindow(), decision: new LatencyWindow() };

  private readonly kernel: KernelConfig;

  constructor(private readonly host: MarketHost) {
    this.kernel = { instrument: host.instrument, accountCurrency: host.config.accountCurrency };
    this.load();
  }

  /** (Re)build everything held in memory from storage: at start, after a restore, after a rollback. */
  load(): void {
    const { store, instrument } = this.host;
    const saved = store.getState<PersistedState>("pair");
    this.aggregator = new CandleAggregator(saved?.aggregator);
    this.last = saved?.lastTick ?? null;
    this.lagMs = saved?.lagMs ?? 0;
    this.replay = saved?.replay ?? false;
    this.strategyRuns = this.host.tradingStore.loadRuns().map(({ config, state, suspended }) => this.newRun(config, state, suspended));
    this.indicators.clear();
    for (const tf of TIMEFRAMES) {
      const set = new IndicatorSet();
      for (const c of store.candles(tf, { limit: INDICATOR_WARMUP_CANDLES })) set.update(candleToMidHLC(c, instrument.displayPrecision));
      this.indicators.set(tf, set);
    }
  }

  private save(): void {
    const state: PersistedState = { aggregator: this.aggregator.state(), lastTick: this.last, lagMs: this.lagMs, replay: this.replay };
    this.host.store.putState("pair", state);
  }

  // ---- reads ------------------------------------------------------------------------

  /** The last accepted tick, integer points. */
  get lastTick(): Tick | null {
    return this.last;
  }

  /** The strategies as they step (configuration and state). */
  get runs(): readonly StrategyRun[] {
    return this.strategyRuns;
  }

  /** The candle in progress of `tf`, if any. */
  openCandle(tf: Timeframe): Candle | undefined {
    return this.aggregator.current(tf);
  }

  /**
   * The clock orders and risk checks run on. Live it is the wall clock, so a
   * quote that arrives late is stale however it is stamped. For replayed
   * history it is the data clock (wall clock minus the replay's lag), so a
   * replay trades as it would have then: quote ages, the orders-per-minute
   * window and the weekend guard follow the ticks' own time.
   */
  tradingClock(): number {
    const now = this.host.clock();
    return this.replay ? now - this.lagMs : now;
  }

  /** When the alarm must fire to close the next candle on time (wall clock), if one is open. */
  nextCloseAt(): number | undefined {
    const closeAt = this.aggregator.nextCloseAt();
    return closeAt === undefined ? undefined : closeAt + this.lagMs + this.host.config.candleCloseGraceMs;
  }

  /** The pair's part of GET /api/pairs/:pair. */
  status(): { pair: string; lastTick: ReturnType<typeof toWireTick> | null; ticksStored: number; candlesStored: Record<Timeframe, number> } {
    const { store, instrument } = this.host;
    const candlesStored = {} as Record<Timeframe, number>;
    for (const tf of TIMEFRAMES) candlesStored[tf] = store.candleCount(tf);
    const lastTick = this.last ? toWireTick(this.last, instrument) : null;
    return { pair: instrument.symbol, lastTick, ticksStored: store.tickCount(), candlesStored };
  }

  candles(query: CandleQuery): CandleList {
    const { store, instrument } = this.host;
    const limit = query.limit ?? 500;
    const open = this.aggregator.current(query.tf);
    const openInRange =
      open !== undefined && (query.from === undefined || open.t >= query.from) && (query.to === undefined || open.t < query.to);
    const closed = store.candles(query.tf, {
      ...(query.from !== undefined ? { from: query.from } : {}),
      ...(query.to !== undefined ? { to: query.to } : {}),
      limit: openInRange && query.from === undefined ? Math.max(limit - 1, 0) : limit,
    });
    const wire = closed.map((c) => toWireCandle(c, instrument, true));
    if (openInRange && wire.length < limit) wire.push(toWireCandle(open, instrument, false));
    return { pair: instrument.symbol, tf: query.tf, candles: wire };
  }

  /** The newest stored signals, wire form. */
  signals(limit: number): { pair: string; signals: ReturnType<typeof toWireSignal>[] } {
    const { instrument } = this.host;
    return { pair: instrument.symbol, signals: this.host.tradingStore.recentSignals(instrument.symbol, limit).map((s) => toWireSignal(s, instrument)) };
  }

  strategies(): StrategyConfig[] {
    return this.strategyRuns.map((r) => r.config);
  }

  /** The strategies whose step failed, with why and when: they decide nothing until resumed. */
  suspendedStrategies(): ({ id: string } & StrategySuspension)[] {
    return this.strategyRuns.flatMap((r) => (r.suspended ? [{ id: r.config.id, ...r.suspended }] : []));
  }

  /**
   * An admin resumes a suspended strategy: it steps again from the next
   * candle, with the state its failed step found (its memory followed the
   * candles meanwhile). False when it was not suspended; undefined when the
   * pair has no such strategy.
   */
  resumeStrategy(id: string, actor: string): boolean | undefined {
    const index = this.strategyRuns.findIndex((r) => r.config.id === id);
    const run = this.strategyRuns[index];
    if (!run) return undefined;
    if (!run.suspended) return false;
    const resumed = resumeRun(run);
    this.host.transaction(() => {
      this.host.tradingStore.saveRunState(resumed, this.host.clock());
      this.host.audit(actor, "strategy_resumed", { id, suspended: run.suspended }, { id, suspended: null });
    });
    this.strategyRuns = this.strategyRuns.map((r, i) => (i === index ? resumed : r));
    return true;
  }

  /**
   * Replace the pair's strategy configuration (validated by the caller).
   * A strategy whose configuration is unchanged keeps its state (and its
   * suspension); a new or changed one starts fresh.
   */
  setStrategies(configs: readonly StrategyConfig[], actor: string): StrategyConfig[] {
    const before = this.strategies();
    const previous = new Map(this.strategyRuns.map((r) => [r.config.id, r]));
    const runs = configs.map((config) => {
      const old = previous.get(config.id);
      return old && JSON.stringify(old.config) === JSON.stringify(config) ? old : this.newRun(config);
    });
    this.host.transaction(() => {
      this.host.tradingStore.replaceRuns(runs, this.host.clock());
      this.host.audit(actor, "strategies", before, runs.map((r) => r.config));
    });
    this.strategyRuns = runs;
    return this.strategies();
  }

  // ---- ingest -----------------------------------------------------------------------

  /** The synthetic feed's ticks from `now - stepMs` to `now` (FEED=synthetic), ingested as a feed's batch. */
  async syntheticFeed(now: number, stepMs: number): Promise<void> {
    const { store, instrument, config } = this.host;
    const feed = new SyntheticFeed(instrument, config.feedSeed, config.feedHours, now - stepMs, store.getState<SyntheticFeedState>("feed"));
    const ticks = feed.generate(now);
    store.putState("feed", feed.state());
    if (ticks.length > 0) await this.ingest(ticks.map((t) => toWireTick(t, instrument)), now, false, null);
  }

  /**
   * Validate, store and aggregate a batch of wire ticks; publish what changed,
   * then trade on it. `replay`: the ticks are history replayed (see
   * tradingClock). With a `batchId`, a batch sent again (its answer lost, or
   * cut by a crash) is answered with what was stored and goes on where it
   * stopped: its ticks are never stored twice. The same id with other ticks is
   * a conflict.
   */
  async ingest(ticks: readonly WireTick[], nowMs: number, replay: boolean, batchId: null): Promise<TickBatchResult>;
  async ingest(ticks: readonly WireTick[], nowMs: number, replay: boolean, batchId: string | null): Promise<TickBatchResult | TickBatchConflict>;
  async ingest(ticks: readonly WireTick[], nowMs: number, replay: boolean, batchId: string | null): Promise<TickBatchResult | TickBatchConflict> {
    const started = performance.now();
    const batch = batchId === null ? null : { id: batchId, digest: fnv1a64Hex(JSON.stringify([replay, ticks])) };
    const seen = batch ? this.host.store.tickBatch(batch.id) : undefined;
    if (batch && seen && seen.digest !== batch.digest) return { conflict: { batchId: batch.id } };
    const rejected: TickBatchResult["rejected"] = seen ? [...seen.rejected] : [];
    let signalled = false;
    let last: Tick | null = null;
    for (let from = seen?.next ?? 0; from < ticks.length; ) {
      const part = this.ingestUntilSignal(ticks, from, nowMs, replay, rejected, batch);
      this.host.room.publishClosed(part.closed);
      this.host.room.publishSignals(part.signals);
      signalled ||= part.signals.length > 0;
      if (part.last) last = part.last;
      from = part.next;
      if (from >= ticks.length) {
        // The room hears of the batch before any trading on it: clients should not wait for orders.
        if (last) this.host.room.quote(last, ticks.length - rejected.length);
        this.host.scheduleAlarm(nowMs);
      }
      // A signal is acted on at the quote that produced it (the tick that closed
      // its candle), not at the end of the batch: the first quote after the
      // decision, as in a backtest, whatever the batch size. With a position
      // open, each tick is traded on (ingestUntilSignal ends a part there).
      if (part.signals.length > 0 || from >= ticks.length || part.quoteEachTick) await this.host.trading.trade(part.signals, part.last);
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
  ): { next: number; closed: ClosedWithIndicators[]; signals: Signal[]; last: Tick | null; quoteEachTick: boolean } {
    const { store, instrument, rules, config } = this.host;
    const closed: ClosedWithIndicators[] = [];
    const signals: Signal[] = [];
    let last: Tick | null = null;
    let next = from;
    // With a position open or an order resting, every tick is a quote its stops, targets, trail or
    // trigger must see (as a backtest walks every quote of a bar), and a strategy that watches ticks
    // decides on each: the part ends at each accepted tick.
    const ticking = watchesTicks(this.strategyRuns);
    const quoteEachTick = ticking || this.host.orderStore.hasOpenPositionOrWorkingOrder();
    try {
      this.host.transaction(() => {
        let lastAccepted: Tick | null = this.last;
        while (next < ticks.length && signals.length === 0 && !(quoteEachTick && last !== null)) {
          const index = next++;
          const check = checkTick(ticks[index] as WireTick, {
            instrument,
            rules,
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
          store.insertTick(check.tick);
          closed.push(...this.persistClosed(done, signals, nowMs));
          if (ticking) this.stepTick(check.tick, signals, nowMs);
          last = check.tick;
          lastAccepted = check.tick;
        }
        if (last) {
          this.last = last;
          this.lagMs = Math.max(0, nowMs - (last as Tick).ts);
          this.replay = replay;
        }
        store.pruneTicks(config.tickRetentionCount);
        if (batch) store.putTickBatch(batch.id, batch.digest, next, rejected, nowMs);
        // A batch whose every tick was refused changes nothing.
        if (last) this.save();
      });
    } catch (err) {
      // Storage rolled back: rebuild memory from it so both agree, then fail the batch.
      this.load();
      this.host.rolledBack();
      throw err;
    }
    return { next, closed, signals, last, quoteEachTick };
  }

  /**
   * The alarm's part: close the candles whose time has passed on the data
   * clock (`now` minus the feed's lag and the grace), as a later tick would,
   * and trade on their signals.
   */
  async closeDue(now: number): Promise<void> {
    const closed = this.aggregator.closeDue(now - this.lagMs - this.host.config.candleCloseGraceMs);
    if (closed.length === 0) return;
    const signals: Signal[] = [];
    const withIndicators = this.host.transaction(() => {
      const persisted = this.persistClosed(closed, signals, now);
      this.save();
      return persisted;
    });
    this.host.room.publishClosed(withIndicators);
    this.host.room.publishSignals(signals);
    await this.host.trading.trade(signals, null);
  }

  /** Store closed candles and their indicators, step the strategies on them; new signals go to `signalsOut`. */
  private persistClosed(closed: readonly ClosedCandle[], signalsOut: Signal[], nowMs: number): ClosedWithIndicators[] {
    const { store, config } = this.host;
    // What the strategies see of the trading side, read once: nothing trades before the trader
    // decides the signals queued here, whatever number of candles closed at once.
    let trading: TradingView | null = null;
    return closed.map(({ tf, candle }) => {
      store.upsertCandle(tf, candle);
      const indicators = this.updateIndicators(tf, candle);
      store.putIndicators(tf, candle.t, indicators);
      store.pruneCandles(tf, config.candleRetention[tf]);
      if (this.strategyRuns.length > 0) {
        // The one place the strategies step: the kernel's candle event, with the strategies and
        // their open positions (which they see); the trader steps the rest of the pipeline.
        trading ??= this.tradingView();
        const state = { runs: this.strategyRuns, positions: trading.positions, orderTimesMs: [] };
        const out = step(this.kernel, state, { type: "candle", tf, candle, entries: trading.entries, account: this.host.account() });
        this.strategiesStepped(out, { timeframe: tf, candleT: candle.t }, signalsOut, nowMs);
      }
      return { tf, candle, indicators };
    });
  }

  /** The strategies that watch ticks step on `tick` (after the candles it closed), in the tick's transaction. */
  private stepTick(tick: Tick, signalsOut: Signal[], nowMs: number): void {
    const { positions, entries } = this.tradingView();
    const state = { runs: this.strategyRuns, positions, orderTimesMs: [] };
    const out = step(this.kernel, state, { type: "tick", quote: tick, entries, account: this.host.account() });
    this.strategiesStepped(out, { timeframe: "tick", candleT: tick.ts }, signalsOut, nowMs);
  }

  /** The open positions and the strategies' resting entries (limits and stops from signals), as the strategies see them. */
  private tradingView(): TradingView {
    const { orderStore } = this.host;
    return {
      positions: orderStore.openPositions(),
      entries: orderStore.workingOrders().flatMap((o) => (o.intent.type !== "market" && o.intent.signalId !== undefined ? [o.intent] : [])),
    };
  }

  /** Carry out what the strategies did on a candle or a tick, inside its transaction; new signals go to `signalsOut`. */
  private strategiesStepped(out: StepResult, at: { timeframe: Timeframe | "tick"; candleT: number }, signalsOut: Signal[], nowMs: number): void {
    const { tradingStore, orderStore } = this.host;
    this.strategyRuns = [...out.state.runs];
    for (const effect of out.effects) {
      if (effect.type === "runs_changed") for (const run of effect.runs) tradingStore.saveRunState(run, nowMs);
      // Withdrawn in this transaction, cancelled at the broker by the trader before it decides the signals.
      if (effect.type === "cancel") orderStore.requestCancel(effect.intent.clientOrderId, nowMs);
      if (effect.type === "strategy_fault") {
        // Suspended (the run in runs_changed above says so); the pair, its room and its other strategies go on.
        logEvent("error", "strategy.suspended", { pair: this.host.instrument.symbol, strategyId: effect.strategyId, ...effect.fault });
        this.host.audit("system", "strategy_suspended", { id: effect.strategyId, suspended: null }, { id: effect.strategyId, suspended: { ...effect.fault, ...at } });
      }
      if (effect.type !== "signal" || !tradingStore.insertSignal(effect.signal)) continue;
      // Decided later by the trader, in the order queued; a crash before then re-decides it, never twice.
      orderStore.queueSignal(effect.signal, nowMs);
      signalsOut.push(effect.signal);
    }
  }

  /** A run of `config` (with its saved state), its memory warmed from the stored candles it reads. */
  private newRun(config: StrategyConfig, savedState?: unknown, suspended: StrategySuspension | null = null): StrategyRun {
    const run = startRun(config, this.host.instrument, savedState, suspended);
    for (const tf of runTimeframes(run)) warmUp(run, tf, this.host.store.candles(tf, { limit: run.memory.warmUpCandles(tf) }));
    return run;
  }

  private updateIndicators(tf: Timeframe, candle: Candle): IndicatorValues {
    const precision = this.host.instrument.displayPrecision;
    const set = this.indicators.get(tf) ?? new IndicatorSet();
    this.indicators.set(tf, set);
    return roundIndicatorValues(set.update(candleToMidHLC(candle, precision)), precision + 3);
  }
}
