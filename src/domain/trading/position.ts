/**
 * Netting position per (pair, strategyId), as immutable JSON data: every
 * function takes a state and returns a new one, so the actor can persist it,
 * replay can rebuild it, and a test can compare them field by field.
 *
 * Money is exact (see money.ts). The average entry is never stored rounded:
 * the position keeps `costUnitPoints` = sum of units x price (points) of the
 * open units, and `entryPrice` is only its display form. A reduce removes the
 * proportional share of that cost, rounded half away from zero to a whole
 * unit-point, and the final close removes whatever is left. Hence, over the
 * life of a position, realised P&L equals the exact cash flow of its fills,
 * and at every step realised + unrealised equals cash flow + units x mark.
 *
 * Lifecycle: OPEN -> CLOSED, never back. A fill on a closed (or absent)
 * position opens a new one whose id derives from the opening fill id, so
 * replay reproduces the same ids.
 *
 * Domain rule violations are returned as data (`{ type, ... }`); RangeError is
 * thrown only for magnitudes the integer model cannot hold (see money.ts).
 */
import type { Instrument } from "../instruments.ts";
import { getInstrument } from "../instruments.ts";
import { isPipDistance, isPricePoints, MAX_PRICE_POINTS, pipsToPoints } from "../price.ts";
import type { ConversionRate, NoConversionRate, Result } from "./money.ts";
import {
  bigintToSafeNumber,
  convertQuoteMicrosToAccountCents,
  DEFAULT_ACCOUNT_CURRENCY,
  divRoundHalfAway,
  MAX_UNITS,
  unitPointsToQuoteMicros,
} from "./money.ts";
import type { Fill, Quote, Side } from "./types.ts";

export type PositionStatus = "OPEN" | "CLOSED";

/**
 * Break-even, one shot per position:
 * - PENDING: configured; price has not yet gone triggerPips in favour of the
 *   average entry (long: bid - entry, short: entry - ask).
 * - ARMED: the trigger was reached once (it stays armed if price comes back),
 *   but the break-even stop (long: ceil(entry) + offsetPips, short:
 *   floor(entry) - offsetPips) is not yet strictly on the protective side of
 *   the market, so placing it would exit at once. With offsetPips < triggerPips
 *   ARMED -> MOVED happens on the same quote.
 * - MOVED: the stop loss now protects at least the break-even level. The stop
 *   only ever tightens: if it was already beyond the level it is left alone.
 * Adds after MOVED change the average entry but do not re-run break-even.
 */
export type BreakEvenStatus = "PENDING" | "ARMED" | "MOVED";

export interface BreakEvenConfig {
  triggerPips: number;
  offsetPips: number;
}

export interface BreakEven extends BreakEvenConfig {
  status: BreakEvenStatus;
}

/**
 * Add-position (pyramiding) levels: a new level is due when price has moved
 * offsetPips in favour of the last entry level, at the price an add would
 * execute (long: ask, short: bid); its size is the previous level's units x
 * sizeMultiplier, rounded down. At most maxLevels adds per position.
 */
export interface AddLevelsConfig {
  maxLevels: number;
  offsetPips: number;
  /** Up to 6 decimals, in (0, MAX_SIZE_MULTIPLIER]: held as an exact integer ratio. */
  sizeMultiplier: number;
}

export interface EntryLevel {
  units: number;
  /** Fill price, points. */
  price: number;
  ts: number;
}

export interface AddLevels extends AddLevelsConfig {
  /** levels[0] is the opening fill (or the position when configured later), then one per add. */
  levels: EntryLevel[];
}

export const MAX_ADD_LEVELS = 20;
export const MAX_SIZE_MULTIPLIER = 10;

/** Protective settings carried by an opening order (prices in points). */
export interface Protection {
  stopLoss?: number;
  takeProfit?: number;
  trailingStopPips?: number;
  breakEven?: BreakEvenConfig;
  addLevels?: AddLevelsConfig;
}

