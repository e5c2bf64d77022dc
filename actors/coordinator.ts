import { logEvent } from "../src/log.ts";
import { DurableObject } from "cloudflare:workers";
import * as v from "valibot";
import { configFor } from "../src/config.ts";
import { getInstrument } from "../src/domain/instruments.ts";
import { midDecimal } from "../src/domain/price.ts";
import { PortfolioLimits, type TradingState } from "../schemas/portfolio.ts";
import { ApprovalRequestSchema, PairInFlightSchema, PairReportSchema, ReportedOrderId } from "../schemas/portfolio-messages.ts";
import { readMessage, type ApprovalRequest, type PairInFlight, type PairReport, type TradingStatus } from "../src/domain/portfolio/messages.ts";
import type { ApprovalAnswer } from "../src/domain/portfolio/approval.ts";
import { PortfolioRules } from "../src/domain/portfolio/portfolio-rules.ts";
import { killSwitchTarget, NEW_DAY_REASON, reducingDayOver, sameStatus, type KillSwitchAction } from "../src/domain/portfolio/trading-state.ts";
import { COORDINATOR_MIGRATIONS } from "../migrations/coordinator/index.ts";
import { migrate } from "./migrate.ts";
import type { Alert } from "../src/alerts/rules.ts";
import { applyAlerts, type ActiveAlert } from "../src/alerts/delivery.ts";
import { readAudit, writeAudit, type AuditEntry } from "./audit-entry.ts";
import { runAuditRetentionIfDue, type BatchedDelete } from "./retention.ts";
import { ActorBackup } from "./backup/actor-backup.ts";
import type { Keeper } from "./backup/keep-across-restore.ts";
import type { OandaEndpoint } from "../src/broker/oanda/oanda-http.ts";
import type { AccountView } from "../src/broker/oanda/oanda-account.ts";
import type { StrategyAccount } from "../src/domain/strategy/api.ts";
import { BrokerCredentials, CREDENTIALS_STATE_KEY, type BrokerCredentialsInfo } from "./broker-credentials.ts";
import { CoordinatorStore } from "./coordinator-store.ts";

export type { ActiveAlert } from "../src/alerts/delivery.ts";
export type { BrokerCredentialsInfo } from "./broker-credentials.ts";

/** The coordinator proves it is alive this often (alerts watch the mark). */
const HEARTBEAT_MS = 60_000;

/** A pair that missed a trading state is tried again after 0.5 s, then 1 s, 2 s, ... up to 10 s apart. */
function pushRetryMs(attempt: number): number {
  return Math.min(10_000, 500 * 2 ** Math.max(0, attempt - 1));
}

/**
 * The coordinator's test hooks: tests replace them through runInDurableObject
 * (`i.hooks.clock = () => t`). Every time the coordinator reads (approvals,
 * reports, states, audit rows, alarms) comes from `clock`.
 */
export interface CoordinatorHooks {
  clock: () => number;
}

/**
 * The portfolio: the only place where cross-pair limits are decided. Pair
 * actors ask it before every risk-increasing order (an approval is a
 * reservation, so racing pairs can never exceed a limit together) and report
 * after every fill. It owns the trading state and the kill switch.
 *
 * The rules themselves (the book and its reservations, the limit checks, the
 * trading state machine with the loss limits) are pure domain code,
 * src/domain/portfolio/portfolio-rules.ts, which a backtest can run as well;
 * this actor is their shell: it keeps their state in SQLite
 * (coordinator-store.ts), checks the pairs' messages
 * (schemas/portfolio-messages.ts), asks the pairs what the rules need, tells
 * them the trading state until each confirmed it, and keeps the audit log.
 * Broker credentials (broker-credentials.ts) and alert delivery
 * (src/alerts/delivery.ts) are rooms of their own behind thin RPC methods.
 *
 * Reservations live in memory, and an approval writes nothing: a write would
 * hold the answer until it is durable, one more durable write in the path from
 * tick to order (the pair's order and outbox write is the other). The durable
 * record of an approved order is the pair's own (its outbox, then its
 * position), so a new life of the coordinator rebuilds its reservations from
 * the pairs before it approves anything (rebuildReservations).
 */
