/**
 * Pair view: the pair's room drives a candlestick chart (mid prices, the
 * snapshot then live candle updates and closes) with the runtime's indicators
 * (indicator-panes.ts), last bid/ask/spread, signals as markers,
 * the open position's entry, stop, take profit and trailing stop as price
 * lines, the pair's risk figures and its recent orders and rejections.
 * A timeframe switch reconnects the room with that timeframe (its snapshot
 * comes first); partysocket reconnects by itself after a runtime restart and
 * the new snapshot replaces the chart.
 * With an admin key, the pair's strategies (GET /api/admin/pairs/:pair/strategies),
 * those suspended by a failed step marked, each with a Resume button (after a
 * confirmation); loaded when the view opens, after a resume, and when the
 * metrics poll sees the set of suspended strategies change.
 */
import {
  CandlestickSeries,
  createChart,
  createSeriesMarkers,
  LineStyle,
  type CandlestickData,
  type IChartApi,
  type IPriceLine,
  type ISeriesApi,
  type ISeriesMarkersPluginApi,
  type SeriesMarker,
  type Time,
  type UTCTimestamp,
} from "lightweight-charts";
import { PairRoom, type MessageOf } from "../sdk/index.ts";
import type { WireCandle } from "../../schemas/candle.ts";
import type { WireSignal } from "../../schemas/signal.ts";
import type { WireOrder, WirePosition } from "../../schemas/trading-events.ts";
import type { Timeframe } from "../domain/candle.ts";
import type { Session } from "./app.ts";
import { IndicatorPanes } from "./indicator-panes.ts";
import { $, bar, confirmAction, h, pipSize, precision, row, setError, signed, time } from "./ui.ts";

const TIMEFRAMES = ["1m", "5m", "15m", "1h"] as const satisfies readonly Timeframe[];
type ChartTimeframe = (typeof TIMEFRAMES)[number];
const PERIOD_S: Record<ChartTimeframe, number> = { "1m": 60, "5m": 300, "15m": 900, "1h": 3600 };
const SNAPSHOT_CANDLES = 300;
/** Indicators are redrawn on closes; until the slowest (MACD 26 + 9) has warmed up, on every update. */
const WARMUP_BARS = 35;
const MAX_MARKERS = 200;

interface PairRisk {
  limits: { maxPositionUnits: number; maxSpreadPips: number; maxOrdersPerMinute: number; stopLossRequired: string; stalePriceMs: number; weekendGuard: boolean };
}

interface PairMetrics {
  trading: string;
  pairs: { pair: string; connections: number; ordersLastMinute: number; rejectionsLastMinute: number; tradingState: string; suspendedStrategies?: { id: string }[] }[];
}

/** GET /api/admin/pairs/:pair/strategies (and the answers of PUT and resume). */
interface PairStrategies {
  pair: string;
  strategies: { id: string; kind: string; enabled: boolean; units: number; params: Record<string, unknown>; protection?: Record<string, unknown> }[];
  suspended: { id: string; code: string; message: string; atMs: number; timeframe: string; candleT: number }[];
}

const isoMinute = (ms: number) => new Date(ms).toISOString().slice(0, 16).replace("T", " ");
const isoSecond = (ms: number) => new Date(ms).toISOString().slice(0, 19).replace("T", " ");
/** A parameter's value in a k=v list: strings bare, the rest as JSON. */
const paramValue = (v: unknown) => (typeof v === "string" ? v : JSON.stringify(v));

const mid = (c: WireCandle): CandlestickData<UTCTimestamp> => ({
  time: (c.t / 1000) as UTCTimestamp,
  open: (c.bid.o + c.ask.o) / 2,
  high: (c.bid.h + c.ask.h) / 2,
  low: (c.bid.l + c.ask.l) / 2,
  close: (c.bid.c + c.ask.c) / 2,
});