export interface Position {
  /** `${pair}:${strategyId}:${openingFillId}` */
  id: string;
  pair: string;
  strategyId: string;
  status: PositionStatus;
  /** "buy" = long, "sell" = short. */
  side: Side;
  /** Open units, > 0 while OPEN, 0 once CLOSED. */
  units: number;
  /** Sum of units x price (points) of the open units: the exact average-cost basis. */
  costUnitPoints: number;
  /** costUnitPoints / units, for display (may be fractional); the last average once closed. */
  entryPrice: number;
  accountCurrency: string;
  stopLoss?: number;
  takeProfit?: number;
  trailingStopPips?: number;
  /** Current trailing stop level, points; only ever moves in favour of the position. */
  trailingStopPrice?: number;
  breakEven?: BreakEven;
  addLevels?: AddLevels;
  /** Gross of commission. */
  realisedPnlQuoteMicros: number;
  /** Sum of each reduce's P&L converted at that reduce's rate, gross of commission. */
  realisedPnlAccountCents: number;
  commissionQuoteMicros: number;
  commissionAccountCents: number;
  openedAt: number;
  closedAt?: number;
  lastFillId: string;
  fillCount: number;
  /** Optimistic concurrency: 1 at open, +1 on every change. */
  version: number;
}

export type PositionError =
  | { type: "stale_version"; expected: number; actual: number }
  | { type: "position_closed"; positionId: string }
  | { type: "pair_mismatch"; expected: string; actual: string }
  | { type: "strategy_mismatch"; expected: string; actual: string }
  | { type: "invalid_fill"; field: "units" | "price" | "commissionQuoteMicros" | "side"; actual: number | string }
  | { type: "duplicate_fill"; fillId: string }
  | { type: "position_too_large"; limit: number; actual: number }
  | { type: "invalid_protection"; field: string; actual: number }
  | { type: "add_levels_exhausted"; limit: number; actual: number }
  | NoConversionRate;

export interface FillContext {
  instrument: Instrument;
  strategyId: string;
  /**
   * Prices of other pairs for account conversion (e.g. USD_JPY for an EUR_JPY
   * position in a USD account). The position's own pair is always converted
   * at the fill price, which is put first. A missing rate refuses the fill
   * (`no_conversion_rate`) rather than recording P&L that cannot be valued.
   */
  rates?: readonly ConversionRate[];
  /** Used when this fill opens a position; later fills keep the position's. Default USD. */
  accountCurrency?: string;
  /** When given, the fill is refused unless the position is at this version. */
  expectedVersion?: number;
  /** Applied to a position this fill opens (including the remainder of a reversal). */
  protection?: Protection;
  /**
   * The fill executes the add level nextAddLevel reported: record it as a
   * level (refused with add_levels_exhausted past maxLevels). Ignored when the
   * fill opens a position.
   */
  addLevel?: boolean;
}

export interface FillOutcome {
  /** The position after the fill: open, or closed if the fill flattened it exactly. */
  position: Position;
  /** Set when the fill overshot: the position it closed (`position` is then the new one). */
  closed?: Position;
  realisedPnlQuoteMicros: number;
  realisedPnlAccountCents: number;
}

const fail = <T>(error: PositionError): Result<T, PositionError> => ({ ok: false, error });

const isLong = (p: { side: Side }): boolean => p.side === "buy";

function validateFill(fill: Fill, instrument: Instrument): PositionError | null {
  if (fill.pair !== instrument.symbol) return { type: "pair_mismatch", expected: instrument.symbol, actual: fill.pair };
  if (fill.side !== "buy" && fill.side !== "sell") return { type: "invalid_fill", field: "side", actual: String(fill.side) };
  if (!Number.isSafeInteger(fill.units) || fill.units < 1 || fill.units > MAX_UNITS) {
    return { type: "invalid_fill", field: "units", actual: fill.units };
  }
  if (!Number.isSafeInteger(fill.price) || fill.price < 1 || fill.price > MAX_PRICE_POINTS) {
    return { type: "invalid_fill", field: "price", actual: fill.price };
  }
  if (!Number.isSafeInteger(fill.commissionQuoteMicros)) {
    return { type: "invalid_fill", field: "commissionQuoteMicros", actual: fill.commissionQuoteMicros };
  }
  return null;
}


