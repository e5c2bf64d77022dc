import type { ActorRef } from "../../schemas/backup.ts";
import { logEvent } from "../../src/log.ts";
import type { BackupStatus } from "./actor-backup.ts";

/**
 * Every actor whose state is backed up, for a runtime serving `pairs`. Backtest
 * jobs are left out on purpose: one actor per job under a random id that
 * nothing lists, whose result is already in R2 (DATA) and reproducible; Feed
 * and SignalHub store nothing (docs/operations.md, Backups and restore).
 */
export function backedUpActors(pairs: readonly string[]): ActorRef[] {
  return ["coordinator", "gatekeeper", ...pairs.map((p) => `pair:${p}` as const)];
}

/** The actor's backups (its ActorBackup RPC target). */
export function backupsOf(env: Env, actor: ActorRef) {
  if (actor === "coordinator") return env.Coordinator.getByName("main").backups();
  if (actor === "gatekeeper") return env.Gatekeeper.getByName("main").backups();
  return env.Pair.getByName(actor.slice("pair:".length)).backups();
}

/**
 * Every backed-up actor's backup status (metrics, alerts). An actor that
 * cannot be reached at all is logged and left out, so one of them never
 * hides the others' figures.
 */
export async function backupStatuses(env: Env, pairs: readonly string[]): Promise<BackupStatus[]> {
  const actors = backedUpActors(pairs);
  const settled = await Promise.allSettled(actors.map((a) => backupsOf(env, a).status()));
  return settled.flatMap((r, i) => {
    if (r.status === "fulfilled") return [r.value];
    logEvent("error", "backup.status_unreachable", { actor: actors[i], error: String(r.reason).slice(0, 300) });
    return [];
  });
}

/** Where a restore of `actor` is written down: an audit log that the restore does not replace. */
export function auditKeeperOf(env: Env, actor: ActorRef) {
  return actor === "coordinator" ? env.Gatekeeper.getByName("main") : env.Coordinator.getByName("main");
}
