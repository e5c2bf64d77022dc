/**
 * One step of a user's strategy: the context it sees, the action it takes,
 * checked before it can become an order. Whatever the strategy does wrong
 * (throws, acts twice, names a price that is not one, returns a state that is
 * not JSON) comes back as a fault and never as an order: the kernel reports
 * it and the pair goes on.
 *
 * Strategies get no wall clock and no Math.random: while a step runs,
 * Date.now, performance.now and Math.random throw (ctx.now and ctx.random are
 * theirs), so one strategy on the same data decides the same in every way in.
 */
import * as v from "valibot";
import type { Candle, Timeframe } from "../candle.ts";
import type { Instrument } from "../instruments.ts";
import { toDecimal, toPoints, isPricePoints } from "../price.ts";
import { SeededRandom } from "../random.ts";
import { fnv1a64Hex } from "../trading/client-order-id.ts";
import type { Position } from "../trading/position.ts";
import type { SignalDraft } from "../trading/strategy.ts";
import type { ActionOptions, CandleView, EntryOptions, EntryView, InstrumentView, PositionView, QuoteView, SignalNote, StrategyAccount, StrategyContext, StrategyDefinition, TickContext } from "./api.ts";
import { ENTRY_EXPIRY_MAX_MS, ENTRY_EXPIRY_MIN_MS, STATE_BYTES_MAX } from "./api.ts";
import type { OrderIntent, Quote } from "../trading/types.ts";
import { metered, StrategyBudgetError } from "./meter.ts";
import { StrategyActionError, type RunMemory } from "./run-memory.ts";
import { AddLevelsSchema, BreakEvenSchema, Pips } from "../../../schemas/trading-events.ts";

export type StrategyFaultCode = "threw" | "invalid_action" | "invalid_state" | "over_budget";

export interface StrategyFault {
  code: StrategyFaultCode;
  message: string;
}

/** A step's outcome: its signal, if it acted, and the client order ids of the resting entries it withdrew. */
export type StepOutcome = { ok: true; state: unknown; draft: SignalDraft | null; cancels: readonly string[] } | { ok: false; fault: StrategyFault };

/** A step on a closed candle of `tf` (onCandle), or on a tick (onTick). */
export type StepInput = StepCommon & ({ tf: Timeframe; candle: Candle; tick?: undefined } | { tick: Quote; tf?: undefined; candle?: undefined });

interface StepCommon {
  /** The strategy's resting entries (limit or stop intents), oldest first. */
  entries?: readonly OrderIntent[];
  /** The strategy's open position, if any. */
  position: Position | null;
  strategyId: string;
  /** The account as the adapter last knew it (backtest: marked at this close). */
  account?: StrategyAccount;
  /** Operations the step may use (meter.ts). */
  budgetOps: number;
}

const UNITS_MAX = 100_000_000;
const REASON_CHARS_MAX = 200;
const METADATA_KEYS_MAX = 32;

const ActionSchema = v.strictObject({
  units: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(UNITS_MAX))),
  stopLoss: v.optional(v.pipe(v.number(), v.finite(), v.gtValue(0))),
  takeProfit: v.optional(v.pipe(v.number(), v.finite(), v.gtValue(0))),
  trailingStopPips: v.optional(Pips),
  breakEven: v.optional(BreakEvenSchema),
  addLevels: v.optional(AddLevelsSchema),
  confidence: v.optional(v.pipe(v.number(), v.finite(), v.minValue(0), v.maxValue(1))),
  reason: v.optional(v.pipe(v.string(), v.maxLength(REASON_CHARS_MAX))),
  metadata: v.optional(
    v.pipe(
      v.record(v.pipe(v.string(), v.maxLength(64)), v.union([v.pipe(v.number(), v.finite()), v.string(), v.boolean(), v.null()])),
      v.check((m) => Object.keys(m).length <= METADATA_KEYS_MAX, `at most ${METADATA_KEYS_MAX} metadata keys`),
    ),
  ),
});

/** What a step sees when its adapter has no account figure to give. */
const NO_ACCOUNT: StrategyAccount = Object.freeze({ currency: "USD", equity: null });

const instrumentViews = new WeakMap<Instrument, InstrumentView>();

/** The instrument as a strategy sees it (one frozen object per instrument). */
export function instrumentView(instrument: Instrument): InstrumentView {
  let view = instrumentViews.get(instrument);
  if (!view) instrumentViews.set(instrument, (view = Object.freeze(makeInstrumentView(instrument))));
  return view;
}

function makeInstrumentView(instrument: Instrument): InstrumentView {
  return {
    symbol: instrument.symbol,
    base: instrument.base,
    quote: instrument.quote,
    // 1 / 10^4, not 10^-4 (which is 0.00009999999999999999 in a double).
    pip: 1 / 10 ** -instrument.pipLocation,
    precision: instrument.displayPrecision,
  };
}

