/** `status` and `pairs`: read-only views of a running runtime. */
import { findInstrument } from "../../src/domain/instruments.ts";
import { age, api, HttpFailure, isoMinute, noPositional, num, pairs as keyValues, parseFlags, table, type Ctx } from "./common.ts";

export const STATUS_HELP = `usage: fxrt status [--json]

Runtime health (public), the trading state and the portfolio: equity, open
positions, exposure, limits and alerts (GET /api/admin/portfolio, admin key).
With a viewer or trader key it shows the trading state and per-pair metrics
(GET /api/metrics) instead; with no key, health only.`;

export const PAIRS_HELP = `usage: fxrt pairs [--json]

Every served pair with its last bid/ask, spread in pips and the age of the
last tick (GET /api/pairs).`;

interface Health {
  status: string;
  version: string;
  time: number;
  pairs: number;
  feed: string;
}

interface Portfolio {
  accountCurrency: string;
  trading: { state: string; reason: string; since: number };
  limits: Record<string, number>;
  exposure: { gross: number; perCurrency: Record<string, number>; perPair: Record<string, number> } | null;
  openPositions: number;
  equity: number;
  pairs: { pair: string; netUnits: number; openPositions: number; mid: number; realised: number; unrealised: number }[];
  reservations: number;
  alerts?: { alert: { id: string; text?: string; message?: string }; raisedAt: number; delivered: boolean }[];
}

interface Metrics {
  trading: string;
  pairs: { pair: string; lastTickTs?: number | null; connections: number; ordersLastMinute: number; rejectionsLastMinute: number; tradingState: string }[];
}

export async function status(ctx: Ctx, args: readonly string[]): Promise<number> {
  noPositional("status", parseFlags("status", args, {}));
  const health = await api<Health>(ctx, "GET", "/api/health");
  let portfolio: Portfolio | null = null;
  let metrics: Metrics | null = null;
  let access: "admin" | "viewer" | "none" = "none";
  let note = "";
  try {
    portfolio = await api<Portfolio>(ctx, "GET", "/api/admin/portfolio");
    access = "admin";
  } catch (err) {
    // A valid key below admin (403), or no key at all (401 unauthenticated): show what it may see.
    // A wrong key (401 invalid_key) is a failure.
    if (!(err instanceof HttpFailure) || !(err.status === 403 || err.code === "unauthenticated")) throw err;
    if (err.status === 403) {
      metrics = await api<Metrics>(ctx, "GET", "/api/metrics");
      access = "viewer";
      note = "the portfolio needs an admin key; showing metrics";
    } else note = "no API key: health only (--api-key or FXRT_API_KEY)";
  }
  if (ctx.json) {
    ctx.io.out(JSON.stringify({ url: ctx.url, access, health, ...(portfolio ? { portfolio } : {}), ...(metrics ? { metrics } : {}) }));
    return 0;
  }
  const out = (line: string) => ctx.io.out(line);
  const rows: [string, string][] = [
    ["runtime", `${ctx.url}  ${health.status}, version ${health.version}`],
    ["server time", `${isoMinute(health.time)} UTC, feed ${health.feed}, ${health.pairs} pairs`],
  ];
  if (portfolio) {
    const t = portfolio.trading;
    rows.push(["trading", `${t.state}${t.since ? ` since ${isoMinute(t.since)} UTC` : ""}${t.reason ? ` (${t.reason})` : ""}`]);
    rows.push(["equity", `${num(portfolio.equity)} ${portfolio.accountCurrency}`]);
    rows.push(["open positions", `${portfolio.openPositions} (${portfolio.reservations} reserved)`]);
    if (portfolio.exposure) {
      const per = Object.entries(portfolio.exposure.perCurrency)
        .filter(([, v]) => v !== 0)
        .map(([c, v]) => `${c} ${num(v, 0)}`)
        .join(", ");
      rows.push(["gross exposure", `${num(portfolio.exposure.gross, 0)} ${portfolio.accountCurrency}${per ? `; net ${per}` : ""}`]);
    } else rows.push(["gross exposure", "unknown (no conversion rate yet)"]);
    rows.push(["alerts", String(portfolio.alerts?.length ?? 0)]);
    for (const line of keyValues(rows)) out(line);
    out("");
    out("limits:");
    for (const line of keyValues(Object.entries(portfolio.limits).map(([k, v]) => [`  ${k}`, num(v, 0)]))) out(line);
    const active = portfolio.pairs.filter((p) => p.netUnits !== 0 || p.openPositions > 0 || p.realised !== 0 || p.unrealised !== 0);
    if (active.length > 0) {
      out("");
      const tbl = table(
        ["pair", "net units", "positions", "mid", "realised", "unrealised"],
        active.map((p) => [p.pair, num(p.netUnits, 0), String(p.openPositions), String(p.mid), num(p.realised), num(p.unrealised)]),
      );
      for (const line of tbl) out(line);
    }
    for (const a of portfolio.alerts ?? []) out(`alert: ${a.alert.id} ${a.alert.text ?? a.alert.message ?? ""}`.slice(0, 80));
  } else if (metrics) {
    rows.push(["trading", metrics.trading]);
    for (const line of keyValues(rows)) out(line);
    out("");
    const tbl = table(
      ["pair", "state", "last tick", "conns", "orders/min", "rejects/min"],
      metrics.pairs.map((p) => [p.pair, p.tradingState, p.lastTickTs ? age(p.lastTickTs) : "-", String(p.connections), String(p.ordersLastMinute), String(p.rejectionsLastMinute)]),
    );
    for (const line of tbl) out(line);
  } else for (const line of keyValues(rows)) out(line);
  if (note) ctx.io.err(`note: ${note}`);
  return 0;
}

interface PairInfo {
  pair: string;
  pipLocation: number;
  displayPrecision: number;
  lastTick: { ts: number; bid: number; ask: number } | null;
}

export async function pairsCommand(ctx: Ctx, args: readonly string[]): Promise<number> {
  noPositional("pairs", parseFlags("pairs", args, {}));
  const { pairs } = await api<{ pairs: PairInfo[] }>(ctx, "GET", "/api/pairs");
  if (ctx.json) {
    ctx.io.out(JSON.stringify({ pairs }));
    return 0;
  }
  const now = Date.now();
  const rows = pairs.map((p) => {
    const t = p.lastTick;
    const digits = p.displayPrecision ?? findInstrument(p.pair)?.displayPrecision ?? 5;
    if (!t) return [p.pair, "-", "-", "-", "no ticks"];
    const spread = (t.ask - t.bid) / 10 ** p.pipLocation;
    return [p.pair, t.bid.toFixed(digits), t.ask.toFixed(digits), spread.toFixed(1), `${age(t.ts, now)} ago`];
  });
  for (const line of table(["pair", "bid", "ask", "spread pips", "last tick"], rows)) ctx.io.out(line);
  return 0;
}
