/**
 * Order round trip through the OANDA v20 adapter (OandaBroker over
 * OandaHttp: request building, fetch, validation of the answer, the fill in
 * points), against the local v20 stand-in (test/support/oanda-standin.ts), beside
 * the stand-in's own answer time for the same orders (request in to answer
 * written, summed over the order's REST calls: the adapter looks the client
 * order id up before it posts). The adapter's share = round trip - server
 * time, paired per order: client HTTP, JSON, validation, and any wait of the
 * OANDA rate limiter. Orders go one at a time, one every PACE_MS (50 REST
 * calls a second: within the limiter's steady rate, so the figure is the
 * adapter's latency, not a queue of our own making). Market orders, buys and
 * sells alternating. OANDA's real servers add the network and their own time,
 * which no local figure can show; the requirement is broker calls under 50 ms.
 */
import { performance } from "node:perf_hooks";
import { getInstrument } from "../src/domain/instruments.ts";
import { OandaBroker } from "../src/broker/oanda/oanda-broker.ts";
import { OandaHttp } from "../src/broker/oanda/oanda-http.ts";
import { OandaStandIn } from "../test/support/oanda-standin.ts";

/** One order every 40 ms: 25 orders (50 REST calls) a second, a busy desk's pace and within OANDA's limits as the adapter keeps them. */
const PACE_MS = 40;
import { fmt, printTable, ratio, resultBase, summarize, targetLine, type BenchOptions, type Scenario, type ScenarioResult } from "./common.ts";

const TARGET_P99_MS = 50;
/** The adapter's own share should be a small part of the 50 ms: a tenth. */
const TARGET_SHARE_P99_MS = 5;

export const brokerRoundtrip: Scenario = {
  name: "broker-roundtrip",
  description: "market order round trip through the OANDA v20 adapter, beside the local v20 stand-in's own answer time",
  async run(options: BenchOptions): Promise<ScenarioResult> {
    const base = await resultBase("broker-roundtrip", options);
    const orders = options.quick ? 100 : 600;
    const warmup = 50;
    const standin = new OandaStandIn();
    const url = await standin.start();
    try {
      const instrument = getInstrument("EUR_USD");
      const broker = new OandaBroker(new OandaHttp({ apiUrl: url, streamUrl: url, accountId: standin.accountId, token: standin.token }), instrument);
      standin.setQuote("EUR_USD", 1.085, 1.08512);
      const quote = { ts: Date.now(), bid: 108_500, ask: 108_512 };
      const roundTrip: number[] = [];
      const server: number[] = [];
      const share: number[] = [];
      for (let i = 0; i < warmup + orders; i++) {
        await new Promise((resolve) => setTimeout(resolve, PACE_MS));
        const answered = standin.answerMs.length;
        const t0 = performance.now();
        const answer = await broker.place(
          { clientOrderId: `bench-${i}`, pair: "EUR_USD", strategyId: "bench", side: i % 2 === 0 ? "buy" : "sell", units: 1_000, type: "market", reduceOnly: false, createdAt: 0 },
          quote,
        );
        const ms = performance.now() - t0;
        if (answer.status !== "filled") throw new Error(`order ${i}: ${JSON.stringify(answer)}`);
        if (i < warmup) continue;
        // The stand-in's time for every REST call of this order (the adapter looks the id up before it posts).
        const calls = standin.answerMs.slice(answered);
        const serverMs = calls.length > 0 ? calls.reduce((sum, t) => sum + t, 0) : null;
        roundTrip.push(ms);
        if (serverMs !== null) {
          server.push(serverMs);
          share.push(ms - serverMs);
        }
      }
      const rt = summarize(roundTrip);
      const sv = summarize(server);
      const own = summarize(share);
      const targets = [
        { description: `order round trip through the adapter p99 < ${TARGET_P99_MS} ms (local v20 stand-in)`, value: rt.p99, met: rt.p99 === null ? null : rt.p99 < TARGET_P99_MS },
        { description: `the adapter's own share (round trip - server time) p99 < ${TARGET_SHARE_P99_MS} ms`, value: own.p99, met: own.p99 === null ? null : own.p99 < TARGET_SHARE_P99_MS },
      ];
      console.log(`\nbroker-roundtrip (${options.quick ? "quick" : "full"}): ${orders} market orders through OandaBroker to the local v20 stand-in, one at a time`);
      printTable(
        ["series", "samples", "p50 ms", "p99 ms", "max ms", "mean ms"],
        [
          ["adapter round trip", rt.n, fmt(rt.p50), fmt(rt.p99), fmt(rt.max), fmt(rt.mean)],
          ["stand-in's own answer time (baseline)", sv.n, fmt(sv.p50), fmt(sv.p99), fmt(sv.max), fmt(sv.mean)],
          ["adapter's share (paired difference)", own.n, fmt(own.p50), fmt(own.p99), fmt(own.max), fmt(own.mean)],
        ],
      );
      for (const t of targets) console.log(targetLine(t.description, t.value, t.met));
      return {
        ...base,
        parameters: { orders, warmup, instrument: "EUR_USD", units: 1_000, orderType: "market FOK", client: "OandaBroker + OandaHttp (fetch), one order at a time", paceMs: PACE_MS },
        figures: { roundTripMs: rt, adapterShareMs: own },
        baseline: { description: "the local v20 stand-in's own time per order: request in to answer written", answerMs: sv },
        ratios: { roundTripP50OverServerP50: ratio(rt.p50, sv.p50) },
        targets,
        notes: [
          "Real OANDA adds the network and its own matching time; this figure is the adapter's cost on top of whatever the broker takes.",
          "Targets are reported, not asserted.",
        ],
      };
    } finally {
      await standin.stop();
    }
  },
};
