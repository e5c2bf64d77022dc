/**
 * Soak: the runtime under steady mixed load for minutes (20 s in --quick):
 * 10 pairs ticking at 20/s each, 20 room clients per pair, a manual order a
 * second (alternating sides across pairs), and reads (candles, pair status,
 * portfolio) every 200 ms. Bounded: fixed rates, fixed duration, loopback only.
 * Printed: requests and errors by kind, workerd memory (RSS) sampled every
 * second, and what must hold at the end: every accepted tick stored, every
 * client's last frame the pair's last tick, every order filled, no request failed.
 */
import { performance } from "node:perf_hooks";
import WebSocket from "ws";
import { SYMBOLS } from "../src/domain/instruments.ts";
import {
  fmt,
  json,
  onCleanup,
  Poster,
  printTable,
  resultBase,
  rssMb,
  sleep,
  startBenchRuntime,
  targetLine,
  tempDir,
  TickWalk,
  workerdPids,
  type BenchOptions,
  type Scenario,
  type ScenarioResult,
} from "./common.ts";
import { collectGarbage } from "./isolate-gc.ts";
import { freePort } from "./inspector-session.ts";

const PAIRS = SYMBOLS.filter((s) => !s.endsWith("_JPY") && s !== "USD_MXN").slice(0, 10);
const TICKS_PER_SEC = 20;
const CLIENTS_PER_PAIR = 20;
/** The live JS heap after a full GC may grow while caches fill; past this factor over its figure before the load it is a leak to look at. */
const HEAP_GROWTH_LIMIT = 1.5;

interface Counts {
  requests: number;
  errors: number;
  firstError: string | null;
}

