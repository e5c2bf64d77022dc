/**
 * A socket opened with an API key ends when the key does. The Worker tells
 * the room or stream which key opened a socket (KEY_ID_HEADER, set by the
 * Worker alone); the actor keeps it with the socket and closes the socket
 * once the Gatekeeper no longer holds the key as active (revoked, or gone
 * with a restore).
 *
 * Two triggers, one check: a revocation (and a Gatekeeper restore) asks every
 * room and stream at once, and the cron asks again every minute, the
 * backstop for a notification lost on the way.
 */
import type { Connection } from "partyserver";
import { configFor } from "../src/config.ts";
import { logEvent } from "../src/log.ts";

/** Set by the Worker alone (it strips any sent by a client): the id of the key a socket was opened with. */
export const KEY_ID_HEADER = "x-fxrt-key-id";

/** Close code and reason of a socket whose key ended (4000-4999: the application's own; 4401 as HTTP 401). */
export const KEY_ENDED_CLOSE = { code: 4401, reason: "key revoked" } as const;

/** The bootstrap key is the ADMIN_API_KEY secret, not a Gatekeeper key: changing the secret redeploys, which closes every socket. */
const BOOTSTRAP = "bootstrap";

/**
 * Close the sockets whose key the Gatekeeper no longer holds as active; the
 * closed ones are returned (for the caller to drop from its own lists).
 */
export async function closeSocketsOfEndedKeys<C extends Connection<unknown>>(
  env: Env,
  sockets: Iterable<readonly [C, { keyId?: string } | null | undefined]>,
): Promise<C[]> {
  const byKey = new Map<string, C[]>();
  for (const [conn, state] of sockets) {
    const keyId = state?.keyId;
    if (!keyId || keyId === BOOTSTRAP) continue;
    byKey.set(keyId, [...(byKey.get(keyId) ?? []), conn]);
  }
  if (byKey.size === 0) return [];
  const active = new Set(await env.Gatekeeper.getByName("main").activeKeyIds([...byKey.keys()]));
  const closed: C[] = [];
  for (const [keyId, conns] of byKey) {
    if (active.has(keyId)) continue;
    for (const conn of conns) {
      try {
        conn.close(KEY_ENDED_CLOSE.code, KEY_ENDED_CLOSE.reason);
      } catch {
        // Already closing.
      }
      closed.push(conn);
    }
  }
  return closed;
}

/**
 * Ask every room and stream to close the sockets of ended keys. One that
 * cannot be reached is logged; the next minute's cron asks again.
 */
export async function closeEndedKeySocketsEverywhere(env: Env): Promise<void> {
  const targets: [string, () => Promise<number>][] = [
    ...configFor(env).pairs.map((p): [string, () => Promise<number>] => [`pair:${p}`, () => env.Pair.getByName(p).closeEndedKeySockets()]),
    ...["all", "admin"].map((hub): [string, () => Promise<number>] => [`hub:${hub}`, () => env.SignalHub.getByName(hub).closeEndedKeySockets()]),
  ];
  const settled = await Promise.allSettled(targets.map(([, run]) => run()));
  settled.forEach((r, i) => {
    const actor = targets[i]![0];
    if (r.status === "rejected") logEvent("error", "sockets.key_check_failed", { actor, error: String(r.reason).slice(0, 300) });
    else if (r.value > 0) logEvent("info", "sockets.closed_ended_key", { actor, closed: r.value });
  });
}
