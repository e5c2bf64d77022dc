/**
 * Portfolio view: every pair at a glance (last bid/ask, spread, feed state,
 * position, P&L, last signal), the trading state, and for admin keys the kill
 * switch (halt / resume / flatten behind a confirmation), daily P&L and
 * drawdown against their limits, exposure per currency against its limit and
 * the active alerts. Live from each pair's room: quotes, signals, positions
 * and the room's connection state. Polled every 3 s: the coordinator's
 * figures (portfolio, trading state, per-pair state); every 15 s, and on
 * show, the last signal and open positions of each pair, which the rooms
 * then keep current.
 */
import type { WireSignal } from "../../schemas/signal.ts";
import type { WirePosition } from "../../schemas/trading-events.ts";
import type { WireTick } from "../../schemas/tick.ts";
import { PairRoom } from "../sdk/index.ts";
import type { Session } from "./app.ts";
import { $, bar, confirmAction, h, money, pipSize, precision, row, setError, signed, time } from "./ui.ts";

const FAST_MS = 3_000;
const SLOW_MS = 15_000;
const STALE_TICK_MS = 60_000;

interface Portfolio {
  accountCurrency: string;
  trading: { state: string; reason: string | null; since: number };
  limits: { maxNetExposurePerCurrency: number; maxGrossExposure: number; dailyLossLimit: number; maxDrawdown: number };
  exposure: { gross: number; perCurrency: Record<string, number>; perPair: Record<string, number> } | null;
  equity: number;
  marks: { peak: number; dayStart: number; dayEquity: number } | null;
  pairs: { pair: string; netUnits: number; openPositions: number; realised: number; unrealised: number }[];
  alerts: { alert: { id: string; rule: string; subject: string; message: string }; raisedAt: number }[];
}

interface Metrics {
  trading: string;
  /** The OANDA price stream (FEED=oanda), else null. */
  feed: { stream: { state: string; connects: number } | null; lastError: string | null } | null;
  pairs: {
    pair: string;
    tradingState: string;
    connections: number;
    broker: { kind: string; state: "idle" | "ok" | "failing"; lastError: string | null };
    positionCheck: { ok: boolean; brokerUnits: number; runtimeUnits: number } | null;
  }[];
}

interface PairSlow {
  lastSignal: WireSignal | null;
  open: WirePosition[];
}

export class PortfolioView {
  private timers: ReturnType<typeof setInterval>[] = [];
  private slow = new Map<string, PairSlow>();
  private ticks = new Map<string, WireTick | null>();
  private metrics: Metrics | null = null;
  private portfolio: Portfolio | null = null;
  private rooms = new Map<string, PairRoom>();
  private roomOpen = new Map<string, boolean>();
  private renderQueued = false;

  constructor(private readonly session: Session) {
    if (session.role === "admin") {
      for (const b of document.querySelectorAll<HTMLButtonElement>("#kill-switch [data-action]")) {
        b.addEventListener("click", () => void this.killSwitch(b.dataset.action as "halt" | "resume" | "flatten"));
      }
      $("kill-switch").hidden = false;
      $("admin-figures").hidden = false;
    }
  }

  show(): void {
    $("portfolio-view").hidden = false;
    if (this.timers.length) return;
    for (const pair of this.session.pairs) this.watch(pair);
    void this.fast();
    void this.slowPoll();
    this.timers.push(setInterval(() => void this.fast(), FAST_MS), setInterval(() => void this.slowPoll(), SLOW_MS));
  }

  hide(): void {
    $("portfolio-view").hidden = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    for (const room of this.rooms.values()) room.close();
    this.rooms.clear();
    this.roomOpen.clear();
  }

