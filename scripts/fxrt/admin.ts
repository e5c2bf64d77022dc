/** Admin commands: `limits`, the kill switch (`halt`, `resume`, `flatten`) and `keys`. */
import { createInterface } from "node:readline/promises";
import { keysCli } from "../keys.ts";
import { api, CliFailure, isoMinute, noPositional, num, pairs as keyValues, parseFlags, unreachable, UsageError, type Ctx } from "./common.ts";

export const LIMITS_HELP = `usage: fxrt limits get [--json]
       fxrt limits set KEY=VALUE ... [--json]

Portfolio limits in the account currency (admin key). \`set\` reads the current
limits, changes only the given keys and writes the whole object back
(PUT /api/admin/limits), so \`limits set maxOpenPositions=5\` keeps the rest.
Values are numbers (1000000, 1_000_000 or 1,000,000). Keys:
  maxGrossExposure            sum of all positions' notional
  maxNetExposurePerCurrency   net long or short in one currency
  maxOpenPositions            open positions across pairs (whole number)
  maxExposurePerPair          notional of one pair
  dailyLossLimit              loss since the 17:00 New York roll -> REDUCING
  maxDrawdown                 fall of equity from its peak -> HALTED`;

export const HALT_HELP = `usage: fxrt halt [--reason TEXT] [--yes]

Kill switch (admin key): trading HALTED on every pair. Open positions are kept
and their stops still work; no new position opens. Asks for confirmation on a
terminal; elsewhere --yes is required. \`fxrt resume\` undoes it.`;

export const RESUME_HELP = `usage: fxrt resume [--reason TEXT]

Trading ACTIVE again on every pair (admin key).`;

export const FLATTEN_HELP = `usage: fxrt flatten [--reason TEXT] [--yes]

Halt trading and close every open position on every pair at market (admin
key). Asks for confirmation on a terminal; elsewhere --yes is required.`;

export const KEYS_HELP = `usage: fxrt keys list [--json]
       fxrt keys create --role viewer|trader|admin [--label TEXT] [--json]
       fxrt keys revoke <id> [--json]

API keys (admin key). A created key is printed once: only its hash is stored.
Roles: viewer (read) < trader (post ticks, trade, backtest) < admin.`;

interface Limits {
  [key: string]: number;
}

export async function limits(ctx: Ctx, args: readonly string[]): Promise<number> {
  const { positional } = parseFlags("limits", args, {});
  const [sub, ...rest] = positional;
  if (sub === "get") {
    if (rest.length > 0) throw new UsageError(`unexpected argument '${rest[0]}'`, "limits");
    const current = await api<Limits>(ctx, "GET", "/api/admin/limits");
    printLimits(ctx, current, new Set());
    return 0;
  }
  if (sub === "set") {
    if (rest.length === 0) throw new UsageError("limits set needs at least one KEY=VALUE", "limits");
    const changes = new Map<string, number>();
    for (const kv of rest) {
      const eq = kv.indexOf("=");
      if (eq <= 0) throw new UsageError(`expected KEY=VALUE, got '${kv}'`, "limits");
      const key = kv.slice(0, eq);
      const text = kv.slice(eq + 1).replace(/[_,]/g, "");
      const value = Number(text);
      if (text.trim() === "" || !Number.isFinite(value) || value < 0) throw new UsageError(`${key} must be a number >= 0, got '${kv.slice(eq + 1)}'`, "limits");
      if (key === "maxOpenPositions" && !Number.isInteger(value)) throw new UsageError(`maxOpenPositions must be a whole number, got '${kv.slice(eq + 1)}'`, "limits");
      changes.set(key, value);
    }
    const current = await api<Limits>(ctx, "GET", "/api/admin/limits");
    const unknown = [...changes.keys()].filter((k) => !(k in current));
    if (unknown.length > 0) throw new UsageError(`unknown limit ${unknown.join(", ")}; known: ${Object.keys(current).join(", ")}`, "limits");
    const next = await api<Limits>(ctx, "PUT", "/api/admin/limits", { ...current, ...Object.fromEntries(changes) });
    const changed = new Set(Object.keys(next).filter((k) => next[k] !== current[k]));
    printLimits(ctx, next, changed, current);
    return 0;
  }
  throw new UsageError(sub === undefined ? "limits needs get or set" : `unknown limits command '${sub}'`, "limits");
}

