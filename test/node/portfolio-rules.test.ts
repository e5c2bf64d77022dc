/**
 * The portfolio rules (src/domain/portfolio/), driven directly as a backtest
 * would drive them: a MemoryPortfolioStore, time passed in. The Coordinator
 * actor runs the same code over its SQLite tables (test/workers/coordinator.test.ts).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ApprovalRequestSchema, PairInFlightSchema, PairReportSchema } from "../../schemas/portfolio-messages.ts";
import { fxDayStart } from "../../src/domain/fx-time.ts";
import { readMessage, type ApprovalRequest, type PairReport } from "../../src/domain/portfolio/messages.ts";
import { MemoryPortfolioStore, PortfolioRules } from "../../src/domain/portfolio/portfolio-rules.ts";
import { RESERVATION_TTL_MS } from "../../src/domain/portfolio/reservations.ts";
import { markEquity, NEW_DAY_REASON, transition } from "../../src/domain/portfolio/trading-state.ts";

/** Wednesday 10:00 UTC (winter: 05:00 New York). */
const T0 = Date.UTC(2030, 0, 2, 10, 0, 0);
/** USD-based pairs: in a USD account one unit of any of them is exactly 1 USD of exposure. */
const USD_PAIRS = ["USD_JPY", "USD_CHF", "USD_CAD"] as const;
const MIDS: Record<string, number> = { USD_JPY: 150, USD_CHF: 0.9, USD_CAD: 1.37, EUR_USD: 1.1 };

const lifted = { maxGrossExposure: 1e9, maxNetExposurePerCurrency: 1e9, maxExposurePerPair: 1e9, maxOpenPositions: 10_000, dailyLossLimit: 1e9, maxDrawdown: 1e9 };

function rulesWith(limits: Partial<typeof lifted> = {}): PortfolioRules {
  return new PortfolioRules(new MemoryPortfolioStore({ ...lifted, ...limits }), "USD");
}

const request = (clientOrderId: string, pair: string, deltaUnits: number, opensPosition = false): ApprovalRequest => ({ clientOrderId, pair, deltaUnits, mid: MIDS[pair]!, opensPosition });

const report = (pair: string, netUnits: number, over: Partial<PairReport> = {}): PairReport => ({ pair, netUnits, openPositions: netUnits === 0 ? 0 : 1, mid: MIDS[pair]!, realisedCents: 0, unrealisedCents: 0, ...over });

/** Net units per pair of the book plus every outstanding reservation (the rules' own view of committed room). */
function committed(rules: PortfolioRules): Record<string, number> {
  const net: Record<string, number> = {};
  for (const r of rules.store.book()) net[r.pair] = r.netUnits;
  for (const r of rules.reservations.values()) net[r.pair] = (net[r.pair] ?? 0) + r.deltaUnits;
  return net;
}

/** Exposure of USD-based pairs in USD, worked out independently of exposure.ts: one unit is one dollar. */
function usdExposure(net: Record<string, number>): { gross: number; perPair: number[]; usd: number } {
  const values = Object.values(net);
  return { gross: values.reduce((s, n) => s + Math.abs(n), 0), perPair: values.map(Math.abs), usd: values.reduce((s, n) => s + n, 0) };
}

type Op =
  | { kind: "approve"; pair: number; units: number; opens: boolean }
  | { kind: "fill"; which: number }
  | { kind: "release"; which: number }
  | { kind: "wait"; ms: number };

const opArb = (sign: "buy" | "both"): fc.Arbitrary<Op> =>
  fc.oneof(
    { weight: 5, arbitrary: fc.record({ kind: fc.constant("approve" as const), pair: fc.nat(2), units: fc.integer({ min: 1, max: 40_000 }).chain((u) => (sign === "buy" ? fc.constant(u) : fc.constantFrom(u, -u))), opens: fc.boolean() }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant("fill" as const), which: fc.nat() }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("release" as const), which: fc.nat() }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("wait" as const), ms: fc.integer({ min: 0, max: 90_000 }) }) },
  );

