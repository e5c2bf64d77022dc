/**
 * One actor's backups in R2 (binding BACKUPS), incremental and verifiable.
 *
 * Layout, per actor (`pair/EUR_USD`, `coordinator/main`, `gatekeeper/main`):
 * - `<actor>/chunks/<sha256>`: gzip'd chunk bodies, named by content, so a
 *   chunk that did not change since the last snapshot is never uploaded again;
 * - `<actor>/snapshots/<takenAt ms, 13 digits>.json`: a manifest (schemas/backup.ts)
 *   listing the schema, every table's chunks and the state digest.
 *
 * Kept: the newest SNAPSHOTS_KEPT snapshots, plus the newest of each UTC day
 * for DAILY_KEPT_DAYS days; chunks no kept snapshot names are deleted (at most
 * hourly). A snapshot is only written when the digest changed: an idle actor's
 * last snapshot is still its state.
 */
import * as v from "valibot";
import { RpcTarget } from "cloudflare:workers";
import { createHash } from "node:crypto";
import { BackupManifest, type ActorRef } from "../../schemas/backup.ts";
import { digestOf, restoreSnapshot, takeSnapshot } from "./sql-snapshot.ts";
import { keepAuditLog, type Keeper } from "./keep-across-restore.ts";

const SNAPSHOTS_KEPT = 48;
const DAILY_KEPT_DAYS = 30;
const GC_EVERY_MS = 60 * 60_000;
/** R2 requests in flight at once for one actor's backup or restore. */
const PARALLEL_REQUESTS = 8;
const DAY_MS = 86_400_000;

export interface BackupResult {
  actor: ActorRef;
  /** The snapshot that now holds the actor's state (an existing one when nothing changed). */
  snapshot: string;
  takenAt: number;
  digest: string;
  unchanged: boolean;
  rows: number;
  chunks: number;
  uploadedChunks: number;
  uploadedBytes: number;
}

export type RestoreOutcome = ({ ok: true } & RestoreResult) | { ok: false; code: "snapshot_not_found"; message: string };

export interface RestoreResult {
  actor: ActorRef;
  snapshot: string;
  takenAt: number;
  digest: string;
  rows: number;
}

export interface BackupStatus {
  actor: ActorRef;
  /** When the state was last known to be in R2 (a snapshot taken, or one found identical). */
  lastBackupAt: number | null;
  /** Time since lastBackupAt on the actor's own clock (the one that stamps it); null when never backed up. */
  ageMs: number | null;
  /** How long this life of the actor has held its state: what judges an actor never backed up. */
  upForMs: number;
  lastSnapshot: string | null;
  intervalMs: number;
  lastError: string | null;
}

/** The prefix of an actor's objects in the bucket. */
export function actorPrefix(actor: ActorRef): string {
  return actor.startsWith("pair:") ? `pair/${actor.slice(5)}` : `${actor}/main`;
}

export function snapshotKey(actor: ActorRef, takenAt: number): string {
  return `${actorPrefix(actor)}/snapshots/${String(takenAt).padStart(13, "0")}.json`;
}

const takenAtOf = (key: string): number => Number(key.slice(key.lastIndexOf("/") + 1, -".json".length));

async function gzip(text: string): Promise<Uint8Array> {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function gunzip(body: ReadableStream): Promise<string> {
  return new Response(body.pipeThrough(new DecompressionStream("gzip"))).text();
}

/** Run `fn` over `items` with at most PARALLEL_REQUESTS at a time, results in order. */
async function inParallel<T, R>(items: readonly T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL_REQUESTS, items.length) }, worker));
  return out;
}

export interface ActorBackupOptions {
  /** Backups off when 0. */
  intervalMs: number;
  /** Reload what the actor holds in memory after its database was replaced. */
  afterRestore?: () => void;
  /** Live state a restore must not undo (a security decision), besides the audit log, which is always kept. */
  keep?: readonly Keeper[];
  /** Run the restore when nothing else of the actor is mid-way (e.g. the pair's order queue). */
  exclusive?: <T>(fn: () => Promise<T>) => Promise<T>;
  clock?: () => number;
}

/**
 * Returned by each backed-up actor's `backups()` (an RPC target), so the
 * Worker calls `stub.backups().backup()` without every actor repeating the
 * same methods.
 */
export class ActorBackup extends RpcTarget {
  /** The newest snapshot in the bucket; undefined until read in this life of the actor. */
  private latest: { key: string; manifest: BackupManifest } | null | undefined;
  private lastBackupAt: number | null = null;
  private lastGcAt = 0;
  private lastError: string | null = null;
  private queue: Promise<unknown> = Promise.resolve();

  private readonly intervalMs: number;
  private readonly clock: () => number;
  private readonly upSince: number;

