/**
 * Backtest view: runs a backtest over the data lake (POST /api/backtest/run,
 * a trader key), follows its progress (GET /api/backtest/:id), then draws the
 * equity curve, the drawdown and the metrics, and lists the trades
 * (GET /api/backtest/:id/result). The job id goes into the URL
 * (#/backtest/<id>), so a reload or a shared link shows the same run.
 * The strategies and their parameters come from GET /api/strategies: one
 * input per parameter (its type, bounds and default read from the
 * strategy's schema), and a refusal's details are listed by the form.
 *
 * Two kinds of run: one strategy on one pair, or a portfolio (the selected
 * strategy on every chosen pair, one account, the portfolio's limits). A
 * portfolio result lists its pairs; opening one (#/backtest/<id>/<pair>, so
 * the browser's Back and a shared link work too) draws that pair's own equity,
 * trades and strategies. A sweep's ranked combinations are listed above its
 * best one, drawn as a portfolio.
 */
import { AreaSeries, createChart, LineSeries, type IChartApi, type ISeriesApi, type UTCTimestamp } from "lightweight-charts";
import * as v from "valibot";
import type { PortfolioBacktestRequestInput } from "../../schemas/backtest.ts";
import { PortfolioLimits } from "../../schemas/portfolio.ts";
import type { ParamInfo } from "../domain/strategy/catalog.ts";
import type { PairFigures, PortfolioBacktestResult, StrategyFigures } from "../replay/portfolio-result.ts";
import type { BacktestMetrics, BacktestResult, BacktestTrade, EquityPoint } from "../replay/result.ts";
import type { SweepResult } from "../replay/sweep.ts";
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

/** The account a portfolio from this form is kept in (its P&L, balance and limits are in it). */
const ACCOUNT_CURRENCY = "USD";
const DAY_MS = 86_400_000;

type LimitName = keyof PortfolioLimits;
/** Read from the schema the server checks with, so the placeholders never drift from the real defaults. */
const LIMIT_DEFAULTS = v.getDefaults(PortfolioLimits) as Record<LimitName, number>;
const LIMIT_NAMES = Object.keys(PortfolioLimits.entries) as LimitName[];
/** The one limit that counts positions; the others are amounts in the account currency. */
const COUNT_LIMITS: ReadonlySet<LimitName> = new Set(["maxOpenPositions"]);

/** What GET /api/backtest/:id/result holds for a portfolio with a sweep. */
interface PortfolioSweepResult {
  kind: "portfolio-sweep";
  sweep: SweepResult;
  best: PortfolioBacktestResult;
}
type AnyResult = BacktestResult | PortfolioBacktestResult | PortfolioSweepResult;
type ResultKind = "single" | "portfolio" | "portfolio-sweep";

