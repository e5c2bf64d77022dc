import { routePartykitRequest } from "partyserver";
import { configFor } from "./config.ts";
import { authorize, isWebSocketUpgrade, type Identity } from "./http/auth.ts";
import { closeEndedKeySocketsEverywhere, KEY_ID_HEADER } from "../actors/key-sockets.ts";
import type { Access } from "../schemas/auth.ts";
import { errorResponse, toErrorResponse } from "./http/errors.ts";
import { enforceIpRateLimit } from "./http/rate-limit.ts";
import { buildRouter } from "./http/routes.ts";
import { ROLE_HEADER } from "../actors/pair.ts";
import { DEFAULT_ALERT_THRESHOLDS, evaluateAlerts } from "./alerts/rules.ts";
import { routeMetrics } from "./http/route-metrics.ts";
import { logEvent } from "./log.ts";
import { backedUpActors, backupStatuses, backupsOf } from "../actors/backup/backed-up-actors.ts";

export { Pair } from "../actors/pair.ts";
export { SignalHub } from "../actors/signal-hub.ts";
export { Gatekeeper } from "../actors/gatekeeper.ts";
export { Coordinator } from "../actors/coordinator.ts";
export { Backtest } from "../actors/backtest.ts";
export { Feed } from "../actors/feed.ts";

const router = buildRouter();

/** Broadcast-only WebSocket streams, each a SignalHub instance. */
const STREAMS: Partial<Record<string, { hub: string; access: Access; what: string }>> = {
  "/api/signals/realtime": { hub: "all", access: "viewer", what: "signal" },
  "/api/admin/alerts/realtime": { hub: "admin", access: "admin", what: "alert" },
};

/** Request bodies up to this size are read to the end when a response leaves them unread. */
const DRAIN_BODY_MAX_BYTES = 1024 * 1024;

export default {
  async fetch(request, env, ctx): Promise<Response> {
    const response = await handle(request, env, ctx);
    // A response sent before its request body was read (a 401, 404 or 429 to a POST) makes
    // workerd reset the client's keep-alive connection when the Worker sits behind the static
    // assets router (locally, Miniflare): the client's next request on it failed with
    // ECONNRESET about 4% of the time. Reading the rest of a small body first keeps it usable.
    if (request.body && !request.bodyUsed && Number(request.headers.get("content-length") ?? Infinity) <= DRAIN_BODY_MAX_BYTES) {
      await request.arrayBuffer().catch(() => undefined);
    }
    return response;
  },

  /** Every minute (and once at local start): make sure each pair's alarm loop runs, back up actors that are due, evaluate the alerts. */
  async scheduled(_controller, env, ctx): Promise<void> {
    ctx.waitUntil(runMinute(env));
  },
} satisfies ExportedHandler<Env>;

/**
 * The cron's minute. Each step stands alone: a pair that cannot wake (or any
 * other step failing) is logged and never skips the backups or the alerts
 * after it, since those are what notice that something is wrong.
 */
async function runMinute(env: Env): Promise<void> {
  const config = configFor(env);
  const step = (event: string, run: () => Promise<unknown>, fields: Record<string, unknown> = {}) =>
    run().then(
      () => undefined,
      (err: unknown) => logEvent("error", event, { ...fields, error: String(err).slice(0, 300) }),
    );
  if (config.feed === "oanda") await step("feed.wake_failed", () => env.Feed.getByName("main").wake());
  await Promise.all(config.pairs.map((pair) => step("pair.wake_failed", () => env.Pair.getByName(pair).wake(), { pair })));
  // The backstop of revocation: a socket whose key ended, and whose room missed the notice, closes here.
  await step("sockets.key_check_failed", () => closeEndedKeySocketsEverywhere(env));
  await step("retention.failed", () => runAuditRetention(env));
  await step("backup.failed", () => backupDueActors(env, config.pairs));
  await step("alert.evaluation_failed", () => evaluateAndRaiseAlerts(env));
}

/** Each actor backs itself up when its interval has passed; one failing never stops the others. */
async function backupDueActors(env: Env, pairs: readonly string[]): Promise<void> {
  const actors = backedUpActors(pairs);
  const settled = await Promise.allSettled(actors.map((a) => backupsOf(env, a).backupIfDue()));
  settled.forEach((r, i) => {
    if (r.status === "rejected") logEvent("error", "backup.failed", { actor: actors[i], error: String(r.reason).slice(0, 300) });
    else if (r.value && !r.value.unchanged) logEvent("info", "backup.done", { actor: actors[i], snapshot: r.value.snapshot, uploadedChunks: r.value.uploadedChunks, uploadedBytes: r.value.uploadedBytes });
  });
}