  /** The pair's room: its quote, signals and positions as they happen (no candles asked for). */
  private watch(pair: string): void {
    const room = new PairRoom({ url: location.origin, pair, timeframes: ["1m"], snapshotCandles: 0, apiKey: this.session.key });
    this.rooms.set(pair, room);
    const opened = (open: boolean) => {
      this.roomOpen.set(pair, open);
      this.queueRender();
    };
    room.socket.addEventListener("open", () => opened(true));
    room.socket.addEventListener("close", () => opened(false));
    room.on("snapshot", (m) => {
      if (m.tick) this.ticks.set(pair, m.tick);
      this.queueRender();
    });
    room.on("tick", (m) => {
      this.ticks.set(pair, { ts: m.ts, bid: m.bid, ask: m.ask });
      this.queueRender();
    });
    room.on("signal", (m) => {
      this.slowOf(pair).lastSignal = m.signal;
      this.queueRender();
    });
    room.on("position", (m) => {
      const slow = this.slowOf(pair);
      slow.open = [...slow.open.filter((p) => p.strategyId !== m.position.strategyId), ...(m.position.status === "OPEN" ? [m.position] : [])];
      this.queueRender();
    });
  }

  private slowOf(pair: string): PairSlow {
    let slow = this.slow.get(pair);
    if (!slow) this.slow.set(pair, (slow = { lastSignal: null, open: [] }));
    return slow;
  }

  /** At most one render per frame, however many rooms spoke. */
  private queueRender(): void {
    if (this.renderQueued) return;
    this.renderQueued = true;
    requestAnimationFrame(() => {
      this.renderQueued = false;
      this.render();
    });
  }

  private async fast(): Promise<void> {
    const api = this.session.api;
    try {
      const [metrics, portfolio] = await Promise.all([
        api.request<Metrics>("GET", "/api/metrics"),
        this.session.role === "admin" ? api.request<Portfolio>("GET", "/api/admin/portfolio") : Promise.resolve(null),
      ]);
      this.metrics = metrics;
      this.portfolio = portfolio;
      this.render();
      setError("portfolio", null);
    } catch (err) {
      setError("portfolio", err);
    }
  }

  private async slowPoll(): Promise<void> {
    const api = this.session.api;
    try {
      await Promise.all(
        this.session.pairs.map(async (pair) => {
          const [s, p] = await Promise.all([
            api.request<{ signals: WireSignal[] }>("GET", `/api/pairs/${pair}/signals?limit=1`),
            api.request<{ positions: WirePosition[] }>("GET", `/api/pairs/${pair}/positions?limit=20`),
          ]);
          this.slow.set(pair, { lastSignal: s.signals[0] ?? null, open: p.positions.filter((x) => x.status === "OPEN") });
        }),
      );
      this.render();
      setError("portfolio-pairs", null);
    } catch (err) {
      setError("portfolio-pairs", err);
    }
  }

  /** Exposed for the kill switch: refresh at once after an action. */
  refresh(): Promise<void> {
    return this.fast();
  }

