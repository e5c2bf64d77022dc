import type { StrategyConfig } from "../schemas/strategy.ts";
import type { Signal } from "../src/domain/trading/types.ts";
import type { StrategyRun, StrategySuspension } from "../src/domain/strategy/run.ts";

type SignalRow = {
  id: string;
  strategy_id: string;
  timeframe: string;
  type: string;
  confidence: number;
  reason: string;
  metadata: string;
  time: number;
  candle_t: number;
  stop_loss: number | null;
  take_profit: number | null;
};

/** Signals kept per pair; older ones are pruned (they live on in backups and logs). */
export const SIGNAL_RETENTION_COUNT = 10_000;

function suspendedJson(run: StrategyRun): string | null {
  return run.suspended === null ? null : JSON.stringify(run.suspended);
}

/** SQL of the pair's trading side: strategy runs and signals. */
export class TradingStore {
  private signalsSincePrune = 0;

  constructor(private readonly sql: SqlStorage) {}

  /** The configured strategies with their saved states and suspensions, in their order. */
  loadRuns(): { config: StrategyConfig; state: unknown; suspended: StrategySuspension | null }[] {
    return this.sql
      .exec<{ config_json: string; state_json: string; suspended_json: string | null }>("SELECT config_json, state_json, suspended_json FROM strategies ORDER BY position")
      .toArray()
      .map((r) => ({
        config: JSON.parse(r.config_json) as StrategyConfig,
        state: JSON.parse(r.state_json) as unknown,
        suspended: r.suspended_json === null ? null : (JSON.parse(r.suspended_json) as StrategySuspension),
      }));
  }

  /** Replace the whole configuration; runs whose config is unchanged keep their state. */
  replaceRuns(runs: readonly StrategyRun[], nowMs: number): void {
    this.sql.exec("DELETE FROM strategies");
    runs.forEach((run, position) => {
      this.sql.exec(
        "INSERT INTO strategies (id, config_json, state_json, suspended_json, position, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
        run.config.id, JSON.stringify(run.config), JSON.stringify(run.state), suspendedJson(run), position, nowMs,
      );
    });
  }

  /** The run's state and suspension after a step (or a resume). */
  saveRunState(run: StrategyRun, nowMs: number): void {
    this.sql.exec("UPDATE strategies SET state_json = ?, suspended_json = ?, updated_at = ? WHERE id = ?", JSON.stringify(run.state), suspendedJson(run), nowMs, run.config.id);
  }

  /** Insert a signal; false when its id is already stored (a replayed candle never signals twice). */
  insertSignal(s: Signal): boolean {
    const exists = this.sql.exec("SELECT 1 FROM trading_signals WHERE id = ?", s.id).toArray().length > 0;
    if (exists) return false;
    this.sql.exec(
      `INSERT INTO trading_signals (id, strategy_id, timeframe, type, confidence, reason, metadata, time, candle_t, stop_loss, take_profit)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      s.id, s.strategyId, s.timeframe, s.type, s.confidence, s.reason, JSON.stringify(s.metadata), s.ts, s.candleT,
      s.stopLoss ?? null, s.takeProfit ?? null,
    );
    if (++this.signalsSincePrune >= 100) {
      this.signalsSincePrune = 0;
      this.sql.exec(
        "DELETE FROM trading_signals WHERE time < (SELECT time FROM trading_signals ORDER BY time DESC LIMIT 1 OFFSET ?)",
        SIGNAL_RETENTION_COUNT,
      );
    }
    return true;
  }

  recentSignals(pair: string, limit: number): Signal[] {
    return this.sql
      .exec<SignalRow>("SELECT * FROM trading_signals ORDER BY time DESC, id DESC LIMIT ?", limit)
      .toArray()
      .map((r) => ({
        id: r.id,
        pair,
        strategyId: r.strategy_id,
        type: r.type as Signal["type"],
        confidence: r.confidence,
        reason: r.reason,
        timeframe: r.timeframe as Signal["timeframe"],
        candleT: r.candle_t,
        ts: r.time,
        ...(r.stop_loss !== null ? { stopLoss: r.stop_loss } : {}),
        ...(r.take_profit !== null ? { takeProfit: r.take_profit } : {}),
        metadata: JSON.parse(r.metadata) as Signal["metadata"],
      }));
  }
}
