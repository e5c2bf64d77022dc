import { DurableObject } from "cloudflare:workers";
import type { KeyInfo, Role } from "../schemas/auth.ts";
import { constantTimeEqual, generateKey, parseKey, sha256Hex } from "../src/security/api-key.ts";
import { GATEKEEPER_MIGRATIONS } from "../migrations/gatekeeper/index.ts";
import { migrate } from "./migrate.ts";
import { readAudit, writeAudit, type AuditEntry } from "./audit-entry.ts";
import { runAuditRetentionIfDue, type BatchedDelete } from "./retention.ts";
import { ActorBackup } from "./backup/actor-backup.ts";
import type { Keeper } from "./backup/keep-across-restore.ts";
import { configFor } from "../src/config.ts";

type KeyRow = { id: string; secret_hash: string; role: string; label: string; created_at: number; revoked_at: number | null };

/** Keys a deployment may hold; creating more is refused. */
export const KEYS_MAX = 1000;

/**
 * Owns the API keys (as hashes) and the audit log of their changes. One
 * instance ("main"). The bootstrap admin key (secret ADMIN_API_KEY) is never
 * stored here: the Worker checks it against the secret.
 */
export class Gatekeeper extends DurableObject<Env> {
  private readonly backupTarget: ActorBackup;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    migrate(ctx.storage, GATEKEEPER_MIGRATIONS);
    this.backupTarget = new ActorBackup(ctx.storage, env.BACKUPS, "gatekeeper", {
      intervalMs: configFor(env).backupIntervalMs,
      afterRestore: () => migrate(ctx.storage, GATEKEEPER_MIGRATIONS),
      keep: [keepRevocations],
    });
  }

  /** The key store's backups in R2 (an RPC target). Key hashes only: no key can be read back from a backup. */
  backups(): ActorBackup {
    return this.backupTarget;
  }

  /** The key's id and role, or null when unknown, revoked or wrong. */
  async authenticate(raw: string): Promise<{ id: string; role: Role } | null> {
    const parsed = parseKey(raw);
    if (!parsed) return null;
    const row = this.ctx.storage.sql.exec<KeyRow>("SELECT * FROM api_keys WHERE id = ?", parsed.id).toArray()[0];
    // Hash even when the id is unknown, so both paths cost the same.
    const hash = await sha256Hex(parsed.secret);
    if (!row || row.revoked_at !== null) return null;
    return constantTimeEqual(hash, row.secret_hash) ? { id: row.id, role: row.role as Role } : null;
  }

  async createKey(role: Role, label: string, actor: string): Promise<KeyInfo & { key: string }> {
    const count = this.ctx.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM api_keys WHERE revoked_at IS NULL").one().n;
    if (count >= KEYS_MAX) throw new Error(`at most ${KEYS_MAX} active keys`);
    const k = await generateKey(role);
    const now = Date.now();
    this.ctx.storage.transactionSync(() => {
      this.ctx.storage.sql.exec(
        "INSERT INTO api_keys (id, secret_hash, role, label, created_at) VALUES (?, ?, ?, ?, ?)", k.id, k.secretHash, role, label, now,
      );
      writeAudit(this.ctx.storage.sql, Date.now(), actor, "key.create", k.id, null, { role, label });
    });
    return { id: k.id, role, label, createdAt: now, revokedAt: null, key: k.key };
  }

  revokeKey(id: string, actor: string): KeyInfo | null {
    const row = this.ctx.storage.sql.exec<KeyRow>("SELECT * FROM api_keys WHERE id = ?", id).toArray()[0];
    if (!row) return null;
    if (row.revoked_at === null) {
      const now = Date.now();
      this.ctx.storage.transactionSync(() => {
        this.ctx.storage.sql.exec("UPDATE api_keys SET revoked_at = ? WHERE id = ?", now, id);
        writeAudit(this.ctx.storage.sql, Date.now(), actor, "key.revoke", id, { revokedAt: null }, { revokedAt: now });
      });
      row.revoked_at = now;
    }
    return toInfo(row);
  }

  /** Which of these key ids are held and not revoked (rooms and streams close the sockets of the others). */
  activeKeyIds(ids: readonly string[]): string[] {
    if (ids.length === 0) return [];
    return this.ctx.storage.sql
      .exec<{ id: string }>(`SELECT id FROM api_keys WHERE revoked_at IS NULL AND id IN (${ids.map(() => "?").join(", ")})`, ...ids)
      .toArray()
      .map((r) => r.id);
  }

  listKeys(): KeyInfo[] {
    return this.ctx.storage.sql.exec<KeyRow>("SELECT * FROM api_keys ORDER BY created_at").toArray().map(toInfo);
  }

  /** Write down an operation done elsewhere (a backup restore) in this actor's audit log. */
  recordAudit(actor: string, action: string, target: string, before: unknown, after: unknown): void {
    writeAudit(this.ctx.storage.sql, Date.now(), actor, action, target, before, after);
  }

  auditLog(limit: number): AuditEntry[] {
    return readAudit(this.ctx.storage.sql, limit);
  }

  /** Hourly from the cron: audit rows (key changes) older than LOG_RETENTION_DAYS go. Null when not due yet. */
  runRetention(nowMs = Date.now()): Promise<BatchedDelete | null> {
    return runAuditRetentionIfDue(this.ctx.storage, configFor(this.env).retention.logDays, nowMs);
  }



}

/**
 * A revocation survives any restore: a key revoked now stays revoked (from
 * its earliest revocation) in the restored store. Keys the snapshot does not
 * have are gone with the restore, which also ends them.
 */
const keepRevocations: Keeper = (live) => {
  const revoked = live.exec<{ id: string; revoked_at: number }>("SELECT id, revoked_at FROM api_keys WHERE revoked_at IS NOT NULL").toArray();
  return (restored) => {
    for (const r of revoked) {
      restored.exec("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND (revoked_at IS NULL OR revoked_at > ?)", r.revoked_at, r.id, r.revoked_at);
    }
  };
};

function toInfo(r: KeyRow): KeyInfo {
  return { id: r.id, role: r.role as Role, label: r.label, createdAt: r.created_at, revokedAt: r.revoked_at };
}