export class Coordinator extends DurableObject<Env> {
  readonly hooks: CoordinatorHooks = { clock: () => Date.now() };
  private readonly backupTarget: ActorBackup;
  private readonly store: CoordinatorStore;
  private readonly rules: PortfolioRules;
  private readonly credentials: BrokerCredentials;
  /** Settles once this life's reservations are rebuilt from the pairs; null until asked, or after a failed try. */
  private rebuilt: Promise<void> | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    migrate(ctx.storage, COORDINATOR_MIGRATIONS);
    this.store = new CoordinatorStore(ctx.storage);
    this.rules = new PortfolioRules(this.store, configFor(env).accountCurrency);
    this.credentials = new BrokerCredentials({ storage: ctx.storage, cells: this.store, env, clock: () => this.hooks.clock() });
    this.backupTarget = new ActorBackup(ctx.storage, env.BACKUPS, "coordinator", {
      intervalMs: configFor(env).backupIntervalMs,
      afterRestore: () => {
        migrate(ctx.storage, COORDINATOR_MIGRATIONS);
        this.store.clearCache();
        // The restored book is another moment's: ask the pairs again what is in flight.
        this.rules.reservations.clear();
        this.rebuilt = null;
      },
      keep: [keepDecisions],
    });
    const now = this.hooks.clock();
    if (this.store.get<number>("heartbeat") === undefined) this.store.put("heartbeat", now);
    // A previous life may have died between storing a trading state and telling every pair: tell them now.
    const soon = this.unconfirmedPairs().length > 0 ? now : now + HEARTBEAT_MS;
    void ctx.storage.getAlarm().then((at) => (at === null || at > soon ? ctx.storage.setAlarm(soon) : undefined));
  }

  /**
   * Heartbeat (the alarm loop itself is the proof of life the alert rules
   * check), and the trading state pushed again to every pair that has not
   * confirmed it, sooner while any has not.
   */
  override async alarm(): Promise<void> {
    this.store.put("heartbeat", this.hooks.clock());
    // A daily loss limit's REDUCING ends at the next 17:00 New York roll (within a heartbeat of it).
    if (reducingDayOver(this.status(), this.hooks.clock())) await this.setState("ACTIVE", NEW_DAY_REASON, "coordinator");
    const missing = await this.pushState(this.unconfirmedPairs());
    const attempt = missing.length > 0 ? (this.store.get<number>("state_push_attempt") ?? 0) + 1 : 0;
    this.store.put("state_push_attempt", attempt);
    await this.ctx.storage.setAlarm(this.hooks.clock() + (missing.length > 0 ? pushRetryMs(attempt) : HEARTBEAT_MS));
  }

  /** The coordinator's backups in R2 (an RPC target). */
  backups(): ActorBackup {
    return this.backupTarget;
  }

  // ---- broker credentials (broker-credentials.ts) -------------------------------------

  /** Keep OANDA credentials sealed under CREDENTIALS_KEY; the token is never stored, logged or returned in clear. */
  setBrokerCredentials(accountId: string, token: string, actor: string): Promise<{ ok: true; info: BrokerCredentialsInfo } | { ok: false; code: string; message: string }> {
    return this.credentials.set(accountId, token, actor);
  }

  brokerCredentialsInfo(): BrokerCredentialsInfo {
    return this.credentials.info();
  }

  /** Where and as whom the pairs and the feed reach OANDA (internal: the Worker never returns it). */
  brokerEndpoint(): Promise<OandaEndpoint> {
    return this.credentials.endpoint();
  }

  /** The OANDA account as OANDA reports it (summary, positions, instrument check); null without credentials. */
  brokerAccount(): Promise<AccountView | { error: string } | null> {
    return this.credentials.account();
  }

  heartbeatAt(): number | null {
    return this.store.get<number>("heartbeat") ?? null;
  }

  // ---- alerts (src/alerts/delivery.ts) -------------------------------------------------

  /**
   * Take the alerts active now: new ones are recorded, broadcast to the admin
   * room and delivered to the webhook (with retries; an alert that stays
   * active is never delivered twice); ones that ended are dropped.
   */
  applyAlerts(alerts: readonly Alert[]): Promise<ActiveAlert[]> {
    return applyAlerts(
      {
        load: () => this.store.get<Record<string, ActiveAlert>>("alerts") ?? {},
        keep: (active) => this.store.put("alerts", active),
        broadcast: (a) => this.env.SignalHub.getByName("admin").publish({ type: "alert", alert: a.alert, raisedAt: a.raisedAt }).catch(() => 0),
        // Optional secret, so not part of the generated Env type.
        webhookUrl: (this.env as { ALERT_WEBHOOK_URL?: string }).ALERT_WEBHOOK_URL,
        nowMs: this.hooks.clock(),
      },
      alerts,
    );
  }

  activeAlerts(): ActiveAlert[] {
    return Object.values(this.store.get<Record<string, ActiveAlert>>("alerts") ?? {});
  }

  // ---- approvals and reports -----------------------------------------------------

  /** A malformed request is refused (`invalid_request`) before it reaches the book. */
  async approve(req: ApprovalRequest): Promise<ApprovalAnswer> {
    const read = readMessage(ApprovalRequestSchema, req);
    if (!read.ok) {
      logEvent("warn", "coordinator.message_refused", { message: "approval", detail: read.detail });
      return { approved: false, rejection: { type: "invalid_request", detail: read.detail } };
    }
    // A pair that cannot be asked fails this (the pair refuses the order: fail closed) and the next approval asks again.
    await this.rebuildReservations();
    // Prices needed to value every currency in the account currency, fetched first: the
    // check-and-reserve below must run without an await, so racing approvals cannot interleave.
    await this.fetchMissingMids(read.value);
    return this.rules.approve(read.value, this.hooks.clock());
  }

  /**
   * Once per life, before the first approval: every pair's orders that an
   * approval of an earlier life may cover (recorded and unsettled, or still
   * being asked for) are reserved again, so a restart never forgets room it
   * handed out. An answer that is not a pair's in-flight message fails the
   * rebuild (approvals stay refused: fail closed) and the next approval asks again.
   */
  private rebuildReservations(): Promise<void> {
    this.rebuilt ??= (async () => {
      const pairs = configFor(this.env).pairs;
      const answers = await Promise.all(pairs.map(async (p) => checkedInFlight(p, await this.env.Pair.getByName(p).inFlight())));
      const now = this.hooks.clock();
      // A report lost with the previous life (reports are not retried) heals here too.
      this.ctx.storage.transactionSync(() => this.rules.rebuild(answers, now));
    })().catch((err: unknown) => {
      this.rebuilt = null;
      throw err;
    });
    return this.rebuilt;
  }

  /**
   * After a fill (or an order that ended without one): release its
   * reservation, take the pair's figures, and move the trading state when a
   * loss limit is crossed. A malformed report is refused (an error to the
   * pair, which logs it) and changes nothing.
   */
  async report(report: PairReport, clientOrderId?: string): Promise<TradingStatus> {
    const read = readMessage(PairReportSchema, report);
    const id = readMessage(ReportedOrderId, clientOrderId);
    if (!read.ok || !id.ok) {
      const detail = !read.ok ? read.detail : !id.ok ? `clientOrderId: ${id.detail}` : "";
      logEvent("warn", "coordinator.message_refused", { message: "report", detail });
      throw new Error(`pair report refused: ${detail}`);
    }
    const move = this.rules.report(read.value, id.value, this.hooks.clock());
    if (move) await this.setState(move.state, move.reason, "coordinator");
    return this.status();
  }

  release(clientOrderId: string): void {
    this.rules.release(clientOrderId);
  }

  // ---- trading state and kill switch -----------------------------------------------------

  status(): TradingStatus {
    return this.rules.status();
  }

  /** The account's equity: the configured balance (ACCOUNT_BALANCE) and every pair's reported realised and unrealised P&L. */
  account(): StrategyAccount {
    const config = configFor(this.env);
    return { currency: config.accountCurrency, equity: (config.accountBalance * 100 + this.rules.equityCents()) / 100 };
  }

  /** Idempotent: halting a halted portfolio changes nothing but re-sends the state to every pair. */
  async killSwitch(action: KillSwitchAction, reason: string, actor: string): Promise<{ status: TradingStatus; pairs: Record<string, string> }> {
    const target = killSwitchTarget(action, reason);
    const status = await this.setState(target.state, target.reason, actor);
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
    const now = this.hooks.clock();
    const pairs = configFor(this.env).pairs;
    const change = this.ctx.storage.transactionSync(() => {
      const c = this.rules.changeState(state, reason, now);
      if (c.changed) writeAudit(this.ctx.storage.sql, now, actor, "trading_state", "portfolio", c.before, c.next);
      this.store.put("state_unconfirmed", pairs);
      this.store.put("state_push_attempt", 0);
      return c;
    });
    // Every pair keeps the state too, so a restarted pair is still halted even if this actor is unreachable.
    const missing = await this.pushState(pairs);
    if (missing.length > 0) await this.ctx.storage.setAlarm(this.hooks.clock() + pushRetryMs(1));
    return change.next;
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
    if (!sameStatus(this.status(), status)) return this.unconfirmedPairs();
    const missing = this.unconfirmedPairs().filter((p) => !confirmed.has(p));
    this.store.put("state_unconfirmed", missing);
    return missing;
  }

  private unconfirmedPairs(): string[] {
    return this.store.get<string[]>("state_unconfirmed") ?? [];
  }

  // ---- limits and reads --------------------------------------------------------------------

  limits(): PortfolioLimits {
    return this.store.limits();
  }

  setLimits(input: unknown, actor: string): PortfolioLimits {
    const next = v.parse(PortfolioLimits, input);
    const before = this.limits();
    this.ctx.storage.transactionSync(() => {
      this.store.putLimits(next);
      writeAudit(this.ctx.storage.sql, this.hooks.clock(), actor, "limits", "portfolio", before, next);
    });
    return next;
  }

  async portfolio() {
    // After a restart the reservations shown are the rebuilt ones; a pair that cannot be asked
    // leaves them as they are (the view still answers; the next approval asks again).
    await this.rebuildReservations().catch(() => undefined);
    const rows = this.store.book();
    return {
      accountCurrency: this.rules.accountCurrency,
      trading: this.status(),
      limits: this.limits(),
      exposure: this.rules.exposure(),
      openPositions: this.rules.openPositions(),
      equity: this.rules.equityCents() / 100,
      marks: this.store.get("equity_marks") ?? null,
      pairs: rows.map((r) => ({
        pair: r.pair, netUnits: r.netUnits, openPositions: r.openPositions, mid: r.mid,
        realised: r.realisedCents / 100, unrealised: r.unrealisedCents / 100, updatedAt: r.updatedAt,
      })),
      reservations: this.rules.reservations.size,
      alerts: this.activeAlerts(),
      heartbeatAt: this.heartbeatAt(),
    };
  }

  /** Write down an operation done elsewhere (a backup restore) in this actor's audit log. */
  recordAudit(actor: string, action: string, target: string, before: unknown, after: unknown): void {
    writeAudit(this.ctx.storage.sql, this.hooks.clock(), actor, action, target, before, after);
  }

  auditLog(limit: number): AuditEntry[] {
    return readAudit(this.ctx.storage.sql, limit);
  }

  /** Hourly from the cron: audit rows (limit and trading-state changes) older than LOG_RETENTION_DAYS go. Null when not due yet. */
  runRetention(nowMs = this.hooks.clock()): Promise<BatchedDelete | null> {
    return runAuditRetentionIfDue(this.ctx.storage, configFor(this.env).retention.logDays, nowMs);
  }

  /** Mids of served pairs that link a currency of the book to the account currency, when not known yet. */
  private async fetchMissingMids(req: ApprovalRequest): Promise<void> {
    const mids: Record<string, number> = {};
    for (const linking of this.rules.pairsToPrice(req, configFor(this.env).pairs)) {
      const quote = await this.env.Pair.getByName(linking).lastQuote().catch(() => null);
      if (quote) mids[linking] = midDecimal(quote, getInstrument(linking));
    }
    this.rules.addReferenceMids(mids);
  }
}