/** What `window.__fxrt.backtest()` tells about the drawn result (the figures are those of the scope drawn: a drilled pair's when drilled). */
export interface BacktestShown {
  status: string;
  equityPoints: number;
  /** Rows of the trades table (without the "more" row). */
  trades: number;
  tradeCount: number;
  kind: ResultKind | null;
  /** The pair drilled into, or null for the whole portfolio (and single-pair runs). */
  drilled: string | null;
  /** Rows of the pairs table. */
  pairsShown: number;
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

type Figure = [label: string, value: string | HTMLElement];
type Cells = (Node | string)[];

const ratio = (n: number | null) => (n === null ? "-" : n.toFixed(2));
const pct = (n: number) => `${n.toFixed(2)}%`;
const iso = (t: number) => new Date(t).toISOString().slice(0, 16).replace("T", " ");
const days = (ms: number) => `${(ms / DAY_MS).toFixed(1)} days`;

/** "maxOpenPositions" -> "max open positions". */
function limitLabel(name: string): string {
  return name.replace(/[A-Z]/g, (c) => ` ${c.toLowerCase()}`);
}

/** "1,234.00 USD (1.23%)": a drawdown in money and as a share of the peak it fell from. */
function drawdownText(m: BacktestMetrics, currency: string): string {
  return `${money(m.maxDrawdownAccountCents / 100, currency)} (${pct(m.maxDrawdownPct)})`;
}

/** Refusals by reason as words ("max open positions 3, trading halted 1"), "none" without any. */
function refusalsText(refusals: Record<string, number>): string {
  const parts = Object.entries(refusals).map(([reason, n]) => `${reason.replaceAll("_", " ")} ${n.toLocaleString("en-US")}`);
  return parts.length ? parts.join(", ") : "none";
}

const refusalsTotal = (refusals: Record<string, number>) => Object.values(refusals).reduce((a, b) => a + b, 0);

/** A sweep combination as text: "limits.maxOpenPositions = 1, sma-cross.fast = 10". */
function paramsText(params: Record<string, unknown>): string {
  return Object.entries(params).map(([k, value]) => `${k} = ${String(value)}`).join(", ");
}

/** The figures every scope shows first: P&L, return, trades, win rate, Sharpe, Sortino, max drawdown. */
function headlineFigures(pnl: number, currency: string, tradeCount: number, m: BacktestMetrics): Figure[] {
  return [
    ["P&L", signed(pnl, currency)],
    ["return", pct(m.totalReturnPct)],
    ["trades", String(tradeCount)],
    ["win rate", `${(m.winRate * 100).toFixed(1)}%`],
    ["Sharpe", ratio(m.sharpe)],
    ["Sortino", ratio(m.sortino)],
    ["max drawdown", drawdownText(m, currency)],
  ];
}

/** A trade's cells after its number and `lead` (pair, strategy): side, size, entry, exit, P&L, why it closed. */
function tradeCells(t: BacktestTrade, i: number, lead: string[]): Cells {
  return [String(i + 1), ...lead, t.side, t.units.toLocaleString("en-US"), iso(t.entryT), String(t.entryPrice), iso(t.exitT), String(t.exitPrice), signed(t.pnlAccountCents / 100), t.exitReason];
}

function tradeColumns(lead: string[], currency: string): string[] {
  return ["#", ...lead, "side", "units", "entry", "price", "exit", "price", `P&L ${currency}`, "reason"];
}

/** A row of the pairs table, with the button that opens the pair (a real button: Tab and Enter reach it). */
function pairRow(p: PairFigures, currency: string): HTMLTableRowElement {
  const open = h("button", { type: "button", "data-pair": p.pair, "aria-label": `open ${p.pair}: its equity, trades and strategies` }, "open");
  return row([p.pair, p.tradeCount.toLocaleString("en-US"), signed(p.pnlAccount, currency), pct(p.metrics.totalReturnPct), ratio(p.metrics.sharpe), drawdownText(p.metrics, currency), refusalsText(p.refusals), open], { "data-pair": p.pair });
}

function strategyRow(s: StrategyFigures, currency: string): HTMLTableRowElement {
  const m = s.metrics;
  return row([s.strategyId, s.kind, s.timeframe, s.tradeCount.toLocaleString("en-US"), signed(s.pnlAccount, currency), pct(m.totalReturnPct), ratio(m.sharpe), drawdownText(m, currency), refusalsText(s.refusals)], { "data-strategy": s.strategyId });
}

/** The pair named by the URL after the job id (#/backtest/<id>/<pair>), or null. */
function pairInHash(): string | null {
  const pair = location.hash.split("/")[3];
  return pair ? decodeURIComponent(pair) : null;
}

export class BacktestView {
  private equityChart: IChartApi | null = null;
  private equity: ISeriesApi<"Line"> | null = null;
  private drawdown: ISeriesApi<"Area"> | null = null;
  private ddChart: IChartApi | null = null;
  private shownId: string | null = null;
  private polling = 0;
  private last: BacktestShown = BacktestView.nothingShown("none");
  /** Loaded on the first show (not at start: the pair view's first paint does not wait for it). */
  private strategies: StrategyInfo[] | null = null;
  private loadingStrategies = false;
  private fields: ParamField[] = [];
  private readonly limitInputs = new Map<LimitName, HTMLInputElement>();
  /** The portfolio drawn (the job's, or a sweep's best), and what kind of result it came from. */
  private portfolio: PortfolioBacktestResult | null = null;
  private kind: ResultKind | null = null;
  private drilled: string | null = null;
  /** Set by the open / whole-portfolio controls: the focus follows the user's move, not a reload's. */
  private moveFocus = false;