async function handle(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
  try {
    await enforceIpRateLimit(request, env);
    const url = new URL(request.url);
    const stream = STREAMS[url.pathname];
    if (stream) {
      if (!isWebSocketUpgrade(request)) {
        return errorResponse(426, "upgrade_required", `the ${stream.what} stream speaks WebSocket only`);
      }
      const who = await authorize(request, env, stream.access, true);
      return env.SignalHub.getByName(stream.hub).fetch(withVerifiedKeyId(request, who));
    }
    if (url.pathname.startsWith("/parties/")) return await routeRoom(request, env);
    const response: Response | undefined = await router.fetch(request, env, ctx);
    return response ?? errorResponse(404, "not_found", "no such route");
  } catch (err) {
    return toErrorResponse(err);
  }
}

/**
 * Pair rooms: market data needs the "market" access; the caller's role (or
 * none) is passed to the room in a header the Worker alone sets, so trading
 * events reach keyed connections only.
 */
async function routeRoom(request: Request, env: Env): Promise<Response> {
  const config = configFor(env);
  if (!isWebSocketUpgrade(request)) {
    return errorResponse(426, "upgrade_required", "rooms speak WebSocket only");
  }
  const who = await authorize(request, env, "market", true);
  const forwarded = withVerifiedKeyId(request, who);
  forwarded.headers.delete(ROLE_HEADER);
  if (who) forwarded.headers.set(ROLE_HEADER, who.role);
  const room = await routePartykitRequest(forwarded, env, {
    onBeforeConnect: (_req, lobby) =>
      lobby.className === "Pair" && config.pairs.includes(lobby.name)
        ? undefined
        : errorResponse(404, "unknown_pair", `no room for ${lobby.name}`, { pairs: config.pairs }),
  });
  return room ?? errorResponse(404, "not_found", "no such room");
}

/** The request as a socket's actor gets it: with the id of the key the Worker verified (none sent by the client is kept), so the socket can end with its key. */
function withVerifiedKeyId(request: Request, who: Identity | null): Request {
  const forwarded = new Request(request);
  forwarded.headers.delete(KEY_ID_HEADER);
  if (who) forwarded.headers.set(KEY_ID_HEADER, who.keyId);
  return forwarded;
}

/** The alert rules over the runtime's current figures; the coordinator records, broadcasts and delivers. */
export async function evaluateAndRaiseAlerts(env: Env): Promise<void> {
  const config = configFor(env);
  const coordinator = env.Coordinator.getByName("main");
  const [settled, backups, heartbeat, feed] = await Promise.all([
    Promise.allSettled(config.pairs.map((p) => env.Pair.getByName(p).metrics())),
    backupStatuses(env, config.pairs),
    coordinator.heartbeatAt().catch(() => null),
    config.feed === "oanda" ? env.Feed.getByName("main").status().catch(() => null) : null,
  ]);
  // A pair that cannot answer is logged and left out: the others' alerts still go out.
  const pairs = settled.flatMap((r, i) => {
    if (r.status === "fulfilled") return [r.value];
    logEvent("error", "alert.pair_unreachable", { pair: config.pairs[i], error: String(r.reason).slice(0, 300) });
    return [];
  });
  const alerts = evaluateAlerts({
    nowMs: Date.now(),
    routes: routeMetrics(),
    pairs: pairs.map((p) => ({
      pair: p.pair, lastTickTs: p.lastTickTs, upSinceMs: p.upSinceMs, rejectionsLastMinute: p.rejectionsLastMinute, latencyMs: p.latencyMs,
      brokerConsecutiveFailures: p.broker.consecutiveFailures, positionCheck: p.positionCheck, suspendedStrategies: p.suspendedStrategies,
    })),
    backups,
    feedState: config.feed === "oanda" ? (feed?.stream?.state ?? "stopped") : null,
    coordinatorHeartbeatMs: heartbeat,
    thresholds: DEFAULT_ALERT_THRESHOLDS,
  });
  for (const a of alerts) logEvent("warn", "alert.active", { ...a });
  await coordinator.applyAlerts(alerts).catch((err: unknown) => logEvent("error", "alert.coordinator_unreachable", { error: String(err) }));
}

/** The Coordinator's and Gatekeeper's audit-log retention (each runs at most hourly; the pairs run theirs in wake). */
async function runAuditRetention(env: Env): Promise<void> {
  const actors = { coordinator: env.Coordinator.getByName("main"), gatekeeper: env.Gatekeeper.getByName("main") };
  await Promise.all(
    Object.entries(actors).map(([name, stub]) =>
      stub.runRetention().then(
        (run) => (run ? logEvent("info", "retention.audit", { actor: name, ...run }) : undefined),
        (err: unknown) => logEvent("error", "retention.failed", { actor: name, error: String(err) }),
      ),
    ),
  );
}