/** Exact integer ratio of a multiplier with at most 6 decimals, or null. */
function multiplierMicros(m: number): number | null {
  if (!Number.isFinite(m) || m <= 0 || m > MAX_SIZE_MULTIPLIER) return null;
  const micros = Math.round(m * 1_000_000);
  return micros >= 1 && micros / 1_000_000 === m ? micros : null;
}

function validateProtection(p: Protection, instrument: Instrument): PositionError | null {
  const bad = (field: string, actual: number): PositionError => ({ type: "invalid_protection", field, actual });
  if (p.stopLoss !== undefined && !isPricePoints(p.stopLoss)) return bad("stopLoss", p.stopLoss);
  if (p.takeProfit !== undefined && !isPricePoints(p.takeProfit)) return bad("takeProfit", p.takeProfit);
  if (p.trailingStopPips !== undefined && !isPipDistance(p.trailingStopPips, instrument)) return bad("trailingStopPips", p.trailingStopPips);
  if (p.breakEven) {
    if (!isPipDistance(p.breakEven.triggerPips, instrument)) return bad("breakEven.triggerPips", p.breakEven.triggerPips);
    const offset = p.breakEven.offsetPips;
    // A negative offset would "protect" a loss: that is a stop loss, not break-even.
    if (!Number.isFinite(offset) || offset < 0) return bad("breakEven.offsetPips", offset);
  }
  if (p.addLevels) {
    const a = p.addLevels;
    if (!Number.isSafeInteger(a.maxLevels) || a.maxLevels < 1 || a.maxLevels > MAX_ADD_LEVELS) return bad("addLevels.maxLevels", a.maxLevels);
    if (!isPipDistance(a.offsetPips, instrument)) return bad("addLevels.offsetPips", a.offsetPips);
    if (multiplierMicros(a.sizeMultiplier) === null) return bad("addLevels.sizeMultiplier", a.sizeMultiplier);
  }
  return null;
}

function toCents(amountQuoteMicros: number, instrument: Instrument, account: string, rates: readonly ConversionRate[]): Result<number, NoConversionRate> {
  return convertQuoteMicrosToAccountCents(amountQuoteMicros, instrument.quote, account, rates);
}

function openPosition(fill: Fill, ctx: FillContext, rates: readonly ConversionRate[]): Result<Position, PositionError> {
  const protection = ctx.protection ?? {};
  const invalid = validateProtection(protection, ctx.instrument);
  if (invalid) return fail(invalid);
  const accountCurrency = ctx.accountCurrency ?? DEFAULT_ACCOUNT_CURRENCY;
  const commission = toCents(fill.commissionQuoteMicros, ctx.instrument, accountCurrency, rates);
  if (!commission.ok) return fail(commission.error);
  const cost = bigintToSafeNumber(BigInt(fill.units) * BigInt(fill.price), "position cost");
  const position: Position = {
    id: `${fill.pair}:${ctx.strategyId}:${fill.id}`,
    pair: fill.pair,
    strategyId: ctx.strategyId,
    status: "OPEN",
    side: fill.side,
    units: fill.units,
    costUnitPoints: cost,
    entryPrice: fill.price,
    accountCurrency,
    realisedPnlQuoteMicros: 0,
    realisedPnlAccountCents: 0,
    commissionQuoteMicros: fill.commissionQuoteMicros,
    commissionAccountCents: commission.value,
    openedAt: fill.ts,
    lastFillId: fill.id,
    fillCount: 1,
    version: 1,
  };
  if (protection.stopLoss !== undefined) position.stopLoss = protection.stopLoss;
  if (protection.takeProfit !== undefined) position.takeProfit = protection.takeProfit;
  if (protection.trailingStopPips !== undefined) {
    position.trailingStopPips = protection.trailingStopPips;
    // Starts from the fill price so the stop exists from the first instant; quotes then tighten it from the bid (long) or ask (short).
    const distance = pipsToPoints(protection.trailingStopPips, ctx.instrument);
    position.trailingStopPrice = fill.side === "buy" ? fill.price - distance : fill.price + distance;
  }
  if (protection.breakEven) position.breakEven = { ...protection.breakEven, status: "PENDING" };
  if (protection.addLevels) {
    position.addLevels = { ...protection.addLevels, levels: [{ units: fill.units, price: fill.price, ts: fill.ts }] };
  }
  return { ok: true, value: position };
}

