/**
 * A consistent snapshot of an actor's whole SQLite database, cut into
 * content-defined chunks, and its inverse (restore). Pure over SqlStorage and
 * synchronous, so a snapshot is one point in time: no other request of the
 * actor can run while it is read.
 *
 * Why content-defined chunks: most tables are keyed by time and change at the
 * ends (ticks appended, the oldest pruned, the open candle rewritten). A chunk
 * ends after a row whose content hash hits a pattern, so removing rows at the
 * front or appending at the back changes only the chunks at those ends, and
 * an incremental backup uploads just those. Fixed-size chunks would all shift
 * on every prune.
 *
 * The digest covers the schema (DDL) and every row of every table, in primary
 * key order: two databases with the same digest hold the same state.
 */
import { createHash } from "node:crypto";
import type { Keeper } from "./keep-across-restore.ts";

/** Rows per chunk on average (a power of two: the boundary test is a mask). */
const CHUNK_ROWS_TARGET = 256;
/** A chunk never holds more rows than this, whatever the content. */
const CHUNK_ROWS_MAX = 4 * CHUNK_ROWS_TARGET;

export interface SchemaEntry {
  type: string;
  name: string;
  sql: string;
}

export interface TableSnapshot {
  name: string;
  columns: string[];
  rows: number;
  chunks: ChunkData[];
}

export interface ChunkData {
  /** sha-256 of the chunk's body (hex): its name in the bucket. */
  hash: string;
  rows: number;
  /** One JSON array of column values per line. */
  body: string;
}

export interface SqlSnapshot {
  schema: SchemaEntry[];
  tables: TableSnapshot[];
  digest: string;
}

/** Tables and indexes that belong to the application (not SQLite's or Cloudflare's own). */
function schemaOf(sql: SqlStorage): SchemaEntry[] {
  return sql
    .exec<{ type: string; name: string; sql: string | null }>(
      "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' AND sql IS NOT NULL ORDER BY rowid",
    )
    .toArray()
    .map((r) => ({ type: r.type, name: r.name, sql: r.sql! }));
}

/** The table's primary key columns in key order, or the rowid for a table without one. */
function orderBy(sql: SqlStorage, table: string): string {
  const cols = sql
    .exec<{ name: string; pk: number }>(`SELECT name, pk FROM pragma_table_info('${table.replaceAll("'", "''")}') WHERE pk > 0 ORDER BY pk`)
    .toArray();
  return cols.length > 0 ? cols.map((c) => quoteName(c.name)).join(", ") : "rowid";
}

function quoteName(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** Values as JSON: SQLite gives numbers, strings, null and (for BLOBs) ArrayBuffers. */
function encodeValue(value: SqlStorageValue): unknown {
  return value instanceof ArrayBuffer ? { blob: Buffer.from(value).toString("base64") } : value;
}

function decodeValue(value: unknown): SqlStorageValue {
  if (value !== null && typeof value === "object" && "blob" in value) {
    const bytes = Buffer.from(String((value as { blob: unknown }).blob), "base64");
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  }
  if (value === null || typeof value === "number" || typeof value === "string") return value;
  throw new Error(`unexpected value in a backup chunk: ${JSON.stringify(value).slice(0, 80)}`);
}

/** FNV-1a of a line: cheap, and only decides where chunks end. */
function boundaryHash(line: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < line.length; i++) h = Math.imul(h ^ line.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

function chunk(lines: string[]): ChunkData {
  const body = lines.join("\n");
  return { hash: sha256(body), rows: lines.length, body };
}

function readTable(sql: SqlStorage, table: string): TableSnapshot {
  const cursor = sql.exec(`SELECT * FROM ${quoteName(table)} ORDER BY ${orderBy(sql, table)}`);
  const chunks: ChunkData[] = [];
  let lines: string[] = [];
  let rows = 0;
  for (const raw of cursor.raw()) {
    const line = JSON.stringify(raw.map(encodeValue));
    lines.push(line);
    rows++;
    if ((boundaryHash(line) & (CHUNK_ROWS_TARGET - 1)) === 0 || lines.length >= CHUNK_ROWS_MAX) {
      chunks.push(chunk(lines));
      lines = [];
    }
  }
  if (lines.length > 0) chunks.push(chunk(lines));
  return { name: table, columns: cursor.columnNames, rows, chunks };
}

/** The digest of a database given its schema and chunk hashes (what a manifest records). */
export function digestOf(schema: readonly SchemaEntry[], tables: readonly { name: string; columns: readonly string[]; chunks: readonly { hash: string }[] }[]): string {
  const h = createHash("sha256");
  for (const s of schema) h.update(`${s.type}\0${s.name}\0${s.sql}\n`);
  for (const t of tables) {
    h.update(`table\0${t.name}\0${t.columns.join("\0")}\n`);
    for (const c of t.chunks) h.update(`${c.hash}\n`);
  }
  return h.digest("hex");
}

/** Read the whole database. Synchronous: one consistent point in time. */
export function takeSnapshot(sql: SqlStorage): SqlSnapshot {
  const schema = schemaOf(sql);
  const tables = schema.filter((s) => s.type === "table").map((s) => readTable(sql, s.name));
  return { schema, tables, digest: digestOf(schema, tables) };
}

/** The database's digest now (the same as a snapshot's, without keeping the chunks). */
export function databaseDigest(sql: SqlStorage): string {
  return takeSnapshot(sql).digest;
}

export interface RestoreInput {
  schema: readonly SchemaEntry[];
  tables: readonly { name: string; columns: readonly string[]; bodies: readonly string[] }[];
  digest: string;
}

/**
 * Replace the whole database with a snapshot: drop every application table,
 * recreate the snapshot's schema, insert its rows, and check the digest, all
 * in one transaction. A mismatch throws and leaves the database as it was.
 * What the keepers read from the live database first is written back into
 * the restored one, after the digest check (so the state differs from the
 * snapshot's by exactly that), in the same transaction.
 */
export function restoreSnapshot(storage: DurableObjectStorage, input: RestoreInput, keepers: readonly Keeper[] = []): void {
  const sql = storage.sql;
  storage.transactionSync(() => {
    const putBack = keepers.map((keep) => keep(sql));
    for (const s of schemaOf(sql).filter((e) => e.type === "table")) sql.exec(`DROP TABLE ${quoteName(s.name)}`);
    // Indexes go with their tables; anything else (views, triggers) is dropped explicitly.
    for (const s of schemaOf(sql)) sql.exec(`DROP ${s.type.toUpperCase()} IF EXISTS ${quoteName(s.name)}`);
    for (const s of input.schema) sql.exec(s.sql);
    for (const t of input.tables) {
      const insert = `INSERT INTO ${quoteName(t.name)} (${t.columns.map(quoteName).join(", ")}) VALUES (${t.columns.map(() => "?").join(", ")})`;
      for (const body of t.bodies) {
        if (body === "") continue;
        for (const line of body.split("\n")) {
          const values = JSON.parse(line) as unknown[];
          if (!Array.isArray(values) || values.length !== t.columns.length) throw new Error(`a row of ${t.name} does not match its columns`);
          sql.exec(insert, ...values.map(decodeValue));
        }
      }
    }
    const restored = takeSnapshot(sql).digest;
    if (restored !== input.digest) throw new Error(`restored state digest ${restored} is not the snapshot's ${input.digest}`);
    for (const put of putBack) put(sql);
  });
}
