/**
 * `npm start`: run the runtime locally on workerd, no account, no network.
 * PORT (default 8787) and STATE_DIR (default .wrangler/state) choose where it
 * listens and where state persists; FEED=off turns the synthetic feed off.
 * Any wrangler.jsonc var can be overridden from the environment.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { ROOT, startRuntime } from "./runtime.ts";

function configuredVarNames(): string[] {
  const text = readFileSync(path.join(ROOT, "wrangler.jsonc"), "utf8");
  const vars = text.slice(text.indexOf('"vars"'));
  return [...vars.matchAll(/^\s*"([A-Z_][A-Z0-9_]*)"\s*:/gm)].map((m) => m[1]!);
}

const vars: Record<string, string> = { FEED: "synthetic" };
for (const name of configuredVarNames()) {
  const value = process.env[name];
  if (value !== undefined) vars[name] = value;
}

const runtime = await startRuntime({
  port: Number(process.env.PORT ?? 8787),
  ...(process.env.STATE_DIR ? { stateDir: process.env.STATE_DIR } : {}),
  vars,
  verbose: process.env.VERBOSE === "1",
});
await runtime.triggerScheduled();

const pairs = (vars.PAIRS ?? "").length ? vars.PAIRS : "(wrangler.jsonc PAIRS)";
console.log(`FX actor runtime on ${runtime.url}`);
console.log(`  state:  ${runtime.stateDir}`);
console.log(`  feed:   ${vars.FEED}   pairs: ${pairs}`);
console.log(`  try:    curl ${runtime.url}/api/pairs`);
console.log(`          room ws://${runtime.url.slice("http://".length)}/parties/pair/EUR_USD?tf=1m`);

let stopping = false;
async function shutdown() {
  if (stopping) return;
  stopping = true;
  await runtime.stop();
  process.exit(0);
}
process.on("SIGINT", shutdown);
process.on("SIGTERM", shutdown);
