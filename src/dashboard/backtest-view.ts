/**
 * Backtest view: runs a backtest over the data lake (POST /api/backtest/run,
 * a trader key), follows its progress (GET /api/backtest/:id), then draws the
 * equity curve, the drawdown and the metrics, and lists the trades
 * (GET /api/backtest/:id/result). The job id goes into the URL
 * (#/backtest/<id>), so a reload or a shared link shows the same run.
 * The strategies and their parameters come from GET /api/strategies: one
 * input per parameter (its type, bounds and default read from the
 * strategy's schema), and a refusal's details are listed by the form.
 */
import { AreaSeries, createChart, LineSeries, type IChartApi, type ISeriesApi, type UTCTimestamp } from "lightweight-charts";
import type { ParamInfo } from "../domain/strategy/catalog.ts";
import type { BacktestResult } from "../replay/result.ts";
import type { Session } from "./app.ts";
import { $, errorDetails, h, money, row, setError, signed } from "./ui.ts";

const POLL_MS = 250;
const TRADES_SHOWN = 500;
/** The strategy selected until the user picks another (the reference strategy of the backtests). */
const DEFAULT_KIND = "sma-cross";

/** GET /api/strategies. */
interface StrategyInfo {
  name: string;
  description: string;
  params: ParamInfo[];
}

/** A parameter left to the strategy's default: not sent. */
const OMIT = Symbol("omit");

/** One parameter's input: the element to show and how to read its value. */
interface ParamField {
  info: ParamInfo;
  input: HTMLInputElement | HTMLSelectElement;
  read(): unknown;
}

/** "integer, 2 to 500, default 20": the input's tooltip. */
function paramTitle(p: ParamInfo): string {
  const bounds = p.min !== undefined && p.max !== undefined ? `${p.min} to ${p.max}` : p.min !== undefined ? `at least ${p.min}` : p.max !== undefined ? `at most ${p.max}` : "";
  const options = p.options ? `one of ${p.options.map((o) => String(o)).join(", ")}` : "";
  return [p.type, bounds, options, p.default !== undefined ? `default ${JSON.stringify(p.default)}` : "required"].filter(Boolean).join(", ");
}

/**
 * An input for a parameter as /api/strategies describes it: a select for a picklist, a number
 * input with bounds for integer and number, a checkbox for boolean, text otherwise (parsed as
 * JSON when it is JSON, for types the page does not know). "T | null" may be left empty: null.
 */
function paramField(p: ParamInfo): ParamField {
  const nullable = p.type.endsWith(" | null");
  const base = nullable ? p.type.slice(0, -" | null".length) : p.type;
  const attrs = { id: `bt-param-${p.name}`, name: p.name };
  if (p.options) {
    const options = p.options;
    const select = h("select", attrs) as HTMLSelectElement;
    select.append(...options.map((o, i) => new Option(String(o), String(i))));
    if (nullable) select.append(new Option("none", "null"));
    const at = p.default === null ? -1 : options.findIndex((o) => o === p.default);
    select.value = at >= 0 ? String(at) : nullable && p.default === null ? "null" : "0";
    return { info: p, input: select, read: () => (select.value === "null" ? null : options[Number(select.value)]) };
  }
  const input = h("input", attrs) as HTMLInputElement;
  if (base === "boolean") {
    input.type = "checkbox";
    input.checked = p.default === true;
    return { info: p, input, read: () => input.checked };
  }
  if (base === "integer" || base === "number") {
    input.type = "number";
    input.step = base === "integer" ? "1" : "any";
    if (p.min !== undefined) input.min = String(p.min);
    if (p.max !== undefined) input.max = String(p.max);
    input.value = typeof p.default === "number" ? String(p.default) : "";
    input.placeholder = nullable ? "none" : p.default !== undefined ? String(p.default) : "";
    if (p.default === undefined && !nullable) input.required = true;
    // Empty: null when the type allows it, else the default.
    return { info: p, input, read: () => (input.value.trim() === "" ? (nullable ? null : OMIT) : input.valueAsNumber) };
  }
  input.type = "text";
  if (base === "string") {
    input.value = typeof p.default === "string" ? p.default : "";
    return { info: p, input, read: () => (input.value === "" && nullable ? null : input.value) };
  }
  input.value = p.default === undefined ? "" : JSON.stringify(p.default);
  return {
    info: p,
    input,
    read: () => {
      const text = input.value.trim();
      if (text === "") return nullable ? null : OMIT;
      try {
        return JSON.parse(text) as unknown;
      } catch {
        return text;
      }
    },
  };
}