function printLimits(ctx: Ctx, limits: Limits, changed: Set<string>, before?: Limits): void {
  if (ctx.json) {
    ctx.io.out(JSON.stringify(before ? { limits, changed: [...changed] } : limits));
    return;
  }
  const rows = Object.entries(limits).map(([k, v]): [string, string] => [k, changed.has(k) && before ? `${num(v, 0)}  (was ${num(before[k] ?? 0, 0)})` : num(v, 0)]);
  for (const line of keyValues(rows)) ctx.io.out(line);
  if (before && changed.size === 0) ctx.io.err("note: nothing changed");
}

interface KillSwitchAnswer {
  status: { state: string; reason: string; since: number };
  pairs: Record<string, string>;
}

export async function confirm(ctx: Ctx, command: string, question: string): Promise<void> {
  if (ctx.yes) return;
  if (!ctx.io.isTTY) throw new UsageError(`${command} changes live trading: confirm with --yes (no terminal to ask on)`, command);
  const ask =
    ctx.io.ask ??
    (async (q: string) => {
      const rl = createInterface({ input: process.stdin, output: process.stderr });
      try {
        return await rl.question(q);
      } finally {
        rl.close();
      }
    });
  const answer = (await ask(`${question} [y/N] `)).trim().toLowerCase();
  if (answer !== "y" && answer !== "yes") throw new CliFailure(`${command}: not confirmed, nothing done`, { error: { code: "not_confirmed", message: "not confirmed" } });
}

export async function killSwitch(ctx: Ctx, action: "halt" | "resume" | "flatten", args: readonly string[]): Promise<number> {
  const parsed = parseFlags(action, args, { values: ["--reason"] });
  noPositional(action, parsed);
  const reason = parsed.flags.get("--reason");
  if (action === "halt") await confirm(ctx, action, `Halt trading on every pair at ${ctx.url}?`);
  if (action === "flatten") await confirm(ctx, action, `Halt trading and CLOSE EVERY OPEN POSITION at ${ctx.url}?`);
  const res = await api<KillSwitchAnswer>(ctx, "POST", "/api/admin/kill-switch", { action, ...(reason !== undefined ? { reason } : {}) });
  if (ctx.json) {
    ctx.io.out(JSON.stringify(res));
    return 0;
  }
  const s = res.status;
  ctx.io.out(`trading ${s.state}${s.since ? ` since ${isoMinute(s.since)} UTC` : ""}${s.reason ? ` (${s.reason})` : ""}`.slice(0, 80));
  for (const line of keyValues(Object.entries(res.pairs))) ctx.io.out(line);
  return 0;
}

/** `keys`: scripts/keys.ts with this CLI's URL, key and --json. */
export async function keys(ctx: Ctx, args: readonly string[]): Promise<number> {
  const [sub] = args;
  if (sub !== "list" && sub !== "create" && sub !== "revoke") {
    throw new UsageError(sub === undefined ? "keys needs list, create or revoke" : `unknown keys command '${sub}'`, "keys");
  }
  if (!ctx.apiKey) throw new UsageError("an admin key is needed: --api-key or FXRT_API_KEY", "keys");
  const argv = [...args, "--url", ctx.url, "--api-key", ctx.apiKey, ...(ctx.json ? ["--json"] : [])];
  let code: number;
  try {
    code = await keysCli(argv, {}, (line) => {
      // keys.ts prints its errors on stdout: keep them on stderr here (with --json the error body stays on stdout).
      if (/^(error \d+:|keys: )/.test(line)) {
        ctx.io.err(line.replace(/^keys: /, "fxrt keys: ").replace(/^error /, "fxrt keys: error "));
      } else ctx.io.out(line);
    });
  } catch (err) {
    const e = err as { name?: string; cause?: unknown };
    if (e.name === "TypeError" && e.cause !== undefined) throw unreachable(ctx.url, err);
    throw new CliFailure(`keys: ${(err as Error).message}`);
  }
  return code;
}
