import * as v from "valibot";
import { logEvent } from "../src/log.ts";
import type { TradingStatus } from "../src/domain/portfolio/messages.ts";
import type { StrategyAccount } from "../src/domain/strategy/api.ts";
import { DEFAULT_FILL_MODEL, DEFAULT_RISK_LIMITS, FillModelConfig, RiskLimits } from "../schemas/trading.ts";
import type { PairStore } from "./pair-store.ts";

/** What the settings need from their actor (the Pair shell). */
export interface SettingsHost {
  readonly symbol: string;
  readonly store: Pick<PairStore, "getState" | "putState">;
  /** Run `fn` in one storage transaction. */
  transaction<T>(fn: () => T): T;
  /** Write an audit entry (inside the caller's transaction). */
  audit(actor: string, action: string, before: unknown, after: unknown): void;
  /** The coordinator's trading state (kill switch), asked for. */
  coordinatorStatus(): Promise<TradingStatus>;
  /** The account's equity as the coordinator counts it, asked for. */
  coordinatorAccount(): Promise<StrategyAccount>;
}

/**
 * The pair's settings: risk limits, fill model, the portfolio's trading state
 * as this pair last heard it, a standing flatten, and whether the broker lets
 * the pair trade. Read on every tick and order, so cached: a SQLite read and
 * JSON parse each time was a profile's top cost. Frozen, so no caller can
 * change the cached copy; a setter drops its key once its transaction
 * committed, and forget() (restore, rollback) drops all.
 */
export class PairSettings {
  private readonly cache = new Map<string, unknown>();
  /** The coordinator's trading state has been read or pushed in this life of the actor. */
  private tradingStateConfirmed = false;
  /** The account as last heard from the coordinator (not stored: asked again at each start and minute). */
  private accountView: StrategyAccount | null = null;

  constructor(private readonly host: SettingsHost) {}

  /** Storage changed under the cache: read everything again. */
  forget(): void {
    this.cache.clear();
  }

  private get<T>(key: string, fallback: () => T): T {
    if (!this.cache.has(key)) this.cache.set(key, Object.freeze(this.host.store.getState<T>(key) ?? fallback()));
    return this.cache.get(key) as T;
  }

  riskLimits(): RiskLimits {
    return this.get("risk_limits", () => ({ ...DEFAULT_RISK_LIMITS }));
  }

  /** Replace the pair's risk limits (validated again here: the actor trusts no caller). */
  setRiskLimits(limits: unknown, actor: string): RiskLimits {
    return this.replace("risk_limits", v.parse(RiskLimits, limits), this.riskLimits(), actor);
  }

  fillModel(): FillModelConfig {
    return this.get("fill_model", () => ({ ...DEFAULT_FILL_MODEL }));
  }

  setFillModel(model: unknown, actor: string): FillModelConfig {
    return this.replace("fill_model", v.parse(FillModelConfig, model), this.fillModel(), actor);
  }

  /** Store a validated setting with its audit entry in one transaction; the next read loads it. */
  private replace<T>(key: string, parsed: T, before: T, actor: string): T {
    this.host.transaction(() => {
      this.host.store.putState(key, parsed);
      this.host.audit(actor, key, before, parsed);
    });
    this.cache.delete(key);
    return parsed;
  }

  // ---- the portfolio's trading state (kill switch) ----------------------------------

  tradingState(): TradingStatus {
    return this.get<TradingStatus>("trading_state", () => ({ state: "ACTIVE", reason: "", since: 0 }));
  }

  /** The coordinator pushed its trading state. */
  setTradingState(status: TradingStatus): TradingStatus {
    this.storeTradingState(status);
    this.tradingStateConfirmed = true;
    return status;
  }

  /**
   * Once per life, before the first order work: the coordinator's trading
   * state, in case a push was lost (a crash of either actor between a kill
   * switch and this pair hearing of it). Risk-adding orders need the
   * coordinator's approval anyway, which refuses them when it is halted or
   * unreachable; this keeps a reducing order from going out under a halt the
   * pair missed. Unreachable: the state kept here stands, and the next order asks again.
   */
  async confirmTradingState(): Promise<void> {
    if (!this.tradingStateConfirmed) await this.pullTradingState();
  }

  /** The account's equity for the strategies' steps; null until first heard. */
  account(): StrategyAccount | null {
    return this.accountView;
  }

  /** Ask the coordinator for the account's equity (at start and every minute, from wake). */
  async pullAccount(): Promise<void> {
    try {
      this.accountView = Object.freeze(await this.host.coordinatorAccount());
    } catch (err) {
      logEvent("warn", "pair.account_unknown", { pair: this.host.symbol, error: String(err).slice(0, 200) });
    }
  }

  /** Ask the coordinator for the trading state (also every minute, from wake). */
  async pullTradingState(): Promise<void> {
    try {
      this.storeTradingState(await this.host.coordinatorStatus());
      this.tradingStateConfirmed = true;
    } catch (err) {
      logEvent("warn", "pair.trading_state_unconfirmed", { pair: this.host.symbol, error: String(err).slice(0, 200) });
    }
  }

  /** The trading state as the coordinator answered or pushed it (newer only); audited. */
  storeTradingState(status: TradingStatus): void {
    const before = this.tradingState();
    // A report's answer can arrive after a newer kill-switch push: never go back in time.
    if (status.since < before.since || (before.state === status.state && before.since === status.since)) return;
    this.host.transaction(() => {
      this.host.store.putState("trading_state", status);
      // A flatten stands while the portfolio stays halted; any other state ends it.
      if (status.state !== "HALTED") this.host.store.putState("flattening", false);
      this.host.audit("coordinator", "trading_state", before, status);
    });
    this.cache.delete("trading_state");
    this.cache.delete("flattening");
  }

  /** A kill switch flatten stands (see PairTrading.flatten). */
  flattening(): boolean {
    return this.get<boolean>("flattening", () => false);
  }

  setFlattening(on: boolean): void {
    if (this.flattening() === on) return;
    this.host.store.putState("flattening", on);
    this.cache.delete("flattening");
  }

  /**
   * Whether the broker lets the pair trade (OANDA marks an instrument not
   * tradeable while its market is halted or closed; the feed tells the pair).
   * While it does not, every order is refused (`market_halted`) instead of
   * being sent to certain cancellation.
   */
  tradeable(): boolean {
    return this.get<boolean>("tradeable", () => true);
  }

  setTradeable(tradeable: boolean): void {
    if (this.tradeable() === tradeable) return;
    this.host.store.putState("tradeable", tradeable);
    this.cache.delete("tradeable");
    logEvent(tradeable ? "info" : "warn", "pair.tradeable", { pair: this.host.symbol, tradeable });
  }
}
