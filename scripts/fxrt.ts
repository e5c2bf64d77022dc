/**
 * fxrt: one command line for a running FX actor runtime.
 *
 *   npm run cli -- <command> [options]      (or: npx tsx scripts/fxrt.ts ...)
 *
 * Commands: status, pairs, watch, limits, halt, resume, flatten, keys,
 * backup, import, backtest, strategy (`--help` for the list, `<command> --help` for one).
 * Global options anywhere on the line: --url (FXRT_URL), --api-key
 * (FXRT_API_KEY), --json, --yes, --help.
 * Exit codes: 0 ok, 1 failure (HTTP error, refused, unreachable), 2 usage.
 *
 * `fxrt(argv, env, io)` is the whole CLI as a function, so tests run it in
 * process and read what it printed.
 */
import { pathToFileURL } from "node:url";
import { FLATTEN_HELP, HALT_HELP, keys, KEYS_HELP, killSwitch, limits, LIMITS_HELP, RESUME_HELP } from "./fxrt/admin.ts";
import { CliFailure, HttpFailure, UsageError, type Ctx, type Env, type Io } from "./fxrt/common.ts";
import { BACKTEST_HELP, backtestCommand, IMPORT_HELP, importCommand } from "./fxrt/lake.ts";
import { PAIRS_HELP, pairsCommand, status, STATUS_HELP } from "./fxrt/status.ts";
import { watch, WATCH_HELP } from "./fxrt/watch.ts";
import { backup, BACKUP_HELP } from "./fxrt/backup.ts";
import { strategyCommand, STRATEGY_HELP } from "./fxrt/strategy.ts";

export type { Io } from "./fxrt/common.ts";

export const DEFAULT_URL = "http://127.0.0.1:8787";

export const HELP = `fxrt: command line for the FX actor runtime

usage: npx fxrt <command> [options]   (or: npm run cli -- <command> ...)

commands:
  status                    health, trading state, portfolio (or metrics)
  pairs                     served pairs: last bid/ask, spread, tick age
  watch <PAIR>              live ticks and candle closes in the terminal
  limits get|set K=V ...    portfolio limits (admin)
  halt [--reason R]         kill switch: stop opening positions (admin)
  resume                    trading ACTIVE again (admin)
  flatten                   halt and close every open position (admin)
  keys list|create|revoke   API keys (admin)
  backup status|list|now|restore
                            actor state backups in R2, restore (admin)
  import <FILE> --pair P    import a history file into the data lake
  backtest --pair P ...     backtest a strategy over the data lake
  strategy list|new NAME    list the strategies, or write a new one

global options (anywhere on the line):
  --url URL        runtime URL (env FXRT_URL, default ${DEFAULT_URL})
  --api-key KEY    API key (env FXRT_API_KEY); admin commands need admin
  --json           machine-readable output on stdout (errors too)
  --yes, -y        confirm halt / flatten without asking
  -h, --help       this help; \`fxrt <command> --help\` for one command

exit codes: 0 ok, 1 failure (HTTP error, refused, unreachable), 2 usage error`;

type Command = (ctx: Ctx, args: readonly string[]) => Promise<number>;

const COMMANDS: Record<string, { run: Command; help: string }> = {
  status: { run: status, help: STATUS_HELP },
  pairs: { run: pairsCommand, help: PAIRS_HELP },
  watch: { run: watch, help: WATCH_HELP },
  limits: { run: limits, help: LIMITS_HELP },
  halt: { run: (ctx, args) => killSwitch(ctx, "halt", args), help: HALT_HELP },
  resume: { run: (ctx, args) => killSwitch(ctx, "resume", args), help: RESUME_HELP },
  flatten: { run: (ctx, args) => killSwitch(ctx, "flatten", args), help: FLATTEN_HELP },
  keys: { run: keys, help: KEYS_HELP },
  backup: { run: backup, help: BACKUP_HELP },
  import: { run: importCommand, help: IMPORT_HELP },
  backtest: { run: backtestCommand, help: BACKTEST_HELP },
  strategy: { run: strategyCommand, help: STRATEGY_HELP },
};

interface Global {
  url: string | undefined;
  apiKey: string | undefined;
  json: boolean;
  yes: boolean;
  help: boolean;
  rest: string[];
}