export const soak: Scenario = {
  name: "soak",
  description: "minutes of mixed load (ticks, rooms, orders, reads) on 10 pairs: errors, memory and losses",
  async run(options: BenchOptions): Promise<ScenarioResult> {
    const base = await resultBase("soak", options);
    const seconds = options.quick ? 20 : 180;
    const state = await tempDir("fxrt-bench-soak-");
    let stopRuntime: (() => Promise<void>) | null = null;
    const sockets: WebSocket[] = [];
    try {
      console.log(`starting runtime with ${PAIRS.length} pairs (bundling the Worker)...`);
      const inspectorPort = await freePort();
      const runtime = await startBenchRuntime(state.dir, { PAIRS: PAIRS.join(",") }, inspectorPort);
      stopRuntime = onCleanup(() => runtime.stop());
      const pids = workerdPids();
      // Orders need open risk limits for a steady trickle: per-pair size and pace, and the portfolio.
      for (const pair of PAIRS) {
        await json(`${runtime.url}/api/admin/pairs/${pair}/risk`, {
          method: "PUT",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ limits: { maxPositionUnits: 1_000_000, maxOrdersPerMinute: 1000, stopLossRequired: "never", weekendGuard: false } }),
        });
      }

      // Clients: every frame's tick time, per client; the last one must be the pair's last tick.
      const lastSeen: { pair: string; ts: number }[] = [];
      for (const pair of PAIRS) {
        for (let c = 0; c < CLIENTS_PER_PAIR; c++) {
          const slot = { pair, ts: 0 };
          lastSeen.push(slot);
          const ws = new WebSocket(`${runtime.url.replace(/^http/, "ws")}/parties/pair/${pair}?tf=1m&limit=0`, { perMessageDeflate: false });
          ws.on("message", (data: WebSocket.RawData) => {
            const m = JSON.parse(data.toString()) as { type: string; ts?: number };
            if (m.type === "tick" && m.ts !== undefined) slot.ts = Math.max(slot.ts, m.ts);
          });
          sockets.push(ws);
          await new Promise<void>((resolve, reject) => {
            ws.once("open", () => resolve());
            ws.once("error", reject);
          });
        }
      }

      const counts: Record<"ticks" | "orders" | "reads", Counts> = {
        ticks: { requests: 0, errors: 0, firstError: null },
        orders: { requests: 0, errors: 0, firstError: null },
        reads: { requests: 0, errors: 0, firstError: null },
      };
      const count = (kind: keyof typeof counts, status: number, body: string) => {
        const c = counts[kind];
        c.requests++;
        if (status >= 200 && status < 300) return;
        c.errors++;
        c.firstError ??= `${status} ${body.slice(0, 200)}`;
      };
      const poster = new Poster(runtime.url, 16);
      const walks = new Map(PAIRS.map((p, i) => [p, new TickWalk(100 + i, p === "EUR_GBP" ? 85_000 : 108_500)]));
      const lastTs = new Map<string, number>(PAIRS.map((p) => [p, 0]));
      /** Ticks the pair said it accepted (concurrent POSTs can overtake each other; an older tick then is refused as out_of_order, by the rules). */
      const accepted = new Map<string, number>(PAIRS.map((p) => [p, 0]));
      let refusedTicks = 0;
      const orderIds: { pair: string; id: string }[] = [];
      const rss: number[] = [];
      const pending: Promise<unknown>[] = [];
      const track = <T>(p: Promise<T>) => {
        pending.push(p);
        if (pending.length > 2_000) pending.splice(0, 1_000);
        return p;
      };

      // Memory held, as against garbage V8 has not collected yet: right after a full collection in every
      // isolate, the JS heaps' live objects and the processes' RSS (which adds SQLite's page caches and
      // whatever the allocator keeps).
      const heldMb = async () => {
        const gc = await collectGarbage(inspectorPort);
        return { heapUsedMb: gc.heapUsedMb, heapTotalMb: gc.heapTotalMb, rssMb: rssMb(pids), isolates: gc.isolates };
      };
      const heldStart = await heldMb();
      console.log(`  ${PAIRS.length} pairs x ${TICKS_PER_SEC} ticks/s, ${sockets.length} clients, 1 order/s, 5 reads/s, for ${seconds} s...`);
      const started = performance.now();
      const end = started + seconds * 1000;
      let step = 0;
      const stepMs = 1000 / TICKS_PER_SEC;
      while (performance.now() < end) {
        const due = started + step * stepMs - performance.now();
        if (due > 0) await sleep(due);
        for (const pair of PAIRS) {
          const ts = Math.max(Date.now(), lastTs.get(pair)! + 1);
          lastTs.set(pair, ts);
          const tick = walks.get(pair)!.next(ts);
          track(
            poster.post(`/api/pairs/${pair}/ticks`, JSON.stringify({ ticks: [tick] })).then(
              (r) => {
                count("ticks", r.status, r.body);
                if (r.status !== 200) return;
                const result = JSON.parse(r.body) as { accepted: number; rejected: unknown[] };
                accepted.set(pair, accepted.get(pair)! + result.accepted);
                refusedTicks += result.rejected.length;
              },
              (e: unknown) => count("ticks", 0, String(e)),
            ),
          );
        }
        if (step % TICKS_PER_SEC === 0) {
          const n = step / TICKS_PER_SEC;
          const pair = PAIRS[n % PAIRS.length]!;
          const id = `soak-${n}`;
          orderIds.push({ pair, id });
          const body = JSON.stringify({ pair, side: n % 2 === 0 ? "buy" : "sell", units: 1_000, clientOrderId: id });
          track(poster.post("/api/trade/execute", body).then((r) => count("orders", r.status, r.body), (e: unknown) => count("orders", 0, String(e))));
          rss.push(rssMb(pids) ?? Number.NaN);
        }
        if (step % 4 === 0) {
          const pair = PAIRS[step % PAIRS.length]!;
          const reads = [`/api/pairs/${pair}/candles?tf=1m&limit=100`, `/api/pairs/${pair}`, "/api/admin/portfolio"];
          const path = reads[(step / 4) % reads.length]!;
          track(
            fetch(`${runtime.url}${path}`, { headers: { "x-api-key": "bench-admin-key" } }).then(
              async (r) => count("reads", r.status, await r.text()),
              (e: unknown) => count("reads", 0, String(e)),
            ),
          );
        }
        step++;
      }
      await Promise.all(pending);
      await sleep(1_000);
      poster.close();

      // What must hold at the end.
      let ticksMissing = 0;
      for (const pair of PAIRS) {
        const status = await json<{ ticksStored: number }>(`${runtime.url}/api/pairs/${pair}`);
        ticksMissing += accepted.get(pair)! - status.ticksStored;
      }
      const clientsBehind = lastSeen.filter((s) => s.ts !== lastTs.get(s.pair)).length;
      let ordersNotFilled = 0;
      for (const pair of PAIRS) {
        const mine = new Set(orderIds.filter((o) => o.pair === pair).map((o) => o.id));
        const orders = (await json<{ orders: { clientOrderId: string; status: string }[] }>(`${runtime.url}/api/pairs/${pair}/orders?limit=1000`)).orders;
        ordersNotFilled += mine.size - orders.filter((o) => mine.has(o.clientOrderId) && o.status === "filled").length;
      }
      const heldEnd = await heldMb();
      const rssValid = rss.filter((x) => Number.isFinite(x));
      const rssFirst = rssValid[Math.min(5, rssValid.length - 1)] ?? null;
      const rssPeak = rssValid.length ? Math.max(...rssValid) : null;
      const rssLast = rssValid.at(-1) ?? null;
      const errors = counts.ticks.errors + counts.orders.errors + counts.reads.errors;
      const growth = rssFirst && rssLast ? rssLast / rssFirst : null;
      const heldGrowth = heldEnd.heapUsedMb / heldStart.heapUsedMb;
      const targets = [
        { description: "no failed request (ticks, orders, reads)", value: errors, met: errors === 0 },
        { description: "every accepted tick stored", value: ticksMissing, met: ticksMissing === 0 },
        { description: "every client's last frame is its pair's last tick", value: clientsBehind, met: clientsBehind === 0 },
        { description: "every order filled", value: ordersNotFilled, met: ordersNotFilled === 0 },
        {
          description: `live JS heap of every workerd isolate (after a full GC) at the end within ${HEAP_GROWTH_LIMIT}x of the start`,
          value: Math.round(heldGrowth * 100) / 100,
          met: heldGrowth <= HEAP_GROWTH_LIMIT,
        },
      ];

      console.log(`\nsoak (${options.quick ? "quick" : "full"}): ${seconds} s`);
      printTable(
        ["kind", "requests", "errors", "first error"],
        (Object.keys(counts) as (keyof typeof counts)[]).map((k) => [k, counts[k].requests, counts[k].errors, counts[k].firstError ?? "-"]),
      );
      console.log(`ticks refused by the pair's rules (out of order: concurrent POSTs overtaking each other): ${refusedTicks}`);
      console.log(`workerd RSS MB: at 5 s ${fmt(rssFirst, 1)}, peak ${fmt(rssPeak, 1)}, end ${fmt(rssLast, 1)} (${rssValid.length} samples, one a second; uncollected garbage included)`);
      console.log(
        `after a full GC in every isolate (${heldEnd.isolates}), before the load -> after it: live JS heap MB ${fmt(heldStart.heapUsedMb, 1)} -> ${fmt(heldEnd.heapUsedMb, 1)}, ` +
          `V8 heap kept MB ${fmt(heldStart.heapTotalMb, 1)} -> ${fmt(heldEnd.heapTotalMb, 1)}, RSS MB ${fmt(heldStart.rssMb, 1)} -> ${fmt(heldEnd.rssMb, 1)}`,
      );
      for (const t of targets) console.log(targetLine(t.description, t.value, t.met));

      return {
        ...base,
        parameters: { seconds, pairs: PAIRS, ticksPerSecPerPair: TICKS_PER_SEC, clientsPerPair: CLIENTS_PER_PAIR, ordersPerSec: 1, readsPerSec: 5 },
        figures: {
          counts, refusedTicks, ticksMissing, clientsBehind, ordersNotFilled,
          rssMb: { atFiveSeconds: rssFirst, peak: rssPeak, end: rssLast, samples: rssValid },
          afterFullGc: { beforeLoad: heldStart, afterLoad: heldEnd },
        },
        baseline: { description: "none: a soak compares the runtime with itself over time (memory held before the load against after it)" },
        ratios: { liveHeapAfterOverBefore: heldGrowth, rssEndOverFiveSeconds: growth },
        targets,
        notes: [
          "RSS of the workerd processes this run started, from /proc (Linux only).",
          "Unforced RSS grows with garbage V8 collects late in every isolate of the local serving path (Miniflare's entry and assets workers too; a one-line Worker grows the same way) and levels off; the live JS heap (the target) and RSS beside it are also measured right after a forced full collection in every isolate (a heap snapshot through workerd's inspector).",
          "Targets are reported, not asserted.",
        ],
      };
    } finally {
      for (const ws of sockets) ws.terminate();
      if (stopRuntime) await stopRuntime();
      await state.remove();
    }
  },
};
