import * as v from "valibot";
import { EpochMs } from "./common.ts";

/** The actors whose state is backed up: each pair, the coordinator, the gatekeeper (API keys). */
export const ActorRef = v.union([
  v.literal("coordinator"),
  v.literal("gatekeeper"),
  v.pipe(v.string(), v.regex(/^pair:[A-Z]{3}_[A-Z]{3}$/, "actor must be coordinator, gatekeeper or pair:EUR_USD")),
]);
export type ActorRef = v.InferOutput<typeof ActorRef>;

const Hash = v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/));

/** One snapshot of one actor in the backup bucket: `<actor>/snapshots/<takenAt>.json`. */
export const BackupManifest = v.object({
  format: v.literal(1),
  actor: ActorRef,
  takenAt: EpochMs,
  digest: Hash,
  schema: v.array(v.object({ type: v.string(), name: v.string(), sql: v.string() })),
  tables: v.array(
    v.object({
      name: v.string(),
      columns: v.array(v.string()),
      rows: v.number(),
      chunks: v.array(v.object({ hash: Hash, rows: v.number() })),
    }),
  ),
  /** What this snapshot had to upload (the rest was already in the bucket). */
  uploaded: v.object({ chunks: v.number(), bytes: v.number() }),
});
export type BackupManifest = v.InferOutput<typeof BackupManifest>;

/** A snapshot's key, as listed: `pair/EUR_USD/snapshots/1764000000000.json`. */
export const SnapshotKey = v.pipe(v.string(), v.maxLength(200), v.regex(/^(pair\/[A-Z]{3}_[A-Z]{3}|coordinator\/main|gatekeeper\/main)\/snapshots\/\d{13}\.json$/, "not a snapshot key"));

/** POST /api/admin/backups: back up now (every actor when `actors` is absent). */
export const BackupNowBody = v.strictObject({
  actors: v.optional(v.pipe(v.array(ActorRef), v.minLength(1), v.maxLength(100))),
});

/** POST /api/admin/backups/restore: rebuild one actor from a snapshot (the latest when `snapshot` is absent). */
export const RestoreBody = v.strictObject({
  actor: ActorRef,
  snapshot: v.optional(SnapshotKey),
});