  constructor(private readonly session: Session) {
    $<HTMLSelectElement>("bt-pair").replaceChildren(...session.pairs.map((p) => new Option(p, p)));
    this.drawPortfolioForm();
    $("bt-form").addEventListener("submit", (e) => {
      e.preventDefault();
      void this.run();
    });
    $<HTMLSelectElement>("bt-kind").addEventListener("change", () => this.drawParams());
    for (const radio of document.querySelectorAll<HTMLInputElement>('input[name="bt-mode"]')) radio.addEventListener("change", () => this.showMode());
    $("bt-no-limits").addEventListener("change", () => this.enableLimits());
    // An edited input is no longer marked as refused.
    $("bt-form").addEventListener("input", (e) => (e.target as HTMLElement).removeAttribute("aria-invalid"));
    $("bt-pairs").addEventListener("click", (e) => {
      const pair = (e.target as HTMLElement).closest<HTMLElement>("button[data-pair]")?.dataset.pair;
      if (pair) this.open(pair);
    });
    $("bt-whole").addEventListener("click", () => this.open(null));
    // Escape outside a form control leaves a drilled pair, as the "Whole portfolio" button does.
    document.addEventListener("keydown", (e) => {
      const target = e.target as HTMLElement;
      if (e.key !== "Escape" || this.drilled === null || $("backtest-view").hidden || target.closest("input, select, textarea, dialog")) return;
      this.open(null);
    });
    Object.assign(window.__fxrt, { backtest: (): BacktestShown => ({ ...this.last }) });
  }

  private static nothingShown(status: string): BacktestShown {
    return { status, equityPoints: 0, trades: 0, tradeCount: 0, kind: null, drilled: null, pairsShown: 0 };
  }