export class PairView {
  readonly pairs: string[];
  current: string | null = null;
  private tf: ChartTimeframe = "1m";
  private room: PairRoom | null = null;
  private readonly chart: IChartApi;
  private readonly candles: ISeriesApi<"Candlestick">;
  private readonly indicators: IndicatorPanes;
  private readonly markers: ISeriesMarkersPluginApi<Time>;
  /** The candles drawn, as the room sent them (the indicators' input), and as chart bars. */
  private wire: WireCandle[] = [];
  private bars: CandlestickData<UTCTimestamp>[] = [];
  private lastN = 0;
  private signals: WireSignal[] = [];
  private positions = new Map<string, WirePosition>();
  private lines: IPriceLine[] = [];
  private connection = "idle";
  private spreadPips: number | null = null;
  private metricsTimer: ReturnType<typeof setInterval> | null = null;
  /** Bumped on every pair or timeframe change: answers for an older one are dropped. */
  private epoch = 0;
  /** The suspended strategy ids drawn ("" for none): a metrics poll that sees others reloads the list. */
  private suspendedShown: string | null = null;

  constructor(private readonly session: Session) {
    this.pairs = session.pairs;
    this.chart = createChart($("chart"), {
      autoSize: true,
      layout: { background: { color: "#171c24" }, textColor: "#d8dee9" },
      grid: { vertLines: { color: "#222833" }, horzLines: { color: "#222833" } },
      timeScale: { timeVisible: true, secondsVisible: false },
    });
    this.candles = this.chart.addSeries(CandlestickSeries, { upColor: "#26a69a", downColor: "#ef5350", borderVisible: false, wickUpColor: "#26a69a", wickDownColor: "#ef5350" });
    this.indicators = new IndicatorPanes(this.chart);
    this.markers = createSeriesMarkers(this.candles, []);
    for (const b of document.querySelectorAll<HTMLButtonElement>("#tfs [data-tf]")) {
      b.addEventListener("click", () => this.setTimeframe(b.dataset.tf as ChartTimeframe));
    }
    if (session.role === "admin") {
      $("pair-strategies").hidden = false;
      $("strategies").addEventListener("click", (e) => {
        const button = (e.target as HTMLElement).closest<HTMLButtonElement>("button[data-resume]");
        if (button) void this.resume(button.dataset.resume!);
      });
    }
    $<HTMLInputElement>("show-ma").addEventListener("change", (e) => this.indicators.showAverages((e.target as HTMLInputElement).checked));
    $<HTMLInputElement>("show-bb").addEventListener("change", (e) => this.indicators.showBollinger((e.target as HTMLInputElement).checked));
    Object.assign(window.__fxrt, {
      candleCount: () => this.bars.length,
      lastCandle: () => {
        const b = this.bars.at(-1);
        return b ? { t: b.time * 1000, close: b.close, n: this.lastN } : null;
      },
      timeframe: () => (this.current ? this.tf : null),
      indicators: () => {
        let lastClosed = this.wire.length - 1;
        while (lastClosed >= 0 && !this.wire[lastClosed]!.complete) lastClosed--;
        return { atLastClosed: lastClosed < 0 ? null : { t: this.wire[lastClosed]!.t, values: this.indicators.valuesAt(lastClosed, precision(this.current!)) }, points: this.indicators.counts() };
      },
      connection: () => this.connection,
    });
  }

  show(pair: string): void {
    $("pair-view").hidden = false;
    if (pair !== this.current) {
      this.current = pair;
      const p = precision(pair);
      this.candles.applyOptions({ priceFormat: { type: "price", precision: p, minMove: 10 ** -p } });
      this.connect();
      void this.loadTrading();
      if (this.session.role === "admin") {
        $("strategies").replaceChildren();
        this.suspendedShown = null;
      }
    } else if (!this.room) {
      this.connect();
    }
    this.metricsTimer ??= setInterval(() => void this.loadMetrics(), 5_000);
    void this.loadMetrics();
    void this.loadStrategies();
  }

  hide(): void {
    $("pair-view").hidden = true;
    this.room?.close();
    this.room = null;
    this.setConnection("idle");
    if (this.metricsTimer) clearInterval(this.metricsTimer);
    this.metricsTimer = null;
  }