  private render(): void {
    const state = this.portfolio?.trading.state ?? this.metrics?.trading ?? "-";
    const stateEl = $("trading-state");
    stateEl.textContent = state;
    stateEl.dataset.trading = state;
    const reason = this.portfolio?.trading.reason;
    $("trading-reason").textContent = reason ? `(${reason}, since ${time(this.portfolio!.trading.since)})` : "";
    this.renderBroker();
    const now = Date.now();
    $("pairs").replaceChildren(
      ...this.session.pairs.map((pair) => {
        const tick = this.ticks.get(pair) ?? null;
        const p = precision(pair);
        const slow = this.slow.get(pair);
        const book = this.portfolio?.pairs.find((x) => x.pair === pair);
        const units = book ? book.netUnits : (slow?.open.reduce((s, x) => s + (x.side === "buy" ? x.units : -x.units), 0) ?? 0);
        const pnl = book ? signed(book.realised + book.unrealised, this.portfolio!.accountCurrency) : slow ? signed(slow.open.reduce((s, x) => s + (x.unrealisedPnlAccount ?? 0), 0)) : "-";
        const feed =
          this.roomOpen.get(pair) !== true ? "reconnecting" : !tick ? "no ticks" : now - tick.ts > STALE_TICK_MS ? `stale ${Math.round((now - tick.ts) / 1000)} s` : "live";
        const m = this.metrics?.pairs.find((x) => x.pair === pair);
        const brokerNote = m?.broker.state === "failing" ? " / broker failing" : m?.positionCheck && !m.positionCheck.ok ? " / position mismatch" : "";
        const pairState = `${m?.tradingState ?? "-"}${brokerNote}`;
        const sig = slow?.lastSignal;
        const link = h("a", { href: `#/pair/${pair}` }, pair);
        return row(
          [
            link,
            tick ? tick.bid.toFixed(p) : "-",
            tick ? tick.ask.toFixed(p) : "-",
            tick ? ((tick.ask - tick.bid) / pipSize(pair)).toFixed(1) : "-",
            units === 0 ? "flat" : `${units > 0 ? "long" : "short"} ${Math.abs(units).toLocaleString("en-US")}`,
            pnl,
            sig ? `${sig.type} ${sig.strategyId} ${time(sig.time)}` : "-",
            `${feed} / ${pairState}`,
          ],
          { "data-pair": pair },
        );
      }),
    );
    const pf = this.portfolio;
    if (!pf || this.session.role !== "admin") return;
    const cur = pf.accountCurrency;
    const dailyPnl = pf.marks ? pf.equity - pf.marks.dayEquity / 100 : 0;
    const drawdown = pf.marks ? pf.marks.peak / 100 - pf.equity : 0;
    $("loss-limits").replaceChildren(
      ...bar("daily P&L", Math.max(0, -dailyPnl), pf.limits.dailyLossLimit, `${dailyPnl >= 0 ? "+" : ""}${money(dailyPnl)} / -${money(pf.limits.dailyLossLimit, cur)}`),
      ...bar("drawdown", drawdown, pf.limits.maxDrawdown, `${money(drawdown)} / ${money(pf.limits.maxDrawdown, cur)}`),
      ...bar("gross exposure", pf.exposure?.gross ?? 0, pf.limits.maxGrossExposure, `${money(pf.exposure?.gross ?? 0)} / ${money(pf.limits.maxGrossExposure, cur)}`),
    );
    const perCurrency = Object.entries(pf.exposure?.perCurrency ?? {}).filter(([, v]) => v !== 0);
    $("exposures").replaceChildren(
      ...(perCurrency.length === 0
        ? [h("span", {}, "no exposure")]
        : perCurrency.flatMap(([c, v]) => bar(c, Math.abs(v), pf.limits.maxNetExposurePerCurrency, `${money(v)} / ${money(pf.limits.maxNetExposurePerCurrency, cur)}`))),
    );
    $("alerts").replaceChildren(...(pf.alerts.length === 0 ? [h("li", {}, "no active alerts")] : pf.alerts.map((a) => h("li", { class: "warn" }, `${time(a.raisedAt)} ${a.alert.message}`))));
  }

  /** The broker and, with FEED=oanda, the price stream: "oanda ok, stream streaming" or what fails. */
  private renderBroker(): void {
    const pairs = this.metrics?.pairs ?? [];
    const el = $("broker-state");
    if (pairs.length === 0) return;
    const failing = pairs.filter((p) => p.broker.state === "failing");
    const stream = this.metrics?.feed?.stream;
    const parts = [`${pairs[0]!.broker.kind} ${failing.length > 0 ? `failing on ${failing.map((p) => p.pair).join(", ")}` : pairs.some((p) => p.broker.state === "ok") ? "ok" : "idle"}`];
    if (this.metrics?.feed) parts.push(`stream ${stream?.state ?? "stopped"}${stream ? ` (${stream.connects} connects)` : ""}`);
    el.textContent = parts.join(", ");
    el.dataset.state = failing.length > 0 || (this.metrics?.feed && stream?.state !== "streaming") ? "failing" : "ok";
    el.title = failing[0]?.broker.lastError ?? this.metrics?.feed?.lastError ?? "";
  }

  private async killSwitch(action: "halt" | "resume" | "flatten"): Promise<void> {
    const what = {
      halt: "Halt trading on every pair? No new orders; protective exits still run.",
      resume: "Resume trading (state ACTIVE) on every pair?",
      flatten: "Flatten: halt and close EVERY open position with market orders?",
    }[action];
    const reason = await confirmAction(what, action[0]!.toUpperCase() + action.slice(1), { reason: true });
    if (reason === null) return;
    try {
      await this.session.api.request("POST", "/api/admin/kill-switch", { action, ...(reason ? { reason } : { reason: `dashboard ${action}` }) });
      setError("kill-switch", null);
    } catch (err) {
      setError("kill-switch", err);
    }
    await this.refresh();
  }
}