  show(id: string | undefined): void {
    $("backtest-view").hidden = false;
    this.ensureCharts();
    if (!this.strategies) void this.loadStrategies();
    if (id && id !== this.shownId) void this.follow(id);
    else if (id) this.drillInto(pairInHash());
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

  /**
   * The portfolio part of the form: a checkbox per pair the session serves (the first one
   * checked, so the form can run as soon as "portfolio" is chosen), the initial balance and
   * one input per portfolio limit, empty for the schema's default (shown as the placeholder).
   */
  private drawPortfolioForm(): void {
    $("bt-pf-pairs").replaceChildren(
      ...this.session.pairs.map((pair, i) => {
        const box = h("input", { type: "checkbox", id: `bt-pf-pair-${pair}`, name: "bt-pf-pair", value: pair }) as HTMLInputElement;
        box.checked = i === 0;
        return h("label", { for: box.id }, box, ` ${pair}`);
      }),
    );
    $("bt-balance-ccy").textContent = ACCOUNT_CURRENCY;
    $("bt-limits").replaceChildren(
      ...LIMIT_NAMES.map((name) => {
        const count = COUNT_LIMITS.has(name);
        const input = h("input", { type: "number", id: `bt-limit-${name}`, name, min: "0", step: count ? "1" : "any" }) as HTMLInputElement;
        const fallback = LIMIT_DEFAULTS[name].toLocaleString("en-US");
        input.placeholder = fallback;
        input.title = `${count ? "positions" : ACCOUNT_CURRENCY}; empty = the default, ${fallback}`;
        return h("label", { for: input.id, title: input.title }, `${limitLabel(name)} `, input);
      }),
    );
    for (const name of LIMIT_NAMES) this.limitInputs.set(name, $<HTMLInputElement>(`bt-limit-${name}`));
    this.enableLimits();
  }

  /** The limit inputs are off while "no portfolio limits" is checked: what they hold is not sent. */
  private enableLimits(): void {
    const off = $<HTMLInputElement>("bt-no-limits").checked;
    for (const input of this.limitInputs.values()) input.disabled = off;
  }

  private mode(): "single" | "portfolio" {
    return document.querySelector<HTMLInputElement>('input[name="bt-mode"]:checked')?.value === "portfolio" ? "portfolio" : "single";
  }

  /** One pair: its pair select. Portfolio: the pairs, balance and limits instead. */
  private showMode(): void {
    const portfolio = this.mode() === "portfolio";
    $("bt-portfolio").hidden = !portfolio;
    $("bt-pair-label").hidden = portfolio;
    this.showIssues([]);
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

  /**
   * A refusal's details under the form, each named as the form names it and its input marked.
   * A portfolio repeats a parameter's refusal for every pair: listed once.
   */
  private showIssues(details: { path: string; message: string }[], pairs: readonly string[] = []): void {
    for (const el of $("bt-form").querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
    const lines = new Set<string>();
    for (const d of details) {
      const { where, input } = this.locate(d.path, pairs);
      input?.setAttribute("aria-invalid", "true");
      lines.add(where ? `${where}: ${d.message}` : d.message);
    }
    const list = $("bt-issues");
    list.replaceChildren(...[...lines].map((line) => h("li", {}, line)));
    list.hidden = lines.size === 0;
  }

  /**
   * The form's name and input for a refused path: a strategy's parameter or units (the single
   * strategy's, or any pair's: they all come from the same inputs), a portfolio limit, the
   * balance, a chosen pair (pairs.<i> of the body sent); else the path as it is.
   */
  private locate(path: string, pairs: readonly string[]): { where: string; input?: HTMLElement } {
    const inStrategy = /^(?:strategy|pairs\.\d+\.strategies\.\d+)\.(.+)$/.exec(path)?.[1];
    if (inStrategy !== undefined) {
      const name = /^params\.([^.]+)/.exec(inStrategy)?.[1];
      const field = name === undefined ? undefined : this.fields.find((f) => f.info.name === name);
      if (field) return { where: field.info.name, input: field.input };
      if (inStrategy === "units") return { where: "units", input: $("bt-units") };
      return { where: inStrategy };
    }
    const limit = /^limits\.([^.]+)$/.exec(path)?.[1];
    const limitInput = limit === undefined ? undefined : this.limitInputs.get(limit as LimitName);
    if (limit !== undefined && limitInput) return { where: limitLabel(limit), input: limitInput };
    if (path === "initialBalance") return { where: "initial balance", input: $("bt-balance") };
    const pair = pairs[Number(/^pairs\.(\d+)/.exec(path)?.[1] ?? NaN)];
    if (pair !== undefined) return { where: pair, input: $(`bt-pf-pair-${pair}`) };
    return { where: path };
  }

  private async run(): Promise<void> {
    const kind = $<HTMLSelectElement>("bt-kind").value;
    if (!kind) {
      setError("backtest", new Error("no strategy to run (the strategy list has not loaded)"));
      return;
    }
    const body = this.mode() === "portfolio" ? this.portfolioBody(kind) : this.singleBody(kind);
    if (body === null) return;
    const pairs = "pairs" in body ? body.pairs.map((p) => p.pair) : [];
    try {
      const job = await this.session.api.request<Job>("POST", "/api/backtest/run", body);
      setError("backtest", null);
      this.showIssues([]);
      location.hash = `#/backtest/${job.id}`;
    } catch (err) {
      setError("backtest", err);
      this.showIssues(errorDetails(err), pairs);
    }
  }

  private spreadPips(): number | null {
    const spread = $<HTMLInputElement>("bt-spread").value;
    return spread === "" ? null : Number(spread);
  }

  private singleBody(kind: string) {
    return {
      pair: $<HTMLSelectElement>("bt-pair").value,
      from: $<HTMLInputElement>("bt-from").value,
      to: $<HTMLInputElement>("bt-to").value,
      strategy: { kind, units: Number($<HTMLInputElement>("bt-units").value), params: this.params() },
      spreadPips: this.spreadPips(),
    };
  }

  /**
   * The portfolio body: the selected strategy (id = its kind) on every chosen pair, `limits` only
   * when "no portfolio limits" is unchecked (and then only the limits filled in: the server
   * defaults the rest), the balance unless left empty. Null, with the reason under the form,
   * when no pair is chosen.
   */
  private portfolioBody(kind: string): PortfolioBacktestRequestInput | null {
    const pairs = [...document.querySelectorAll<HTMLInputElement>('input[name="bt-pf-pair"]:checked')].map((box) => box.value);
    if (pairs.length === 0) {
      this.showIssues([{ path: "", message: "choose at least one pair for the portfolio" }]);
      document.querySelector<HTMLInputElement>('input[name="bt-pf-pair"]')?.focus();
      return null;
    }
    const strategy = { id: kind, kind, units: Number($<HTMLInputElement>("bt-units").value), params: this.params() };
    const balance = $<HTMLInputElement>("bt-balance");
    const limits = this.limits();
    return {
      from: $<HTMLInputElement>("bt-from").value,
      to: $<HTMLInputElement>("bt-to").value,
      pairs: pairs.map((pair) => ({ pair, strategies: [{ ...strategy, params: { ...strategy.params } }] })),
      ...(limits === null ? {} : { limits }),
      accountCurrency: ACCOUNT_CURRENCY,
      ...(balance.value.trim() === "" ? {} : { initialBalance: balance.valueAsNumber }),
      spreadPips: this.spreadPips(),
    };
  }

  /** The limits filled in, {} for all the defaults, or null for none at all ("no portfolio limits"). */
  private limits(): Partial<Record<LimitName, number>> | null {
    if ($<HTMLInputElement>("bt-no-limits").checked) return null;
    const limits: Partial<Record<LimitName, number>> = {};
    for (const [name, input] of this.limitInputs) if (input.value.trim() !== "") limits[name] = input.valueAsNumber;
    return limits;
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
      const result = await this.session.api.request<AnyResult>("GET", `/api/backtest/${id}/result`);
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
    $("bt-pairs").replaceChildren();
    $("bt-strategies").replaceChildren();
    $("bt-sweep").replaceChildren();
    $("bt-equity-title").textContent = "Equity and drawdown";
    for (const id of ["bt-sweep-section", "bt-pairs-section", "bt-strategies-section", "bt-scope"]) $(id).hidden = true;
    this.portfolio = null;
    this.kind = null;
    this.drilled = null;
    this.last = BacktestView.nothingShown("queued");
  }

  private draw(result: AnyResult): void {
    if (!("kind" in result)) {
      this.drawSingle(result);
    } else if (result.kind === "portfolio-sweep") {
      this.drawSweep(result.sweep, result.best.accountCurrency);
      this.drawPortfolio(result.best, "portfolio-sweep");
    } else {
      this.drawPortfolio(result, "portfolio");
    }
  }

  /** Equity (`initialCents` + each point's P&L) and its drawdown from the running peak; returns the points drawn. */
  private drawEquity(points: readonly EquityPoint[], initialCents: number): number {
    // Equity points can share a second (thinned 1m candles do not, but be safe): keep the last.
    const bySecond = new Map<number, number>();
    for (const p of points) bySecond.set(Math.floor(p.t / 1000), (initialCents + p.accountCents) / 100);
    const equity = [...bySecond].map(([t, value]) => ({ time: t as UTCTimestamp, value }));
    let peak = -Infinity;
    const drawdown = equity.map((p) => {
      peak = Math.max(peak, p.value);
      return { time: p.time, value: p.value - peak };
    });
    this.equity!.setData(equity);
    this.drawdown!.setData(drawdown);
    this.equityChart!.timeScale().fitContent();
    this.ddChart!.timeScale().fitContent();
    return equity.length;
  }

  private drawMetrics(figures: Figure[]): void {
    $("bt-metrics").replaceChildren(...figures.map(([label, value]) => h("span", {}, label, h("b", {}, value))));
  }

  /** The trades table: its columns, the first TRADES_SHOWN rows, and a last row counting those not listed. Returns the rows listed. */
  private drawTrades(columns: string[], rows: Cells[], total: number): number {
    $("bt-trades-head").replaceChildren(h("tr", {}, ...columns.map((c) => h("th", {}, c))));
    const shown = rows.slice(0, TRADES_SHOWN);
    $("bt-trades").replaceChildren(...shown.map((cells) => row(cells)));
    if (total > shown.length) $("bt-trades").append(row([`... ${(total - shown.length).toLocaleString("en-US")} more, not listed`], { class: "more" }));
    return shown.length;
  }

  private drawSingle(r: BacktestResult): void {
    const m = r.metrics;
    this.kind = "single";
    $("bt-equity-title").textContent = "Equity (USD) and drawdown";
    const equityPoints = this.drawEquity(r.equity, m.initialBalanceAccountCents);
    this.drawMetrics([
      ...headlineFigures(r.pnlAccount, "USD", r.tradeCount, m),
      ["profit factor", ratio(m.profitFactor)],
      ["bars", r.bars.toLocaleString("en-US")],
    ]);
    const trades = this.drawTrades(tradeColumns([], "USD"), r.trades.map((t, i) => tradeCells(t, i, [])), r.tradeCount);
    this.last = { status: "done", equityPoints, trades, tradeCount: r.tradeCount, kind: "single", drilled: null, pairsShown: 0 };
  }

  /** A sweep's combinations, best first (the best is drawn below as a portfolio), and those that could not run. */
  private drawSweep(s: SweepResult, currency: string): void {
    $("bt-sweep-title").textContent = `Sweep: ${s.rows.length} combinations ranked by ${s.objective}, best first (drawn below)`;
    $("bt-sweep").replaceChildren(
      ...s.rows.map((r, i) => row([String(i + 1), paramsText(r.params), r.tradeCount.toLocaleString("en-US"), signed(r.pnlAccount, currency), ratio(r.sharpe), r.maxDrawdownPct.toFixed(2)], i === 0 ? { class: "best" } : {})),
    );
    const invalid = $("bt-sweep-invalid");
    invalid.replaceChildren(...s.invalid.map((c) => h("li", {}, `not run: ${paramsText(c.params)}: ${c.reason}`)));
    invalid.hidden = s.invalid.length === 0;
    $("bt-sweep-section").hidden = false;
  }

  /** A portfolio: its pairs table, then the whole account or the pair the URL names. */
  private drawPortfolio(r: PortfolioBacktestResult, kind: ResultKind): void {
    this.portfolio = r;
    this.kind = kind;
    $("bt-pairs").replaceChildren(...r.pairs.map((p) => pairRow(p, r.accountCurrency)));
    $("bt-pairs-section").hidden = false;
    $("bt-scope").hidden = false;
    this.drillInto(pairInHash());
  }

  /** Open a pair (null: the whole portfolio) through the URL, so Back returns to where the user was. */
  private open(pair: string | null): void {
    if (!this.shownId) return;
    this.moveFocus = true;
    const hash = `#/backtest/${this.shownId}${pair === null ? "" : `/${encodeURIComponent(pair)}`}`;
    if (location.hash === hash) this.drillInto(pair);
    else location.hash = hash;
  }

  /** Draw the pair `pair` of the portfolio shown (the whole portfolio for null or a pair it does not have). */
  private drillInto(pair: string | null): void {
    const r = this.portfolio;
    if (!r) return;
    const previous = this.drilled;
    const figures = pair === null ? undefined : r.pairs.find((p) => p.pair === pair);
    this.drilled = figures ? figures.pair : null;
    if (figures) this.drawPair(r, figures);
    else this.drawWhole(r);
    for (const tr of $("bt-pairs").querySelectorAll<HTMLElement>("tr[data-pair]")) {
      const current = tr.dataset.pair === this.drilled;
      tr.classList.toggle("current", current);
      if (current) tr.setAttribute("aria-current", "true");
      else tr.removeAttribute("aria-current");
    }
    if (this.moveFocus) {
      // Into a pair: to the way back. Back: to the row of the pair just left.
      const target = this.drilled !== null ? $("bt-whole") : previous ? $("bt-pairs").querySelector<HTMLElement>(`button[data-pair="${previous}"]`) : null;
      target?.focus();
      this.moveFocus = false;
    }
  }

  /** The whole account: its figures (with refusals and time out of ACTIVE), equity and every trade (with pair and strategy). */
  private drawWhole(r: PortfolioBacktestResult): void {
    const ccy = r.accountCurrency;
    $("bt-scope-text").textContent = `Whole portfolio: ${r.pairs.length} pairs, one ${ccy} account`;
    $("bt-whole").hidden = true;
    $("bt-strategies-section").hidden = true;
    $("bt-equity-title").textContent = `Equity (${ccy}) and drawdown of the portfolio`;
    const equityPoints = this.drawEquity(r.equity, r.metrics.initialBalanceAccountCents);
    this.drawMetrics([
      ...headlineFigures(r.pnlAccount, ccy, r.tradeCount, r.metrics),
      ["refusals", refusalsTotal(r.refusals).toLocaleString("en-US")],
      ["REDUCING", days(r.tradingStates.reducingMs)],
      ["HALTED", days(r.tradingStates.haltedMs)],
      ["profit factor", ratio(r.metrics.profitFactor)],
      ["bars", r.bars.toLocaleString("en-US")],
    ]);
    const trades = this.drawTrades(tradeColumns(["pair", "strategy"], ccy), r.trades.map((t, i) => tradeCells(t, i, [t.pair, t.strategyId])), r.tradeCount);
    this.last = { status: "done", equityPoints, trades, tradeCount: r.tradeCount, kind: this.kind, drilled: null, pairsShown: r.pairs.length };
  }

  /** One pair of the portfolio: the account's balance plus its own P&L, its figures, its strategies and only its trades. */
  private drawPair(r: PortfolioBacktestResult, p: PairFigures): void {
    const ccy = r.accountCurrency;
    $("bt-scope-text").textContent = `${p.pair} in the portfolio (its return is against the account's initial balance)`;
    $("bt-whole").hidden = false;
    $("bt-equity-title").textContent = `Equity (${ccy}) and drawdown of ${p.pair}: initial balance + its P&L`;
    const equityPoints = this.drawEquity(p.equity, p.metrics.initialBalanceAccountCents);
    this.drawMetrics([
      ...headlineFigures(p.pnlAccount, ccy, p.tradeCount, p.metrics),
      ["refusals", refusalsTotal(p.refusals).toLocaleString("en-US")],
      ["profit factor", ratio(p.metrics.profitFactor)],
      ["bars", p.bars.toLocaleString("en-US")],
    ]);
    $("bt-strategies-title").textContent = `Strategies on ${p.pair}`;
    $("bt-strategies").replaceChildren(...p.strategies.map((s) => strategyRow(s, ccy)));
    $("bt-strategies-section").hidden = false;
    const own = r.trades.filter((t) => t.pair === p.pair);
    const trades = this.drawTrades(tradeColumns(["strategy"], ccy), own.map((t, i) => tradeCells(t, i, [t.strategyId])), p.tradeCount);
    this.last = { status: "done", equityPoints, trades, tradeCount: p.tradeCount, kind: this.kind, drilled: p.pair, pairsShown: r.pairs.length };
  }
}
