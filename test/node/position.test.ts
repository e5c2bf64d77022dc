/**
 * Netting positions: exact P&L against an independent BigInt model, the
 * OPEN -> CLOSED lifecycle, optimistic versions, and the protective logic
 * (trailing stop, break-even, add levels) over random quote paths.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Instrument } from "../../src/domain/instruments.ts";
import { getInstrument } from "../../src/domain/instruments.ts";
import type { ConversionRate, Result } from "../../src/domain/trading/money.ts";
import type { BreakEvenStatus, FillContext, FillOutcome, Position, Protection } from "../../src/domain/trading/position.ts";
import { amendProtection, applyFill, breakEvenLevels, markToMarket, nextAddLevel, onQuote } from "../../src/domain/trading/position.ts";
import type { Fill, Quote, Side } from "../../src/domain/trading/types.ts";

const EUR_USD = getInstrument("EUR_USD");
const USD_JPY = getInstrument("USD_JPY");
const EUR_JPY = getInstrument("EUR_JPY");
const GBP_USD = getInstrument("GBP_USD");
const EUR_GBP = getInstrument("EUR_GBP");
const USD_CHF = getInstrument("USD_CHF");
const GBP_JPY = getInstrument("GBP_JPY");

function must<T, E>(r: Result<T, E>): T {
  if (!r.ok) throw new Error(`unexpected error ${JSON.stringify(r.error)}`);
  return r.value;
}

function fillOf(pair: string, side: Side, units: number, price: number, n: number, commissionQuoteMicros = 0): Fill {
  return { id: `c${n}:1`, clientOrderId: `c${n}`, pair, side, units, price, commissionQuoteMicros, ts: 1_700_000_000_000 + n * 60_000 };
}

const ctxFor = (instrument: Instrument, extra: Partial<FillContext> = {}): FillContext => ({ instrument, strategyId: "s1", ...extra });

const quote = (bid: number, ask: number, ts = 0): Quote => ({ ts, bid, ask });

describe("hand-computed examples", () => {
  it("EUR_USD: buy 100,000 at 1.10000, sell at 1.10250 -> +250.00 USD, closed", () => {
    const open = must(applyFill(null, fillOf("EUR_USD", "buy", 100_000, 110_000, 1), ctxFor(EUR_USD))).position;
    expect(open).toMatchObject({ status: "OPEN", side: "buy", units: 100_000, entryPrice: 110_000, version: 1, accountCurrency: "USD" });
    const out = must(applyFill(open, fillOf("EUR_USD", "sell", 100_000, 110_250, 2), ctxFor(EUR_USD)));
    expect(out.closed).toBeUndefined();
    expect(out.position).toMatchObject({
      status: "CLOSED",
      units: 0,
      costUnitPoints: 0,
      realisedPnlQuoteMicros: 250_000_000,
      realisedPnlAccountCents: 25_000,
      version: 2,
      closedAt: 1_700_000_000_000 + 2 * 60_000,
    });
    expect(out.realisedPnlAccountCents).toBe(25_000);
  });

  it("USD_JPY: 100,000 from 150.000 to 151.000 = +100,000 JPY = 662.25 USD at the exit price", () => {
    const open = must(applyFill(null, fillOf("USD_JPY", "buy", 100_000, 150_000, 1), ctxFor(USD_JPY))).position;
    const out = must(applyFill(open, fillOf("USD_JPY", "sell", 100_000, 151_000, 2), ctxFor(USD_JPY)));
    expect(out.position.realisedPnlQuoteMicros).toBe(100_000 * 1_000_000);
    // 100,000 / 151 = 662.2516... -> 66,225 cents
    expect(out.position.realisedPnlAccountCents).toBe(66_225);
  });

  it("short EUR_USD loses when price rises; a short is valued at the ask", () => {
    const open = must(applyFill(null, fillOf("EUR_USD", "sell", 50_000, 110_000, 1), ctxFor(EUR_USD))).position;
    const mtm = must(markToMarket(open, quote(110_090, 110_100)));
    expect(mtm).toEqual({ markPrice: 110_100, unrealisedPnlQuoteMicros: -50_000_000, unrealisedPnlAccountCents: -5_000 });
    const long = must(applyFill(null, fillOf("EUR_USD", "buy", 50_000, 110_000, 2), ctxFor(EUR_USD))).position;
    expect(must(markToMarket(long, quote(110_090, 110_100))).unrealisedPnlQuoteMicros).toBe(45_000_000);
  });

  it("adds at a weighted average entry and realises against it", () => {
    let p = must(applyFill(null, fillOf("EUR_USD", "buy", 100_000, 110_000, 1), ctxFor(EUR_USD))).position;
    p = must(applyFill(p, fillOf("EUR_USD", "buy", 50_000, 110_300, 2), ctxFor(EUR_USD))).position;
    expect(p).toMatchObject({ units: 150_000, entryPrice: 110_100, costUnitPoints: 16_515_000_000, version: 2 });
    const out = must(applyFill(p, fillOf("EUR_USD", "sell", 60_000, 110_200, 3), ctxFor(EUR_USD)));
    // 60,000 x (1.10200 - 1.10100) = 60 USD
    expect(out.realisedPnlQuoteMicros).toBe(60_000_000);
    expect(out.position).toMatchObject({ status: "OPEN", units: 90_000, entryPrice: 110_100 });
  });

  it("rounds the removed cost basis half away from zero, and the final close takes the rest", () => {
    // 3 units: cost 100 + 100 + 101 = 301 unit-points, average 100.333...
    let p = must(applyFill(null, fillOf("EUR_USD", "buy", 2, 100, 1), ctxFor(EUR_USD))).position;
    p = must(applyFill(p, fillOf("EUR_USD", "buy", 1, 101, 2), ctxFor(EUR_USD))).position;
    // sell 1 at 100: removes round(301/3) = 100 -> P&L 0
    let out = must(applyFill(p, fillOf("EUR_USD", "sell", 1, 100, 3), ctxFor(EUR_USD)));
    expect(out.realisedPnlQuoteMicros).toBe(0);
    expect(out.position.costUnitPoints).toBe(201);
    // sell 2 at 100: removes all 201 -> -1 unit-point = -10 micros
    out = must(applyFill(out.position, fillOf("EUR_USD", "sell", 2, 100, 4), ctxFor(EUR_USD)));
    expect(out.realisedPnlQuoteMicros).toBe(-10);
    // Total equals the cash flow: 300 - 301 unit-points.
    expect(out.position.realisedPnlQuoteMicros).toBe(-10);
  });

  it("a reversing fill closes the position and opens the remainder on the other side", () => {
    const open = must(applyFill(null, fillOf("EUR_USD", "buy", 100_000, 110_000, 1, 3_000_000), ctxFor(EUR_USD))).position;
    const out = must(
      applyFill(open, fillOf("EUR_USD", "sell", 150_000, 110_100, 2, 4_500_000), ctxFor(EUR_USD, { protection: { stopLoss: 110_400 } })),
    );
    expect(out.closed).toMatchObject({ id: open.id, status: "CLOSED", units: 0, realisedPnlQuoteMicros: 100_000_000, version: 2 });
    // commission shared 100k : 50k
    expect(out.closed?.commissionQuoteMicros).toBe(3_000_000 + 3_000_000);
    expect(out.position).toMatchObject({
      status: "OPEN",
      side: "sell",
      units: 50_000,
      entryPrice: 110_100,
      stopLoss: 110_400,
      commissionQuoteMicros: 1_500_000,
      commissionAccountCents: 150,
      version: 1,
    });
    expect(out.position.id).not.toBe(open.id);
    expect(out.realisedPnlAccountCents).toBe(10_000);
  });

  it("a fill after close opens a new position with a new id; the closed one stays closed", () => {
    const a = must(applyFill(null, fillOf("EUR_USD", "buy", 1_000, 110_000, 1), ctxFor(EUR_USD))).position;
    const closed = must(applyFill(a, fillOf("EUR_USD", "sell", 1_000, 110_000, 2), ctxFor(EUR_USD))).position;
    const b = must(applyFill(closed, fillOf("EUR_USD", "buy", 2_000, 110_010, 3), ctxFor(EUR_USD)));
    expect(b.closed).toBeUndefined();
    expect(b.position).toMatchObject({ status: "OPEN", units: 2_000, version: 1, realisedPnlQuoteMicros: 0 });
    expect(b.position.id).not.toBe(closed.id);
    expect(closed.status).toBe("CLOSED");
    expect(amendProtection(closed, { stopLoss: 1 }, closed.version, EUR_USD)).toEqual({
      ok: false,
      error: { type: "position_closed", positionId: closed.id },
    });
  });

  it("a cross pair converts through the account pair passed in, or refuses the fill as data", () => {
    // EUR_JPY in a USD account needs USD_JPY.
    const f = fillOf("EUR_JPY", "buy", 10_000, 160_000, 1);
    expect(applyFill(null, f, ctxFor(EUR_JPY))).toEqual({ ok: false, error: { type: "no_conversion_rate", from: "JPY", to: "USD" } });
    const rates: ConversionRate[] = [{ instrument: USD_JPY, points: 150_000 }];
    const p = must(applyFill(null, f, ctxFor(EUR_JPY, { rates }))).position;
    const out = must(applyFill(p, fillOf("EUR_JPY", "sell", 10_000, 161_500, 2), ctxFor(EUR_JPY, { rates })));
    // 10,000 x 1.5 JPY = 15,000 JPY / 150 = 100.00 USD
    expect(out.position.realisedPnlAccountCents).toBe(10_000);
  });

  it("refuses invalid, duplicate and mismatched fills as data, leaving the position unchanged", () => {
    const p = must(applyFill(null, fillOf("EUR_USD", "buy", 1_000, 110_000, 1), ctxFor(EUR_USD))).position;
    const snapshot = structuredClone(p);
    expect(applyFill(p, fillOf("EUR_USD", "buy", 1_000, 110_000, 1), ctxFor(EUR_USD))).toEqual({
      ok: false,
      error: { type: "duplicate_fill", fillId: "c1:1" },
    });
    expect(applyFill(p, fillOf("EUR_USD", "buy", 0, 110_000, 2), ctxFor(EUR_USD))).toMatchObject({ error: { type: "invalid_fill", field: "units" } });
    expect(applyFill(p, fillOf("EUR_USD", "buy", 1, 1.5, 2), ctxFor(EUR_USD))).toMatchObject({ error: { type: "invalid_fill", field: "price" } });
    expect(applyFill(p, fillOf("USD_JPY", "buy", 1, 150_000, 2), ctxFor(EUR_USD))).toMatchObject({
      error: { type: "pair_mismatch", expected: "EUR_USD", actual: "USD_JPY" },
    });
    expect(applyFill(p, fillOf("EUR_USD", "buy", 1, 110_000, 2), ctxFor(EUR_USD, { strategyId: "other" }))).toMatchObject({
      error: { type: "strategy_mismatch" },
    });
    expect(applyFill(p, fillOf("EUR_USD", "buy", 1_000_000_000, 110_000, 2), ctxFor(EUR_USD))).toMatchObject({
      error: { type: "position_too_large", limit: 1_000_000_000 },
    });
    expect(applyFill(null, fillOf("EUR_USD", "buy", 1, 110_000, 2), ctxFor(EUR_USD, { protection: { trailingStopPips: -1 } }))).toMatchObject({
      error: { type: "invalid_protection", field: "trailingStopPips" },
    });
    expect(p).toEqual(snapshot);
  });

  it("refuses a stale expected version", () => {
    const p = must(applyFill(null, fillOf("EUR_USD", "buy", 1_000, 110_000, 1), ctxFor(EUR_USD))).position;
    expect(applyFill(p, fillOf("EUR_USD", "buy", 1_000, 110_000, 2), ctxFor(EUR_USD, { expectedVersion: 0 }))).toEqual({
      ok: false,
      error: { type: "stale_version", expected: 0, actual: 1 },
    });
    expect(amendProtection(p, { stopLoss: 109_000 }, 2, EUR_USD)).toEqual({ ok: false, error: { type: "stale_version", expected: 2, actual: 1 } });
    const amended = must(amendProtection(p, { stopLoss: 109_000, takeProfit: 111_000 }, 1, EUR_USD));
    expect(amended).toMatchObject({ stopLoss: 109_000, takeProfit: 111_000, version: 2 });
    const cleared = must(amendProtection(amended, { stopLoss: null }, 2, EUR_USD));
    expect("stopLoss" in cleared).toBe(false);
    expect(cleared.version).toBe(3);
  });
});

describe("exits on quotes", () => {
  const open = (side: Side, protection: Protection): Position =>
    must(applyFill(null, fillOf("EUR_USD", side, 10_000, 110_000, 1), ctxFor(EUR_USD, { protection }))).position;

  it("long: stop at bid <= stop, target at bid >= target", () => {
    const p = open("buy", { stopLoss: 109_800, takeProfit: 110_300 });
    expect(onQuote(p, quote(109_801, 109_810)).exit).toBeUndefined();
    expect(onQuote(p, quote(109_800, 109_810)).exit).toEqual({ reason: "stop_loss", level: 109_800, price: 109_800 });
    expect(onQuote(p, quote(110_299, 110_400)).exit).toBeUndefined();
    expect(onQuote(p, quote(110_300, 110_310)).exit).toEqual({ reason: "take_profit", level: 110_300, price: 110_300 });
  });

  it("short: stop at ask >= stop, target at ask <= target", () => {
    const p = open("sell", { stopLoss: 110_200, takeProfit: 109_700 });
    expect(onQuote(p, quote(110_195, 110_199)).exit).toBeUndefined();
    expect(onQuote(p, quote(110_190, 110_200)).exit).toEqual({ reason: "stop_loss", level: 110_200, price: 110_200 });
    expect(onQuote(p, quote(109_600, 109_700)).exit).toEqual({ reason: "take_profit", level: 109_700, price: 109_700 });
  });

  it("trailing stop follows a long up, never down, and fires", () => {
    let p = open("buy", { trailingStopPips: 20 });
    expect(p.trailingStopPrice).toBe(109_800);
    p = onQuote(p, quote(110_100, 110_110)).position;
    expect(p).toMatchObject({ trailingStopPrice: 109_900, version: 2 });
    const same = onQuote(p, quote(110_050, 110_060));
    expect(same.position).toBe(p);
    const hit = onQuote(p, quote(109_900, 109_910));
    expect(hit.exit).toEqual({ reason: "trailing_stop", level: 109_900, price: 109_900 });
  });

  it("break-even: PENDING -> ARMED -> MOVED, stop at entry + offset", () => {
    // long at 1.10000, trigger 10 pips, offset 2 pips
    let p = open("buy", { stopLoss: 109_500, breakEven: { triggerPips: 10, offsetPips: 2 } });
    p = onQuote(p, quote(110_099, 110_105)).position;
    expect(p.breakEven?.status).toBe("PENDING");
    p = onQuote(p, quote(110_100, 110_105)).position;
    expect(p).toMatchObject({ stopLoss: 110_020, breakEven: { status: "MOVED" }, version: 2 });
    // Offset beyond the trigger: armed at +10 pips, moved only once the level is below the bid.
    let q = open("sell", { breakEven: { triggerPips: 10, offsetPips: 15 } });
    q = onQuote(q, quote(109_890, 109_900)).position;
    expect(q.breakEven?.status).toBe("ARMED");
    expect(q.stopLoss).toBeUndefined();
    q = onQuote(q, quote(109_990, 110_000)).position;
    expect(q.breakEven?.status).toBe("ARMED");
    q = onQuote(q, quote(109_840, 109_849)).position;
    expect(q).toMatchObject({ stopLoss: 109_850, breakEven: { status: "MOVED" } });
    // A stop already beyond the break-even level is left where it is.
    let r = open("buy", { stopLoss: 110_050, breakEven: { triggerPips: 10, offsetPips: 2 } });
    r = onQuote(r, quote(110_100, 110_105)).position;
    expect(r).toMatchObject({ stopLoss: 110_050, breakEven: { status: "MOVED" }, version: 2 });
  });
});

describe("add-position levels", () => {
  it("are due every offsetPips in favour of the last level, sized by the multiplier, up to maxLevels", () => {
    const ctx = ctxFor(EUR_USD, { protection: { addLevels: { maxLevels: 2, offsetPips: 10, sizeMultiplier: 1.5 } } });
    let p = must(applyFill(null, fillOf("EUR_USD", "buy", 10_001, 110_000, 1), ctx)).position;
    expect(nextAddLevel(p, quote(110_090, 110_099))).toBeNull();
    expect(nextAddLevel(p, quote(110_090, 110_100))).toEqual({ level: 1, units: 15_001, triggerPrice: 110_100 });
    p = must(applyFill(p, fillOf("EUR_USD", "buy", 15_001, 110_102, 2), ctxFor(EUR_USD, { addLevel: true }))).position;
    expect(nextAddLevel(p, quote(110_190, 110_201))).toBeNull();
    expect(nextAddLevel(p, quote(110_190, 110_202))).toEqual({ level: 2, units: 22_501, triggerPrice: 110_202 });
    p = must(applyFill(p, fillOf("EUR_USD", "buy", 22_501, 110_202, 3), ctxFor(EUR_USD, { addLevel: true }))).position;
    expect(p.addLevels?.levels).toHaveLength(3);
    expect(nextAddLevel(p, quote(111_000, 111_000))).toBeNull();
    expect(applyFill(p, fillOf("EUR_USD", "buy", 1, 111_000, 4), ctxFor(EUR_USD, { addLevel: true }))).toMatchObject({
      error: { type: "add_levels_exhausted", limit: 2, actual: 2 },
    });
  });

  it("a short adds as the bid falls", () => {
    const ctx = ctxFor(USD_JPY, { protection: { addLevels: { maxLevels: 1, offsetPips: 5, sizeMultiplier: 0.5 } } });
    const p = must(applyFill(null, fillOf("USD_JPY", "sell", 3, 150_000, 1), ctx)).position;
    expect(nextAddLevel(p, quote(149_951, 149_960))).toBeNull();
    expect(nextAddLevel(p, quote(149_950, 149_960))).toEqual({ level: 1, units: 1, triggerPrice: 149_950 });
  });
});

// ---------------------------------------------------------------------------
// Properties

const PAIRS = [EUR_USD, USD_JPY, EUR_JPY, GBP_USD, EUR_GBP, USD_CHF];
const RATE_PAIRS = [EUR_USD, USD_JPY, EUR_JPY, GBP_USD, EUR_GBP, GBP_JPY];
const BASE_POINTS: Record<string, number> = {
  EUR_USD: 110_000,
  USD_JPY: 150_000,
  EUR_JPY: 160_000,
  GBP_USD: 127_000,
  EUR_GBP: 86_000,
  USD_CHF: 90_000,
  GBP_JPY: 190_000,
};

/** Independent half-away rounding: floor((2|n| + |d|) / 2|d|). */
function refRound(n: bigint, d: bigint): bigint {
  const an = n < 0n ? -n : n;
  const q = (2n * an + d) / (2n * d);
  return n < 0n ? -q : q;
}