/**
 * Apply one fill: open, add (same side: average cost), reduce (opposite side:
 * realise P&L on the reduced units), close at exactly zero, or close and open
 * the remainder on the other side when it overshoots. Nothing changes when an
 * error is returned.
 */
export function applyFill(position: Position | null, fill: Fill, ctx: FillContext): Result<FillOutcome, PositionError> {
  const invalid = validateFill(fill, ctx.instrument);
  if (invalid) return fail(invalid);
  if (position) {
    if (ctx.expectedVersion !== undefined && ctx.expectedVersion !== position.version) {
      return fail({ type: "stale_version", expected: ctx.expectedVersion, actual: position.version });
    }
    if (position.pair !== fill.pair) return fail({ type: "pair_mismatch", expected: position.pair, actual: fill.pair });
    if (position.strategyId !== ctx.strategyId) return fail({ type: "strategy_mismatch", expected: position.strategyId, actual: ctx.strategyId });
  }
  // The position's own pair is valued at the price this fill executed at.
  const rates: readonly ConversionRate[] = [{ instrument: ctx.instrument, points: fill.price }, ...(ctx.rates ?? [])];

  if (!position || position.status === "CLOSED") {
    // An opening fill is level 0 whatever ctx.addLevel says: there is nothing to add to.
    const opened = openPosition(fill, ctx, rates);
    if (!opened.ok) return opened;
    return { ok: true, value: { position: opened.value, realisedPnlQuoteMicros: 0, realisedPnlAccountCents: 0 } };
  }
  if (fill.id === position.lastFillId) return fail({ type: "duplicate_fill", fillId: fill.id });
  if (fill.side === position.side) return addToPosition(position, fill, ctx, rates);
  return reducePosition(position, fill, ctx, rates);
}

function addToPosition(position: Position, fill: Fill, ctx: FillContext, rates: readonly ConversionRate[]): Result<FillOutcome, PositionError> {
  const units = position.units + fill.units;
  if (units > MAX_UNITS) return fail({ type: "position_too_large", limit: MAX_UNITS, actual: units });
  const commission = toCents(fill.commissionQuoteMicros, ctx.instrument, position.accountCurrency, rates);
  if (!commission.ok) return fail(commission.error);
  const cost = bigintToSafeNumber(BigInt(position.costUnitPoints) + BigInt(fill.units) * BigInt(fill.price), "position cost");
  const next: Position = {
    ...position,
    units,
    costUnitPoints: cost,
    entryPrice: cost / units,
    commissionQuoteMicros: bigintToSafeNumber(BigInt(position.commissionQuoteMicros) + BigInt(fill.commissionQuoteMicros), "commission"),
    commissionAccountCents: position.commissionAccountCents + commission.value,
    lastFillId: fill.id,
    fillCount: position.fillCount + 1,
    version: position.version + 1,
  };
  if (ctx.addLevel) {
    const add = position.addLevels;
    const added = add ? add.levels.length - 1 : 0;
    if (!add || added >= add.maxLevels) return fail({ type: "add_levels_exhausted", limit: add?.maxLevels ?? 0, actual: added });
    next.addLevels = { ...add, levels: [...add.levels, { units: fill.units, price: fill.price, ts: fill.ts }] };
  }
  return { ok: true, value: { position: next, realisedPnlQuoteMicros: 0, realisedPnlAccountCents: 0 } };
}

