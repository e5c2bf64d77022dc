/**
 * Shared pieces of the fxrt CLI: the I/O the commands write to (so tests
 * capture output without spawning), the HTTP helper that turns the runtime's
 * `{ error: { code, message, details } }` answers into exit code 1, flag
 * parsing with usage errors (exit code 2), and 80-column formatting.
 */

/** Where a command writes; lines are given without their trailing newline. */
export interface Io {
  out(line: string): void;
  err(line: string): void;
  /** A person at a terminal: confirmations may be asked. Default false. */
  isTTY?: boolean;
  /** Ask a question on the terminal and resolve with the answer (default: readline on stdin). */
  ask?(question: string): Promise<string>;
  /** Raw stderr writes, for a progress bar that redraws its line; without it progress is a line per 10%. */
  errWrite?(chunk: string): void;
  /** Stops `watch` (the entry point also stops it on Ctrl-C). */
  signal?: AbortSignal;
}

export type Env = Record<string, string | undefined>;

export interface Ctx {
  url: string;
  apiKey: string | undefined;
  json: boolean;
  yes: boolean;
  env: Env;
  io: Io;
}

/** Bad arguments: exit code 2. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly command?: string,
  ) {
    super(message);
  }
}

/** A failure to report as is: exit code 1. */
export class CliFailure extends Error {
  constructor(
    message: string,
    readonly body?: unknown,
  ) {
    super(message);
  }
}

/** A non-2xx answer from the runtime. */
export class HttpFailure extends CliFailure {
  constructor(
    readonly method: string,
    readonly path: string,
    readonly status: number,
    readonly code: string,
    readonly detail: string,
    readonly details?: unknown,
  ) {
    super(`${method} ${path}: ${status} ${code}: ${detail}`, { error: { status, code, message: detail, ...(details === undefined ? {} : { details }) } });
  }
}

const REQUEST_TIMEOUT_MS = 30_000;

/** Call the runtime; non-2xx answers throw HttpFailure, an unreachable runtime CliFailure. */
export async function api<T>(ctx: Ctx, method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers["content-type"] = "application/json";
  if (ctx.apiKey) headers["x-api-key"] = ctx.apiKey;
  let res: Response;
  try {
    res = await fetch(`${ctx.url}${path}`, {
      method,
      headers,
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  } catch (err) {
    throw unreachable(ctx.url, err);
  }
  const text = await res.text();
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: reported below if the status is an error
  }
  if (!res.ok) {
    const e = (json as { error?: { code?: unknown; message?: unknown; details?: unknown } } | null)?.error;
    if (e && typeof e.code === "string") throw new HttpFailure(method, path, res.status, e.code, String(e.message ?? ""), e.details);
    throw new HttpFailure(method, path, res.status, "http_error", text.slice(0, 200) || res.statusText);
  }
  if (json === null && text) throw new CliFailure(`${method} ${path}: the answer is not JSON: ${text.slice(0, 100)}`);
  return json as T;
}

export function unreachable(url: string, err: unknown): CliFailure {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  const why = e.name === "TimeoutError" ? `no answer within ${REQUEST_TIMEOUT_MS / 1000} s` : (e.cause?.code ?? e.cause?.message ?? e.message ?? String(err));
  return new CliFailure(`cannot reach the runtime at ${url} (${why}); is it running (npm start)? Set --url or FXRT_URL`, {
    error: { code: "unreachable", message: `cannot reach ${url}: ${why}` },
  });
}

// ---------------------------------------------------------------- flags

export interface Parsed {
  flags: Map<string, string>;
  bools: Set<string>;
  positional: string[];
}

/** Parse a command's own flags; anything not declared is a usage error. */
export function parseFlags(command: string, args: readonly string[], spec: { values?: readonly string[]; bools?: readonly string[] }): Parsed {
  const values = new Set(spec.values ?? []);
  const boolNames = new Set(spec.bools ?? []);
  const flags = new Map<string, string>();
  const bools = new Set<string>();
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg.startsWith("--") && arg.length > 2) {
      const eq = arg.indexOf("=");
      const name = eq > 0 ? arg.slice(0, eq) : arg;
      if (values.has(name)) {
        const value = eq > 0 ? arg.slice(eq + 1) : args[++i];
        if (value === undefined) throw new UsageError(`${name} needs a value`, command);
        flags.set(name, value);
      } else if (boolNames.has(name) && eq < 0) bools.add(name);
      else throw new UsageError(`unknown option ${name}`, command);
    } else positional.push(arg);
  }
  return { flags, bools, positional };
}

export function noPositional(command: string, parsed: Parsed): void {
  const extra = parsed.positional[0];
  if (extra !== undefined) throw new UsageError(`unexpected argument '${extra}'`, command);
}

export function positiveInt(command: string, flag: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`${flag} must be a whole number > 0, got '${text}'`, command);
  return n;
}

// ---------------------------------------------------------------- formatting

export const WIDTH = 80;

/** A left-aligned first column, the others right-aligned, clipped to 80 columns. */
export function table(header: readonly string[], rows: readonly (readonly string[])[], leftColumns = 1): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i < leftColumns ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0)))
      .join("  ")
      .trimEnd()
      .slice(0, WIDTH);
  return [line(header), ...rows.map(line)];
}

/** `key  value` lines with the keys padded to one width. */
export function pairs(rows: readonly (readonly [string, string])[]): string[] {
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`.slice(0, WIDTH));
}

export const num = (n: number, digits = 2): string => n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });

export const isoMinute = (ms: number): string => new Date(ms).toISOString().slice(0, 19).replace("T", " ");

/** 4s, 12m, 3h, 5d: how long ago. */
export function age(ms: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7_200) return `${Math.round(s / 60)}m`;
  if (s < 172_800) return `${Math.round(s / 3_600)}h`;
  return `${Math.round(s / 86_400)}d`;
}
