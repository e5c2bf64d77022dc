/**
 * Issue 14, the property: whatever a trader key sends (any fields, any ids, extreme numbers, the
 * runtime's own exit ids, ticks far from the market), afterwards
 * - no answer was a 5xx and every refusal was a typed 4xx;
 * - no open position has a stop the last quote breached, also after the price walks through them;
 * - the kill switch's flatten leaves nothing open;
 * - the pair takes and fills a normal order.
 * Runs accumulate on one pair on purpose: an attack that jams the pair would fail every later run.
 */
import { runInDurableObject } from "cloudflare:test";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import type { Pair } from "../../actors/pair.ts";
import type { Position } from "../../src/domain/trading/position.ts";
import { closeIntent } from "../../src/domain/trading/signal-intent.ts";
import { call, postJson } from "./helpers.ts";
import { liftPortfolioLimits, setClock, stub } from "./pair-kit.ts";

const PAIR = "USD_CHF";
/** A Wednesday in the future: the market is open and alarms stay out of the way. */
const T0 = Date.UTC(2030, 0, 23, 10, 0, 0);

type Json = Record<string, any>;

let traderKey = "";
let clock = T0;
let mid = 0.885;

const send = async (path: string, body: string): Promise<{ status: number; body: Json }> => {
  const res = await call(path, { method: "POST", headers: { "content-type": "application/json" }, body }, traderKey);
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Json) : {} };
};

/** A tick at `at` (decimal mid) one second later, from the trader key over HTTP. */
async function quote(at: number): Promise<void> {
  clock += 1_000;
  await setClock(PAIR, clock);
  const bid = Number(at.toFixed(5));
  const out = await send(`/api/pairs/${PAIR}/ticks`, JSON.stringify({ ticks: [{ ts: clock, bid, ask: Number((bid + 0.0002).toFixed(5)) }] }));
  expect(out.status).toBe(200);
  if (out.body.accepted === 1) mid = bid;
}

const storedOpen = (): Promise<Position[]> =>
  runInDurableObject(stub(PAIR), (_p: Pair, s: DurableObjectState) =>
    s.storage.sql.exec<{ json: string }>("SELECT json FROM positions WHERE status = 'OPEN'").toArray().map((r) => JSON.parse(r.json) as Position),
  );

/**
 * Inside the pair: a tick at `at` (unless null), then the open positions whose stop loss the
 * pair's last quote is through. One call, since every request into the test runtime slows the
 * next ones (see crash-points.test.ts).
 */
const tickThenBreached = (at: number | null): Promise<Position[]> => {
  if (at !== null) clock += 1_000;
  const now = clock;
  return runInDurableObject(stub(PAIR), async (p: Pair, s: DurableObjectState) => {
    p.hooks.clock = () => now;
    if (at !== null) {
      const bid = Number(at.toFixed(5));
      const out = await p.ingest([{ ts: now, bid, ask: Number((bid + 0.0002).toFixed(5)) }]);
      if (out.accepted === 1) mid = bid;
    }
    const q = (p as unknown as { lastTick: { bid: number; ask: number } }).lastTick;
    const open = s.storage.sql.exec<{ json: string }>("SELECT json FROM positions WHERE status = 'OPEN'").toArray().map((r) => JSON.parse(r.json) as Position);
    return open.filter((o) => o.stopLoss !== undefined && (o.side === "buy" ? q.bid <= o.stopLoss : q.ask >= o.stopLoss));
  });
};

/** Numbers an attacker tries: near the market, sub-point, huge, negative, non-finite (sent as raw JSON). */
const nastyNumber = fc.oneof(
  fc.double({ min: 0.85, max: 0.92, noNaN: true }),
  fc.constantFrom("1e309", "-1e309", "0.000001", "0", "-1", "1e-320", "9007199254740993", "0.8850000000000001", "1e21", "NaN", "null", '"1.1"'),
  fc.double({ noNaN: true }),
);

const clientOrderId = (reservedIds: string[]) =>
  fc.oneof(
    fc.string({ maxLength: 70 }).map((s) => JSON.stringify(s)),
    reservedIds.length > 0 ? fc.constantFrom(...reservedIds.map((id) => JSON.stringify(id))) : fc.constant('"x"'),
    fc.constantFrom('"same-id"', '"same-id-2"'),
  );

/** A raw JSON body for POST /api/trade/execute: any subset of fields, any values. */
const anyOrder = (reservedIds: string[]) =>
  fc.record(
    {
      side: fc.constantFrom('"buy"', '"sell"', '"BUY"', "1"),
      units: fc.oneof(fc.constantFrom("1000", "1", "0", "-5", "1e9", "1e10", "1.5", "NaN"), fc.integer({ min: 1, max: 100_000 }).map(String)),
      type: fc.constantFrom('"market"', '"limit"', '"stop"', '"trailing"'),
      price: nastyNumber.map(String),
      stopLoss: nastyNumber.map(String),
      takeProfit: nastyNumber.map(String),
      trailingStopPips: fc.oneof(fc.constantFrom("0.00001", "1e309", "5", "0.1"), fc.double({ noNaN: true }).map(String)),
      clientOrderId: clientOrderId(reservedIds),
    },
    { requiredKeys: [] },
  );

