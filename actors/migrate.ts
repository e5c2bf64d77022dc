export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/**
 * Apply every migration newer than the stored schema version, all inside one
 * synchronous transaction: a failing migration leaves the old schema intact.
 * Returns the schema version after the call.
 */
export function migrate(storage: DurableObjectStorage, migrations: readonly Migration[]): number {
  return storage.transactionSync(() => {
    const sql = storage.sql;
    sql.exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at INTEGER NOT NULL)");
    const row = sql.exec<{ v: number | null }>("SELECT MAX(version) AS v FROM schema_version").one();
    let current = row.v ?? 0;
    for (const m of migrations) {
      if (m.version <= current) continue;
      if (m.version !== current + 1) throw new Error(`migration ${m.name} skips from version ${current}`);
      sql.exec(m.sql);
      sql.exec("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", m.version, Date.now());
      current = m.version;
    }
    return current;
  });
}