  private setTimeframe(tf: ChartTimeframe): void {
    if (tf === this.tf) return;
    this.tf = tf;
    this.connect();
    this.drawMarkers();
  }

  private connect(): void {
    const pair = this.current;
    if (!pair) return;
    const epoch = ++this.epoch;
    this.room?.close();
    for (const b of document.querySelectorAll<HTMLButtonElement>("#tfs [data-tf]")) b.setAttribute("aria-pressed", String(b.dataset.tf === this.tf));
    this.wire = [];
    this.bars = [];
    this.candles.setData([]);
    this.indicators.clear();
    const room = new PairRoom({ url: location.origin, pair, timeframes: [this.tf], snapshotCandles: SNAPSHOT_CANDLES, apiKey: this.session.key });
    this.room = room;
    const live = () => epoch === this.epoch;
    this.setConnection("connecting");
    room.socket.addEventListener("open", () => live() && this.setConnection("open"));
    room.socket.addEventListener("close", () => live() && this.setConnection("connecting"));
    room.on("snapshot", (m) => live() && this.onSnapshot(m));
    room.on("tick", (m) => {
      if (!live()) return;
      this.onQuote(m.bid, m.ask);
      const open = m.candles.find((c) => c.tf === this.tf);
      if (open) this.onCandle(open.candle);
    });
    room.on("candle", (m) => live() && m.tf === this.tf && this.onCandle(m.candle));
    room.on("signal", (m) => {
      if (!live()) return;
      this.signals.push(m.signal);
      this.drawMarkers();
      this.drawSignals();
    });
    room.on("position", (m) => live() && this.onPosition(m.position));
    room.on("order", (m) => live() && this.prependOrder(m.order));
    room.on("risk", (m) => live() && this.prependRejection(m.event));
    room.on("error", (m) => live() && setError("room", new Error(`room: ${m.code}: ${m.message}`)));
    room.onInvalid(() => live() && setError("room", new Error("room: a frame did not match the protocol (is the page older than the runtime? reload)")));
  }

  private setConnection(state: string): void {
    this.connection = state;
    const el = $("conn");
    el.dataset.state = state;
    el.hidden = state === "idle";
    el.textContent = state === "open" ? "live" : state === "connecting" ? "reconnecting" : "offline";
    if (state === "open") setError("room", null);
  }

  private onSnapshot(m: MessageOf<"snapshot">): void {
    const snap = m.timeframes.find((t) => t.tf === this.tf);
    if (m.tick) this.onQuote(m.tick.bid, m.tick.ask);
    if (!snap) return;
    this.wire = [...snap.candles];
    this.bars = snap.candles.map(mid);
    this.lastN = snap.candles.at(-1)?.n ?? 0;
    this.candles.setData(this.bars);
    this.drawIndicators();
    this.drawMarkers();
    if (this.bars.length > 0 && window.__fxrt.firstCandlesMs === null) window.__fxrt.firstCandlesMs = performance.now();
  }

  private onCandle(c: WireCandle): void {
    const bar = mid(c);
    const last = this.bars.at(-1);
    if (last && bar.time < last.time) return; // older than what is drawn (a late frame)
    if (last && bar.time === last.time) {
      this.bars[this.bars.length - 1] = bar;
      this.wire[this.wire.length - 1] = c;
    } else {
      this.bars.push(bar);
      this.wire.push(c);
    }
    if (this.bars.length > SNAPSHOT_CANDLES * 4) {
      this.bars.splice(0, this.bars.length - SNAPSHOT_CANDLES * 4);
      this.wire.splice(0, this.wire.length - SNAPSHOT_CANDLES * 4);
    }
    this.lastN = c.n;
    this.candles.update(bar);
    if (c.complete || this.bars.length <= WARMUP_BARS) this.drawIndicators();
    if (window.__fxrt.firstCandlesMs === null) window.__fxrt.firstCandlesMs = performance.now();
  }

  private onQuote(bid: number, ask: number): void {
    const pair = this.current!;
    const p = precision(pair);
    $("bid").textContent = bid.toFixed(p);
    $("ask").textContent = ask.toFixed(p);
    this.spreadPips = (ask - bid) / pipSize(pair);
    $("spread").textContent = this.spreadPips.toFixed(1);
  }

