/** `backup`: every actor's state in the R2 backup bucket: status, snapshots, back up now, restore. */
import { confirm } from "./admin.ts";
import { age, api, isoMinute, noPositional, parseFlags, positiveInt, table, UsageError, type Ctx } from "./common.ts";

export const BACKUP_HELP = `usage: fxrt backup status [--json]
       fxrt backup list <ACTOR> [--limit N] [--json]
       fxrt backup now [ACTOR ...] [--json]
       fxrt backup restore <ACTOR> [--snapshot KEY] [--yes] [--json]

Backups of every actor's SQLite state in R2 (admin key). ACTOR is coordinator,
gatekeeper or pair:EUR_USD. The runtime backs each actor up every
BACKUP_INTERVAL_SECONDS (at most 4 minutes, checked by a 1-minute cron: the
state in R2 is at most 5 minutes old), uploading only changed chunks.
  status    last backup of every actor, its age and state: ok; LATE when
            older than the interval plus the cron's minute allow (is the
            schedule running?); ERROR when the last backup failed; off
  list      one actor's snapshots, newest first, and its state digest now
  now       back up now (all actors, or the ones named)
  restore   rebuild the actor from a snapshot (default: the newest); every
            chunk and the resulting state digest are checked, or nothing
            changes. Replaces the actor's orders, positions and history with
            the snapshot's: halt trading first. Asks for confirmation on a
            terminal; elsewhere --yes is required.`;

interface Status {
  actor: string;
  lastBackupAt: number | null;
  /** On the actor's clock, the one that stamped lastBackupAt. */
  ageMs: number | null;
  /** How long the actor has been up: what judges one never backed up. */
  upForMs: number;
  lastSnapshot: string | null;
  /** 0: backups off (BACKUP_INTERVAL_SECONDS=0). */
  intervalMs: number;
  lastError: string | null;
}

/** The cron's period: a backup falls due at the first run after its interval, so it can be this much later. */
const CRON_PERIOD_MS = 60_000;

/**
 * One actor's backup state. Past interval + one cron period no scheduled run
 * has backed it up: LATE, even without an error (a schedule that stopped
 * running raises none). Never backed up counts from the actor's start, as the
 * backup_missed alert does.
 */
export function backupState(s: Status): "ok" | "LATE" | "ERROR" | "off" {
  if (s.lastError) return "ERROR";
  if (s.intervalMs === 0) return "off";
  return (s.ageMs ?? s.upForMs) > s.intervalMs + CRON_PERIOD_MS ? "LATE" : "ok";
}
interface Result {
  actor: string;
  snapshot: string;
  digest: string;
  unchanged: boolean;
  rows: number;
  chunks: number;
  uploadedChunks: number;
  uploadedBytes: number;
}

const ACTOR = /^(coordinator|gatekeeper|pair:[A-Z]{3}_[A-Z]{3})$/;

function actorArg(text: string | undefined, sub: string): string {
  if (text === undefined) throw new UsageError(`backup ${sub} needs an ACTOR (coordinator, gatekeeper or pair:EUR_USD)`, "backup");
  if (!ACTOR.test(text)) throw new UsageError(`'${text}' is not an actor: coordinator, gatekeeper or pair:EUR_USD`, "backup");
  return text;
}

export async function backup(ctx: Ctx, args: readonly string[]): Promise<number> {
  const parsed = parseFlags("backup", args, { values: ["--limit", "--snapshot"] });
  const [sub, ...rest] = parsed.positional;
  const print = (value: unknown, lines: () => string[]) => {
    if (ctx.json) ctx.io.out(JSON.stringify(value));
    else for (const line of lines()) ctx.io.out(line);
    return 0;
  };
  if (sub === "status") {
    noPositional("backup", { ...parsed, positional: rest });
    const res = await api<{ actors: Status[] }>(ctx, "GET", "/api/admin/backups");
    const judged = { ...res, actors: res.actors.map((a) => ({ ...a, state: backupState(a) })) };
    return print(judged, () =>
      table(
        ["actor", "last backup (UTC)", "age", "state"],
        judged.actors.map((a) => [a.actor, a.lastBackupAt === null ? "never" : isoMinute(a.lastBackupAt), a.lastBackupAt === null ? "-" : age(a.lastBackupAt), a.state]),
      ),
    );
  }
  if (sub === "list") {
    const actor = actorArg(rest[0], "list");
    const limit = parsed.flags.has("--limit") ? positiveInt("backup", "--limit", parsed.flags.get("--limit")!) : 20;
    const res = await api<{ digest: string; snapshots: { key: string; takenAt: number }[] }>(ctx, "GET", `/api/admin/backups?actor=${actor}&limit=${limit}`);
    return print(res, () => [`${actor} state digest now: ${res.digest.slice(0, 16)}`, ...table(["snapshot", "taken (UTC)"], res.snapshots.map((s) => [s.key, isoMinute(s.takenAt)]))]);
  }
  if (sub === "now") {
    const actors = rest.map((a) => actorArg(a, "now"));
    const res = await api<{ results: Result[] }>(ctx, "POST", "/api/admin/backups", actors.length > 0 ? { actors } : {});
    return print(res, () =>
      table(
        ["actor", "rows", "chunks", "uploaded", "KB", "digest"],
        res.results.map((r) => [r.actor, String(r.rows), String(r.chunks), r.unchanged ? "unchanged" : String(r.uploadedChunks), (r.uploadedBytes / 1024).toFixed(1), r.digest.slice(0, 12)]),
      ),
    );
  }
  if (sub === "restore") {
    const actor = actorArg(rest[0], "restore");
    if (rest.length > 1) throw new UsageError(`unexpected argument '${rest[1]}'`, "backup");
    const snapshot = parsed.flags.get("--snapshot");
    await confirm(ctx, "backup", `Replace ${actor}'s state at ${ctx.url} with ${snapshot ?? "its newest snapshot"}?`);
    const res = await api<{ snapshot: string; takenAt: number; digest: string; rows: number }>(ctx, "POST", "/api/admin/backups/restore", { actor, ...(snapshot ? { snapshot } : {}) });
    return print(res, () => [`restored ${actor} from ${res.snapshot}`, `taken ${isoMinute(res.takenAt)} UTC, ${res.rows} rows, digest ${res.digest.slice(0, 16)} (checked)`]);
  }
  throw new UsageError(sub === undefined ? "backup needs status, list, now or restore" : `unknown backup command '${sub}'`, "backup");
}
