/** One row of an actor's append-only audit log, as the admin API returns it. */
export interface AuditEntry {
  id: number;
  at: number;
  actor: string;
  action: string;
  target: string;
  /** JSON text of the value before and after the change (null when there was none). */
  before: string | null;
  after: string | null;
}

type AuditRow = { id: number; at: number; actor: string; action: string; target: string; before_json: string | null; after_json: string | null };

export function readAudit(sql: SqlStorage, limit: number): AuditEntry[] {
  return sql
    .exec<AuditRow>("SELECT * FROM audit_log ORDER BY id DESC LIMIT ?", limit)
    .toArray()
    .map((r) => ({ id: r.id, at: r.at, actor: r.actor, action: r.action, target: r.target, before: r.before_json, after: r.after_json }));
}

/** Append one entry (inside the caller's transaction when there is one). Audit rows are never edited; retention deletes them after LOG_RETENTION_DAYS (actors/retention.ts). */
export function writeAudit(sql: SqlStorage, at: number, actor: string, action: string, target: string, before: unknown, after: unknown): void {
  sql.exec(
    "INSERT INTO audit_log (at, actor, action, target, before_json, after_json) VALUES (?, ?, ?, ?, ?, ?)",
    at, actor, action, target, before === null || before === undefined ? null : JSON.stringify(before), after === null || after === undefined ? null : JSON.stringify(after),
  );
}