function reducePosition(position: Position, fill: Fill, ctx: FillContext, rates: readonly ConversionRate[]): Result<FillOutcome, PositionError> {
  const closeUnits = Math.min(fill.units, position.units);
  const remainder = fill.units - closeUnits;
  // Average cost of the reduced units; the last close takes all that is left.
  const cost = BigInt(position.costUnitPoints);
  const removed = closeUnits === position.units ? cost : divRoundHalfAway(cost * BigInt(closeUnits), BigInt(position.units));
  const proceeds = BigInt(closeUnits) * BigInt(fill.price);
  const pnlUnitPoints = isLong(position) ? proceeds - removed : removed - proceeds;
  const pnlMicros = unitPointsToQuoteMicros(pnlUnitPoints, ctx.instrument);
  // A reversing fill's commission is shared pro rata between the two positions.
  const closeCommission =
    remainder === 0 ? fill.commissionQuoteMicros : Number(divRoundHalfAway(BigInt(fill.commissionQuoteMicros) * BigInt(closeUnits), BigInt(fill.units)));

  const account = position.accountCurrency;
  const pnlCents = toCents(pnlMicros, ctx.instrument, account, rates);
  if (!pnlCents.ok) return fail(pnlCents.error);
  const commissionCents = toCents(closeCommission, ctx.instrument, account, rates);
  if (!commissionCents.ok) return fail(commissionCents.error);

  const units = position.units - closeUnits;
  const next: Position = {
    ...position,
    units,
    costUnitPoints: bigintToSafeNumber(cost - removed, "position cost"),
    realisedPnlQuoteMicros: bigintToSafeNumber(BigInt(position.realisedPnlQuoteMicros) + BigInt(pnlMicros), "realised P&L"),
    realisedPnlAccountCents: bigintToSafeNumber(BigInt(position.realisedPnlAccountCents) + BigInt(pnlCents.value), "realised P&L"),
    commissionQuoteMicros: bigintToSafeNumber(BigInt(position.commissionQuoteMicros) + BigInt(closeCommission), "commission"),
    commissionAccountCents: position.commissionAccountCents + commissionCents.value,
    lastFillId: fill.id,
    fillCount: position.fillCount + 1,
    version: position.version + 1,
  };
  if (units > 0) {
    next.entryPrice = next.costUnitPoints / units;
  } else {
    next.status = "CLOSED";
    next.closedAt = fill.ts;
  }
  const outcome = { realisedPnlQuoteMicros: pnlMicros, realisedPnlAccountCents: pnlCents.value };
  if (remainder === 0) return { ok: true, value: { position: next, ...outcome } };

  const rest: Fill = { ...fill, units: remainder, commissionQuoteMicros: fill.commissionQuoteMicros - closeCommission };
  const opened = openPosition(rest, { ...ctx, accountCurrency: account }, rates);
  if (!opened.ok) return opened;
  return { ok: true, value: { position: opened.value, closed: next, ...outcome } };
}

export interface Valuation {
  /** bid for a long, ask for a short: the price it would exit at. */
  markPrice: number;
  unrealisedPnlQuoteMicros: number;
  unrealisedPnlAccountCents: number;
}

export interface ValuationContext {
  /** Defaults to the registry entry for position.pair. */
  instrument?: Instrument;
  /** As in FillContext; the position's own pair is valued at the mark price. */
  rates?: readonly ConversionRate[];
}

/** Unrealised P&L at a quote, exact in quote micros, then converted to account cents. */
export function markToMarket(position: Position, quote: Quote, ctx: ValuationContext = {}): Result<Valuation, NoConversionRate> {
  const instrument = ctx.instrument ?? getInstrument(position.pair);
  const markPrice = isLong(position) ? quote.bid : quote.ask;
  if (position.status === "CLOSED") return { ok: true, value: { markPrice, unrealisedPnlQuoteMicros: 0, unrealisedPnlAccountCents: 0 } };
  const value = BigInt(position.units) * BigInt(markPrice);
  const cost = BigInt(position.costUnitPoints);
  const micros = unitPointsToQuoteMicros(isLong(position) ? value - cost : cost - value, instrument);
  const rates: readonly ConversionRate[] = [{ instrument, points: markPrice }, ...(ctx.rates ?? [])];
  const cents = toCents(micros, instrument, position.accountCurrency, rates);
  if (!cents.ok) return cents;
  return { ok: true, value: { markPrice, unrealisedPnlQuoteMicros: micros, unrealisedPnlAccountCents: cents.value } };
}

export type ExitReason = "stop_loss" | "take_profit" | "trailing_stop";

export interface ExitTrigger {
  reason: ExitReason;
  /** The stop or target level that was crossed, points. */
  level: number;
  /** Market price the exit would execute at now (long: bid, short: ask), before slippage. */
  price: number;
}

export interface QuoteOutcome {
  position: Position;
  exit?: ExitTrigger;
}