/** Account cents of quote micros, or null when no listed pair links them (first match wins). */
function refCents(micros: bigint, quoteCcy: string, account: string, prices: { inst: Instrument; points: number }[]): bigint | null {
  if (quoteCcy === account) return refRound(micros, 10_000n);
  for (const { inst, points } of prices) {
    const scale = 10n ** BigInt(inst.displayPrecision);
    if (inst.base === account && inst.quote === quoteCcy) return refRound(micros * scale, BigInt(points) * 10_000n);
    if (inst.base === quoteCcy && inst.quote === account) return refRound(micros * BigInt(points), scale * 10_000n);
  }
  return null;
}

interface RefState {
  /** +1 long, -1 short, 0 flat */
  dir: bigint;
  units: bigint;
  cost: bigint;
}

const fillStep = fc.record({
  buy: fc.boolean(),
  units: fc.integer({ min: 1, max: 2_000_000 }),
  move: fc.integer({ min: -3_000, max: 3_000 }),
  commission: fc.integer({ min: 0, max: 50_000_000 }),
  rateMoves: fc.array(fc.integer({ min: -2_000, max: 2_000 }), { minLength: RATE_PAIRS.length, maxLength: RATE_PAIRS.length }),
});

describe("properties: P&L of any fill sequence equals the independent computation", () => {
  it("per fill and in total, in quote micros and account cents; the lifecycle never goes back", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...PAIRS),
        fc.constantFrom("USD", "EUR", "JPY", "GBP"),
        fc.array(fillStep, { minLength: 1, maxLength: 40 }),
        (inst, account, steps) => {
          const scale = 10n ** BigInt(6 - inst.displayPrecision);
          let price = BASE_POINTS[inst.symbol] ?? 100_000;
          const ratePoints = RATE_PAIRS.map((r) => BASE_POINTS[r.symbol] ?? 100_000);
          let position: Position | null = null;
          const ref: RefState = { dir: 0n, units: 0n, cost: 0n };
          const closed: Position[] = [];
          const seenIds = new Set<string>();
          let refRealisedMicros = 0n;
          let refRealisedCents = 0n;
          let cashUnitPoints = 0n; // sells minus buys, unit-points
          let netUnits = 0n;
          let refCommissionMicros = 0n;

          for (const [n, step] of steps.entries()) {
            price = Math.max(1_000, price + step.move);
            step.rateMoves.forEach((m, i) => (ratePoints[i] = Math.max(1_000, (ratePoints[i] ?? 0) + m)));
            const rates: ConversionRate[] = RATE_PAIRS.map((instrument, i) => ({ instrument, points: ratePoints[i] ?? 1 }));
            const side: Side = step.buy ? "buy" : "sell";
            const fill = fillOf(inst.symbol, side, step.units, price, n + 1, step.commission);
            const result = applyFill(position, fill, ctxFor(inst, { rates, accountCurrency: account }));

            // Reference: average cost, the reduced share rounded half away from zero.
            const dir = step.buy ? 1n : -1n;
            const u = BigInt(step.units);
            const p = BigInt(price);
            let pnlUnitPoints = 0n;
            let closeUnits = 0n;
            const next: RefState = { ...ref };
            if (ref.dir === 0n || ref.dir === dir) {
              next.dir = dir;
              next.units = ref.units + u;
              next.cost = ref.cost + u * p;
            } else {
              closeUnits = u < ref.units ? u : ref.units;
              const removed = closeUnits === ref.units ? ref.cost : refRound(ref.cost * closeUnits, ref.units);
              pnlUnitPoints = ref.dir * (closeUnits * p - removed);
              next.units = ref.units - closeUnits;
              next.cost = ref.cost - removed;
              if (u > closeUnits) {
                next.dir = dir;
                next.units = u - closeUnits;
                next.cost = next.units * p;
              } else if (next.units === 0n) next.dir = 0n;
            }
            const pnlMicros = pnlUnitPoints * scale;
            const prices = [{ inst, points: price }, ...RATE_PAIRS.map((r, i) => ({ inst: r, points: ratePoints[i] ?? 1 }))];
            const cents = refCents(pnlMicros, inst.quote, account, prices);
            if (cents === null) {
              expect(result).toEqual({ ok: false, error: { type: "no_conversion_rate", from: inst.quote, to: account } });
              continue;
            }
            const out: FillOutcome = must(result);
            expect(BigInt(out.realisedPnlQuoteMicros)).toBe(pnlMicros);
            expect(BigInt(out.realisedPnlAccountCents)).toBe(cents);
            Object.assign(ref, next);
            refRealisedMicros += pnlMicros;
            refRealisedCents += cents;
            cashUnitPoints += -dir * u * p;
            netUnits += dir * u;
            refCommissionMicros += BigInt(step.commission);

            // Lifecycle and shape.
            const before = position;
            if (out.closed) {
              expect(out.closed.id).toBe(before?.id);
              expect(out.closed.status).toBe("CLOSED");
              closed.push(out.closed);
            }
            const now = out.position;
            if (before && before.status === "OPEN" && !out.closed && now.id === before.id) {
              expect(now.version).toBe(before.version + 1);
            } else {
              expect(now.version).toBe(1);
              expect(seenIds.has(now.id)).toBe(false);
            }
            if (now.status === "CLOSED") closed.push(now);
            seenIds.add(now.id);
            expect(now.units).toBeGreaterThanOrEqual(0);
            expect(now.status === "OPEN").toBe(now.units > 0);
            expect(BigInt(now.units)).toBe(ref.units);
            expect(BigInt(now.costUnitPoints)).toBe(ref.cost);
            if (ref.dir !== 0n) expect(now.side).toBe(ref.dir === 1n ? "buy" : "sell");
            expect(JSON.parse(JSON.stringify(now))).toEqual(now);
            position = now;
          }

          // Totals over every position the sequence produced.
          const all = [...closed, ...(position && position.status === "OPEN" ? [position] : [])];
          const sum = (f: (p: Position) => number): bigint => all.reduce((s, p) => s + BigInt(f(p)), 0n);
          expect(sum((p) => p.realisedPnlQuoteMicros)).toBe(refRealisedMicros);
          expect(sum((p) => p.realisedPnlAccountCents)).toBe(refRealisedCents);
          expect(sum((p) => p.commissionQuoteMicros)).toBe(refCommissionMicros);
          for (const c of closed) expect(c.units).toBe(0);

          // Rounding-free identity: realised + unrealised = cash flow + net units x mark.
          if (position && position.status === "OPEN") {
            const mark = price;
            const mtm = markToMarket(position, quote(mark, mark), { instrument: inst });
            if (mtm.ok) {
              expect(refRealisedMicros + BigInt(mtm.value.unrealisedPnlQuoteMicros)).toBe((cashUnitPoints + netUnits * BigInt(mark)) * scale);
            }
          } else {
            expect(refRealisedMicros).toBe(cashUnitPoints * scale);
          }
        },
      ),
      { numRuns: 400 },
    );
  });
});

