/**
 * The portfolio's rules, written once for the Coordinator actor (live) and
 * for anything else that plays the portfolio's part (a backtest, a test):
 * the book of pairs with the reservations on top of it, the approval
 * decision, and the trading state machine with its loss limits.
 *
 * Design: a class holding the reservations in memory, over a PortfolioStore
 * (the persistence hook) for what must outlive a restart: every pair's last
 * reported figures, the limits, the trading state, the equity marks and the
 * reference mids. No Cloudflare, no storage of its own, no clock, no I/O:
 * time comes in as `nowMs`, and whatever needs an answer from elsewhere (a
 * pair's in-flight orders, a linking pair's quote) is asked for by the
 * driver and passed in. The Coordinator passes a store over its SQLite
 * tables (actors/coordinator-store.ts) and wraps calls that write in its
 * transactions; a backtest passes a MemoryPortfolioStore and calls the same
 * methods with the same inputs.
 *
 *   approve(req, now)            check-and-reserve in one synchronous step
 *   report(report, id, now)      a pair's figures; releases id; returns a loss-limit move, if any
 *   changeState / killSwitch     the state machine (trading-state.ts); the driver then tells the pairs
 *   newDay(now)                  REDUCING ends at the next 17:00 New York roll; the driver tells the pairs
 *   rebuild(answers, now)        a new life: the book and reservations from what the pairs hold
 *
 * Every method is synchronous: racing approvals cannot interleave inside one.
 */
import type { PortfolioLimits, TradingState } from "../../../schemas/portfolio.ts";
import * as v from "valibot";
import { PortfolioLimits as PortfolioLimitsSchema } from "../../../schemas/portfolio.ts";
import { checkLimits, linkingPairsToFetch, type ApprovalAnswer } from "./approval.ts";
import { exposure, type Exposure, type PairBook } from "./exposure.ts";
import type { ApprovalRequest, PairInFlight, PairReport, TradingStatus } from "./messages.ts";
import { Reservations } from "./reservations.ts";
import { INITIAL_TRADING_STATUS, killSwitchTarget, lossLimitBreach, markEquity, NEW_DAY_REASON, reducingDayOver, transition, type EquityMarks, type KillSwitchAction, type StateChange } from "./trading-state.ts";

/** A pair's last reported figures, and when they were written. */
export interface BookEntry extends PairReport {
  updatedAt: number;
}

/** What the rules keep across restarts; the driver decides where (SQLite, memory). */
export interface PortfolioStore {
  /** Every pair's last reported figures, ordered by pair. */
  book(): BookEntry[];
  writeBook(report: PairReport, atMs: number): void;
  limits(): PortfolioLimits;
  putLimits(limits: PortfolioLimits): void;
  status(): TradingStatus;
  putStatus(status: TradingStatus): void;
  marks(): EquityMarks | undefined;
  putMarks(marks: EquityMarks): void;
  /** Mids of served pairs fetched to value currencies (pairs that may hold no position). */
  referenceMids(): Record<string, number>;
  putReferenceMids(mids: Record<string, number>): void;
}

/** A store in memory: for backtests and tests, or any driver that keeps nothing. */
export class MemoryPortfolioStore implements PortfolioStore {
  private readonly rows = new Map<string, BookEntry>();
  private limitsValue: PortfolioLimits;
  private statusValue: TradingStatus = { ...INITIAL_TRADING_STATUS };
  private marksValue: EquityMarks | undefined;
  private mids: Record<string, number> = {};

  constructor(limits: Partial<PortfolioLimits> = {}) {
    this.limitsValue = v.parse(PortfolioLimitsSchema, limits);
  }

  book(): BookEntry[] {
    return [...this.rows.values()].sort((a, b) => (a.pair < b.pair ? -1 : a.pair > b.pair ? 1 : 0)).map((r) => ({ ...r }));
  }
  writeBook(report: PairReport, atMs: number): void {
    this.rows.set(report.pair, { ...report, updatedAt: atMs });
  }
  limits(): PortfolioLimits {
    return { ...this.limitsValue };
  }
  putLimits(limits: PortfolioLimits): void {
    this.limitsValue = { ...limits };
  }
  status(): TradingStatus {
    return { ...this.statusValue };
  }
  putStatus(status: TradingStatus): void {
    this.statusValue = { ...status };
  }
  marks(): EquityMarks | undefined {
    return this.marksValue ? { ...this.marksValue } : undefined;
  }
  putMarks(marks: EquityMarks): void {
    this.marksValue = { ...marks };
  }
  referenceMids(): Record<string, number> {
    return { ...this.mids };
  }
  putReferenceMids(mids: Record<string, number>): void {
    this.mids = { ...mids };
  }
}

export class PortfolioRules {
  /** Room held for approved orders until their pairs report; in memory only (reservations.ts). */
  readonly reservations = new Reservations();

  constructor(
    readonly store: PortfolioStore,
    /** The currency limits, exposure and equity are in. */
    readonly accountCurrency: string,
  ) {}

  status(): TradingStatus {
    return this.store.status();
  }