function positionView(p: Position, closeMid: number, instrument: Instrument): PositionView {
  const sign = p.side === "buy" ? 1 : -1;
  const averagePrice = toDecimal(p.entryPrice, instrument);
  return {
    side: sign > 0 ? "long" : "short",
    units: sign * p.units,
    averagePrice,
    unrealizedPnlQuote: sign * p.units * (closeMid - averagePrice),
    stopLoss: p.stopLoss !== undefined ? toDecimal(p.stopLoss, instrument) : null,
    takeProfit: p.takeProfit !== undefined ? toDecimal(p.takeProfit, instrument) : null,
    trailingStop: p.trailingStopPrice !== undefined ? toDecimal(p.trailingStopPrice, instrument) : null,
    breakEvenDone: p.breakEven?.status === "MOVED",
    openedAt: p.openedAt,
  };
}

function entryView(o: OrderIntent, instrument: Instrument): EntryView {
  return { id: o.clientOrderId, side: o.side, type: o.type === "stop" ? "stop" : "limit", price: toDecimal(o.price ?? 0, instrument), units: o.units, expiresAt: o.expiresAtMs ?? Number.POSITIVE_INFINITY };
}

/** Seed of a step's random source: the pair, the strategy and the candle (or tick), so every run draws the same numbers. */
function stepSeed(pair: string, strategyId: string, tf: Timeframe | "tick", t: number): number {
  return Number.parseInt(fnv1a64Hex(`${pair}\u0000${strategyId}\u0000${tf}\u0000${t}`).slice(0, 8), 16);
}

function forbidden(what: string, instead: string): () => never {
  return () => {
    throw new StrategyActionError(`${what} is not available to a strategy: use ${instead}`);
  };
}

/** True while a strategy's step runs: the guards below then refuse the ambient clock and chance. */
let stepping = false;

/**
 * Date.now, performance.now and Math.random are wrapped once, when this
 * module loads, in guards that throw while a step runs and pass through
 * otherwise. Swapping the globals in and out around every step would change
 * the shapes of Date, Math and performance twice a step, which V8 charges to
 * every other caller of Math.* in the isolate.
 */
function guard(original: () => number, what: string, instead: string): () => number {
  const refuse = forbidden(what, instead);
  return () => (stepping ? refuse() : original());
}

const realNow = Date.now;
const realRandom = Math.random;
Date.now = guard(() => realNow(), "Date.now()", "ctx.now");
Math.random = guard(() => realRandom(), "Math.random()", "ctx.random()");
const perf = (globalThis as { performance?: { now(): number } }).performance;
if (perf) {
  const realPerfNow = perf.now.bind(perf);
  perf.now = guard(realPerfNow, "performance.now()", "ctx.now");
}

/** Run the step within its budget, with the wall clock and Math.random taken away. */
function isolatedStep(definition: StrategyDefinition<Record<string, unknown>, unknown>, ctx: StepContext, state: unknown, budgetOps: number): unknown {
  stepping = true;
  try {
    if (ctx.quote === null) return metered(budgetOps, () => definition.onCandle(ctx as StrategyContext<Record<string, unknown>>, state));
    const onTick = definition.onTick;
    if (!onTick) throw new StrategyActionError("watch() asks for ticks but the strategy has no onTick");
    return metered(budgetOps, () => onTick.call(definition, ctx as TickContext<Record<string, unknown>>, state));
  } finally {
    stepping = false;
  }
}

type Action = { type: "buy" | "sell" | "close"; options: ActionOptions; entry?: { type: "limit" | "stop"; price: number; expiresAfterMs: number } };

const EntrySchema = v.object({
  side: v.picklist(["buy", "sell"]),
  type: v.picklist(["limit", "stop"]),
  price: v.pipe(v.number(), v.finite(), v.gtValue(0)),
  expiresAfterMs: v.pipe(v.number(), v.integer(), v.minValue(ENTRY_EXPIRY_MIN_MS), v.maxValue(ENTRY_EXPIRY_MAX_MS)),
});

/** An action's invalid options, in one line: `path: message; ...`. */
function issuesText(issues: readonly v.BaseIssue<unknown>[]): string {
  return issues.map((i) => `${v.getDotPath(i) ?? "options"}: ${i.message}`).join("; ");
}

/**
 * What a step sees and acts through. A class, so a step allocates one object
 * and no closures: its methods live on the prototype (call them on ctx:
 * `ctx.buy(...)`, not a detached `buy`).
 */
