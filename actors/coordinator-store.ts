/**
 * The Coordinator's SQLite tables: `pair_book` (every pair's last report) and
 * `coordinator_state` (small JSON values by key: limits, trading state, equity
 * marks, reference mids, alerts, broker credentials, the push bookkeeping).
 * It is the PortfolioStore of the portfolio rules, and the key-value cells
 * the coordinator's other rooms (credentials, alerts) keep their state in.
 */
import * as v from "valibot";
import { PortfolioLimits } from "../schemas/portfolio.ts";
import type { BookEntry, PortfolioStore } from "../src/domain/portfolio/portfolio-rules.ts";
import type { PairReport, TradingStatus } from "../src/domain/portfolio/messages.ts";
import { INITIAL_TRADING_STATUS, type EquityMarks } from "../src/domain/portfolio/trading-state.ts";

type BookRow = { pair: string; net_units: number; open_positions: number; mid: number; realised_cents: number; unrealised_cents: number; updated_at: number };

/** Small state cells: read through an in-memory cache, written through to SQLite. */
export interface StateCells {
  get<T>(key: string): T | undefined;
  put(key: string, value: unknown): void;
}

export class CoordinatorStore implements PortfolioStore, StateCells {
  /** Small state, read on every approval: cached in memory (JSON text), written through to SQLite. */
  private readonly cache = new Map<string, string>();

  constructor(private readonly storage: DurableObjectStorage) {}

  /** Forget the cache (the database was replaced by a restore). */
  clearCache(): void {
    this.cache.clear();
  }

  get<T>(key: string): T | undefined {
    let text = this.cache.get(key);
    if (text === undefined) {
      text = this.storage.sql.exec<{ value: string }>("SELECT value FROM coordinator_state WHERE key = ?", key).toArray()[0]?.value;
      if (text === undefined) return undefined;
      this.cache.set(key, text);
    }
    return JSON.parse(text) as T;
  }

  put(key: string, value: unknown): void {
    const text = JSON.stringify(value);
    if (this.cache.get(key) === text) return;
    this.storage.sql.exec("INSERT OR REPLACE INTO coordinator_state (key, value) VALUES (?, ?)", key, text);
    this.cache.set(key, text);
  }

  // ---- PortfolioStore ----------------------------------------------------------------

  book(): BookEntry[] {
    return this.storage.sql
      .exec<BookRow>("SELECT * FROM pair_book ORDER BY pair")
      .toArray()
      .map((r) => ({
        pair: r.pair, netUnits: r.net_units, openPositions: r.open_positions, mid: r.mid,
        realisedCents: r.realised_cents, unrealisedCents: r.unrealised_cents, updatedAt: r.updated_at,
      }));
  }

  writeBook(report: PairReport, atMs: number): void {
    this.storage.sql.exec(
      `INSERT OR REPLACE INTO pair_book (pair, net_units, open_positions, mid, realised_cents, unrealised_cents, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
      report.pair, report.netUnits, report.openPositions, report.mid, report.realisedCents, report.unrealisedCents, atMs,
    );
  }

  limits(): PortfolioLimits {
    return this.get<PortfolioLimits>("limits") ?? v.parse(PortfolioLimits, {});
  }

  putLimits(limits: PortfolioLimits): void {
    this.put("limits", limits);
  }

  status(): TradingStatus {
    return this.get<TradingStatus>("trading_state") ?? { ...INITIAL_TRADING_STATUS };
  }

  putStatus(status: TradingStatus): void {
    this.put("trading_state", status);
  }

  marks(): EquityMarks | undefined {
    return this.get<EquityMarks>("equity_marks");
  }

  putMarks(marks: EquityMarks): void {
    this.put("equity_marks", marks);
  }

  referenceMids(): Record<string, number> {
    return this.get<Record<string, number>>("reference_mids") ?? {};
  }

  putReferenceMids(mids: Record<string, number>): void {
    this.put("reference_mids", mids);
  }
}
