/**
 * `npm start`: run the runtime locally on workerd, no account, no network.
 * PORT (default 8787) and STATE_DIR (default .wrangler/state) choose where it
 * listens and where state persists; FEED=off turns the synthetic feed off.
 * Any wrangler.jsonc var can be overridden from the environment.
 * The Worker's scheduled() handler runs once at start (so the pairs run at
 * once, not at the next minute) and then every minute on the minute, as the
 * platform's cron does (scripts/runtime.ts).
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { ROOT, startRuntime } from "./runtime.ts";

function configuredVarNames(): string[] {
  const text = readFileSync(path.join(ROOT, "wrangler.jsonc"), "utf8");
  const vars = text.slice(text.indexOf('"vars"'));
  return [...vars.matchAll(/^\s*"([A-Z_][A-Z0-9_]*)"\s*:/gm)].map((m) => m[1]!);
}

/** Optional secrets (wrangler.jsonc comments): from the environment, as `wrangler secret put` would set them. */
const OPTIONAL_SECRETS = ["OANDA_TOKEN", "CREDENTIALS_KEY", "ALERT_WEBHOOK_URL"];

const vars: Record<string, string> = { FEED: "synthetic" };
for (const name of [...configuredVarNames(), ...OPTIONAL_SECRETS]) {
  const value = process.env[name];
  if (value !== undefined) vars[name] = value;
}

const stateDir = path.resolve(process.env.STATE_DIR ?? path.join(ROOT, ".wrangler", "state"));

/** `.dev.vars` (KEY=VALUE lines), as wrangler reads it. */
function devVars(): Record<string, string> {
  const file = path.join(ROOT, ".dev.vars");
  if (!existsSync(file)) return {};
  const out: Record<string, string> = {};
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const m = /^\s*([A-Z_][A-Z0-9_]*)\s*=\s*"?(.*?)"?\s*$/.exec(line);
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

/**
 * The first admin key: ADMIN_API_KEY from the environment or .dev.vars; else
 * the one generated on a previous start (kept in the state folder); else a new
 * one, generated now and printed this once.
 */
function adminKey(): { key: string; origin: string; printed: boolean } {
  const fromEnv = process.env.ADMIN_API_KEY ?? devVars().ADMIN_API_KEY;
  if (fromEnv) return { key: fromEnv, origin: process.env.ADMIN_API_KEY ? "ADMIN_API_KEY" : ".dev.vars", printed: false };
  const file = path.join(stateDir, "admin-api-key");
  if (existsSync(file)) return { key: readFileSync(file, "utf8").trim(), origin: file, printed: false };
  mkdirSync(stateDir, { recursive: true });
  const key = `fxadmin_${randomBytes(32).toString("base64url")}`;
  writeFileSync(file, `${key}\n`, { mode: 0o600 });
  return { key, origin: file, printed: true };
}

const admin = adminKey();
vars.ADMIN_API_KEY = admin.key;
// wrangler reads required secrets from the environment; without this it warns that the key is missing.
process.env.ADMIN_API_KEY = admin.key;
const rateLimit = process.env.RATE_LIMIT_PER_MINUTE ? Number(process.env.RATE_LIMIT_PER_MINUTE) : undefined;
if (rateLimit !== undefined && !(Number.isInteger(rateLimit) && rateLimit > 0)) throw new Error("RATE_LIMIT_PER_MINUTE must be a positive integer");

const runtime = await startRuntime({
  port: Number(process.env.PORT ?? 8787),
  stateDir,
  vars,
  ...(rateLimit !== undefined ? { rateLimitPerMinute: rateLimit } : {}),
  verbose: process.env.VERBOSE === "1",
});
await runtime.triggerScheduled();

const pairs = (vars.PAIRS ?? "").length ? vars.PAIRS : "(wrangler.jsonc PAIRS)";
console.log(`FX actor runtime on ${runtime.url}`);
console.log(`  state:  ${runtime.stateDir}`);
console.log(`  feed:   ${vars.FEED}   pairs: ${pairs}`);
console.log(`  cron:   ran at start, then every minute on the minute (backups, retention, alerts)`);
if (admin.printed) {
  console.log(`  admin key (generated now, shown once, kept in ${admin.origin}):`);
  console.log(`          ${admin.key}`);
} else {
  console.log(`  admin key: from ${admin.origin}`);
}
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