const limitsArb = fc.record({
  maxGrossExposure: fc.integer({ min: 0, max: 120_000 }),
  maxExposurePerPair: fc.integer({ min: 0, max: 80_000 }),
  maxNetExposurePerCurrency: fc.integer({ min: 0, max: 100_000 }),
  maxOpenPositions: fc.integer({ min: 0, max: 6 }),
});

/**
 * Run `ops` against the rules. Approved requests are held (their ids in `held`); a fill moves
 * a held request's units into its pair's book row and reports it (releasing the reservation),
 * as a pair does after its fill. `check` runs after every step.
 */
function run(rules: PortfolioRules, ops: readonly Op[], check: (op: Op, answer: { approved: boolean } | null) => void): void {
  let now = T0;
  let n = 0;
  const held: ApprovalRequest[] = [];
  const positions: Record<string, number> = {};
  for (const op of ops) {
    let answer: { approved: boolean } | null = null;
    if (op.kind === "approve") {
      const req = request(`o-${n++}`, USD_PAIRS[op.pair]!, op.units, op.opens);
      answer = rules.approve(req, now);
      if (answer.approved) held.push(req);
    } else if (op.kind === "fill" && held.length > 0) {
      const req = held.splice(op.which % held.length, 1)[0]!;
      // Only a request still reserved can fill (an expired one: its pair died mid-order).
      if (rules.reservations.get(req.clientOrderId)) {
        const net = (rules.store.book().find((r) => r.pair === req.pair)?.netUnits ?? 0) + req.deltaUnits;
        positions[req.pair] = (positions[req.pair] ?? 0) + (req.opensPosition ? 1 : 0);
        rules.report(report(req.pair, net, { openPositions: positions[req.pair]! }), req.clientOrderId, now);
      }
    } else if (op.kind === "release" && held.length > 0) {
      rules.release(held.splice(op.which % held.length, 1)[0]!.clientOrderId);
    } else if (op.kind === "wait") {
      now += op.ms;
      // Expiry happens at the next approval; make it visible to the checks now.
      rules.reservations.expire(now);
    }
    check(op, answer);
  }
}

