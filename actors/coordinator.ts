import { logEvent } from "../src/log.ts";
import { DurableObject } from "cloudflare:workers";
import * as v from "valibot";
import { configFor } from "../src/config.ts";
import { fxDayStart } from "../src/domain/fx-time.ts";
import { getInstrument } from "../src/domain/instruments.ts";
import { midDecimal } from "../src/domain/price.ts";
import { exposure, type PairBook } from "../src/domain/portfolio/exposure.ts";
import { PortfolioLimits, type PortfolioRejection, type TradingState } from "../schemas/portfolio.ts";
import type { ApprovalRequest, PairReport, TradingStatus } from "../src/domain/portfolio/messages.ts";
import { COORDINATOR_MIGRATIONS } from "../migrations/coordinator/index.ts";
import { migrate } from "./migrate.ts";
import { webhookBody, type Alert } from "../src/alerts/rules.ts";
import { readAudit, writeAudit, type AuditEntry } from "./audit-entry.ts";
import { runAuditRetentionIfDue, type BatchedDelete } from "./retention.ts";
import { ActorBackup } from "./backup/actor-backup.ts";
import type { Keeper } from "./backup/keep-across-restore.ts";
import { maskAccountId } from "../src/broker/broker-config.ts";
import { OandaHttp, type OandaEndpoint } from "../src/broker/oanda/oanda-http.ts";
import { readAccount, type AccountView } from "../src/broker/oanda/oanda-account.ts";
import { open, seal } from "../src/security/credential-box.ts";

/** The coordinator proves it is alive this often (alerts watch the mark). */
const HEARTBEAT_MS = 60_000;

/** A pair that missed a trading state is tried again after 0.5 s, then 1 s, 2 s, ... up to 10 s apart. */
function pushRetryMs(attempt: number): number {
  return Math.min(10_000, 500 * 2 ** Math.max(0, attempt - 1));
}
const WEBHOOK_ATTEMPTS = 3;

export interface ActiveAlert {
  alert: Alert;
  raisedAt: number;
  delivered: boolean;
}

/** Bound as AES-GCM additional data: a sealed value opens only as broker credentials. */
const CREDENTIALS_PURPOSE = "fxrt:broker-credentials:oanda";

/** OANDA credentials as kept in coordinator_state: sealed, with a masked account id for display. */
interface StoredCredentials {
  sealed: string;
  accountId: string | null;
  setAt: number;
}

export interface BrokerCredentialsInfo {
  /** Where the pairs' credentials come from: sealed in this actor, the OANDA_* config, or nowhere yet. */
  source: "stored" | "config" | "none";
  accountId: string | null;
  setAt: number | null;
}

/** A reservation not settled by then (its pair died mid-order) stops counting. */
const RESERVATION_TTL_MS = 60_000;

type BookRow = { pair: string; net_units: number; open_positions: number; mid: number; realised_cents: number; unrealised_cents: number; updated_at: number };
/** Room held for an approved order until its pair reports the fill; in memory (see Coordinator). */
interface Reservation {
  pair: string;
  deltaUnits: number;
  mid: number;
  opensPosition: boolean;
  expiresAt: number;
  /**
   * Rebuilt from a pair's approval still in flight when this life began: the
   * previous life may or may not have granted it, so it counts (the safe
   * side), and when the request itself arrives it is judged afresh.
   */
  undecided: boolean;
}

/**
 * The portfolio: the only place where cross-pair limits are decided. Pair
 * actors ask it before every risk-increasing order (an approval is a
 * reservation, so racing pairs can never exceed a limit together) and report
 * after every fill. It owns the trading state and the kill switch.
 *
 * Reservations live in memory, and an approval writes nothing: a write would
 * hold the answer until it is durable, one more durable write in the path from
 * tick to order (the pair's order and outbox write is the other). The durable
 * record of an approved order is the pair's own (its outbox, then its
 * position), so a new life of the coordinator rebuilds its reservations from
 * the pairs before it approves anything (rebuildReservations).
 */
