/**
 * The one table at the end of `npm run bench`: every scenario's targets with
 * the figure measured in this run, and the product's required targets
 * (indicators < 10 ms, WebSocket < 20 ms, broker API < 50 ms, 180
 * computations a minute, 50+ WebSocket connections) mapped onto the figures
 * that prove them. Written to bench/results/summary.json as well.
 */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { fmt, machineInfo, printTable, PROFILES_DIR, RESULTS_DIR, type ScenarioResult } from "./common.ts";

interface Row {
  scenario: string;
  target: string;
  value: number | null;
  met: boolean | null;
  note?: string;
}

type Figures = Record<string, unknown>;
const at = (o: unknown, ...keys: (string | number)[]): unknown => keys.reduce<unknown>((x, k) => (x && typeof x === "object" ? (x as Record<string | number, unknown>)[k] : undefined), o);
const num = (x: unknown): number | null => (typeof x === "number" && Number.isFinite(x) ? x : null);

function required(results: Map<string, ScenarioResult>): Row[] {
  const decision = results.get("tick-to-decision");
  const decisionP99 = num(decision?.targets?.find((t) => t.description.startsWith("tick to decision inside the actor"))?.value);
  const ws = results.get("ws-fanout");
  const runs = (at(ws?.figures, "runs") as Figures[] | undefined) ?? [];
  const at50 = runs.filter((r) => r.clients === 50).map((r) => num(at(r, "latencyMs", "p99")));
  const wsP99 = at50.length > 0 && at50.every((x) => x !== null) ? Math.max(...(at50 as number[])) : null;
  const served = runs.filter((r) => r.lostFrames === 0).map((r) => r.clients as number);
  const maxClients = served.length > 0 ? Math.max(...served) : null;
  const perMinute = decisionP99 === null ? null : Math.floor(60_000 / decisionP99);
  const brokerP99 = num(at(results.get("broker-roundtrip")?.figures, "roundTripMs", "p99"));
  return [
    { scenario: "required", target: "indicators (candle close to decision) < 10 ms, p99", value: decisionP99, met: decisionP99 === null ? null : decisionP99 < 10, note: "tick-to-decision: candle close, indicators, strategy, risk, approval, order stored" },
    { scenario: "required", target: "WebSocket delivery < 20 ms, p99 at 50 clients", value: wsP99, met: wsP99 === null ? null : wsP99 < 20, note: "ws-fanout, worst rate" },
    { scenario: "required", target: "broker API < 50 ms (p99, adapter to the local v20 stand-in)", value: brokerP99, met: brokerP99 === null ? null : brokerP99 < 50, note: "broker-roundtrip: OANDA's network and matching time come on top" },
    { scenario: "required", target: "180 computations/minute per pair", value: perMinute, met: perMinute === null ? null : perMinute >= 180, note: "60,000 / decision p99 ms: decisions one pair actor can make a minute" },
    { scenario: "required", target: "50+ WebSocket connections, none losing a tick", value: maxClients, met: maxClients === null ? null : maxClients >= 50, note: "ws-fanout: most clients in a run with 0 lost" },
  ];
}

export async function printSummary(results: ScenarioResult[], quick: boolean, profiled = false): Promise<string> {
  const byName = new Map(results.map((r) => [r.name, r]));
  const rows: Row[] = [
    ...results.flatMap((r) => (r.targets ?? []).map((t) => ({ scenario: r.name, target: t.description, value: t.value, met: t.met }))),
    ...required(byName),
  ];
  const mark = (met: boolean | null) => (met === null ? "n/a" : met ? "met" : "MISSED");
  console.log(`\n=== summary${quick ? " (quick run: figures only, not comparable to the full run)" : ""}`);
  printTable(["scenario", "target", "value", "result"], rows.map((r) => [r.scenario, r.target, fmt(r.value), mark(r.met)]));
  const file = path.join(profiled ? PROFILES_DIR : RESULTS_DIR, "summary.json");
  await writeFile(file, `${JSON.stringify({ date: new Date().toISOString(), mode: quick ? "quick" : "full", machine: machineInfo(), rows }, null, 2)}\n`);
  return file;
}