  private drawIndicators(): void {
    this.indicators.draw(this.wire, precision(this.current!));
  }

  private drawMarkers(): void {
    const period = PERIOD_S[this.tf];
    const markers: SeriesMarker<Time>[] = this.signals.slice(-MAX_MARKERS).map((s) => {
      const t = (Math.floor(s.candleT / 1000 / period) * period) as UTCTimestamp;
      return s.type === "buy"
        ? { time: t, position: "belowBar", shape: "arrowUp", color: "#26a69a", text: `buy ${s.strategyId}` }
        : s.type === "sell"
          ? { time: t, position: "aboveBar", shape: "arrowDown", color: "#ef5350", text: `sell ${s.strategyId}` }
          : { time: t, position: "aboveBar", shape: "circle", color: "#8a94a3", text: `close ${s.strategyId}` };
    });
    markers.sort((a, b) => (a.time as number) - (b.time as number));
    this.markers.setMarkers(markers);
  }

  private drawSignals(): void {
    $("signals").replaceChildren(
      ...this.signals
        .slice(-20)
        .reverse()
        .map((s) => h("li", {}, `${time(s.time)} ${s.type.toUpperCase()} ${s.strategyId} ${s.timeframe} (${Math.round(s.confidence * 100)}%) ${s.reason}`)),
    );
    if (this.signals.length === 0) $("signals").replaceChildren(h("li", {}, "no signals yet"));
  }

  private onPosition(p: WirePosition): void {
    if (p.status === "OPEN") this.positions.set(p.strategyId, p);
    else this.positions.delete(p.strategyId);
    this.drawPosition();
  }

  private drawPosition(): void {
    for (const l of this.lines) this.candles.removePriceLine(l);
    this.lines = [];
    const open = [...this.positions.values()];
    const el = $("position");
    if (open.length === 0) {
      el.replaceChildren("no open position");
      return;
    }
    const p = precision(this.current!);
    const line = (price: number | undefined, title: string, color: string, style: LineStyle) => {
      if (price !== undefined) this.lines.push(this.candles.createPriceLine({ price, title, color, lineWidth: 1, lineStyle: style, axisLabelVisible: true }));
    };
    el.replaceChildren(
      ...open.map((pos) => {
        line(pos.entryPrice, `entry ${pos.strategyId}`, "#d8dee9", LineStyle.Solid);
        line(pos.stopLoss, "stop", "#ef5350", LineStyle.Dashed);
        line(pos.takeProfit, "take profit", "#26a69a", LineStyle.Dashed);
        line(pos.trailingStopPrice, "trailing stop", "#f0b429", LineStyle.Dotted);
        // Until it has moved the stop: where break-even arms, and the stop level it will set.
        if (pos.breakEvenStatus === "PENDING") line(pos.breakEvenArmPrice, "break-even arms", "#8a94a3", LineStyle.Dotted);
        if (pos.breakEvenStatus !== "MOVED") line(pos.breakEvenPrice, "break-even", "#c792ea", LineStyle.Dashed);
        const fmt = (n: number | undefined) => (n === undefined ? "-" : n.toFixed(p));
        return h(
          "div",
          { class: "position" },
          h("div", {}, h("b", { class: pos.side === "buy" ? "up" : "down" }, `${pos.side === "buy" ? "LONG" : "SHORT"} ${pos.units.toLocaleString("en-US")}`), ` ${pos.strategyId}`),
          h("div", {}, `entry ${fmt(pos.entryPrice)} stop ${fmt(pos.stopLoss)} tp ${fmt(pos.takeProfit)}`),
          h("div", {}, `trailing ${fmt(pos.trailingStopPrice)}`),
          h(
            "div",
            {},
            pos.breakEvenStatus === undefined
              ? "break-even -"
              : `break-even ${pos.breakEvenStatus}: ${pos.breakEvenStatus === "PENDING" ? `arms at ${fmt(pos.breakEvenArmPrice)}, ` : ""}stop to ${fmt(pos.breakEvenPrice)}`,
          ),
          h("div", {}, "P&L ", signed(pos.unrealisedPnlAccount, pos.accountCurrency), " open, ", signed(pos.realisedPnlAccount, pos.accountCurrency), " realised"),
        );
      }),
    );
  }