  constructor(
    private readonly storage: DurableObjectStorage,
    private readonly bucket: R2Bucket,
    private readonly actor: ActorRef,
    private readonly options: ActorBackupOptions,
  ) {
    super();
    this.intervalMs = options.intervalMs;
    this.clock = options.clock ?? (() => Date.now());
    this.upSince = this.clock();
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** The state digest now (what a snapshot taken now would record). */
  digest(): string {
    return takeSnapshot(this.storage.sql).digest;
  }

  /**
   * Where the actor's backups stand. Answers even when the bucket cannot be
   * read (with that error): an unreadable bucket is a missed recovery point
   * that the alert must still see.
   */
  async status(): Promise<BackupStatus> {
    let latest: { key: string; manifest: BackupManifest } | null = null;
    let readError: string | null = null;
    try {
      latest = await this.latestSnapshot();
    } catch (err) {
      readError = String(err).slice(0, 300);
    }
    const now = this.clock();
    const lastBackupAt = this.lastBackupAt ?? latest?.manifest.takenAt ?? null;
    return {
      actor: this.actor,
      lastBackupAt,
      ageMs: lastBackupAt === null ? null : now - lastBackupAt,
      upForMs: now - this.upSince,
      lastSnapshot: latest?.key ?? null,
      intervalMs: this.intervalMs,
      lastError: this.lastError ?? readError,
    };
  }

  /** Back up when the interval has passed since the state was last known to be in R2 (the cron calls this every minute). */
  async backupIfDue(): Promise<BackupResult | null> {
    if (this.intervalMs === 0) return null;
    const last = this.lastBackupAt ?? (await this.latestSnapshot())?.manifest.takenAt ?? null;
    if (last !== null && this.clock() - last < this.intervalMs) return null;
    return this.backup();
  }

  /** Snapshot the database now and upload what the bucket does not have yet. */
  backup(): Promise<BackupResult> {
    return this.serial(async () => {
      try {
        const result = await this.backupNow();
        this.lastError = null;
        return result;
      } catch (err) {
        this.lastError = String(err).slice(0, 300);
        throw err;
      }
    });
  }

  private async backupNow(): Promise<BackupResult> {
    const latest = await this.latestSnapshot();
    // Synchronous read: one consistent point in time.
    const snap = takeSnapshot(this.storage.sql);
    const takenAt = this.clock();
    const rows = snap.tables.reduce((n, t) => n + t.rows, 0);
    const chunks = snap.tables.reduce((n, t) => n + t.chunks.length, 0);
    if (latest && latest.manifest.digest === snap.digest) {
      this.lastBackupAt = takenAt;
      return { actor: this.actor, snapshot: latest.key, takenAt, digest: snap.digest, unchanged: true, rows, chunks, uploadedChunks: 0, uploadedBytes: 0 };
    }
    const known = new Set(latest?.manifest.tables.flatMap((t) => t.chunks.map((c) => c.hash)) ?? []);
    const fresh = new Map<string, string>();
    for (const t of snap.tables) for (const c of t.chunks) if (!known.has(c.hash)) fresh.set(c.hash, c.body);
    const sizes = await inParallel([...fresh], async ([hash, body]) => {
      const bytes = await gzip(body);
      await this.bucket.put(`${actorPrefix(this.actor)}/chunks/${hash}`, bytes);
      return bytes.byteLength;
    });
    const manifest: BackupManifest = {
      format: 1,
      actor: this.actor,
      takenAt,
      digest: snap.digest,
      schema: snap.schema,
      tables: snap.tables.map((t) => ({ name: t.name, columns: t.columns, rows: t.rows, chunks: t.chunks.map((c) => ({ hash: c.hash, rows: c.rows })) })),
      uploaded: { chunks: fresh.size, bytes: sizes.reduce((a, b) => a + b, 0) },
    };
    const key = snapshotKey(this.actor, takenAt);
    // The manifest goes last: a snapshot is listed only once all its chunks are in.
    await this.bucket.put(key, JSON.stringify(manifest), { httpMetadata: { contentType: "application/json" } });
    this.latest = { key, manifest };
    this.lastBackupAt = takenAt;
    await this.prune(takenAt);
    return { actor: this.actor, snapshot: key, takenAt, digest: snap.digest, unchanged: false, rows, chunks, uploadedChunks: fresh.size, uploadedBytes: manifest.uploaded.bytes };
  }

  /** Snapshot keys, newest first (at most `limit`). */
  async list(limit = 100): Promise<{ key: string; takenAt: number }[]> {
    const keys = await this.snapshotKeys();
    return keys.reverse().slice(0, limit).map((key) => ({ key, takenAt: takenAtOf(key) }));
  }

  private async snapshotKeys(): Promise<string[]> {
    const keys: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.bucket.list({ prefix: `${actorPrefix(this.actor)}/snapshots/`, ...(cursor ? { cursor } : {}) });
      keys.push(...page.objects.map((o) => o.key));
      cursor = page.truncated ? page.cursor : undefined;
    } while (cursor);
    return keys.sort();
  }