interface Job {
  id: string;
  status: "queued" | "running" | "done" | "failed";
  progress: { rowsRead: number; rowsTotal: number; fraction: number };
  error: { code: string; message: string } | null;
  links: { status: string; result: string };
}

export class BacktestView {
  private equityChart: IChartApi | null = null;
  private equity: ISeriesApi<"Line"> | null = null;
  private drawdown: ISeriesApi<"Area"> | null = null;
  private ddChart: IChartApi | null = null;
  private shownId: string | null = null;
  private polling = 0;
  private last: { status: string; equityPoints: number; trades: number; tradeCount: number } = { status: "none", equityPoints: 0, trades: 0, tradeCount: 0 };
  /** Loaded on the first show (not at start: the pair view's first paint does not wait for it). */
  private strategies: StrategyInfo[] | null = null;
  private loadingStrategies = false;
  private fields: ParamField[] = [];

  constructor(private readonly session: Session) {
    $<HTMLSelectElement>("bt-pair").replaceChildren(...session.pairs.map((p) => new Option(p, p)));
    $("bt-form").addEventListener("submit", (e) => {
      e.preventDefault();
      void this.run();
    });
    $<HTMLSelectElement>("bt-kind").addEventListener("change", () => this.drawParams());
    // An edited parameter is no longer marked as refused.
    $("bt-params").addEventListener("input", (e) => (e.target as HTMLElement).removeAttribute("aria-invalid"));
    Object.assign(window.__fxrt, { backtest: () => ({ ...this.last }) });
  }

  show(id: string | undefined): void {
    $("backtest-view").hidden = false;
    this.ensureCharts();
    if (!this.strategies) void this.loadStrategies();
    if (id && id !== this.shownId) void this.follow(id);
  }

  hide(): void {
    $("backtest-view").hidden = true;
  }

  private ensureCharts(): void {
    if (this.equityChart) return;
    const options = {
      autoSize: true,
      layout: { background: { color: "#171c24" }, textColor: "#d8dee9" },
      grid: { vertLines: { color: "#222833" }, horzLines: { color: "#222833" } },
      // Up to 10,000 equity points must fit the width: fitContent stops at minBarSpacing.
      timeScale: { timeVisible: true, minBarSpacing: 0.01 },
    };
    this.equityChart = createChart($("bt-equity"), options);
    this.equity = this.equityChart.addSeries(LineSeries, { color: "#26a69a", lineWidth: 2, priceFormat: { type: "price", precision: 2, minMove: 0.01 } });
    const ddChart = createChart($("bt-drawdown"), options);
    this.ddChart = ddChart;
    this.drawdown = ddChart.addSeries(AreaSeries, { lineColor: "#ef5350", topColor: "rgba(239,83,80,0.05)", bottomColor: "rgba(239,83,80,0.4)", lineWidth: 1, invertFilledArea: true, priceFormat: { type: "price", precision: 2, minMove: 0.01 } });
    // Scroll and zoom the two charts together.
    this.equityChart.timeScale().subscribeVisibleLogicalRangeChange((r) => r && ddChart.timeScale().setVisibleLogicalRange(r));
  }