  private prependOrder(o: WireOrder): void {
    const detail = o.rejectReason ?? (o.advice ? `advisor ${o.advice.action}` : o.reduceOnly ? "reduce-only" : "");
    const tr = row([time(o.createdAt), o.strategyId, o.side, o.units.toLocaleString("en-US"), o.type, o.status, detail], { class: o.status === "rejected" ? "down" : "", "data-order": o.clientOrderId });
    // An order changes state (pending -> filled): its row is replaced in place.
    const existing = [...$("orders").children].find((r) => (r as HTMLElement).dataset.order === o.clientOrderId);
    if (existing) existing.replaceWith(tr);
    else this.prepend(tr);
  }

  private prependRejection(ev: MessageOf<"risk">["event"]): void {
    const { type, ...rest } = ev.rejection;
    this.prepend(row([time(ev.time), ev.strategyId, "", "", "", "refused", `${type} ${JSON.stringify(rest)}`], { class: "down" }));
  }

  private prepend(tr: HTMLTableRowElement): void {
    const body = $("orders");
    body.prepend(tr);
    while (body.children.length > 30) body.lastElementChild?.remove();
  }

  /** Signals, open positions and orders so far (the room sends only what happens from now on). */
  private async loadTrading(): Promise<void> {
    const pair = this.current!;
    const epoch = this.epoch;
    this.signals = [];
    this.positions.clear();
    $("orders").replaceChildren();
    try {
      const api = this.session.api;
      const [signals, positions, orders, rejections] = await Promise.all([
        api.request<{ signals: WireSignal[] }>("GET", `/api/pairs/${pair}/signals?limit=${MAX_MARKERS}`),
        api.request<{ positions: WirePosition[] }>("GET", `/api/pairs/${pair}/positions?limit=20`),
        api.request<{ orders: WireOrder[] }>("GET", `/api/pairs/${pair}/orders?limit=30`),
        api.request<{ rejections: MessageOf<"risk">["event"][] }>("GET", `/api/pairs/${pair}/rejections?limit=30`),
      ]);
      if (epoch !== this.epoch && pair !== this.current) return;
      this.signals = [...signals.signals].sort((a, b) => a.time - b.time);
      for (const p of [...positions.positions].reverse()) this.onPosition(p);
      // Orders and refusals in one table, oldest prepended first so the newest ends on top.
      const rows = [
        ...orders.orders.map((o) => ({ time: o.createdAt, add: () => this.prependOrder(o) })),
        ...rejections.rejections.map((r) => ({ time: r.time, add: () => this.prependRejection(r) })),
      ].sort((a, b) => a.time - b.time);
      for (const r of rows.slice(-30)) r.add();
      this.drawMarkers();
      this.drawSignals();
      this.drawPosition();
      setError("trading", null);
    } catch (err) {
      setError("trading", err);
    }
  }