/** An order that opens a position with a stop near the market, with nasty extras: what leaves stops to defend. */
const orderWithStop = (reservedIds: string[]) =>
  fc
    .record({
      side: fc.constantFrom("buy", "sell"),
      units: fc.integer({ min: 1, max: 50 }).map((n) => n * 1_000),
      distance: fc.double({ min: 0.0005, max: 0.008, noNaN: true }),
      extra: fc.record({ takeProfit: nastyNumber.map(String), trailingStopPips: fc.constantFrom("0.00001", "5", "1e309"), clientOrderId: clientOrderId(reservedIds) }, { requiredKeys: [] }),
    })
    .map(({ side, units, distance, extra }) => ({
      side: `"${side}"`,
      units: String(units),
      stopLoss: String(Number((side === "buy" ? mid - distance : mid + 0.0002 + distance).toFixed(5))),
      ...extra,
    }));

const orderBody = (reservedIds: string[]) =>
  fc
    .oneof(anyOrder(reservedIds), orderWithStop(reservedIds))
    .map((fields) => `{"pair":"${PAIR}"${Object.entries(fields).map(([k, value]) => `,"${k}":${value}`).join("")}}`);

beforeAll(async () => {
  await liftPortfolioLimits();
  const created = (await (await postJson("/api/admin/keys", { role: "trader", label: "attacker" })).json()) as Json;
  traderKey = created.key;
  expect(traderKey).toMatch(/^fxk_/);
  // The order-rate limit would refuse most of the attack before it reached the price checks.
  const risk = await call(`/api/admin/pairs/${PAIR}/risk`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify({ limits: { maxOrdersPerMinute: 1_000 } }) });
  expect(risk.status).toBe(200);
  // The coordinator values CHF through USD_CHF itself; EUR_USD for the portfolio's other currency.
  for (const [pair, bid] of [["EUR_USD", 1.1]] as const) {
    await setClock(pair, T0);
    await postJson(`/api/pairs/${pair}/ticks`, { ticks: [{ ts: T0 - 1_000, bid, ask: bid + 0.0002 }] });
  }
  await quote(mid);
});

describe("a trader key cannot keep money from being protected", () => {
  it("after any orders and ticks: no 5xx, no breached stop left open, flatten leaves nothing, a normal order fills", { timeout: 240_000 }, async () => {
    let stopsWalkedThrough = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.oneof({ weight: 3, arbitrary: fc.constant("order" as const) }, { weight: 1, arbitrary: fc.double({ min: -0.3, max: 0.3, noNaN: true }) }), { minLength: 1, maxLength: 12 }),
        fc.infiniteStream(fc.nat()),
        async (steps, seeds) => {
          const statuses: number[] = [];
          for (const step of steps) {
            if (step === "order") {
              // The ids the runtime reserves for the exits of the open positions, there to be squatted.
              const reserved = (await storedOpen()).flatMap((p) => [1, 2].map((n) => closeIntent(p, "exit", n, clock).clientOrderId));
              const body = fc.sample(orderBody(reserved), { numRuns: 1, seed: seeds.next().value as number })[0]!;
              const out = await send("/api/trade/execute", body);
              statuses.push(out.status);
              if (out.status >= 400) expect(out.body.error?.code, body).toEqual(expect.any(String));
            } else {
              // A relative move; a big one is refused as out of band and must leave the last price alone.
              await quote(Math.max(0.0001, mid * (1 + step)));
            }
          }
          expect(statuses.filter((s) => s >= 500), "no 5xx").toEqual([]);
          expect(await tickThenBreached(null), "no breached stop open after the attack").toEqual([]);

          // The price walks 1% down and up again, through every stop placed near it.
          const start = mid;
          stopsWalkedThrough += (await storedOpen()).filter((p) => p.stopLoss !== undefined && Math.abs(p.stopLoss / 1e5 - start) < start * 0.01).length;
          for (const factor of [0.995, 0.99, 1, 1.005, 1.01, 1]) {
            expect(await tickThenBreached(start * factor), `no breached stop open at ${mid}`).toEqual([]);
          }

          const flatten = (await (await postJson("/api/admin/kill-switch", { action: "flatten", reason: "property" })).json()) as Json;
          expect(flatten.status.state).toBe("HALTED");
          expect(await storedOpen(), "flatten leaves nothing open").toEqual([]);
          expect((await postJson("/api/admin/kill-switch", { action: "resume" })).status).toBe(200);

          const normal = await send("/api/trade/execute", JSON.stringify({ pair: PAIR, side: "buy", units: 1_000 }));
          expect(normal.status, JSON.stringify(normal.body)).toBe(200);
          expect(normal.body.order.status).toBe("filled");
          const back = await send("/api/trade/execute", JSON.stringify({ pair: PAIR, side: "sell", units: 1_000 }));
          expect(back.body.order?.status).toBe("filled");
        },
      ),
      { numRuns: Number(process.env.ATTACK_RUNS ?? 25), endOnFailure: true },
    );
    // The property is about stops: the attack must have left some within the walk's reach.
    expect(stopsWalkedThrough).toBeGreaterThan(0);
  });
});