export class Coordinator extends DurableObject<Env> {
  private readonly backupTarget: ActorBackup;
  private readonly reservations = new Map<string, Reservation>();
  /** Settles once this life's reservations are rebuilt from the pairs; null until asked, or after a failed try. */
  private rebuilt: Promise<void> | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    migrate(ctx.storage, COORDINATOR_MIGRATIONS);
    this.backupTarget = new ActorBackup(ctx.storage, env.BACKUPS, "coordinator", {
      intervalMs: configFor(env).backupIntervalMs,
      afterRestore: () => {
        migrate(ctx.storage, COORDINATOR_MIGRATIONS);
        this.state.clear();
        // The restored book is another moment's: ask the pairs again what is in flight.
        this.reservations.clear();
        this.rebuilt = null;
      },
      keep: [keepDecisions],
    });
    if (this.get<number>("heartbeat") === undefined) this.put("heartbeat", Date.now());
    // A previous life may have died between storing a trading state and telling every pair: tell them now.
    const soon = this.unconfirmedPairs().length > 0 ? Date.now() : Date.now() + HEARTBEAT_MS;
    void ctx.storage.getAlarm().then((at) => (at === null || at > soon ? ctx.storage.setAlarm(soon) : undefined));
  }

  /**
   * Heartbeat (the alarm loop itself is the proof of life the alert rules
   * check), and the trading state pushed again to every pair that has not
   * confirmed it, sooner while any has not.
   */
  override async alarm(): Promise<void> {
    this.put("heartbeat", Date.now());
    const missing = await this.pushState(this.unconfirmedPairs());
    const attempt = missing.length > 0 ? (this.get<number>("state_push_attempt") ?? 0) + 1 : 0;
    this.put("state_push_attempt", attempt);
    await this.ctx.storage.setAlarm(Date.now() + (missing.length > 0 ? pushRetryMs(attempt) : HEARTBEAT_MS));
  }

  /** The coordinator's backups in R2 (an RPC target). */
  backups(): ActorBackup {
    return this.backupTarget;
  }

  // ---- broker credentials ------------------------------------------------------------

  /**
   * Keep OANDA credentials at rest sealed with AES-GCM under the
   * CREDENTIALS_KEY secret; the token is never stored, logged or returned in
   * clear (backups hold the sealed form only).
   */
  async setBrokerCredentials(accountId: string, token: string, actor: string): Promise<{ ok: true; info: BrokerCredentialsInfo } | { ok: false; code: string; message: string }> {
    const key = (this.env as unknown as Record<string, unknown>).CREDENTIALS_KEY;
    if (typeof key !== "string" || key === "") {
      return { ok: false, code: "credentials_key_missing", message: "set the CREDENTIALS_KEY secret (32 random bytes, base64) before storing credentials" };
    }
    const sealed = await seal(JSON.stringify({ accountId, token }), key, CREDENTIALS_PURPOSE);
    const stored: StoredCredentials = { sealed, accountId: maskAccountId(accountId), setAt: Date.now() };
    this.ctx.storage.transactionSync(() => {
      const before = this.get<StoredCredentials>("broker_credentials");
      this.put("broker_credentials", stored);
      writeAudit(this.ctx.storage.sql, stored.setAt, actor, "broker.credentials", "broker", before ? { accountId: before.accountId } : null, { accountId: stored.accountId });
    });
    return { ok: true, info: this.brokerCredentialsInfo() };
  }

  brokerCredentialsInfo(): BrokerCredentialsInfo {
    const stored = this.get<StoredCredentials>("broker_credentials");
    if (stored) return { source: "stored", accountId: stored.accountId, setAt: stored.setAt };
    const config = configFor(this.env).broker.oanda;
    if (config.accountId && config.token) return { source: "config", accountId: maskAccountId(config.accountId), setAt: null };
    return { source: "none", accountId: null, setAt: null };
  }

  /** Where and as whom the pairs and the feed reach OANDA (internal: the Worker never returns it). */
  async brokerEndpoint(): Promise<OandaEndpoint> {
    const config = configFor(this.env).broker.oanda;
    const stored = this.get<StoredCredentials>("broker_credentials");
    if (stored) {
      const key = String((this.env as unknown as Record<string, unknown>).CREDENTIALS_KEY ?? "");
      const { accountId, token } = JSON.parse(await open(stored.sealed, key, CREDENTIALS_PURPOSE)) as { accountId: string; token: string };
      return { apiUrl: config.apiUrl, streamUrl: config.streamUrl, accountId, token };
    }
    if (config.accountId && config.token) return { apiUrl: config.apiUrl, streamUrl: config.streamUrl, accountId: config.accountId, token: config.token };
    throw new Error("no OANDA credentials: set OANDA_ACCOUNT_ID and the OANDA_TOKEN secret, or PUT /api/admin/broker/credentials");
  }

  /** The OANDA account as OANDA reports it (summary, positions, instrument check); null without credentials. */
  async brokerAccount(): Promise<AccountView | { error: string } | null> {
    if (this.brokerCredentialsInfo().source === "none") return null;
    try {
      return await readAccount(new OandaHttp(await this.brokerEndpoint()), configFor(this.env).pairs);
    } catch (err) {
      return { error: String(err instanceof Error ? err.message : err).slice(0, 300) };
    }
  }

  heartbeatAt(): number | null {
    return this.get<number>("heartbeat") ?? null;
  }

  // ---- alerts ------------------------------------------------------------------------

  /**
   * Take the alerts active now: new ones are recorded, broadcast to the admin
   * room and delivered to the webhook (with retries; an alert that stays
   * active is never delivered twice); ones that ended are dropped.
   */
  async applyAlerts(alerts: readonly Alert[]): Promise<ActiveAlert[]> {
    const now = Date.now();
    const before = this.get<Record<string, ActiveAlert>>("alerts") ?? {};
    const active: Record<string, ActiveAlert> = {};
    for (const alert of alerts) active[alert.id] = before[alert.id] ? { ...before[alert.id]!, alert } : { alert, raisedAt: now, delivered: false };
    this.put("alerts", active);
    for (const a of Object.values(active)) {
      if (before[a.alert.id]) continue;
      await this.env.SignalHub.getByName("admin").publish({ type: "alert", alert: a.alert, raisedAt: a.raisedAt }).catch(() => 0);
    }
    for (const a of Object.values(active)) if (!a.delivered) a.delivered = await this.deliver(a);
    this.put("alerts", active);
    return Object.values(active);
  }

  activeAlerts(): ActiveAlert[] {
    return Object.values(this.get<Record<string, ActiveAlert>>("alerts") ?? {});
  }

  /** POST the alert to ALERT_WEBHOOK_URL (a secret), retrying with backoff; true once it got a 2xx (or when none is set). */
  private async deliver(a: ActiveAlert): Promise<boolean> {
    // Optional secret, so not part of the generated Env type.
    const url = (this.env as { ALERT_WEBHOOK_URL?: string }).ALERT_WEBHOOK_URL;
    if (!url) return true;
    for (let attempt = 1; attempt <= WEBHOOK_ATTEMPTS; attempt++) {
      try {
        const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(webhookBody(a.alert, a.raisedAt)), signal: AbortSignal.timeout(2_000) });
        await res.arrayBuffer();
        if (res.ok) return true;
      } catch {
        // retried below
      }
      await new Promise((r) => setTimeout(r, 200 * 2 ** (attempt - 1)));
    }
    return false;
  }

  // ---- approvals and reports -----------------------------------------------------

  async approve(req: ApprovalRequest): Promise<{ approved: true } | { approved: false; rejection: PortfolioRejection }> {
    // A pair that cannot be asked fails this (the pair refuses the order: fail closed) and the next approval asks again.
    await this.rebuildReservations();
    // Prices needed to value every currency in the account currency, fetched first: the
    // check-and-reserve below must run without an await, so racing approvals cannot interleave.
    await this.fetchMissingMids(req);
    return this.reserve(req);
  }

  /**
   * Once per life, before the first approval: every pair's orders that an
   * approval of an earlier life may cover (recorded and unsettled, or still
   * being asked for) are reserved again, so a restart never forgets room it
   * handed out.
   */
  private rebuildReservations(): Promise<void> {
    this.rebuilt ??= (async () => {
      const pairs = configFor(this.env).pairs;
      const answers = await Promise.all(pairs.map((p) => this.env.Pair.getByName(p).inFlight()));
      const expiresAt = Date.now() + RESERVATION_TTL_MS;
      // A report lost with the previous life (reports are not retried) heals here too.
      this.ctx.storage.transactionSync(() => {
        // A pair without a quote never traded: nothing to write.
        for (const { report } of answers) if (report.mid > 0 && (report.openPositions > 0 || report.realisedCents !== 0 || this.bookHas(report.pair))) this.writeBook(report);
      });
      for (const { orders, asking } of answers) {
        for (const r of orders) this.reservations.set(r.clientOrderId, reservationOf(r, expiresAt, false));
        for (const r of asking) if (!this.reservations.has(r.clientOrderId)) this.reservations.set(r.clientOrderId, reservationOf(r, expiresAt, true));
      }
    })().catch((err: unknown) => {
      this.rebuilt = null;
      throw err;
    });
    return this.rebuilt;
  }

  private reserve(req: ApprovalRequest): { approved: true } | { approved: false; rejection: PortfolioRejection } {
    const status = this.status();
    if (status.state === "HALTED") return { approved: false, rejection: { type: "trading_halted", reason: status.reason } };
    if (status.state === "REDUCING") return { approved: false, rejection: { type: "reduce_only", reason: status.reason } };
    const now = Date.now();
    for (const [id, r] of this.reservations) if (r.expiresAt <= now) this.reservations.delete(id);
    const known = this.reservations.get(req.clientOrderId);
    if (known && !known.undecided) return { approved: true };
    this.reservations.delete(req.clientOrderId);

    const book = this.bookWithReservations();
    // Pairs without a position still price currencies (reference mids, net 0).
    for (const [pair, mid] of Object.entries(this.get<Record<string, number>>("reference_mids") ?? {})) book[pair] ??= { netUnits: 0, mid };
    const current = book[req.pair] ?? { netUnits: 0, mid: req.mid };
    book[req.pair] = { netUnits: current.netUnits + req.deltaUnits, mid: req.mid };
    const limits = this.limits();
    const exp = exposure(book, configFor(this.env).accountCurrency);
    if (!exp.ok) return { approved: false, rejection: { type: "no_conversion_rate", currency: exp.missing } };
    const e = exp.value;
    if (e.gross > limits.maxGrossExposure) return reject({ type: "max_gross_exposure", limit: limits.maxGrossExposure, actual: round(e.gross) });
    const pairExposure = e.perPair[req.pair] ?? 0;
    if (pairExposure > limits.maxExposurePerPair) return reject({ type: "max_exposure_per_pair", limit: limits.maxExposurePerPair, actual: round(pairExposure) });
    for (const [currency, amount] of Object.entries(e.perCurrency)) {
      if (Math.abs(amount) > limits.maxNetExposurePerCurrency) {
        return reject({ type: "max_net_exposure", currency, limit: limits.maxNetExposurePerCurrency, actual: round(amount) });
      }
    }
    if (req.opensPosition) {
      const open = this.openPositions() + 1;
      if (open > limits.maxOpenPositions) return reject({ type: "max_open_positions", limit: limits.maxOpenPositions, actual: open });
    }
    this.reservations.set(req.clientOrderId, reservationOf(req, now + RESERVATION_TTL_MS, false));
    return { approved: true };
  }

  /** After a fill (or an order that ended without one): release its reservation, take the pair's figures. */
  async report(report: PairReport, clientOrderId?: string): Promise<TradingStatus> {
    this.writeBook(report);
    if (clientOrderId) this.reservations.delete(clientOrderId);
    await this.checkLossLimits();
    return this.status();
  }

  private writeBook(report: PairReport): void {
    this.ctx.storage.sql.exec(
      `INSERT OR REPLACE INTO pair_book (pair, net_units, open_positions, mid, realised_cents, unrealised_cents, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
      report.pair, report.netUnits, report.openPositions, report.mid, report.realisedCents, report.unrealisedCents, Date.now(),
    );
  }

  private bookHas(pair: string): boolean {
    return this.ctx.storage.sql.exec("SELECT 1 FROM pair_book WHERE pair = ?", pair).toArray().length > 0;
  }

  release(clientOrderId: string): void {
    this.reservations.delete(clientOrderId);
  }

  // ---- loss limits ------------------------------------------------------------------

  /** Equity marks: a breach of the daily loss limit moves to REDUCING, of the drawdown limit to HALTED. */
  private async checkLossLimits(): Promise<void> {
    const now = Date.now();
    const equity = this.equityCents();
    const marks = this.get<{ peak: number; dayStart: number; dayEquity: number }>("equity_marks") ?? { peak: equity, dayStart: fxDayStart(now), dayEquity: equity };
    if (fxDayStart(now) !== marks.dayStart) Object.assign(marks, { dayStart: fxDayStart(now), dayEquity: equity });
    marks.peak = Math.max(marks.peak, equity);
    this.put("equity_marks", marks);
    const limits = this.limits();
    const drawdown = (marks.peak - equity) / 100;
    const dailyLoss = (marks.dayEquity - equity) / 100;
    const status = this.status();
    if (drawdown > limits.maxDrawdown && status.state !== "HALTED") {
      await this.setState("HALTED", `drawdown ${drawdown.toFixed(2)} over the limit ${limits.maxDrawdown}`, "coordinator");
    } else if (dailyLoss > limits.dailyLossLimit && status.state === "ACTIVE") {
      await this.setState("REDUCING", `daily loss ${dailyLoss.toFixed(2)} over the limit ${limits.dailyLossLimit}`, "coordinator");
    }
  }

  // ---- trading state and kill switch -----------------------------------------------------

  status(): TradingStatus {
    return this.get<TradingStatus>("trading_state") ?? { state: "ACTIVE", reason: "", since: 0 };
  }

  /** Idempotent: halting a halted portfolio changes nothing but re-sends the state to every pair. */
  async killSwitch(action: "halt" | "resume" | "flatten", reason: string, actor: string): Promise<{ status: TradingStatus; pairs: Record<string, string> }> {
    const status = await this.setState(action === "resume" ? "ACTIVE" : "HALTED", reason || action, actor);
    const pairs: Record<string, string> = {};
    if (action === "flatten") {
      await Promise.all(
        configFor(this.env).pairs.map(async (pair) => {
          try {
            pairs[pair] = `flattening ${await this.env.Pair.getByName(pair).flatten()} positions`;
          } catch (err) {
            pairs[pair] = `unreachable: ${String(err)}`;
          }
        }),
      );
    }
    return { status, pairs };
  }

  /**
   * The new state and the list of pairs still to confirm it are one write, so
   * a crash right after it leaves the push to the next life (the constructor
   * sets the alarm at once) instead of pairs trading on the old state. Pairs
   * also ask for the state when they start and every minute (Pair.wake).
   */
  private async setState(state: TradingState, reason: string, actor: string): Promise<TradingStatus> {
    const before = this.status();
    const next: TradingStatus = before.state === state ? { ...before } : { state, reason, since: Date.now() };
    const pairs = configFor(this.env).pairs;
    this.ctx.storage.transactionSync(() => {
      if (before.state !== state) {
        this.put("trading_state", next);
        writeAudit(this.ctx.storage.sql, Date.now(), actor, "trading_state", "portfolio", before, next);
      }
      this.put("state_unconfirmed", pairs);
      this.put("state_push_attempt", 0);
    });
    // Every pair keeps the state too, so a restarted pair is still halted even if this actor is unreachable.
    const missing = await this.pushState(pairs);
    if (missing.length > 0) await this.ctx.storage.setAlarm(Date.now() + pushRetryMs(1));
    return next;
  }

  /** Send the current state to `pairs`; those that confirmed it leave the unconfirmed list. Returns the rest. */
  private async pushState(pairs: readonly string[]): Promise<string[]> {
    if (pairs.length === 0) return [];
    const status = this.status();
    const confirmed = new Set<string>();
    await Promise.all(
      pairs.map(async (pair) => {
        try {
          await this.env.Pair.getByName(pair).setTradingState(status);
          confirmed.add(pair);
        } catch (err) {
          logEvent("error", "coordinator.state_push_failed", { pair, error: String(err) });
        }
      }),
    );
    // Read again: a newer state may have been stored meanwhile, with its own list (only a confirmation of it counts).
    if (this.status().since !== status.since || this.status().state !== status.state) return this.unconfirmedPairs();
    const missing = this.unconfirmedPairs().filter((p) => !confirmed.has(p));
    this.put("state_unconfirmed", missing);
    return missing;
  }

  private unconfirmedPairs(): string[] {
    return this.get<string[]>("state_unconfirmed") ?? [];
  }

  // ---- limits and reads --------------------------------------------------------------------

  limits(): PortfolioLimits {
    return this.get<PortfolioLimits>("limits") ?? v.parse(PortfolioLimits, {});
  }

  setLimits(input: unknown, actor: string): PortfolioLimits {
    const next = v.parse(PortfolioLimits, input);
    const before = this.limits();
    this.ctx.storage.transactionSync(() => {
      this.put("limits", next);
      writeAudit(this.ctx.storage.sql, Date.now(), actor, "limits", "portfolio", before, next);
    });
    return next;
  }

  async portfolio() {
    // After a restart the reservations shown are the rebuilt ones; a pair that cannot be asked
    // leaves them as they are (the view still answers; the next approval asks again).
    await this.rebuildReservations().catch(() => undefined);
    const rows = this.ctx.storage.sql.exec<BookRow>("SELECT * FROM pair_book ORDER BY pair").toArray();
    const book: Record<string, PairBook> = {};
    for (const r of rows) book[r.pair] = { netUnits: r.net_units, mid: r.mid };
    const account = configFor(this.env).accountCurrency;
    const exp = exposure(book, account);
    return {
      accountCurrency: account,
      trading: this.status(),
      limits: this.limits(),
      exposure: exp.ok ? exp.value : null,
      openPositions: this.openPositions(),
      equity: this.equityCents() / 100,
      marks: this.get("equity_marks") ?? null,
      pairs: rows.map((r) => ({
        pair: r.pair, netUnits: r.net_units, openPositions: r.open_positions, mid: r.mid,
        realised: r.realised_cents / 100, unrealised: r.unrealised_cents / 100, updatedAt: r.updated_at,
      })),
      reservations: this.reservations.size,
      alerts: this.activeAlerts(),
      heartbeatAt: this.heartbeatAt(),
    };
  }

  /** Write down an operation done elsewhere (a backup restore) in this actor's audit log. */
  recordAudit(actor: string, action: string, target: string, before: unknown, after: unknown): void {
    writeAudit(this.ctx.storage.sql, Date.now(), actor, action, target, before, after);
  }

  auditLog(limit: number): AuditEntry[] {
    return readAudit(this.ctx.storage.sql, limit);
  }

  /** Hourly from the cron: audit rows (limit and trading-state changes) older than LOG_RETENTION_DAYS go. Null when not due yet. */
  runRetention(nowMs = Date.now()): Promise<BatchedDelete | null> {
    return runAuditRetentionIfDue(this.ctx.storage, configFor(this.env).retention.logDays, nowMs);
  }


  /** Mids of served pairs that link a currency of the book to the account currency, when not known yet. */
  private async fetchMissingMids(req: ApprovalRequest): Promise<void> {
    const config = configFor(this.env);
    const account = config.accountCurrency;
    const known = new Set(this.ctx.storage.sql.exec<{ pair: string }>("SELECT pair FROM pair_book").toArray().map((r) => r.pair));
    known.add(req.pair);
    const currencies = new Set<string>();
    for (const pair of known) for (const c of pair.split("_")) currencies.add(c);
    const mids = this.get<Record<string, number>>("reference_mids") ?? {};
    for (const c of currencies) {
      if (c === account) continue;
      const linking = [`${c}_${account}`, `${account}_${c}`].find((p) => config.pairs.includes(p));
      if (!linking || linking === req.pair || known.has(linking)) continue;
      const quote = await this.env.Pair.getByName(linking).lastQuote().catch(() => null);
      if (quote) mids[linking] = midDecimal(quote, getInstrument(linking));
    }
    this.put("reference_mids", mids);
  }

  private bookWithReservations(): Record<string, PairBook> {
    const book: Record<string, PairBook> = {};
    for (const r of this.ctx.storage.sql.exec<BookRow>("SELECT * FROM pair_book").toArray()) book[r.pair] = { netUnits: r.net_units, mid: r.mid };
    for (const r of this.reservations.values()) {
      const b = book[r.pair] ?? { netUnits: 0, mid: r.mid };
      book[r.pair] = { netUnits: b.netUnits + r.deltaUnits, mid: b.mid };
    }
    return book;
  }

  private openPositions(): number {
    const reported = this.ctx.storage.sql.exec<{ n: number | null }>("SELECT SUM(open_positions) AS n FROM pair_book").one().n ?? 0;
    let reserved = 0;
    for (const r of this.reservations.values()) if (r.opensPosition) reserved++;
    return reported + reserved;
  }

  private equityCents(): number {
    return this.ctx.storage.sql.exec<{ e: number | null }>("SELECT SUM(realised_cents + unrealised_cents) AS e FROM pair_book").one().e ?? 0;
  }

  /** Small state, read on every approval: cached in memory, written through to SQLite. */
  private readonly state = new Map<string, string>();

  private get<T>(key: string): T | undefined {
    let text = this.state.get(key);
    if (text === undefined) {
      text = this.ctx.storage.sql.exec<{ value: string }>("SELECT value FROM coordinator_state WHERE key = ?", key).toArray()[0]?.value;
      if (text === undefined) return undefined;
      this.state.set(key, text);
    }
    return JSON.parse(text) as T;
  }

  private put(key: string, value: unknown): void {
    const text = JSON.stringify(value);
    if (this.state.get(key) === text) return;
    this.ctx.storage.sql.exec("INSERT OR REPLACE INTO coordinator_state (key, value) VALUES (?, ?)", key, text);
    this.state.set(key, text);
  }


}

/**
 * Decisions a restore must not undo: the trading state with its push to the
 * pairs (a halt stays a halt: only the kill switch or a loss limit moves it)
 * and the broker credentials (a token replaced after a leak must not come
 * back). The live value stays; a database that lost it takes the snapshot's.
 */
const KEPT_ACROSS_RESTORE = ["trading_state", "state_unconfirmed", "state_push_attempt", "broker_credentials"];
const keepDecisions: Keeper = (live) => {
  const rows = live
    .exec<{ key: string; value: string }>(`SELECT key, value FROM coordinator_state WHERE key IN (${KEPT_ACROSS_RESTORE.map(() => "?").join(", ")})`, ...KEPT_ACROSS_RESTORE)
    .toArray();
  return (restored) => {
    for (const r of rows) restored.exec("INSERT OR REPLACE INTO coordinator_state (key, value) VALUES (?, ?)", r.key, r.value);
  };
};

function reservationOf(req: ApprovalRequest, expiresAt: number, undecided: boolean): Reservation {
  return { pair: req.pair, deltaUnits: req.deltaUnits, mid: req.mid, opensPosition: req.opensPosition, expiresAt, undecided };
}

function reject(rejection: PortfolioRejection): { approved: false; rejection: PortfolioRejection } {
  return { approved: false, rejection };
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