/** Take the global options out of argv, wherever they are; the rest keeps its order. */
export function parseGlobal(argv: readonly string[]): Global {
  const g: Global = { url: undefined, apiKey: undefined, json: false, yes: false, help: false, rest: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "--") {
      g.rest.push(...argv.slice(i + 1));
      break;
    }
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1;
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    if (name === "--url" || name === "--api-key") {
      const value = eq > 0 ? arg.slice(eq + 1) : argv[++i];
      if (value === undefined || value === "") throw new UsageError(`${name} needs a value`);
      if (name === "--url") g.url = value;
      else g.apiKey = value;
    } else if (arg === "--json") g.json = true;
    else if (arg === "--yes" || arg === "-y") g.yes = true;
    else if (arg === "--help" || arg === "-h") g.help = true;
    else g.rest.push(arg);
  }
  return g;
}

function normaliseUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(/^[a-z]+:\/\//i.test(text) ? text : `http://${text}`);
  } catch {
    throw new UsageError(`--url: not a URL: '${text}'`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new UsageError(`--url must be http:// or https://, got '${text}'`);
  return url.href.replace(/\/+$/, "");
}

/** The CLI: returns the exit code (0 ok, 1 failure, 2 usage error). */
export async function fxrt(argv: readonly string[], env: Env, io: Io): Promise<number> {
  let json = argv.includes("--json");
  let commandName: string | undefined;
  try {
    const g = parseGlobal(argv);
    json = g.json;
    const [name, ...args] = g.rest;
    commandName = name;
    if (name === undefined || name === "help") {
      const topic = name === "help" ? args[0] : undefined;
      const cmd = topic === undefined ? undefined : COMMANDS[topic];
      if (topic !== undefined && !cmd) throw new UsageError(`unknown command '${topic}'`);
      io.out(cmd ? cmd.help : HELP);
      // `fxrt` alone is a usage error (scripts notice); `fxrt --help` is not.
      return g.help || name === "help" ? 0 : 2;
    }
    const command = COMMANDS[name];
    if (!command) throw new UsageError(`unknown command '${name}'`);
    if (g.help) {
      io.out(command.help);
      return 0;
    }
    const ctx: Ctx = {
      url: normaliseUrl(g.url ?? env.FXRT_URL ?? DEFAULT_URL),
      apiKey: g.apiKey ?? (env.FXRT_API_KEY || undefined),
      json: g.json,
      yes: g.yes,
      env,
      io,
    };
    return await command.run(ctx, args);
  } catch (err) {
    return report(err, io, json, commandName);
  }
}

function report(err: unknown, io: Io, json: boolean, commandName: string | undefined): number {
  if (err instanceof UsageError) {
    const cmd = err.command ?? (commandName !== undefined && COMMANDS[commandName] ? commandName : undefined);
    io.err(`fxrt${cmd ? ` ${cmd}` : ""}: ${err.message}`);
    io.err(`run 'fxrt ${cmd ? `${cmd} ` : ""}--help' for usage`);
    if (json) io.out(JSON.stringify({ error: { code: "usage", message: err.message } }));
    return 2;
  }
  if (err instanceof HttpFailure) {
    io.err(`fxrt: ${err.code}: ${err.detail} (HTTP ${err.status} on ${err.method} ${err.path})`);
    if (err.details !== undefined) io.err(`  details: ${JSON.stringify(err.details)}`.slice(0, 400));
    const hint = hintFor(err);
    if (hint) io.err(`  ${hint}`);
    if (json) io.out(JSON.stringify(err.body));
    return 1;
  }
  if (err instanceof CliFailure) {
    io.err(`fxrt: ${err.message}`);
    if (json) io.out(JSON.stringify(err.body ?? { error: { code: "failed", message: err.message } }));
    return 1;
  }
  const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
  io.err(`fxrt: unexpected failure: ${message}`);
  if (json) io.out(JSON.stringify({ error: { code: "internal", message: String((err as Error)?.message ?? err) } }));
  return 1;
}

function hintFor(err: HttpFailure): string | null {
  if (err.code === "unauthenticated" || err.code === "invalid_key") return "pass a valid key with --api-key or FXRT_API_KEY";
  if (err.status === 403) return "this needs a key with a higher role (fxrt keys create --role ...)";
  if (err.code === "rate_limited") return "too many requests: wait for the next minute";
  return null;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  // wrangler (loaded by import and backtest) prints notes with console.log: stdout stays for results.
  console.log = console.error;
  const code = await fxrt(process.argv.slice(2), process.env, {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
    isTTY: Boolean(process.stdin.isTTY && process.stderr.isTTY),
    ...(process.stderr.isTTY ? { errWrite: (chunk: string) => void process.stderr.write(chunk) } : {}),
  });
  process.exitCode = code;
}