class StepContext implements Omit<TickContext<Record<string, unknown>>, "quote"> {
  readonly instrument: InstrumentView;
  /** The tick of a tick step; null on a candle step. */
  readonly quote: QuoteView | null;
  readonly account: StrategyAccount;
  readonly now: number;
  readonly position: PositionView | null;
  readonly orders: readonly EntryView[];
  action: Action | null = null;
  /** Client order ids of resting entries withdrawn, in the order asked. */
  readonly cancels: string[] = [];
  private generator: SeededRandom | null = null;

  constructor(
    readonly params: Record<string, unknown>,
    readonly candle: CandleView | null,
    private readonly memory: RunMemory,
    private readonly input: StepInput,
    private readonly pair: Instrument,
  ) {
    this.instrument = instrumentView(pair);
    // As given, not copied and frozen: freezing a fresh object each step doubled a step's cost.
    this.account = input.account ?? NO_ACCOUNT;
    const tick = input.tick;
    const scale = 10 ** pair.displayPrecision;
    this.quote = tick ? { time: tick.ts, bid: tick.bid / scale, ask: tick.ask / scale, mid: (tick.bid + tick.ask) / 2 / scale } : null;
    this.now = tick ? tick.ts : (candle as CandleView).closeTime;
    const mark = this.quote ? this.quote.mid : (candle as CandleView).close;
    this.position = input.position ? positionView(input.position, mark, pair) : null;
    this.orders = (input.entries ?? []).map((o) => entryView(o, pair));
  }

  candles(tf: Timeframe): readonly CandleView[] {
    return this.memory.candles(tf);
  }

  indicator<R = number>(name: string): R | null {
    return this.memory.indicator(name) as R | null;
  }

  random(): number {
    // Seeded on first use: hashing the seed costs more than the rest of a typical step.
    this.generator ??= this.seeded();
    return this.generator.next();
  }

  private seeded(): SeededRandom {
    const { tick, tf, candle, strategyId } = this.input;
    return new SeededRandom(tick ? stepSeed(this.pair.symbol, strategyId, "tick", tick.ts) : stepSeed(this.pair.symbol, strategyId, tf, candle.t));
  }

  buy(options?: ActionOptions): void {
    this.act("buy", options);
  }

  sell(options?: ActionOptions): void {
    this.act("sell", options);
  }

  close(note?: SignalNote): void {
    this.act("close", note);
  }

  target(units: number, options?: Omit<ActionOptions, "units">): void {
    if (!(Number.isSafeInteger(units) && Math.abs(units) <= UNITS_MAX)) throw new StrategyActionError(`target: units must be a whole number within ±${UNITS_MAX}, got ${String(units)}`);
    if (units === 0) this.act("close", options);
    else this.act(units > 0 ? "buy" : "sell", { ...options, units: Math.abs(units) });
  }

  enter(options: EntryOptions): void {
    const { side, type, price, expiresAfterMs, ...rest } = (options ?? {}) as EntryOptions;
    const entry = v.safeParse(EntrySchema, { side, type, price, expiresAfterMs });
    if (!entry.success) throw new StrategyActionError(`enter: ${issuesText(entry.issues)}`);
    this.act(entry.output.side, rest, { type: entry.output.type, price: entry.output.price, expiresAfterMs: entry.output.expiresAfterMs });
  }

  cancel(id?: string): void {
    if (id !== undefined && typeof id !== "string") throw new StrategyActionError(`cancel: the id must be a string of ctx.orders, got ${typeof id}`);
    for (const o of this.orders) if ((id === undefined || o.id === id) && !this.cancels.includes(o.id)) this.cancels.push(o.id);
  }

  private act(type: Action["type"], options: ActionOptions | undefined, entry?: Action["entry"]): void {
    if (this.action) throw new StrategyActionError(`one action per step: ${this.action.type} was already taken, then ${entry ? "enter" : type}`);
    const parsed = v.safeParse(ActionSchema, options ?? {});
    if (!parsed.success) throw new StrategyActionError(`${entry ? "enter" : type}: ${issuesText(parsed.issues)}`);
    this.action = { type, options: parsed.output as ActionOptions, ...(entry ? { entry } : {}) };
  }
}

