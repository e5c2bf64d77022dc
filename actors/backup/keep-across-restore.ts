/**
 * What a restore must never undo. A restore replaces an actor's whole
 * database with a snapshot's; a keeper reads a part of the live database
 * just before that and writes it back into the restored one, in the same
 * transaction (sql-snapshot.ts, restoreSnapshot).
 */
export type Keeper = (live: SqlStorage) => (restored: SqlStorage) => void;

type AuditRow = { id: number; at: number; actor: string; action: string; target: string; before_json: string | null; after_json: string | null };

function hasTable(sql: SqlStorage, name: string): boolean {
  return sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", name).toArray().length > 0;
}

const sameEntry = (a: AuditRow, b: AuditRow) =>
  a.at === b.at && a.actor === b.actor && a.action === b.action && a.target === b.target && a.before_json === b.before_json && a.after_json === b.after_json;

/**
 * The audit log is append-only, restores included: every live entry stays,
 * under its id. Entries of the snapshot the live log no longer has (deleted
 * by retention, or lost with a database) come back; retention deletes the old
 * ones again. A live entry whose id the snapshot gave to another entry (the
 * live database was started afresh) is kept under a new id.
 */
export const keepAuditLog: Keeper = (live) => {
  const rows = hasTable(live, "audit_log") ? live.exec<AuditRow>("SELECT * FROM audit_log ORDER BY id").toArray() : [];
  return (restored) => {
    if (rows.length === 0) return;
    // Refused (the transaction rolls back) rather than dropping the log with the table.
    if (!hasTable(restored, "audit_log")) throw new Error("the snapshot has no audit log: restoring it would erase this actor's");
    // One read of the snapshot's entries, compared in memory: the logs share most entries, and only the others are written.
    const inSnapshot = new Map(restored.exec<AuditRow>("SELECT * FROM audit_log").toArray().map((r) => [r.id, r]));
    for (const row of rows) {
      const taken = inSnapshot.get(row.id);
      if (taken && sameEntry(taken, row)) continue;
      restored.exec(
        "INSERT INTO audit_log (id, at, actor, action, target, before_json, after_json) VALUES (?, ?, ?, ?, ?, ?, ?)",
        taken ? null : row.id, row.at, row.actor, row.action, row.target, row.before_json, row.after_json,
      );
    }
  };
};
