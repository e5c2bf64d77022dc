/**
 * The dashboard page: asks for an API key once (kept in localStorage), finds
 * out whether it is an admin key (GET /api/admin/portfolio answers 403 to any
 * other valid key), then shows the pair view or the portfolio view by the URL
 * hash (#/pair/EUR_USD, #/portfolio). Admin controls are removed from the page
 * for non-admin keys, not just hidden.
 */
import { ApiError, FxClient } from "../sdk/index.ts";
import { BacktestView, type BacktestShown } from "./backtest-view.ts";
import { PairView } from "./pair-view.ts";
import { PortfolioView } from "./portfolio-view.ts";
import { $, setError } from "./ui.ts";
import type { IndicatorValues } from "../domain/indicators.ts";

const KEY_STORAGE = "fxrt.apiKey";

export type Role = "admin" | "read-only";

export interface Session {
  api: FxClient;
  key: string;
  role: Role;
  pairs: string[];
}

/** What tests (and the curious) can ask the page. */
export interface DashboardHook {
  role: Role | null;
  view: string | null;
  candleCount(): number;
  lastCandle(): { t: number; close: number; n: number } | null;
  timeframe(): string | null;
  /** The chart's indicators at the last closed candle (rounded as the runtime sends them), and points drawn. */
  indicators?(): { atLastClosed: { t: number; values: IndicatorValues | null } | null; points: Record<string, number> };
  connection(): string;
  /** The backtest view's last job: status, equity points and trades drawn. */
  backtest?(): BacktestShown;
  /** performance.now() when the first snapshot's candles were drawn. */
  firstCandlesMs: number | null;
}

declare global {
  interface Window {
    __fxrt: DashboardHook;
  }
}

window.__fxrt = { role: null, view: null, candleCount: () => 0, lastCandle: () => null, timeframe: () => null, connection: () => "idle", firstCandlesMs: null };

let pairView: PairView | null = null;
let portfolioView: PortfolioView | null = null;
let backtestView: BacktestView | null = null;

async function start(key: string): Promise<void> {
  const api = new FxClient(location.origin, key);
  let role: Role;
  let pairs: string[];
  try {
    const [list, admin] = await Promise.all([
      api.pairs(),
      api.request("GET", "/api/admin/portfolio").then(
        () => "admin" as const,
        (err: unknown) => {
          if (err instanceof ApiError && err.status === 403) return "read-only" as const;
          throw err;
        },
      ),
    ]);
    role = admin;
    pairs = list.pairs.map((p) => p.pair);
  } catch (err) {
    setError("start", err);
    if (err instanceof ApiError && err.status === 401) {
      localStorage.removeItem(KEY_STORAGE);
      showLogin();
    } else {
      setTimeout(() => void start(key), 2_000);
    }
    return;
  }
  setError("start", null);
  window.__fxrt.role = role;
  $("login").hidden = true;
  $("forget-key").hidden = false;
  $("role").textContent = role === "admin" ? "admin" : "read-only key";
  if (role !== "admin") for (const el of document.querySelectorAll(".admin-only")) el.remove();
  const select = $<HTMLSelectElement>("pair-select");
  select.replaceChildren(...pairs.map((p) => new Option(p, p)));
  const session: Session = { api, key, role, pairs };
  pairView = new PairView(session);
  portfolioView = new PortfolioView(session);
  backtestView = new BacktestView(session);
  select.addEventListener("change", () => (location.hash = `#/pair/${select.value}`));
  addEventListener("hashchange", route);
  route();
}

function route(): void {
  if (!pairView || !portfolioView || !backtestView) return;
  const [, view = "pair", arg] = location.hash.split("/");
  for (const a of document.querySelectorAll<HTMLAnchorElement>("[data-nav]")) a.classList.toggle("active", a.dataset.nav === view);
  const select = $<HTMLSelectElement>("pair-select");
  select.hidden = view === "portfolio" || view === "backtest";
  if (view !== "portfolio") portfolioView.hide();
  if (view !== "backtest") backtestView.hide();
  if (view === "portfolio" || view === "backtest") pairView.hide();
  if (view === "portfolio") {
    portfolioView.show();
    window.__fxrt.view = "portfolio";
  } else if (view === "backtest") {
    backtestView.show(arg);
    window.__fxrt.view = "backtest";
  } else {
    const pair = arg && pairView.pairs.includes(arg) ? arg : (pairView.current ?? pairView.pairs[0]!);
    select.value = pair;
    pairView.show(pair);
    window.__fxrt.view = "pair";
  }
}

function showLogin(): void {
  $("login").hidden = false;
  $("forget-key").hidden = true;
  $<HTMLInputElement>("key-input").focus();
}

$("login-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const key = $<HTMLInputElement>("key-input").value.trim();
  if (!key) return;
  localStorage.setItem(KEY_STORAGE, key);
  $("login").hidden = true;
  void start(key);
});

$("forget-key").addEventListener("click", () => {
  localStorage.removeItem(KEY_STORAGE);
  location.hash = "";
  location.reload();
});

const stored = localStorage.getItem(KEY_STORAGE);
if (stored) void start(stored);
else showLogin();
