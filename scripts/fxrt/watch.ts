/** `watch <PAIR>`: live ticks and candle closes from the pair's room, one line each. */
import { isTimeframe, type Timeframe } from "../../src/domain/candle.ts";
import { findInstrument } from "../../src/domain/instruments.ts";
import { connectPair, type MessageOf } from "../../src/sdk/node.ts";
import { api, CliFailure, parseFlags, positiveInt, UsageError, type Ctx } from "./common.ts";

export const WATCH_HELP = `usage: fxrt watch <PAIR> [--tf 1m[,5m,...]] [--count N] [--seconds S]
                  [--no-ticks] [--json]

Live frames from the pair's room (WebSocket): one line per tick and per candle
close of the followed timeframes (default 1m), times in UTC. Stops after N
lines, after S seconds, or on Ctrl-C; reconnects by itself after a drop.
  --tf LIST      timeframes to follow: 1m 5m 15m 1h 4h 1D (comma separated)
  --count N      stop after N lines
  --seconds S    stop after S seconds
  --no-ticks     candle closes only
  --json         the room's frames as JSON lines (tick and candle closes)
With an API key, trading events (signals, orders, fills, positions, risk
refusals) are shown too.`;

const TRADING = ["signal", "order", "fill", "position", "risk"] as const;

export async function watch(ctx: Ctx, args: readonly string[]): Promise<number> {
  const { flags, bools, positional } = parseFlags("watch", args, { values: ["--tf", "--count", "--seconds"], bools: ["--no-ticks"] });
  const [pairArg, extra] = positional;
  if (pairArg === undefined) throw new UsageError("watch needs a pair, e.g. fxrt watch EUR_USD", "watch");
  if (extra !== undefined) throw new UsageError(`unexpected argument '${extra}'`, "watch");
  const pair = pairArg.toUpperCase();
  const timeframes = (flags.get("--tf") ?? "1m").split(",").map((t) => t.trim());
  const bad = timeframes.filter((t) => !isTimeframe(t));
  if (bad.length > 0 || timeframes.length === 0) throw new UsageError(`--tf: unknown timeframe ${bad.join(", ")}; use 1m 5m 15m 1h 4h 1D`, "watch");
  const count = flags.has("--count") ? positiveInt("watch", "--count", flags.get("--count") as string) : null;
  const secondsText = flags.get("--seconds");
  const seconds = secondsText === undefined ? null : Number(secondsText);
  if (seconds !== null && !(Number.isFinite(seconds) && seconds > 0)) throw new UsageError(`--seconds must be a number > 0, got '${secondsText}'`, "watch");
  const ticks = !bools.has("--no-ticks");

  // Over HTTP first: an unknown pair, a wrong key or a stopped runtime fail here with a clear
  // message, instead of a socket that retries forever.
  await api(ctx, "GET", `/api/pairs/${encodeURIComponent(pair)}`);
  const digits = findInstrument(pair)?.displayPrecision ?? 5;
  const pipLocation = findInstrument(pair)?.pipLocation ?? -4;

  const room = connectPair({ url: ctx.url, pair, timeframes: timeframes as Timeframe[], snapshotCandles: 0, ...(ctx.apiKey ? { apiKey: ctx.apiKey } : {}) });
  let lines = 0;
  let connects = 0;
  let finish: (code: number) => void = () => {};
  const done = new Promise<number>((resolve) => (finish = resolve));
  let failure: CliFailure | null = null;
  const emit = (line: string): void => {
    if (count !== null && lines >= count) return;
    ctx.io.out(line);
    lines++;
    if (count !== null && lines >= count) finish(0);
  };
  const p = (x: number) => x.toFixed(digits);

  room.on("snapshot", (m) => {
    connects++;
    const last = m.tick ? `, last ${p(m.tick.bid)}/${p(m.tick.ask)} at ${time(m.tick.ts, true)}` : ", no ticks yet";
    ctx.io.err(`${connects === 1 ? "watching" : "reconnected to"} ${pair} ${timeframes.join(",")}${last}${count !== null ? `; stops after ${count} lines` : ""}`);
  });
  room.on("tick", (m) => {
    if (!ticks) return;
    if (ctx.json) return emit(JSON.stringify(m));
    const spread = ((m.ask - m.bid) / 10 ** pipLocation).toFixed(1);
    emit(`${time(m.ts, true)} ${m.pair} tick  bid ${p(m.bid)}  ask ${p(m.ask)}  spread ${spread}${m.merged > 1 ? `  x${m.merged}` : ""}`);
  });
  room.on("candle", (m) => {
    if (ctx.json) return emit(JSON.stringify(m));
    emit(candleLine(m, p));
  });
  for (const type of TRADING) {
    room.on(type, (m) => emit(ctx.json ? JSON.stringify(m) : `${time(Date.now(), true)} ${pair} ${type} ${summarise(m)}`.slice(0, 80)));
  }
  room.on("error", (m) => {
    failure = new CliFailure(`watch ${pair}: the room refused: ${m.code}: ${m.message}`, { error: { code: m.code, message: m.message, details: m.details } });
    finish(1);
  });
  room.onInvalid((_raw, issues) => ctx.io.err(`watch: a frame failed validation: ${JSON.stringify(issues).slice(0, 200)}`));
  // One line per drop, not one per failed retry; none for our own close at the end.
  let open = false;
  let stopping = false;
  room.socket.addEventListener("open", () => (open = true));
  room.socket.addEventListener("close", () => {
    if (open && !stopping) ctx.io.err("watch: connection lost, reconnecting...");
    open = false;
  });

  const onSigint = () => finish(0);
  process.on("SIGINT", onSigint);
  const onAbort = () => finish(0);
  ctx.io.signal?.addEventListener("abort", onAbort);
  const timer = seconds !== null ? setTimeout(() => finish(0), seconds * 1000) : null;
  try {
    const code = await done;
    if (failure) throw failure;
    return code;
  } finally {
    stopping = true;
    if (timer) clearTimeout(timer);
    process.off("SIGINT", onSigint);
    ctx.io.signal?.removeEventListener("abort", onAbort);
    room.close();
  }
}

/** MM-DD HH:MM:SS(.mmm) UTC. */
function time(ms: number, millis: boolean): string {
  const iso = new Date(ms).toISOString();
  return `${iso.slice(5, 10)} ${iso.slice(11, millis ? 23 : 16)}`;
}

function candleLine(m: MessageOf<"candle">, p: (x: number) => string): string {
  const b = m.candle.bid;
  return `${time(m.candle.t, false)} ${m.pair} ${m.tf.padEnd(3)} O ${p(b.o)} H ${p(b.h)} L ${p(b.l)} C ${p(b.c)} n ${m.candle.n}`.slice(0, 80);
}

function summarise(m: unknown): string {
  const o = m as Record<string, Record<string, unknown> | undefined>;
  const inner = o.signal ?? o.order ?? o.fill ?? o.position ?? o.event ?? {};
  const pick = ["side", "status", "units", "price", "strategyId", "reason", "rejectReason"].filter((k) => inner[k] !== undefined && inner[k] !== null);
  return pick.map((k) => `${k} ${typeof inner[k] === "object" ? JSON.stringify(inner[k]) : String(inner[k])}`).join("  ");
}