describe("approvals are reservations", () => {
  it("the book plus every reservation never exceeds a limit, whatever order requests, fills, releases and expiries come in (risk-adding buys)", () => {
    fc.assert(
      fc.property(limitsArb, fc.array(opArb("buy"), { maxLength: 60 }), (limits, ops) => {
        const rules = rulesWith(limits);
        run(rules, ops, () => {
          const e = usdExposure(committed(rules));
          expect(e.gross).toBeLessThanOrEqual(limits.maxGrossExposure);
          for (const p of e.perPair) expect(p).toBeLessThanOrEqual(limits.maxExposurePerPair);
          expect(Math.abs(e.usd)).toBeLessThanOrEqual(limits.maxNetExposurePerCurrency);
          expect(rules.openPositions()).toBeLessThanOrEqual(Math.max(limits.maxOpenPositions, 0));
        });
      }),
      { numRuns: 300 },
    );
  });

  it("with sells too, every approval leaves the book plus every reservation within the limits, and a refusal reserves nothing", () => {
    fc.assert(
      fc.property(limitsArb, fc.array(opArb("both"), { maxLength: 60 }), (limits, ops) => {
        const rules = rulesWith(limits);
        let before = 0;
        run(rules, ops, (op, answer) => {
          if (op.kind !== "approve") return;
          if (answer?.approved) {
            const e = usdExposure(committed(rules));
            expect(e.gross).toBeLessThanOrEqual(limits.maxGrossExposure);
            for (const p of e.perPair) expect(p).toBeLessThanOrEqual(limits.maxExposurePerPair);
            expect(Math.abs(e.usd)).toBeLessThanOrEqual(limits.maxNetExposurePerCurrency);
          } else {
            expect(rules.reservations.size).toBeLessThanOrEqual(before);
          }
          before = rules.reservations.size;
        });
      }),
      { numRuns: 300 },
    );
  });

  it("12 orders of 10,000 racing on 3 pairs under a 55,000 gross limit: exactly 5 fit, refused with the limit and the amount", () => {
    const rules = rulesWith({ maxGrossExposure: 55_000 });
    const answers = USD_PAIRS.flatMap((pair) => [0, 1, 2, 3].map((i) => rules.approve(request(`race-${pair}-${i}`, pair, 10_000, true), T0)));
    expect(answers.filter((a) => a.approved)).toHaveLength(5);
    expect(answers.filter((a) => !a.approved)).toEqual(Array(7).fill({ approved: false, rejection: { type: "max_gross_exposure", limit: 55_000, actual: 60_000 } }));
    expect(rules.reservations.size).toBe(5);
  });

  it("checks the limits in a fixed order and names the currency of a net breach", () => {
    const rules = rulesWith({ maxNetExposurePerCurrency: 55_000 });
    rules.report(report("USD_JPY", 50_000), undefined, T0);
    expect(rules.approve(request("n-1", "USD_CHF", 10_000), T0)).toEqual({ approved: false, rejection: { type: "max_net_exposure", currency: "USD", limit: 55_000, actual: 60_000 } });
    const perPair = rulesWith({ maxExposurePerPair: 5_000, maxNetExposurePerCurrency: 1 });
    expect(perPair.approve(request("p-1", "USD_CHF", 10_000), T0)).toMatchObject({ approved: false, rejection: { type: "max_exposure_per_pair", limit: 5_000, actual: 10_000 } });
    const open = rulesWith({ maxOpenPositions: 1 });
    open.report(report("USD_JPY", 1_000), undefined, T0);
    expect(open.approve(request("q-1", "USD_CHF", 1_000, true), T0)).toEqual({ approved: false, rejection: { type: "max_open_positions", limit: 1, actual: 2 } });
    expect(open.approve(request("q-2", "USD_CHF", 1_000, false), T0)).toEqual({ approved: true });
  });

  it("values a cross's currencies through the served pairs' mids, and refuses when none links a currency", () => {
    const rules = rulesWith();
    expect(rules.approve(request("x-1", "EUR_USD", 1_000), T0)).toEqual({ approved: true });
    const jpy = rulesWith();
    expect(jpy.approve({ clientOrderId: "x-2", pair: "EUR_JPY", deltaUnits: 1_000, mid: 160, opensPosition: true }, T0)).toEqual({ approved: false, rejection: { type: "no_conversion_rate", currency: "EUR" } });
    expect(jpy.pairsToPrice({ clientOrderId: "x-2", pair: "EUR_JPY", deltaUnits: 1_000, mid: 160, opensPosition: true }, ["EUR_USD", "USD_JPY", "EUR_JPY"])).toEqual(["EUR_USD", "USD_JPY"]);
    jpy.addReferenceMids({ EUR_USD: 1.1, USD_JPY: 150 });
    expect(jpy.approve({ clientOrderId: "x-3", pair: "EUR_JPY", deltaUnits: 1_000, mid: 160, opensPosition: true }, T0)).toEqual({ approved: true });
    expect(jpy.exposure()).toEqual({ gross: 0, perCurrency: {}, perPair: {} });
  });

  it("the same request asked again is the same reservation; a reservation stops counting after its TTL", () => {
    const rules = rulesWith({ maxGrossExposure: 15_000 });
    expect(rules.approve(request("a-1", "USD_JPY", 10_000), T0)).toEqual({ approved: true });
    expect(rules.approve(request("a-1", "USD_JPY", 10_000), T0 + 1)).toEqual({ approved: true });
    expect(rules.reservations.size).toBe(1);
    expect(rules.approve(request("a-2", "USD_JPY", 10_000), T0 + RESERVATION_TTL_MS - 1)).toMatchObject({ approved: false });
    expect(rules.approve(request("a-2", "USD_JPY", 10_000), T0 + RESERVATION_TTL_MS)).toEqual({ approved: true });
    expect([...rules.reservations.values()].map((r) => r.expiresAt)).toEqual([T0 + 2 * RESERVATION_TTL_MS]);
  });
});