/** A pair's answer to inFlight, checked: a malformed one, or one for another pair, fails the rebuild. */
function checkedInFlight(pair: string, answer: PairInFlight): PairInFlight {
  const read = readMessage(PairInFlightSchema, answer);
  const detail = !read.ok ? read.detail : read.value.report.pair !== pair ? `report.pair: ${read.value.report.pair} answered for ${pair}` : null;
  if (detail !== null || !read.ok) {
    logEvent("warn", "coordinator.message_refused", { message: "in_flight", pair, detail });
    throw new Error(`in-flight answer of ${pair} refused: ${detail}`);
  }
  return read.value;
}

/**
 * Decisions a restore must not undo: the trading state with its push to the
 * pairs (a halt stays a halt: only the kill switch or a loss limit moves it)
 * and the broker credentials (a token replaced after a leak must not come
 * back). The live value stays; a database that lost it takes the snapshot's.
 */
const KEPT_ACROSS_RESTORE = ["trading_state", "state_unconfirmed", "state_push_attempt", CREDENTIALS_STATE_KEY];
const keepDecisions: Keeper = (live) => {
  const rows = live
    .exec<{ key: string; value: string }>(`SELECT key, value FROM coordinator_state WHERE key IN (${KEPT_ACROSS_RESTORE.map(() => "?").join(", ")})`, ...KEPT_ACROSS_RESTORE)
    .toArray();
  return (restored) => {
    for (const r of rows) restored.exec("INSERT OR REPLACE INTO coordinator_state (key, value) VALUES (?, ?)", r.key, r.value);
  };
};
