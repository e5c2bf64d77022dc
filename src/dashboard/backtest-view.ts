/**
 * Backtest view: runs a backtest over the data lake (POST /api/backtest/run,
 * a trader key), follows its progress (GET /api/backtest/:id), then draws the
 * equity curve, the drawdown and the metrics, and lists the trades
 * (GET /api/backtest/:id/result). The job id goes into the URL
 * (#/backtest/<id>), so a reload or a shared link shows the same run.
 */
import { AreaSeries, createChart, LineSeries, type IChartApi, type ISeriesApi, type UTCTimestamp } from "lightweight-charts";
import type { BacktestResult } from "../replay/result.ts";
import type { Session } from "./app.ts";
import { $, h, money, row, setError, signed } from "./ui.ts";

const POLL_MS = 250;
const TRADES_SHOWN = 500;

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

  constructor(private readonly session: Session) {
    $<HTMLSelectElement>("bt-pair").replaceChildren(...session.pairs.map((p) => new Option(p, p)));
    $("bt-form").addEventListener("submit", (e) => {
      e.preventDefault();
      void this.run();
    });
    Object.assign(window.__fxrt, { backtest: () => ({ ...this.last }) });
  }

  show(id: string | undefined): void {
    $("backtest-view").hidden = false;
    this.ensureCharts();
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

  private async run(): Promise<void> {
    let params: Record<string, unknown>;
    try {
      params = JSON.parse($<HTMLInputElement>("bt-params").value || "{}") as Record<string, unknown>;
    } catch {
      setError("backtest", new Error("params: not valid JSON"));
      return;
    }
    const spread = $<HTMLInputElement>("bt-spread").value;
    const body = {
      pair: $<HTMLSelectElement>("bt-pair").value,
      from: $<HTMLInputElement>("bt-from").value,
      to: $<HTMLInputElement>("bt-to").value,
      strategy: { kind: $<HTMLSelectElement>("bt-kind").value, units: Number($<HTMLInputElement>("bt-units").value), params },
      spreadPips: spread === "" ? null : Number(spread),
    };
    try {
      const job = await this.session.api.request<Job>("POST", "/api/backtest/run", body);
      setError("backtest", null);
      location.hash = `#/backtest/${job.id}`;
    } catch (err) {
      setError("backtest", err);
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
    const initial = m.initialBalanceUsdCents / 100;
    // Equity points can share a second (thinned 1m candles do not, but be safe): keep the last.
    const points = new Map<number, number>();
    for (const p of r.equity) points.set(Math.floor(p.t / 1000), initial + p.usdCents / 100);
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
      fig("P&L", signed(r.pnlUsd, "USD")),
      fig("return", `${m.totalReturnPct.toFixed(2)}%`),
      fig("trades", String(r.tradeCount)),
      fig("win rate", `${(m.winRate * 100).toFixed(1)}%`),
      fig("Sharpe", ratio(m.sharpe)),
      fig("Sortino", ratio(m.sortino)),
      fig("max drawdown", `${money(m.maxDrawdownUsdCents / 100)} (${m.maxDrawdownPct.toFixed(2)}%)`),
      fig("profit factor", ratio(m.profitFactor)),
      fig("bars", r.bars.toLocaleString("en-US")),
    );
    const iso = (t: number) => new Date(t).toISOString().slice(0, 16).replace("T", " ");
    $("bt-trades").replaceChildren(
      ...r.trades.slice(0, TRADES_SHOWN).map((t, i) =>
        row([String(i + 1), t.side, t.units.toLocaleString("en-US"), iso(t.entryT), String(t.entryPrice), iso(t.exitT), String(t.exitPrice), signed(t.pnlUsdCents / 100), t.exitReason]),
      ),
    );
    if (r.trades.length > TRADES_SHOWN || r.tradesOmitted > 0) $("bt-trades").append(row([`... ${r.tradeCount - TRADES_SHOWN} more`]));
    this.last = { status: "done", equityPoints: equity.length, trades: Math.min(r.trades.length, TRADES_SHOWN), tradeCount: r.tradeCount };
  }
}