const quoteStep = fc.record({ move: fc.integer({ min: -60, max: 60 }), spread: fc.integer({ min: 0, max: 30 }) });

const STATUS_ORDER: Record<BreakEvenStatus, number> = { PENDING: 0, ARMED: 1, MOVED: 2 };

describe("properties: protective levels over random quote paths", () => {
  it("trailing stops and stop losses only tighten; break-even never loosens; versions follow changes; exits match the rules", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(EUR_USD, USD_JPY),
        fc.boolean(),
        // A negative distance puts the stop already beyond entry (profit locked in).
        fc.option(fc.integer({ min: -300, max: 400 }), { nil: undefined }),
        fc.option(fc.integer({ min: 1, max: 400 }), { nil: undefined }),
        fc.option(fc.integer({ min: 1, max: 80 }), { nil: undefined }),
        fc.option(fc.record({ triggerPips: fc.integer({ min: 1, max: 40 }), offsetPips: fc.integer({ min: 0, max: 50 }) }), { nil: undefined }),
        fc.array(quoteStep, { minLength: 1, maxLength: 200 }),
        (inst, buy, slDist, tpDist, trailingStopPips, breakEven, path) => {
          const long = buy;
          const entry = BASE_POINTS[inst.symbol] ?? 100_000;
          const protection: Protection = {};
          if (slDist !== undefined) protection.stopLoss = long ? entry - slDist : entry + slDist;
          if (tpDist !== undefined) protection.takeProfit = long ? entry + tpDist : entry - tpDist;
          if (trailingStopPips !== undefined) protection.trailingStopPips = trailingStopPips;
          if (breakEven !== undefined) protection.breakEven = breakEven;
          const rates: ConversionRate[] = [];
          let p = must(applyFill(null, fillOf(inst.symbol, long ? "buy" : "sell", 7_000, entry, 1), ctxFor(inst, { protection, rates }))).position;
          let bid = entry;
          for (const step of path) {
            bid = Math.max(1_000, bid + step.move);
            const q = quote(bid, bid + step.spread);
            const mark = long ? q.bid : q.ask;
            const before = p;
            const { position: after, exit } = onQuote(before, q, inst);
            const tighterOrEqual = (a: number, b: number) => (long ? a >= b : a <= b);

            if (before.trailingStopPrice !== undefined) {
              expect(after.trailingStopPrice).toBeDefined();
              expect(tighterOrEqual(after.trailingStopPrice ?? Number.NaN, before.trailingStopPrice)).toBe(true);
            }
            if (before.stopLoss !== undefined) expect(tighterOrEqual(after.stopLoss ?? Number.NaN, before.stopLoss)).toBe(true);
            if (before.breakEven && after.breakEven) {
              expect(STATUS_ORDER[after.breakEven.status]).toBeGreaterThanOrEqual(STATUS_ORDER[before.breakEven.status]);
              if (after.breakEven.status === "MOVED" && before.breakEven.status !== "MOVED") {
                const offset = after.breakEven.offsetPips * 10;
                const stop = after.stopLoss ?? Number.NaN;
                // At least break-even + offset, and strictly on the protective side of the market.
                expect(tighterOrEqual(stop, long ? entry + offset : entry - offset)).toBe(true);
                if (stop !== before.stopLoss) expect(long ? stop < mark : stop > mark).toBe(true);
              }
            }
            // Version: +1 exactly when something changed.
            const { version: vb, ...restBefore } = before;
            const { version: va, ...restAfter } = after;
            const changed = JSON.stringify(restBefore) !== JSON.stringify(restAfter);
            expect(va).toBe(changed ? vb + 1 : vb);

            const hitStop = (lvl: number | undefined) => lvl !== undefined && (long ? mark <= lvl : mark >= lvl);
            const stopHit = hitStop(after.stopLoss) || hitStop(after.trailingStopPrice);
            const tpHit = after.takeProfit !== undefined && (long ? mark >= after.takeProfit : mark <= after.takeProfit);
            if (stopHit) expect(exit?.reason === "stop_loss" || exit?.reason === "trailing_stop").toBe(true);
            else if (tpHit) expect(exit?.reason).toBe("take_profit");
            else expect(exit).toBeUndefined();
            if (exit) expect(exit.price).toBe(mark);
            p = after;
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it("add levels never exceed maxLevels and each is the previous size x multiplier, rounded down", () => {
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 30 }),
        fc.constantFrom(0.5, 1, 1.25, 1.5, 2, 3.333333),
        fc.integer({ min: 1, max: 500_000 }),
        fc.array(quoteStep, { minLength: 1, maxLength: 200 }),
        (buy, maxLevels, offsetPips, sizeMultiplier, units, path) => {
          const entry = 110_000;
          const ctx = ctxFor(EUR_USD, { protection: { addLevels: { maxLevels, offsetPips, sizeMultiplier } } });
          let p = must(applyFill(null, fillOf("EUR_USD", buy ? "buy" : "sell", units, entry, 0), ctx)).position;
          let bid = entry;
          let n = 1;
          for (const step of path) {
            bid = Math.max(1_000, bid + step.move);
            const q = quote(bid, bid + step.spread);
            const due = nextAddLevel(p, q, EUR_USD);
            if (!due) continue;
            const levels = p.addLevels?.levels ?? [];
            const last = levels[levels.length - 1];
            expect(due.level).toBe(levels.length);
            expect(due.level).toBeLessThanOrEqual(maxLevels);
            expect(BigInt(due.units)).toBe((BigInt(last?.units ?? 0) * BigInt(Math.round(sizeMultiplier * 1e6))) / 1_000_000n);
            const exec = buy ? q.ask : q.bid;
            expect(buy ? exec >= (last?.price ?? 0) + offsetPips * 10 : exec <= (last?.price ?? 0) - offsetPips * 10).toBe(true);
            const version = p.version;
            p = must(applyFill(p, fillOf("EUR_USD", buy ? "buy" : "sell", due.units, exec, n++), ctxFor(EUR_USD, { addLevel: true }))).position;
            expect(p.version).toBe(version + 1);
          }
          expect((p.addLevels?.levels.length ?? 0) - 1).toBeLessThanOrEqual(maxLevels);
          expect(p.units).toBe((p.addLevels?.levels ?? []).reduce((s, l) => s + l.units, 0));
        },
      ),
      { numRuns: 300 },
    );
  });

  it("a stale expected version is always refused and changes nothing; a current one advances by one", () => {
    fc.assert(
      fc.property(fc.array(fc.record({ buy: fc.boolean(), units: fc.integer({ min: 1, max: 1_000 }), stale: fc.integer({ min: -3, max: 3 }) }), { maxLength: 30 }), (ops) => {
        let p = must(applyFill(null, fillOf("EUR_USD", "buy", 5_000, 110_000, 0), ctxFor(EUR_USD))).position;
        for (const [i, op] of ops.entries()) {
          if (p.status === "CLOSED") break;
          const expectedVersion = p.version + op.stale;
          const snapshot = structuredClone(p);
          const r = applyFill(p, fillOf("EUR_USD", op.buy ? "buy" : "sell", op.units, 110_000 + i, i + 1), ctxFor(EUR_USD, { expectedVersion }));
          if (op.stale !== 0) {
            expect(r).toEqual({ ok: false, error: { type: "stale_version", expected: expectedVersion, actual: p.version } });
            expect(p).toEqual(snapshot);
            continue;
          }
          const out = must(r);
          if (out.closed) {
            expect(out.closed.version).toBe(p.version + 1);
            expect(out.position.version).toBe(1);
          } else expect(out.position.version).toBe(p.version + 1);
          p = out.position;
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe("properties: break-even levels are where onQuote acts", () => {
  it("a mark at `arm` arms break-even and one point short does not; once armed, the stop moves to `level`", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(EUR_USD, USD_JPY),
        fc.constantFrom<Side>("buy", "sell"),
        // Two fills at different prices: an average entry between two points.
        fc.integer({ min: 1_000, max: 200_000 }),
        fc.integer({ min: 1_000, max: 200_000 }),
        fc.integer({ min: 90_000, max: 160_000 }),
        fc.integer({ min: -50, max: 50 }),
        fc.integer({ min: 2, max: 40 }),
        fc.integer({ min: 0, max: 19 }),
        (instrument, side, units1, units2, price, delta, triggerPips, offsetRaw) => {
          const offsetPips = Math.min(offsetRaw, triggerPips - 1);
          const protection: Protection = { breakEven: { triggerPips, offsetPips } };
          const ctx = ctxFor(instrument, { protection });
          const first = must(applyFill(null, fillOf(instrument.symbol, side, units1, price, 1), ctx)).position;
          const p = must(applyFill(first, fillOf(instrument.symbol, side, units2, price + delta, 2), ctx)).position;
          const { arm, level } = breakEvenLevels(p, instrument)!;
          const long = side === "buy";
          const at = (mark: number) => onQuote(p, long ? quote(mark, mark + 1) : quote(mark - 1, mark), instrument).position;
          const short1 = at(long ? arm - 1 : arm + 1);
          expect(short1.breakEven?.status).toBe("PENDING");
          const armed = at(arm);
          expect(armed.breakEven?.status).not.toBe("PENDING");
          // Beyond the level (the trigger is always past it): moved, stop at the level exactly.
          expect(armed.breakEven?.status).toBe("MOVED");
          expect(armed.stopLoss).toBe(level);
          expect(long ? level <= arm : level >= arm).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("none without break-even", () => {
    const p = must(applyFill(null, fillOf("EUR_USD", "buy", 1_000, 110_000, 1), ctxFor(EUR_USD))).position;
    expect(breakEvenLevels(p, EUR_USD)).toBeNull();
  });
});