/** Step `definition` on a closed candle of one of its watched timeframes (the memory has been fed it), or on a tick. */
export function stepStrategy(
  definition: StrategyDefinition<Record<string, unknown>, unknown>,
  params: Record<string, unknown>,
  memory: RunMemory,
  state: unknown,
  input: StepInput,
  instrument: Instrument,
): StepOutcome {
  const candleViews = memory.candles(input.tf ?? (memory.watch.timeframes[0] as Timeframe));
  const candle = candleViews[candleViews.length - 1] ?? null;
  if (!candle && !input.tick) throw new Error("stepStrategy: the memory was not fed the candle");
  const ctx = new StepContext(params, candle, memory, input, instrument);
  let next: unknown;
  try {
    next = isolatedStep(definition, ctx, state, input.budgetOps);
  } catch (err) {
    const code = err instanceof StrategyBudgetError ? "over_budget" : err instanceof StrategyActionError ? "invalid_action" : "threw";
    return { ok: false, fault: { code, message: messageOf(err) } };
  }
  const saved = checkState(next);
  if (saved !== null) return { ok: false, fault: { code: "invalid_state", message: saved } };
  if (ctx.action === null) return { ok: true, state: next, draft: null, cancels: ctx.cancels };
  const drafted = draftOf(ctx.action, instrument, ctx.now);
  return typeof drafted === "string" ? { ok: false, fault: { code: "invalid_action", message: drafted } } : { ok: true, state: next, draft: drafted, cancels: ctx.cancels };
}

function messageOf(err: unknown): string {
  const text = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return text.slice(0, 500);
}

/** Why `state` cannot be saved, or null: it must be plain JSON that reads back as it is. */
function checkState(state: unknown): string | null {
  if (state === undefined) return "onCandle returned nothing: return the next state (plain JSON)";
  if (state !== null && typeof (state as Promise<unknown>).then === "function") return "onCandle returned a Promise: steps are synchronous";
  const budget = { bytes: 0 };
  if (!plainJson(state, 0, budget)) return "the state does not survive JSON (a function, a class instance, undefined, NaN or Infinity in it, or nested over 32 deep)";
  // The walk's count is an upper bound (numbers at 24 bytes): measure exactly only when it may be over.
  if (budget.bytes > STATE_BYTES_MAX) {
    const bytes = JSON.stringify(state).length;
    if (bytes > STATE_BYTES_MAX) return `the state is ${bytes} bytes of JSON, over ${STATE_BYTES_MAX}`;
  }
  return null;
}

const STATE_DEPTH_MAX = 32;

/** Whether `value` is plain JSON (what JSON.parse(JSON.stringify(value)) gives back equal); adds an upper bound of its size to `budget`. */
function plainJson(value: unknown, depth: number, budget: { bytes: number }): boolean {
  switch (typeof value) {
    case "string":
      budget.bytes += value.length * 6 + 2;
      return true;
    case "number":
      budget.bytes += 24;
      return Number.isFinite(value);
    case "boolean":
      budget.bytes += 5;
      return true;
    case "object": {
      if (value === null) {
        budget.bytes += 4;
        return true;
      }
      if (depth >= STATE_DEPTH_MAX) return false;
      if (Array.isArray(value)) {
        budget.bytes += 2 + value.length;
        for (let i = 0; i < value.length; i++) if (!plainJson(value[i], depth + 1, budget)) return false;
        return true;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) return false;
      budget.bytes += 2;
      for (const key in value) {
        if (!Object.hasOwn(value, key)) continue;
        budget.bytes += key.length * 6 + 4;
        if (!plainJson((value as Record<string, unknown>)[key], depth + 1, budget)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

/** The signal draft of an action, its prices in points; or why it cannot be one. */
function draftOf(action: Action, instrument: Instrument, nowMs: number): SignalDraft | string {
  const o = action.options;
  const points = (name: string, price: number | undefined): number | undefined | string => {
    if (price === undefined) return undefined;
    const p = toPoints(price, instrument);
    return isPricePoints(p) ? p : `${name} ${price} is not a price of ${instrument.symbol}`;
  };
  const stopLoss = points("stopLoss", o.stopLoss);
  const takeProfit = points("takeProfit", o.takeProfit);
  if (typeof stopLoss === "string") return stopLoss;
  if (typeof takeProfit === "string") return takeProfit;
  const entryPrice = action.entry ? points("price", action.entry.price) : undefined;
  if (typeof entryPrice === "string") return entryPrice;
  const order = {
    ...(action.entry && entryPrice !== undefined ? { entry: { type: action.entry.type, price: entryPrice, expiresAtMs: nowMs + action.entry.expiresAfterMs } } : {}),
    ...(o.units !== undefined ? { units: o.units } : {}),
    ...(o.trailingStopPips !== undefined ? { trailingStopPips: o.trailingStopPips } : {}),
    ...(o.breakEven !== undefined ? { breakEven: o.breakEven } : {}),
    ...(o.addLevels !== undefined ? { addLevels: o.addLevels } : {}),
  };
  const closing = action.type === "close";
  return {
    type: action.type,
    confidence: o.confidence ?? 1,
    reason: o.reason ?? action.type,
    metadata: o.metadata ?? {},
    ...(!closing && stopLoss !== undefined ? { stopLoss } : {}),
    ...(!closing && takeProfit !== undefined ? { takeProfit } : {}),
    ...(!closing && Object.keys(order).length > 0 ? { order } : {}),
  };
}