  /** Trading state, and the pair's use of each per-pair risk limit. */
  private async loadMetrics(): Promise<void> {
    const pair = this.current;
    if (!pair) return;
    try {
      const [m, risk] = await Promise.all([
        this.session.api.request<PairMetrics>("GET", "/api/metrics"),
        this.session.api.request<PairRisk>("GET", `/api/pairs/${pair}/risk`),
      ]);
      if (pair !== this.current) return;
      const p = m.pairs.find((x) => x.pair === pair);
      const suspended = (p?.suspendedStrategies ?? []).map((x) => x.id).sort().join(",");
      if (this.session.role === "admin" && p?.suspendedStrategies && this.suspendedShown !== null && suspended !== this.suspendedShown) void this.loadStrategies();
      const l = risk.limits;
      const netUnits = [...this.positions.values()].reduce((sum, pos) => sum + (pos.side === "buy" ? pos.units : -pos.units), 0);
      const orders = p?.ordersLastMinute ?? 0;
      const spread = this.spreadPips ?? 0;
      $("risk-state").replaceChildren(
        h("div", {}, "portfolio ", h("b", { "data-trading": m.trading }, m.trading), p ? ` / pair ${p.tradingState}` : ""),
        h(
          "div",
          { class: "bars compact", id: "risk-limits" },
          ...bar("position", Math.abs(netUnits), l.maxPositionUnits, `${Math.abs(netUnits).toLocaleString("en-US")} / ${l.maxPositionUnits.toLocaleString("en-US")}`),
          ...bar("orders/min", orders, l.maxOrdersPerMinute, `${orders} / ${l.maxOrdersPerMinute}`),
          ...bar("spread", spread, l.maxSpreadPips, `${spread.toFixed(1)} / ${l.maxSpreadPips} pips`),
        ),
        h("div", {}, `refused last minute ${p?.rejectionsLastMinute ?? 0}; stop loss required: ${l.stopLossRequired}; stale after ${l.stalePriceMs / 1000} s; weekend guard ${l.weekendGuard ? "on" : "off"}`),
      );
      setError("metrics", null);
    } catch (err) {
      setError("metrics", err);
    }
  }

  /** The pair's strategies (admin keys only; nothing at all for the others). */
  private async loadStrategies(): Promise<void> {
    const pair = this.current;
    if (!pair || this.session.role !== "admin") return;
    try {
      const list = await this.session.api.request<PairStrategies>("GET", `/api/admin/pairs/${pair}/strategies`);
      if (pair === this.current) this.drawStrategies(list);
      setError("pair-strategies", null);
    } catch (err) {
      setError("pair-strategies", err);
    }
  }

  private drawStrategies(list: PairStrategies): void {
    const suspended = new Map(list.suspended.map((s) => [s.id, s]));
    this.suspendedShown = [...suspended.keys()].sort().join(",");
    const rows = list.strategies.map((s) => {
      const susp = suspended.get(s.id);
      const params = Object.entries(s.params).map(([k, v]) => `${k}=${paramValue(v)}`).join(" ");
      const protection = s.protection && Object.keys(s.protection).length > 0 ? JSON.stringify(s.protection) : "";
      const state = susp
        ? h(
            "span",
            { class: "down" },
            h("b", {}, "SUSPENDED"),
            ` ${susp.code}: ${susp.message}`,
            h("br"),
            h("span", { class: "legend" }, `at ${isoSecond(susp.atMs)} UTC (${susp.timeframe} candle ${isoMinute(susp.candleT)})`),
          )
        : s.enabled
          ? "active"
          : "disabled";
      const action = susp ? h("button", { type: "button", "data-resume": s.id, "aria-label": `Resume strategy ${s.id}` }, "Resume") : "";
      const tr = row([s.id, s.kind, s.enabled ? "yes" : "no", s.units.toLocaleString("en-US"), h("span", { class: "params-list", ...(protection ? { title: `protection ${protection}` } : {}) }, params || "-"), state, action], {
        "data-strategy": s.id,
        class: susp ? "suspended" : s.enabled ? "" : "disabled",
      });
      return tr;
    });
    $("strategies").replaceChildren(...(rows.length > 0 ? rows : [h("tr", {}, h("td", { colspan: "7", class: "legend" }, "no strategies configured"))]));
  }

  /** Resume a suspended strategy after a confirmation; the answer is the list as it now is. */
  private async resume(id: string): Promise<void> {
    const pair = this.current;
    if (!pair) return;
    const ok = await confirmAction(`Resume strategy "${id}" on ${pair}? It steps again from the next candle, its state as the failed step found it.`, "Resume");
    if (ok === null) return;
    try {
      const answer = await this.session.api.request<PairStrategies & { resumed: boolean }>("POST", `/api/admin/pairs/${pair}/strategies/${encodeURIComponent(id)}/resume`);
      if (pair === this.current) this.drawStrategies(answer);
      setError("pair-strategies", null);
    } catch (err) {
      setError("pair-strategies", err);
      await this.loadStrategies();
    }
  }
}