  private async loadStrategies(): Promise<void> {
    if (this.loadingStrategies) return;
    this.loadingStrategies = true;
    try {
      const { strategies } = await this.session.api.request<{ strategies: StrategyInfo[] }>("GET", "/api/strategies");
      this.strategies = strategies;
      const select = $<HTMLSelectElement>("bt-kind");
      select.replaceChildren(...strategies.map((s) => new Option(s.name, s.name)));
      if (strategies.some((s) => s.name === DEFAULT_KIND)) select.value = DEFAULT_KIND;
      this.drawParams();
      setError("strategy-list", null);
    } catch (err) {
      // Tried again on the next show.
      $("bt-desc").textContent = "the strategies could not be loaded";
      setError("strategy-list", err);
    } finally {
      this.loadingStrategies = false;
    }
  }

  /** The selected strategy's description and one labelled input per parameter, set to its default. */
  private drawParams(): void {
    const kind = $<HTMLSelectElement>("bt-kind").value;
    const info = this.strategies?.find((s) => s.name === kind);
    this.showIssues([]);
    $("bt-desc").textContent = info ? info.description : "";
    this.fields = (info?.params ?? []).map(paramField);
    $("bt-params").replaceChildren(
      ...(info && info.params.length === 0 ? [h("span", { class: "legend" }, "no parameters")] : []),
      ...this.fields.map((f) => {
        const title = paramTitle(f.info);
        f.input.title = title;
        return h("label", { title, for: f.input.id }, `${f.info.name} `, f.input);
      }),
    );
  }

  /**
   * Only the parameters changed from their defaults are sent (and those without a default):
   * the runtime fills the rest in from the strategy's schema, and the job it stores has them all.
   */
  private params(): Record<string, unknown> {
    const params: Record<string, unknown> = {};
    for (const f of this.fields) {
      const value = f.read();
      if (value === OMIT) continue;
      if (f.info.default !== undefined && JSON.stringify(value) === JSON.stringify(f.info.default)) continue;
      params[f.info.name] = value;
    }
    return params;
  }

  /** A refusal's details under the form (the parameter's name for strategy.params.<name>), its inputs marked. */
  private showIssues(details: { path: string; message: string }[]): void {
    for (const f of this.fields) f.input.removeAttribute("aria-invalid");
    const list = $("bt-issues");
    list.replaceChildren(
      ...details.map((d) => {
        const name = /^strategy\.params\.([^.]+)/.exec(d.path)?.[1];
        const field = name === undefined ? undefined : this.fields.find((f) => f.info.name === name);
        field?.input.setAttribute("aria-invalid", "true");
        const where = field ? field.info.name : d.path.replace(/^strategy\.params$/, "params");
        return h("li", {}, where ? `${where}: ${d.message}` : d.message);
      }),
    );
    list.hidden = details.length === 0;
  }

  private async run(): Promise<void> {
    const kind = $<HTMLSelectElement>("bt-kind").value;
    if (!kind) {
      setError("backtest", new Error("no strategy to run (the strategy list has not loaded)"));
      return;
    }
    const spread = $<HTMLInputElement>("bt-spread").value;
    const body = {
      pair: $<HTMLSelectElement>("bt-pair").value,
      from: $<HTMLInputElement>("bt-from").value,
      to: $<HTMLInputElement>("bt-to").value,
      strategy: { kind, units: Number($<HTMLInputElement>("bt-units").value), params: this.params() },
      spreadPips: spread === "" ? null : Number(spread),
    };
    try {
      const job = await this.session.api.request<Job>("POST", "/api/backtest/run", body);
      setError("backtest", null);
      this.showIssues([]);
      location.hash = `#/backtest/${job.id}`;
    } catch (err) {
      setError("backtest", err);
      this.showIssues(errorDetails(err));
    }
  }

