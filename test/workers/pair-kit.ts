/** Pair-actor helpers shared by the trading tests: a pair's stub, its test clock, one tick, open portfolio limits. */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import type { Pair } from "../../actors/pair.ts";
import { call, postJson } from "./helpers.ts";

export const MINUTE = 60_000;

export const stub = (pair: string): DurableObjectStub<Pair> => env.Pair.getByName(pair);

/** Drive the pair's clock (its risk checks and stamps) without sleeping. */
export async function setClock(pair: string, nowMs: number): Promise<void> {
  await runInDurableObject(stub(pair), (i: Pair) => {
    i.clock = () => nowMs;
  });
}

export async function tick(pair: string, ts: number, bid: number, ask: number): Promise<void> {
  const res = await postJson(`/api/pairs/${pair}/ticks`, { ticks: [{ ts, bid, ask }] });
  expect(await res.json()).toMatchObject({ accepted: 1 });
}

/** Portfolio limits out of the way, for tests about per-pair behaviour (prices jump between runs). */
export async function liftPortfolioLimits(): Promise<void> {
  const res = await call("/api/admin/limits", {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ maxGrossExposure: 1e11, maxNetExposurePerCurrency: 1e11, maxOpenPositions: 10_000, maxExposurePerPair: 1e11, dailyLossLimit: 1e11, maxDrawdown: 1e11 }),
  });
  expect(res.status).toBe(200);
}
