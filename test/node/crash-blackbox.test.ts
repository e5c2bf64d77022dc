/**
 * Black-box crash test (issue 14): `npm start` as a child process group, killed
 * with SIGKILL (Node and workerd together) right around a halt, an order, a
 * resume and a tick batch, restarted on the same state, the unanswered
 * requests re-sent with the same ids, and the invariants checked through the
 * API (test/support/crash-driver.ts): every order once, positions equal to
 * their fills, every acknowledged tick stored once, coordinator and pairs in
 * one trading state within CONVERGENCE_BOUND_MS of the restart.
 * Each restart builds the bundle again, so the cycles are few; bench/crash.ts
 * runs the same for many cycles.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CONVERGENCE_BOUND_MS, runCrashTest, type KillTarget } from "../support/crash-driver.ts";

/** One kill aimed at each kind of request the issue names. */
const TARGETS: KillTarget[] = ["halt", "order", "resume", "ticks"];

let dir: string | undefined;
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("crash black box", () => {
  it(
    "keeps orders, fills, ticks and the trading state whole across SIGKILLs of the whole runtime",
    async () => {
      dir = await mkdtemp(path.join(tmpdir(), "fxrt-crash-test-"));
      const report = await runCrashTest({ seed: 14, cycles: TARGETS.length, dir, targets: TARGETS, cutFirst: true });
      // Each message names the seed, the cycle, the request, what was observed and what was expected.
      expect(report.violations).toEqual([]);
      expect(report.cycles).toBe(TARGETS.length);
      // The kill took the runtime itself every time, not only its Node parent.
      expect(report.killsWithWorkerd).toBe(TARGETS.length);
      // The kills cut requests off, so the test exercised re-sending and not only restarts.
      expect(report.requests.resent).toBeGreaterThan(0);
      expect(report.ticks.stored).toBe(report.ticks.accepted);
      expect(report.orders.recorded).toBeGreaterThan(0);
      expect(Math.max(...report.convergenceMs, ...report.convergenceAfterResendMs)).toBeLessThanOrEqual(CONVERGENCE_BOUND_MS);
    },
    // Four restarts, each building the bundle (about 12 s on an idle 2-core machine, 30 s on a busy one).
    300_000,
  );
});