describe("a new life rebuilds the book and the reservations from the pairs", () => {
  it("orders a pair holds count as approved; requests still being asked for count but are judged afresh", () => {
    const rules = rulesWith({ maxGrossExposure: 25_000 });
    rules.rebuild(
      [
        { report: report("USD_JPY", 5_000), orders: [request("held-1", "USD_JPY", 10_000, true)], asking: [request("held-1", "USD_JPY", 10_000, true)] },
        { report: report("USD_CHF", 0), orders: [], asking: [request("asking-1", "USD_CHF", 8_000)] },
        // A pair without a quote never traded: no row.
        { report: { ...report("USD_CAD", 0), mid: 0 }, orders: [], asking: [] },
      ],
      T0,
    );
    expect(rules.store.book().map((r) => r.pair)).toEqual(["USD_JPY"]);
    expect([...rules.reservations.values()].map((r) => [r.deltaUnits, r.undecided])).toEqual([[10_000, false], [8_000, true]]);
    // 5,000 + 10,000 + 8,000 held: 3,000 more does not fit, 2,000 does.
    expect(rules.approve(request("new-1", "USD_CAD", 3_000), T0)).toMatchObject({ approved: false, rejection: { type: "max_gross_exposure", actual: 26_000 } });
    // The held order asking again is the same reservation.
    expect(rules.approve(request("held-1", "USD_JPY", 10_000, true), T0)).toEqual({ approved: true });
    expect(rules.reservations.size).toBe(2);
    // The undecided request arrives: judged afresh with its own room taken out first (it fits, and stays one reservation).
    expect(rules.approve(request("asking-1", "USD_CHF", 8_000), T0)).toEqual({ approved: true });
    expect(rules.reservations.get("asking-1")?.undecided).toBe(false);
    expect(rules.reservations.size).toBe(2);
  });

  it("a pair's row is written when it has a position, realised P&L or a row already", () => {
    const rules = rulesWith();
    rules.rebuild([{ report: report("USD_CHF", 0, { realisedCents: -120 }), orders: [], asking: [] }, { report: report("USD_CAD", 0), orders: [], asking: [] }], T0);
    expect(rules.store.book().map((r) => [r.pair, r.realisedCents, r.updatedAt])).toEqual([["USD_CHF", -120, T0]]);
  });
});