  private async follow(id: string): Promise<void> {
    this.shownId = id;
    const mine = ++this.polling;
    this.clear();
    for (;;) {
      let job: Job;
      try {
        job = await this.session.api.request<Job>("GET", `/api/backtest/${id}`);
        setError("backtest", null);
      } catch (err) {
        setError("backtest", err);
        return;
      }
      if (mine !== this.polling) return;
      this.last.status = job.status;
      const pct = Math.round(job.progress.fraction * 100);
      $("bt-status").textContent = `${job.status}: ${job.progress.rowsRead.toLocaleString("en-US")} / ${job.progress.rowsTotal.toLocaleString("en-US")} bars (${pct}%)${job.error ? ` - ${job.error.code}: ${job.error.message}` : ""}`;
      ($("bt-progress").firstElementChild as HTMLElement).style.width = `${pct}%`;
      if (job.status === "failed") {
        setError("backtest", new Error(`backtest failed: ${job.error?.code ?? "?"}: ${job.error?.message ?? ""}`));
        return;
      }
      if (job.status === "done") break;
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    try {
      const result = await this.session.api.request<BacktestResult>("GET", `/api/backtest/${id}/result`);
      if (mine === this.polling) this.draw(result);
    } catch (err) {
      setError("backtest", err);
    }
  }

  private clear(): void {
    this.equity?.setData([]);
    this.drawdown?.setData([]);
    $("bt-metrics").replaceChildren();
    $("bt-trades").replaceChildren();
    this.last = { status: "queued", equityPoints: 0, trades: 0, tradeCount: 0 };
  }

  private draw(r: BacktestResult): void {
    const m = r.metrics;
    const initial = m.initialBalanceAccountCents / 100;
    // Equity points can share a second (thinned 1m candles do not, but be safe): keep the last.
    const points = new Map<number, number>();
    for (const p of r.equity) points.set(Math.floor(p.t / 1000), initial + p.accountCents / 100);
    const equity = [...points].map(([t, value]) => ({ time: t as UTCTimestamp, value }));
    let peak = -Infinity;
    const drawdown = equity.map((p) => {
      peak = Math.max(peak, p.value);
      return { time: p.time, value: p.value - peak };
    });
    this.equity!.setData(equity);
    this.drawdown!.setData(drawdown);
    this.equityChart!.timeScale().fitContent();
    this.ddChart!.timeScale().fitContent();
    const fig = (label: string, value: string | HTMLElement) => h("span", {}, label, h("b", {}, value));
    const ratio = (n: number | null) => (n === null ? "-" : n.toFixed(2));
    $("bt-metrics").replaceChildren(
      fig("P&L", signed(r.pnlAccount, "USD")),
      fig("return", `${m.totalReturnPct.toFixed(2)}%`),
      fig("trades", String(r.tradeCount)),
      fig("win rate", `${(m.winRate * 100).toFixed(1)}%`),
      fig("Sharpe", ratio(m.sharpe)),
      fig("Sortino", ratio(m.sortino)),
      fig("max drawdown", `${money(m.maxDrawdownAccountCents / 100)} (${m.maxDrawdownPct.toFixed(2)}%)`),
      fig("profit factor", ratio(m.profitFactor)),
      fig("bars", r.bars.toLocaleString("en-US")),
    );
    const iso = (t: number) => new Date(t).toISOString().slice(0, 16).replace("T", " ");
    $("bt-trades").replaceChildren(
      ...r.trades.slice(0, TRADES_SHOWN).map((t, i) =>
        row([String(i + 1), t.side, t.units.toLocaleString("en-US"), iso(t.entryT), String(t.entryPrice), iso(t.exitT), String(t.exitPrice), signed(t.pnlAccountCents / 100), t.exitReason]),
      ),
    );
    if (r.trades.length > TRADES_SHOWN || r.tradesOmitted > 0) $("bt-trades").append(row([`... ${r.tradeCount - TRADES_SHOWN} more`]));
    this.last = { status: "done", equityPoints: equity.length, trades: Math.min(r.trades.length, TRADES_SHOWN), tradeCount: r.tradeCount };
  }
}
