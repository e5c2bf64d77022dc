/**
 * Crash points over the order lifecycle, 1,000 seeded runs (issue 8): the pair actor dies after
 * the coordinator's approval (before the order is recorded), after the outbox write, after the
 * broker's answer, after the fill is applied (before its broadcast and report), or after the broker
 * reported a resting limit order's fill (before it is applied), and is aborted. The first request
 * to the restarted actor is a new order: the actor must settle the old one with the broker first
 * (re-send the outbox, look up working orders), apply every fill once, and hold the position the
 * fills add up to. The runs are in pair-kit.ts (crashPointRuns); this file runs 0-249, and
 * crash-points-2/3/4.test.ts run 250-499, 500-749 and 750-999.
 *
 * Why four files of 250 and not one of 1,000: in @cloudflare/vitest-pool-workers 0.15.1 every
 * construction of a Durable Object class (every actor start, so every restart) wraps that class's
 * prototype in one more Proxy (createProxyPrototypeClass in its test-internal.mjs; upstream
 * cloudflare/workers-sdk#15092), and so does every request to the Worker's own fetch (SELF / the
 * HTTP API, see below). Every later call to any actor of the class walks all those layers.
 * Measured in one file (one runtime), per restart of a bare Pair: 2.6 ms after 5 restarts, 30 ms
 * after 300, 129 ms after 600, 297 ms after 1,000; a plain RPC to a live Pair: 1 ms, 4.7 ms, 17 ms,
 * 42 ms.
 * It is per class, not per actor: a Pair never started before is as slow (53 ms) after 300
 * restarts of another pair, while another class is hardly slowed. Each test file runs in a new
 * runtime, so the layers start from zero again.
 *
 * Why one actor aborted from inside (ctx.abort) and not abortAllDurableObjects: the latter
 * restarts every actor (the coordinator, the gatekeeper, the pairs that price the crosses), so each
 * run adds layers to all those classes, not one to Pair: 250 runs took 112 s, against 15.5 s
 * aborting only the pair (same harness, same machine, one after the other). The abort is a timer
 * in the actor that fires once the crash request has answered: aborting inside a request fails
 * that request too, which workerd prints as an uncaught exception for every run. The next request
 * checks that the actor is a new instance with none of the old one's in-memory state, so it really
 * restarted, from its storage.
 *
 * Why the orders go to the actor's execute and not POST /api/trade/execute: the route is the same
 * call after authentication, and every HTTP request adds a layer to the Worker entrypoint: over
 * 250 runs the "same order again" call went from 5.7 ms to 63 ms over HTTP, and stayed at 5 ms as
 * a call to the actor.
 */
import { it } from "vitest";
import { crashPointRuns } from "./pair-kit.ts";

it("crash points, runs 0-249: one order per client id, reconciled before any new one, position = sum of fills", { timeout: 300_000 }, () => crashPointRuns(0, 250));