describe("the trading state machine", () => {
  const rulesAt = (limits: Partial<typeof lifted>) => rulesWith(limits);
  const pnl = (rules: PortfolioRules, cents: number, nowMs: number) => rules.report(report("USD_JPY", 0, { realisedCents: cents, openPositions: 0 }), undefined, nowMs);

  it("a daily loss over its limit calls for REDUCING, a drawdown over its limit for HALTED, and a halt is never softened", () => {
    const rules = rulesAt({ dailyLossLimit: 50, maxDrawdown: 100 });
    expect(pnl(rules, 0, T0)).toBeNull();
    expect(pnl(rules, -5_000, T0 + 1)).toBeNull();
    const reducing = pnl(rules, -5_001, T0 + 2);
    expect(reducing).toEqual({ state: "REDUCING", reason: "daily loss 50.01 over the limit 50" });
    rules.changeState(reducing!.state, reducing!.reason, T0 + 2);
    expect(rules.approve(request("r-1", "USD_JPY", 1), T0 + 3)).toEqual({ approved: false, rejection: { type: "reduce_only", reason: "daily loss 50.01 over the limit 50" } });
    // Still REDUCING: only a drawdown moves it further.
    expect(pnl(rules, -9_000, T0 + 4)).toBeNull();
    const halt = pnl(rules, -10_001, T0 + 5);
    expect(halt).toEqual({ state: "HALTED", reason: "drawdown 100.01 over the limit 100" });
    rules.changeState(halt!.state, halt!.reason, T0 + 5);
    expect(pnl(rules, -20_000, T0 + 6)).toBeNull();
    expect(rules.approve(request("r-2", "USD_JPY", 1), T0 + 7)).toMatchObject({ approved: false, rejection: { type: "trading_halted" } });
  });

  it("the daily loss is measured from the last 17:00 New York (22:00 UTC in winter, 21:00 UTC in summer)", () => {
    for (const [day, rollUtcHour] of [[Date.UTC(2030, 0, 2), 22], [Date.UTC(2030, 6, 2), 21]] as const) {
      const roll = day + rollUtcHour * 3_600_000;
      const rules = rulesAt({ dailyLossLimit: 50 });
      expect(pnl(rules, 0, roll - 3_600_000)).toBeNull();
      // 40 USD lost before the roll, 40 more after it: neither day loses more than 50.
      expect(pnl(rules, -4_000, roll - 1)).toBeNull();
      expect(pnl(rules, -8_000, roll + 60_000)).toBeNull();
      expect(rules.store.marks()).toEqual({ peak: 0, dayStart: roll, dayEquity: -8_000 });
      // ... but a further 11 USD the same day does.
      expect(pnl(rules, -13_001, roll + 120_000)).toMatchObject({ state: "REDUCING", reason: "daily loss 50.01 over the limit 50" });
    }
  });

  it("REDUCING ends at the next 17:00 New York roll, summer or winter; HALTED stays", () => {
    // Wednesday 2030-01-02 in winter (roll 22:00 UTC), Friday 2030-07-05 in summer (21:00 UTC, next roll Friday 21:00 too).
    for (const [hitAt, nextRoll] of [[Date.UTC(2030, 0, 2, 15), Date.UTC(2030, 0, 2, 22)], [Date.UTC(2030, 6, 5, 23), Date.UTC(2030, 6, 6, 21)]] as const) {
      const rules = rulesAt({ dailyLossLimit: 50, maxDrawdown: 1_000 });
      rules.changeState("REDUCING", "daily loss 50.01 over the limit 50", hitAt);
      expect(rules.newDay(nextRoll - 1)).toBeNull();
      expect(rules.status().state).toBe("REDUCING");
      const change = rules.newDay(nextRoll);
      expect(change).toMatchObject({ changed: true, next: { state: "ACTIVE", reason: NEW_DAY_REASON, since: nextRoll } });
      expect(rules.newDay(nextRoll + 1)).toBeNull();
      expect(rules.approve(request(`r-${hitAt}`, "USD_JPY", 1), nextRoll + 2)).toEqual({ approved: true });
    }
    const halted = rulesAt({});
    halted.changeState("HALTED", "drawdown", T0);
    expect(halted.newDay(T0 + 7 * 86_400_000)).toBeNull();
    expect(halted.status().state).toBe("HALTED");
  });

  it("equity marks: the peak is the highest equity seen, the day's equity the first seen since the day's 17:00 New York", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 6 * 3_600_000 }), fc.integer({ min: -1e7, max: 1e7 })), { minLength: 1, maxLength: 40 }), (steps) => {
        let now = T0;
        let marks: ReturnType<typeof markEquity> | undefined;
        let peak = -Infinity;
        let dayFirst: number | null = null;
        let day = -1;
        for (const [dt, equity] of steps) {
          now += dt;
          marks = markEquity(marks, equity, now);
          peak = Math.max(peak, equity);
          if (fxDayStart(now) !== day) [day, dayFirst] = [fxDayStart(now), equity];
          expect(marks).toEqual({ peak, dayStart: day, dayEquity: dayFirst });
        }
      }),
    );
  });

  it("kill switch: halt and flatten halt, resume resumes; the state in force keeps its reason and since", () => {
    const rules = rulesWith();
    const halt = rules.killSwitch("halt", "news", T0);
    expect(halt).toMatchObject({ changed: true, before: { state: "ACTIVE", reason: "", since: 0 }, next: { state: "HALTED", reason: "news", since: T0 } });
    expect(rules.killSwitch("halt", "again", T0 + 5)).toMatchObject({ changed: false, next: { state: "HALTED", reason: "news", since: T0 } });
    expect(rules.killSwitch("flatten", "", T0 + 6).next).toEqual({ state: "HALTED", reason: "news", since: T0 });
    expect(rules.killSwitch("resume", "", T0 + 7).next).toEqual({ state: "ACTIVE", reason: "resume", since: T0 + 7 });
    expect(rules.killSwitch("flatten", "", T0 + 8).next).toEqual({ state: "HALTED", reason: "flatten", since: T0 + 8 });
    expect(rules.status()).toEqual({ state: "HALTED", reason: "flatten", since: T0 + 8 });
  });

  it("every change of state has a later since than the one before, even when the clock stands still or steps back", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom("ACTIVE", "REDUCING", "HALTED") as fc.Arbitrary<"ACTIVE" | "REDUCING" | "HALTED">, fc.integer({ min: -5_000, max: 5_000 })), { maxLength: 50 }), (moves) => {
        let status = { state: "ACTIVE" as const as "ACTIVE" | "REDUCING" | "HALTED", reason: "", since: 0 };
        let now = T0;
        for (const [state, dt] of moves) {
          now += dt;
          const change = transition(status, state, "test", now);
          expect(change.changed).toBe(state !== status.state);
          if (change.changed) expect(change.next.since).toBeGreaterThan(status.since);
          else expect(change.next).toEqual(status);
          expect(change.next.state).toBe(state);
          status = change.next;
        }
      }),
    );
  });
});