/** Is `candidate` a tighter (more protective) stop than `current` for this side? */
const tighter = (long: boolean, candidate: number, current: number): boolean => (long ? candidate > current : candidate < current);

/** ceil / floor of a positive rational, exact. */
const ceilDiv = (n: bigint, d: bigint): bigint => (n + d - 1n) / d;

/**
 * Break-even in price points: `arm`, the first mark at which the gain reaches
 * `triggerPips` (the average entry rounded against the position, so a mark
 * there has surely gained the trigger), and `level`, where the stop moves
 * once armed (entry plus `offsetPips` in favour, rounded towards profit so it
 * is never worse than the true break-even). Null without break-even or once
 * closed.
 */
export function breakEvenLevels(position: Position, instrument: Instrument = getInstrument(position.pair)): { arm: number; level: number } | null {
  const be = position.breakEven;
  if (!be || position.units === 0) return null; // a closed position has no entry left
  const units = BigInt(position.units);
  const cost = BigInt(position.costUnitPoints);
  const trigger = pipsToPoints(be.triggerPips, instrument);
  const offset = pipsToPoints(be.offsetPips, instrument);
  return isLong(position)
    ? { arm: Number(ceilDiv(cost, units)) + trigger, level: Number(ceilDiv(cost, units)) + offset }
    : { arm: Number(cost / units) - trigger, level: Number(cost / units) - offset };
}

/**
 * Advance the trailing stop and the break-even state on a quote, then report
 * whether a stop, target or trailing stop is hit. The exit is only reported:
 * the caller sends a reduce-only order (with a client order id derived from
 * the position id and reason, so repeated reports collapse into one order) and
 * the position closes when that fill is applied. Version increments once per
 * call that changes anything; an unchanged position is returned as is.
 */
export function onQuote(position: Position, quote: Quote, instrument: Instrument = getInstrument(position.pair)): QuoteOutcome {
  if (position.status === "CLOSED") return { position };
  const long = isLong(position);
  const mark = long ? quote.bid : quote.ask;
  let next = position;
  const edit = (): Position => (next === position ? (next = { ...position, version: position.version + 1 }) : next);

  if (position.trailingStopPips !== undefined) {
    const distance = pipsToPoints(position.trailingStopPips, instrument);
    const candidate = long ? mark - distance : mark + distance;
    const current = position.trailingStopPrice;
    if (current === undefined || tighter(long, candidate, current)) edit().trailingStopPrice = candidate;
  }

  const be = position.breakEven;
  if (be && be.status !== "MOVED") {
    const units = BigInt(position.units);
    const cost = BigInt(position.costUnitPoints);
    let status: BreakEvenStatus = be.status;
    if (status === "PENDING") {
      // Excursion compared as integers: (mark - cost/units) >= trigger  <=>  mark*units - cost >= trigger*units.
      const gain = long ? BigInt(mark) * units - cost : cost - BigInt(mark) * units;
      if (gain >= BigInt(pipsToPoints(be.triggerPips, instrument)) * units) status = "ARMED";
    }
    if (status === "ARMED") {
      const { level } = breakEvenLevels(position, instrument)!;
      if (tighter(long, mark, level)) {
        status = "MOVED";
        const stop = next.stopLoss;
        if (stop === undefined || tighter(long, level, stop)) edit().stopLoss = level;
      }
    }
    if (status !== be.status) edit().breakEven = { ...be, status };
  }

  const exit = findExit(next, mark, long);
  return exit ? { position: next, exit } : { position: next };
}

function findExit(p: Position, mark: number, long: boolean): ExitTrigger | undefined {
  const hit = (level: number | undefined): level is number => level !== undefined && (long ? mark <= level : mark >= level);
  const sl = hit(p.stopLoss) ? p.stopLoss : undefined;
  const ts = hit(p.trailingStopPrice) ? p.trailingStopPrice : undefined;
  // Both stops crossed: the tighter one was crossed first on the way; a tie is a stop loss.
  if (sl !== undefined && (ts === undefined || !tighter(long, ts, sl))) return { reason: "stop_loss", level: sl, price: mark };
  if (ts !== undefined) return { reason: "trailing_stop", level: ts, price: mark };
  const tp = p.takeProfit;
  if (tp !== undefined && (long ? mark >= tp : mark <= tp)) return { reason: "take_profit", level: tp, price: mark };
  return undefined;
}