  private async readManifest(key: string): Promise<BackupManifest | null> {
    const object = await this.bucket.get(key);
    if (!object) return null;
    const parsed = v.safeParse(BackupManifest, await object.json());
    if (!parsed.success) throw new Error(`backup manifest ${key} is not valid: ${parsed.issues[0]?.message}`);
    if (parsed.output.actor !== this.actor) throw new Error(`backup manifest ${key} belongs to ${parsed.output.actor}, not ${this.actor}`);
    if (digestOf(parsed.output.schema, parsed.output.tables) !== parsed.output.digest) throw new Error(`backup manifest ${key}: chunk list does not match its digest`);
    return parsed.output;
  }

  private async latestSnapshot(): Promise<{ key: string; manifest: BackupManifest } | null> {
    if (this.latest === undefined) {
      const key = (await this.snapshotKeys()).at(-1);
      const manifest = key ? await this.readManifest(key) : null;
      this.latest = key && manifest ? { key, manifest } : null;
    }
    return this.latest;
  }

  /**
   * Rebuild the database from a snapshot (the newest when `key` is absent).
   * Every chunk is checked against its hash and the result against the
   * snapshot's digest before it commits; on any mismatch nothing changes.
   * The live audit log and what the actor's keepers name survive it.
   * The caller reloads whatever it holds in memory.
   */
  restore(key?: string): Promise<RestoreOutcome> {
    const exclusive = this.options.exclusive ?? ((fn) => fn());
    return this.serial(() => exclusive(() => this.restoreNow(key)));
  }

  private async restoreNow(key: string | undefined): Promise<RestoreOutcome> {
    const notFound = (message: string) => ({ ok: false, code: "snapshot_not_found", message }) as const;
    const chosen = key ?? (await this.snapshotKeys()).at(-1);
    if (!chosen) return notFound(`no snapshot of ${this.actor} in the bucket`);
    if (!chosen.startsWith(`${actorPrefix(this.actor)}/snapshots/`)) return notFound(`${chosen} is not a snapshot of ${this.actor}`);
    const manifest = await this.readManifest(chosen);
    if (!manifest) return notFound(`no snapshot ${chosen}`);
    const tables = await Promise.all(
      manifest.tables.map(async (t) => ({
        name: t.name,
        columns: t.columns,
        bodies: await inParallel(t.chunks, (c) => this.readChunk(c.hash)),
      })),
    );
    restoreSnapshot(this.storage, { schema: manifest.schema, tables, digest: manifest.digest }, [keepAuditLog, ...(this.options.keep ?? [])]);
    this.latest = { key: chosen, manifest };
    this.lastBackupAt = this.clock();
    this.options.afterRestore?.();
    return { ok: true, actor: this.actor, snapshot: chosen, takenAt: manifest.takenAt, digest: manifest.digest, rows: manifest.tables.reduce((n, t) => n + t.rows, 0) };
  }

  private async readChunk(hash: string): Promise<string> {
    const object = await this.bucket.get(`${actorPrefix(this.actor)}/chunks/${hash}`);
    if (!object) throw new Error(`backup chunk ${hash} of ${this.actor} is missing`);
    const body = await gunzip(object.body);
    if (createHash("sha256").update(body).digest("hex") !== hash) throw new Error(`backup chunk ${hash} of ${this.actor} is corrupt`);
    return body;
  }

  /** Drop snapshots outside the keep policy, then (hourly) chunks no kept snapshot needs. */
  private async prune(now: number): Promise<void> {
    const keys = await this.snapshotKeys();
    const keep = new Set(keys.slice(-SNAPSHOTS_KEPT));
    const newestOfDay = new Map<number, string>();
    for (const key of keys) {
      const at = takenAtOf(key);
      if (now - at <= DAILY_KEPT_DAYS * DAY_MS) newestOfDay.set(Math.floor(at / DAY_MS), key);
    }
    for (const key of newestOfDay.values()) keep.add(key);
    const drop = keys.filter((k) => !keep.has(k));
    if (drop.length > 0) await this.bucket.delete(drop);
    if (now - this.lastGcAt < GC_EVERY_MS) return;
    this.lastGcAt = now;
    const needed = new Set<string>();
    for (const key of keep) {
      const manifest = key === this.latest?.key ? this.latest.manifest : await this.readManifest(key);
      for (const t of manifest?.tables ?? []) for (const c of t.chunks) needed.add(c.hash);
    }
    const unneeded: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.bucket.list({ prefix: `${actorPrefix(this.actor)}/chunks/`, ...(cursor ? { cursor } : {}) });
      for (const o of page.objects) if (!needed.has(o.key.slice(o.key.lastIndexOf("/") + 1))) unneeded.push(o.key);
      cursor = page.truncated ? page.cursor : undefined;
    } while (cursor);
    // R2 deletes at most 1000 keys per call.
    for (let i = 0; i < unneeded.length; i += 1000) await this.bucket.delete(unneeded.slice(i, i + 1000));
  }
}