describe("the pair-coordinator messages", () => {
  it("valid messages pass as they are; malformed ones are refused with where and why", () => {
    const req = request("m-1", "USD_JPY", -1_000, true);
    expect(readMessage(ApprovalRequestSchema, req)).toEqual({ ok: true, value: req });
    expect(readMessage(ApprovalRequestSchema, { ...req, mid: 0 })).toMatchObject({ ok: true });
    expect(readMessage(ApprovalRequestSchema, { ...req, deltaUnits: 1.5 })).toMatchObject({ ok: false, detail: expect.stringMatching(/^deltaUnits: /) });
    expect(readMessage(ApprovalRequestSchema, { ...req, pair: "usd/jpy" })).toMatchObject({ ok: false, detail: expect.stringContaining("pair must look like EUR_USD") });
    expect(readMessage(ApprovalRequestSchema, { ...req, clientOrderId: "" })).toMatchObject({ ok: false });
    expect(readMessage(ApprovalRequestSchema, null)).toMatchObject({ ok: false });
    expect(readMessage(PairReportSchema, report("USD_JPY", 1_000))).toMatchObject({ ok: true });
    expect(readMessage(PairReportSchema, { ...report("USD_JPY", 1_000), mid: Number.NaN })).toMatchObject({ ok: false, detail: expect.stringMatching(/^mid: /) });
    expect(readMessage(PairReportSchema, { ...report("USD_JPY", 1_000), openPositions: -1 })).toMatchObject({ ok: false });
    expect(readMessage(PairInFlightSchema, { report: report("USD_JPY", 0), orders: [req], asking: [{ ...req, opensPosition: "yes" }] })).toMatchObject({ ok: false, detail: expect.stringMatching(/^asking\.0\.opensPosition: /) });
  });
});