export interface AddLevelDue {
  /** 1-based index of the add. */
  level: number;
  units: number;
  /** Price (points) at which the level became due: last entry +/- offset. */
  triggerPrice: number;
}

/**
 * Whether the next add-position level is due at this quote, and its size.
 * null when no levels are configured, maxLevels is reached, price has not
 * moved far enough, the size rounds down to zero, or the add would take the
 * position past MAX_UNITS.
 */
export function nextAddLevel(position: Position, quote: Quote, instrument: Instrument = getInstrument(position.pair)): AddLevelDue | null {
  const add = position.addLevels;
  if (position.status !== "OPEN" || !add) return null;
  const added = add.levels.length - 1;
  const last = add.levels[add.levels.length - 1];
  if (!last || added >= add.maxLevels) return null;
  const long = isLong(position);
  const offset = pipsToPoints(add.offsetPips, instrument);
  const triggerPrice = long ? last.price + offset : last.price - offset;
  const execution = long ? quote.ask : quote.bid;
  if (long ? execution < triggerPrice : execution > triggerPrice) return null;
  const ratio = multiplierMicros(add.sizeMultiplier);
  if (ratio === null) return null;
  const units = Number((BigInt(last.units) * BigInt(ratio)) / 1_000_000n);
  if (units < 1 || position.units + units > MAX_UNITS) return null;
  return { level: added + 1, units, triggerPrice };
}

/** Changes to protective settings; null removes a setting. */
export interface ProtectionChanges {
  stopLoss?: number | null;
  takeProfit?: number | null;
  trailingStopPips?: number | null;
  breakEven?: BreakEvenConfig | null;
  addLevels?: AddLevelsConfig | null;
}

/**
 * Amend stop loss, take profit, trailing distance, break-even or add levels of
 * an open position, guarded by the expected version. A new break-even config
 * starts PENDING; a changed trailing distance keeps the current level (it
 * still only tightens from there); add levels configured after the open are
 * anchored at the current size and (rounded) average entry.
 */
export function amendProtection(
  position: Position,
  changes: ProtectionChanges,
  expectedVersion: number,
  instrument: Instrument = getInstrument(position.pair),
): Result<Position, PositionError> {
  if (expectedVersion !== position.version) return fail({ type: "stale_version", expected: expectedVersion, actual: position.version });
  if (position.status === "CLOSED") return fail({ type: "position_closed", positionId: position.id });
  const set: Protection = {};
  if (changes.stopLoss != null) set.stopLoss = changes.stopLoss;
  if (changes.takeProfit != null) set.takeProfit = changes.takeProfit;
  if (changes.trailingStopPips != null) set.trailingStopPips = changes.trailingStopPips;
  if (changes.breakEven != null) set.breakEven = changes.breakEven;
  if (changes.addLevels != null) set.addLevels = changes.addLevels;
  const invalid = validateProtection(set, instrument);
  if (invalid) return fail(invalid);

  const next: Position = { ...position, version: position.version + 1 };
  if (changes.stopLoss === null) delete next.stopLoss;
  else if (set.stopLoss !== undefined) next.stopLoss = set.stopLoss;
  if (changes.takeProfit === null) delete next.takeProfit;
  else if (set.takeProfit !== undefined) next.takeProfit = set.takeProfit;
  if (changes.trailingStopPips === null) {
    delete next.trailingStopPips;
    delete next.trailingStopPrice;
  } else if (set.trailingStopPips !== undefined) next.trailingStopPips = set.trailingStopPips;
  if (changes.breakEven === null) delete next.breakEven;
  else if (set.breakEven) next.breakEven = { ...set.breakEven, status: "PENDING" };
  if (changes.addLevels === null) delete next.addLevels;
  else if (set.addLevels) {
    const levels = position.addLevels?.levels ?? [{ units: position.units, price: Math.round(position.entryPrice), ts: position.openedAt }];
    next.addLevels = { ...set.addLevels, levels };
  }
  return { ok: true, value: next };
}
