import type { ActorRef } from "../../schemas/backup.ts";

/** Every actor whose state is backed up, for a runtime serving `pairs`. */
export function backedUpActors(pairs: readonly string[]): ActorRef[] {
  return ["coordinator", "gatekeeper", ...pairs.map((p) => `pair:${p}` as const)];
}

/** The actor's backups (its ActorBackup RPC target). */
export function backupsOf(env: Env, actor: ActorRef) {
  if (actor === "coordinator") return env.Coordinator.getByName("main").backups();
  if (actor === "gatekeeper") return env.Gatekeeper.getByName("main").backups();
  return env.Pair.getByName(actor.slice("pair:".length)).backups();
}

/** Where a restore of `actor` is written down: an audit log that the restore does not replace. */
export function auditKeeperOf(env: Env, actor: ActorRef) {
  return actor === "coordinator" ? env.Gatekeeper.getByName("main") : env.Coordinator.getByName("main");
}