  /**
   * Check the request against the book plus every outstanding reservation
   * and, when it fits, reserve its room, in one synchronous step. A request
   * already approved (asked again) is the same reservation; one rebuilt as
   * undecided is judged afresh.
   */
  approve(req: ApprovalRequest, nowMs: number): ApprovalAnswer {
    const status = this.store.status();
    if (status.state === "HALTED") return { approved: false, rejection: { type: "trading_halted", reason: status.reason } };
    if (status.state === "REDUCING") return { approved: false, rejection: { type: "reduce_only", reason: status.reason } };
    this.reservations.expire(nowMs);
    const known = this.reservations.get(req.clientOrderId);
    if (known && !known.undecided) return { approved: true };
    this.reservations.release(req.clientOrderId);

    const rows = this.store.book();
    const book = this.reservations.addTo(bookOf(rows));
    // Pairs without a position still price currencies (reference mids, net 0).
    for (const [pair, mid] of Object.entries(this.store.referenceMids())) book[pair] ??= { netUnits: 0, mid };
    const current = book[req.pair] ?? { netUnits: 0, mid: req.mid };
    book[req.pair] = { netUnits: current.netUnits + req.deltaUnits, mid: req.mid };
    const rejection = checkLimits({
      book,
      pair: req.pair,
      openPositionsAfter: req.opensPosition ? reportedOpenPositions(rows) + this.reservations.opening() + 1 : null,
      limits: this.store.limits(),
      accountCurrency: this.accountCurrency,
    });
    if (rejection) return { approved: false, rejection };
    this.reservations.hold(req, nowMs);
    return { approved: true };
  }

  release(clientOrderId: string): void {
    this.reservations.release(clientOrderId);
  }

  /**
   * A pair's figures after a fill (or an order that ended without one): they
   * replace its row, `clientOrderId`'s reservation is released, and the
   * equity marks move. Returns the state a loss limit now calls for (the
   * driver makes the move with changeState and tells the pairs), or null.
   */
  report(report: PairReport, clientOrderId: string | undefined, nowMs: number): { state: TradingState; reason: string } | null {
    this.store.writeBook(report, nowMs);
    if (clientOrderId) this.reservations.release(clientOrderId);
    const equity = this.equityCents();
    const marks = markEquity(this.store.marks(), equity, nowMs);
    this.store.putMarks(marks);
    return lossLimitBreach(marks, equity, this.store.limits(), this.store.status());
  }

  /** Move the trading state (stored when it changes); the driver records the change and tells the pairs. */
  changeState(state: TradingState, reason: string, nowMs: number): StateChange {
    const change = transition(this.store.status(), state, reason, nowMs);
    if (change.changed) this.store.putStatus(change.next);
    return change;
  }

  /** At or after the FX day roll that ends a daily loss limit's REDUCING: back to ACTIVE (the change), else null. */
  newDay(nowMs: number): StateChange | null {
    return reducingDayOver(this.store.status(), nowMs) ? this.changeState("ACTIVE", NEW_DAY_REASON, nowMs) : null;
  }

  killSwitch(action: KillSwitchAction, reason: string, nowMs: number): StateChange {
    const target = killSwitchTarget(action, reason);
    return this.changeState(target.state, target.reason, nowMs);
  }

  /**
   * A new life (restart, restore): take every pair's figures (a report lost
   * with the previous life heals here; a pair without a quote never traded
   * and writes nothing) and reserve again what an earlier approval may cover.
   */
  rebuild(answers: readonly PairInFlight[], nowMs: number): void {
    const inBook = new Set(this.store.book().map((r) => r.pair));
    for (const { report } of answers) {
      if (report.mid > 0 && (report.openPositions > 0 || report.realisedCents !== 0 || inBook.has(report.pair))) this.store.writeBook(report, nowMs);
    }
    this.reservations.rebuild(answers, nowMs);
  }

  /** Served pairs to ask for a quote before judging `req`, so every currency can be valued (approval.ts). */
  pairsToPrice(req: ApprovalRequest, servedPairs: readonly string[]): string[] {
    return linkingPairsToFetch(this.store.book().map((r) => r.pair), req.pair, this.accountCurrency, servedPairs);
  }

  /** Mids fetched for pairsToPrice, kept with the ones known before. */
  addReferenceMids(mids: Readonly<Record<string, number>>): void {
    this.store.putReferenceMids({ ...this.store.referenceMids(), ...mids });
  }

  /** Open positions across pairs: reported, plus the reservations that open one. */
  openPositions(): number {
    return reportedOpenPositions(this.store.book()) + this.reservations.opening();
  }

  /** Realised + unrealised P&L of every pair, account cents. */
  equityCents(): number {
    let e = 0;
    for (const r of this.store.book()) e += r.realisedCents + r.unrealisedCents;
    return e;
  }

  /** Exposure of the reported book (no reservations); null when a currency cannot be valued. */
  exposure(): Exposure | null {
    const exp = exposure(bookOf(this.store.book()), this.accountCurrency);
    return exp.ok ? exp.value : null;
  }
}

function bookOf(rows: readonly BookEntry[]): Record<string, PairBook> {
  const book: Record<string, PairBook> = {};
  for (const r of rows) book[r.pair] = { netUnits: r.netUnits, mid: r.mid };
  return book;
}

function reportedOpenPositions(rows: readonly BookEntry[]): number {
  let n = 0;
  for (const r of rows) n += r.openPositions;
  return n;
}
