import { Router, type IRequest } from "itty-router";
import * as v from "valibot";
import { findInstrument, getInstrument } from "../domain/instruments.ts";
import { configFor, type RuntimeConfig } from "../config.ts";
import type { Access } from "../../schemas/auth.ts";
import { CreateKeyBody } from "../../schemas/auth.ts";
import { issuesToDetails } from "../../schemas/common.ts";
import { backtestSchemaFor } from "../../schemas/backtest.ts";
import type { BacktestJob } from "../../actors/backtest.ts";
import { CandleQuery } from "../../schemas/candle.ts";
import { TICK_BATCH_MAX, TICK_BODY_MAX_BYTES, TickBatch } from "../../schemas/tick.ts";
import { StrategiesBody } from "../../schemas/strategy.ts";
import { ExecuteBody } from "../../schemas/trading-events.ts";
import { RiskBody } from "../../schemas/trading.ts";
import { KillSwitchBody, PortfolioLimits } from "../../schemas/portfolio.ts";
import { ActorRef, BackupNowBody, RestoreBody } from "../../schemas/backup.ts";
import { BrokerCredentialsBody } from "../../schemas/broker.ts";
import { auditKeeperOf, backedUpActors, backupStatuses, backupsOf } from "../../actors/backup/backed-up-actors.ts";
import { authorize, type Identity } from "./auth.ts";
import { closeEndedKeySocketsEverywhere } from "../../actors/key-sockets.ts";
import { HttpError, errorResponse, toErrorResponse } from "./errors.ts";
import type { StrategyList } from "../../actors/pair.ts";
import { paramInfo, STRATEGY_NAMES, strategyEntry } from "../domain/strategy/catalog.ts";
import { readJson } from "./read-json.ts";
import { arrayForObject } from "./array-for-object.ts";
import { subPointIssues } from "../domain/trading/order-prices.ts";
import { recordRequest, routeMetrics } from "./route-metrics.ts";

type Args = [Env, ExecutionContext];
type Handler = (req: IRequest, env: Env, who: Identity | null) => Promise<Response> | Response;

const STRATEGIES_BODY_MAX_BYTES = 32 * 1024;
const SMALL_BODY_MAX_BYTES = 8 * 1024;
/** A portfolio backtest: up to 28 pairs, each with up to 8 strategies. */
const BACKTEST_BODY_MAX_BYTES = 256 * 1024;
const LimitQuery = v.object({
  limit: v.optional(v.pipe(v.string(), v.regex(/^\d+$/, "limit must be a positive integer"), v.transform(Number), v.minValue(1), v.maxValue(1000)), "100"),
});

export const API_VERSION = "0.1.0";

/** The pair named in the path, if the runtime serves it; otherwise a 404 that lists what is served. */
export function servedPair(config: RuntimeConfig, pair: string | undefined): string {
  if (pair && config.pairs.includes(pair)) return pair;
  throw new HttpError(404, "unknown_pair", `pair ${pair ?? ""} is not served here`, { pair, pairs: config.pairs });
}

/** A backed-up actor this runtime has (a pair must be served). */
function servedActor(env: Env, actor: ActorRef): ActorRef {
  if (actor.startsWith("pair:")) servedPair(configFor(env), actor.slice("pair:".length));
  return actor;
}

function pairOf(req: IRequest, env: Env) {
  return env.Pair.getByName(servedPair(configFor(env), req.params.pair));
}

function parseOrThrow<S extends v.GenericSchema>(schema: S, input: unknown, code: string): v.InferOutput<S> {
  const parsed = v.safeParse(schema, input);
  if (!parsed.success) throw new HttpError(400, code, "the request does not match the schema", issuesToDetails(parsed.issues));
  const array = arrayForObject(input, parsed.output);
  if (array !== null) throw new HttpError(400, code, "the request does not match the schema", [{ path: array, message: "expected an object, received an array" }]);
  return parsed.output;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
function backtestId(req: IRequest): string {
  const id = req.params.id ?? "";
  if (!UUID.test(id)) throw new HttpError(404, "unknown_backtest", "backtest ids are UUIDs", { id });
  return id;
}
const backtestLinks = (id: string) => ({ status: `/api/backtest/${id}`, result: `/api/backtest/${id}/result` });

const query = (req: IRequest) => Object.fromEntries(new URL(req.url).searchParams);
const limitOf = (req: IRequest) => parseOrThrow(LimitQuery, query(req), "invalid_query").limit;
const actorOf = (who: Identity | null) => (who ? `key:${who.keyId}` : "anonymous");

/** A pair's risk limits and fill model. */
async function pairRisk(req: IRequest, env: Env): Promise<Response> {
  const pair = pairOf(req, env);
  return Response.json({ pair: req.params.pair, limits: await pair.riskLimits(), fillModel: await pair.fillModel() });
}

interface Route {
  method: "get" | "post" | "put" | "delete";
  path: string;
  /** Who may call it: checked before the handler runs (src/http/auth.ts). */
  access: Access;
  handler: Handler;
}

/** Every HTTP route with the access it declares; tests walk this list to prove each one is guarded. */
/** A pair's strategy list as the RPC returns it (its params are plain JSON; the stub's types cannot say so). */
function strategyList(list: unknown): StrategyList {
  return list as StrategyList;
}

export const ROUTES: readonly Route[] = [
  {
    method: "get", path: "/api/health", access: "public",
    handler: (_req, env) => {
      const config = configFor(env);
      return Response.json({ status: "ok", version: API_VERSION, time: Date.now(), pairs: config.pairs.length, feed: config.feed });
    },
  },
  {
    // The strategies this deployment has (strategies/), with their parameters read from each schema.
    method: "get", path: "/api/strategies", access: "viewer",
    handler: () =>
      Response.json({
        strategies: STRATEGY_NAMES.map((name) => ({ name, description: strategyEntry(name)?.definition.description ?? "", params: paramInfo(name) })),
      }),
  },
  {
    method: "get", path: "/api/pairs", access: "market",
    handler: async (_req, env) => {
      const pairs = await Promise.all(
        configFor(env).pairs.map(async (symbol) => {
          const instrument = findInstrument(symbol)!;
          const status = await env.Pair.getByName(symbol).status();
          return {
            pair: symbol, base: instrument.base, quote: instrument.quote, pipLocation: instrument.pipLocation,
            displayPrecision: instrument.displayPrecision, lastTick: status.lastTick, room: `/parties/pair/${symbol}`,
          };
        }),
      );
      return Response.json({ pairs });
    },
  },
  { method: "get", path: "/api/pairs/:pair", access: "market", handler: async (req, env) => Response.json(await pairOf(req, env).status()) },
  {
    method: "post", path: "/api/pairs/:pair/ticks", access: "trader",
    handler: async (req, env) => {
      const pair = pairOf(req, env);
      const body = await readJson(req, TICK_BODY_MAX_BYTES);
      const ticks = (body as { ticks?: unknown } | null)?.ticks;
      if (Array.isArray(ticks) && ticks.length > TICK_BATCH_MAX) {
        throw new HttpError(413, "batch_too_large", `a batch holds at most ${TICK_BATCH_MAX} ticks`, { maxTicks: TICK_BATCH_MAX, received: ticks.length });
      }
      const batch = parseOrThrow(TickBatch, body, "invalid_ticks");
      if (batch.batchId === undefined) return Response.json(await pair.ingest(batch.ticks, batch.replay));
      const result = await pair.ingestBatch(batch.ticks, batch.replay, batch.batchId);
      if ("conflict" in result) throw new HttpError(409, "batch_id_conflict", "this batchId was sent before with other ticks: nothing was stored", result.conflict);
      return Response.json(result);
    },
  },
  {
    method: "get", path: "/api/pairs/:pair/candles", access: "market",
    handler: async (req, env) => Response.json(await pairOf(req, env).candles(parseOrThrow(CandleQuery, query(req), "invalid_query"))),
  },
  { method: "get", path: "/api/pairs/:pair/signals", access: "viewer", handler: async (req, env) => Response.json(await pairOf(req, env).signals(limitOf(req))) },
  {
    method: "get", path: "/api/pairs/:pair/orders", access: "viewer",
    handler: async (req, env) => Response.json({ pair: req.params.pair, orders: await pairOf(req, env).recentOrders(limitOf(req)) }),
  },
  {
    method: "get", path: "/api/pairs/:pair/positions", access: "viewer",
    handler: async (req, env) => Response.json({ pair: req.params.pair, positions: await pairOf(req, env).recentPositions(limitOf(req)) }),
  },
  {
    method: "get", path: "/api/pairs/:pair/rejections", access: "viewer",
    handler: async (req, env) => Response.json({ pair: req.params.pair, rejections: await pairOf(req, env).recentRejections(limitOf(req)) }),
  },
  {
    method: "post", path: "/api/trade/execute", access: "trader",
    handler: async (req, env) => {
      const body = parseOrThrow(ExecuteBody, await readJson(req, SMALL_BODY_MAX_BYTES), "invalid_order");
      const pair = servedPair(configFor(env), body.pair);
      if (body.type !== "market" && body.price === undefined) {
        throw new HttpError(400, "invalid_order", `a ${body.type} order needs a price`, [{ path: "price", message: "required for limit and stop orders" }]);
      }
      const subPoint = subPointIssues(body, getInstrument(pair));
      if (subPoint.length > 0) throw new HttpError(400, "invalid_order", "a price or distance is below one point of the pair", subPoint);
      const result = await env.Pair.getByName(pair).execute(body);
      if (!result.ok && "brokerError" in result) {
        throw new HttpError(502, "broker_unavailable", result.clientOrderId ? "the broker did not take the order: it is recorded and goes out (once) when the broker answers again" : "the broker could not be reached: nothing was sent", { clientOrderId: result.clientOrderId, error: result.brokerError });
      }
      if (!result.ok && "conflict" in result) {
        throw new HttpError(409, "client_order_id_conflict", "this clientOrderId already names another order: send a new id for a new order", { existing: result.conflict, requested: body });
      }
      if (!result.ok) throw new HttpError(422, "risk_rejected", `order refused by per-pair risk: ${result.rejection.type}`, result.rejection);
      return Response.json({ order: result.order, fills: result.fills, position: result.position });
    },
  },
  {
    method: "post", path: "/api/backtest/run", access: "trader",
    handler: async (req, env) => {
      // A portfolio: several pairs, each with its strategies; any other body is the single-pair shape.
      const raw = await readJson(req, BACKTEST_BODY_MAX_BYTES);
      const request = parseOrThrow(backtestSchemaFor(raw), raw, "invalid_backtest");
      if ("pair" in request && !findInstrument(request.pair)) throw new HttpError(400, "invalid_backtest", `unknown pair ${request.pair}`, [{ path: "pair", message: "not a known instrument" }]);
      const id = crypto.randomUUID();
      // The raw body is stored: defaults are applied again when it runs, by the same schema.
      // RPC typing cannot see through the job's JSON fields (request, summary): the answer is a BacktestJob.
      const job = (await env.Backtest.getByName(id).start(id, raw)) as BacktestJob;
      return Response.json({ ...job, links: backtestLinks(id) }, { status: 202 });
    },
  },
  {
    method: "get", path: "/api/backtest/:id", access: "viewer",
    handler: async (req, env) => {
      const id = backtestId(req);
      const job = (await env.Backtest.getByName(id).status()) as BacktestJob | null;
      if (!job) throw new HttpError(404, "unknown_backtest", `no backtest ${id}`);
      return Response.json({ ...job, links: backtestLinks(id) });
    },
  },
  {
    method: "get", path: "/api/backtest/:id/result", access: "viewer",
    handler: async (req, env) => {
      const id = backtestId(req);
      const actor = env.Backtest.getByName(id);
      const job = (await actor.status()) as BacktestJob | null;
      if (!job) throw new HttpError(404, "unknown_backtest", `no backtest ${id}`);
      if (job.status === "failed") throw new HttpError(422, "backtest_failed", job.error?.message ?? "the backtest failed", job.error);
      const result = job.status === "done" ? await actor.result() : null;
      if (result === null) throw new HttpError(409, "backtest_not_done", `backtest ${id} is ${job.status}`, { status: job.status, progress: job.progress });
      return new Response(result, { headers: { "content-type": "application/json" } });
    },
  },
  {
    method: "get", path: "/api/admin/pairs/:pair/strategies", access: "admin",
    handler: async (req, env) => Response.json({ pair: req.params.pair, ...strategyList(await pairOf(req, env).strategies()) }),
  },
  {
    method: "put", path: "/api/admin/pairs/:pair/strategies", access: "admin",
    handler: async (req, env, who) => {
      const pair = pairOf(req, env);
      const body = parseOrThrow(StrategiesBody, await readJson(req, STRATEGIES_BODY_MAX_BYTES), "invalid_strategies");
      return Response.json({ pair: req.params.pair, ...strategyList(await pair.setStrategies(body.strategies, actorOf(who))) });
    },
  },
  {
    // A strategy suspended by a failed step trades again from the next candle.
    method: "post", path: "/api/admin/pairs/:pair/strategies/:id/resume", access: "admin",
    handler: async (req, env, who) => {
      const id = req.params.id ?? "";
      const pair = pairOf(req, env);
      const out = await pair.resumeStrategy(id, actorOf(who));
      if (out === null) throw new HttpError(404, "unknown_strategy", `no strategy ${JSON.stringify(id.slice(0, 40))} on ${req.params.pair}`);
      return Response.json({ pair: req.params.pair, id, ...(out as { resumed: boolean }), ...strategyList(await pair.strategies()) });
    },
  },
  { method: "get", path: "/api/admin/pairs/:pair/risk", access: "admin", handler: pairRisk },
  // The same, read-only, for anyone who may watch the pair's trading: it explains its refusals.
  { method: "get", path: "/api/pairs/:pair/risk", access: "viewer", handler: pairRisk },
  {
    method: "put", path: "/api/admin/pairs/:pair/risk", access: "admin",
    handler: async (req, env, who) => {
      const pair = pairOf(req, env);
      const body = parseOrThrow(RiskBody, await readJson(req, SMALL_BODY_MAX_BYTES), "invalid_risk");
      const limits = body.limits ? await pair.setRiskLimits(body.limits, actorOf(who)) : await pair.riskLimits();
      const fillModel = body.fillModel ? await pair.setFillModel(body.fillModel, actorOf(who)) : await pair.fillModel();
      return Response.json({ pair: req.params.pair, limits, fillModel });
    },
  },
  { method: "get", path: "/api/admin/keys", access: "admin", handler: async (_req, env) => Response.json({ keys: await env.Gatekeeper.getByName("main").listKeys() }) },
  {
    method: "post", path: "/api/admin/keys", access: "admin",
    handler: async (req, env, who) => {
      const body = parseOrThrow(CreateKeyBody, await readJson(req, SMALL_BODY_MAX_BYTES), "invalid_key_request");
      // The key itself is in this answer only: it is stored as a hash.
      return Response.json(await env.Gatekeeper.getByName("main").createKey(body.role, body.label, actorOf(who)), { status: 201 });
    },
  },
  {
    method: "delete", path: "/api/admin/keys/:id", access: "admin",
    handler: async (req, env, who) => {
      const revoked = await env.Gatekeeper.getByName("main").revokeKey(String(req.params.id), actorOf(who));
      if (!revoked) throw new HttpError(404, "unknown_key", "no key with this id");
      // Sockets opened with the key close now (the cron's minute check is the backstop).
      await closeEndedKeySocketsEverywhere(env);
      return Response.json(revoked);
    },
  },
  {
    method: "get", path: "/api/admin/audit", access: "admin",
    handler: async (req, env) => {
      const limit = limitOf(req);
      const [keys, portfolio, pairs] = await Promise.all([
        env.Gatekeeper.getByName("main").auditLog(limit),
        env.Coordinator.getByName("main").auditLog(limit),
        Promise.all(configFor(env).pairs.map((p) => env.Pair.getByName(p).auditLog(limit))),
      ]);
      const entries = [...keys, ...portfolio, ...pairs.flat()]
        .sort((a, b) => b.at - a.at)
        .slice(0, limit)
        .map(({ id: _id, before, after, ...e }) => ({ ...e, before: before === null ? null : JSON.parse(before), after: after === null ? null : JSON.parse(after) }));
      return Response.json({ entries });
    },
  },
  {
    method: "get", path: "/api/metrics", access: "viewer",
    handler: async (req, env) => {
      const config = configFor(env);
      const [pairs, portfolio, feed, backupList] = await Promise.all([
        Promise.all(config.pairs.map((p) => env.Pair.getByName(p).metrics())),
        env.Coordinator.getByName("main").portfolio(),
        config.feed === "oanda" ? env.Feed.getByName("main").status() : null,
        backupStatuses(env, config.pairs),
      ]);
      // Each actor's recovery point: how old its state in R2 is (the backup_missed alert's figure).
      const backups = backupList.map((b) => ({ actor: b.actor, ageMs: b.ageMs, failing: b.lastError !== null }));
      const metrics = { time: Date.now(), trading: portfolio.trading.state, routes: routeMetrics(), feed, pairs, backups };
      const url = new URL(req.url);
      if (url.searchParams.get("format") === "prometheus" || (req.headers.get("accept") ?? "").includes("text/plain")) {
        return new Response(toPrometheus(metrics), { headers: { "content-type": "text/plain; version=0.0.4" } });
      }
      return Response.json(metrics);
    },
  },
  { method: "get", path: "/api/admin/portfolio", access: "admin", handler: async (_req, env) => Response.json(await env.Coordinator.getByName("main").portfolio()) },
  { method: "get", path: "/api/admin/limits", access: "admin", handler: async (_req, env) => Response.json(await env.Coordinator.getByName("main").limits()) },
  {
    method: "put", path: "/api/admin/limits", access: "admin",
    handler: async (req, env, who) => {
      const body = parseOrThrow(PortfolioLimits, await readJson(req, SMALL_BODY_MAX_BYTES), "invalid_limits");
      return Response.json(await env.Coordinator.getByName("main").setLimits(body, actorOf(who)));
    },
  },
  {
    method: "post", path: "/api/admin/kill-switch", access: "admin",
    handler: async (req, env, who) => {
      const body = parseOrThrow(KillSwitchBody, await readJson(req, SMALL_BODY_MAX_BYTES), "invalid_kill_switch");
      return Response.json(await env.Coordinator.getByName("main").killSwitch(body.action, body.reason ?? "", actorOf(who)));
    },
  },
  {
    method: "get", path: "/api/admin/broker", access: "admin",
    handler: async (_req, env) => {
      const config = configFor(env);
      const broker = config.broker;
      const [credentials, account, feed, pairs] = await Promise.all([
        env.Coordinator.getByName("main").brokerCredentialsInfo(),
        env.Coordinator.getByName("main").brokerAccount(),
        config.feed === "oanda" ? env.Feed.getByName("main").status() : null,
        Promise.all(config.pairs.map((p) => env.Pair.getByName(p).metrics())),
      ]);
      return Response.json({
        broker: broker.kind,
        feed: config.feed,
        oanda: { environment: broker.oanda.environment, apiUrl: broker.oanda.apiUrl, streamUrl: broker.oanda.streamUrl },
        credentials,
        account,
        stream: feed,
        pairs: pairs.map((m) => ({ pair: m.pair, broker: m.broker, positionCheck: m.positionCheck })),
      });
    },
  },
  {
    method: "put", path: "/api/admin/broker/credentials", access: "admin",
    handler: async (req, env, who) => {
      const body = parseOrThrow(BrokerCredentialsBody, await readJson(req, SMALL_BODY_MAX_BYTES), "invalid_credentials");
      const stored = await env.Coordinator.getByName("main").setBrokerCredentials(body.accountId, body.token, actorOf(who));
      if (!stored.ok) throw new HttpError(409, stored.code, stored.message);
      const config = configFor(env);
      // Connections made with the old credentials are dropped; the next call uses the new ones.
      await Promise.all(config.pairs.map((p) => env.Pair.getByName(p).reconnectBroker()));
      if (config.feed === "oanda") await env.Feed.getByName("main").restart();
      return Response.json(stored.info);
    },
  },
  {
    method: "get", path: "/api/admin/backups", access: "admin",
    handler: async (req, env) => {
      const one = query(req).actor;
      if (one === undefined) {
        const actors = backedUpActors(configFor(env).pairs);
        // ageMs comes from each actor, on the clock that stamped its lastBackupAt.
        const statuses = await Promise.all(actors.map((a) => backupsOf(env, a).status()));
        return Response.json({ time: Date.now(), actors: statuses });
      }
      const actor = servedActor(env, parseOrThrow(ActorRef, one, "invalid_query"));
      const backups = backupsOf(env, actor);
      const [status, snapshots, digest] = await Promise.all([backups.status(), backups.list(limitOf(req)), backups.digest()]);
      return Response.json({ ...status, digest, snapshots });
    },
  },
  {
    method: "post", path: "/api/admin/backups", access: "admin",
    handler: async (req, env) => {
      const body = parseOrThrow(BackupNowBody, await readJson(req, SMALL_BODY_MAX_BYTES), "invalid_backup_request");
      const actors = (body.actors ?? backedUpActors(configFor(env).pairs)).map((a) => servedActor(env, a));
      const settled = await Promise.allSettled(actors.map((a) => backupsOf(env, a).backup()));
      const failed = settled.flatMap((r, i) => (r.status === "rejected" ? [{ actor: actors[i]!, error: String(r.reason).slice(0, 300) }] : []));
      const results = settled.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
      if (failed.length > 0) throw new HttpError(502, "backup_failed", `${failed.length} of ${actors.length} backups failed`, { failed, results });
      return Response.json({ results });
    },
  },
  {
    method: "post", path: "/api/admin/backups/restore", access: "admin",
    handler: async (req, env, who) => {
      const body = parseOrThrow(RestoreBody, await readJson(req, SMALL_BODY_MAX_BYTES), "invalid_restore_request");
      const actor = servedActor(env, body.actor);
      const outcome = await backupsOf(env, actor)
        .restore(body.snapshot)
        .catch((err: unknown) => {
          // A missing or corrupt chunk, a digest mismatch: the actor is unchanged.
          throw new HttpError(500, "restore_failed", String(err instanceof Error ? err.message : err).slice(0, 300), { actor, snapshot: body.snapshot ?? null });
        });
      if (!outcome.ok) throw new HttpError(404, outcome.code, outcome.message, { actor, snapshot: body.snapshot ?? null });
      const { ok: _ok, ...restored } = outcome;
      await auditKeeperOf(env, actor).recordAudit(actorOf(who), "backup.restore", actor, null, restored);
      // Keys the snapshot does not have are gone: their sockets close too.
      if (actor === "gatekeeper") await closeEndedKeySocketsEverywhere(env);
      return Response.json(restored);
    },
  },
  {
    method: "get", path: "/api/admin/positions", access: "admin",
    handler: async (req, env) => {
      const limit = limitOf(req);
      const lists = await Promise.all(configFor(env).pairs.map((p) => env.Pair.getByName(p).recentPositions(limit)));
      return Response.json({ positions: lists.flat().filter((p) => p.status === "OPEN") });
    },
  },
  {
    method: "get", path: "/api/admin/orders", access: "admin",
    handler: async (req, env) => {
      const limit = limitOf(req);
      const lists = await Promise.all(configFor(env).pairs.map((p) => env.Pair.getByName(p).recentOrders(limit)));
      return Response.json({ orders: lists.flat().sort((a, b) => b.createdAt - a.createdAt).slice(0, limit) });
    },
  },
];

/** The Prometheus text exposition of the same figures. */
function toPrometheus(m: {
  trading: string;
  routes: ReturnType<typeof routeMetrics>;
  feed: { stream: { state: string; connects: number } | null; forwarded: number; dropped: number } | null;
  pairs: {
    pair: string; connections: number; ordersLastMinute: number; rejectionsLastMinute: number;
    broker: { state: string; failures: number }; positionCheck: { ok: boolean } | null;
    latencyMs: Record<string, { p50: number | null; p95: number | null; p99: number | null; count: number }>;
  }[];
  backups: { actor: string; ageMs: number | null; failing: boolean }[];
}): string {
  const lines: string[] = [];
  const esc = (s: string) => s.replace(/["\\\n]/g, "_");
  lines.push("# TYPE fxrt_trading_halted gauge", `fxrt_trading_halted ${m.trading === "HALTED" ? 1 : 0}`);
  lines.push("# TYPE fxrt_requests_total counter", "# TYPE fxrt_request_errors_total counter", "# TYPE fxrt_request_latency_ms gauge");
  for (const r of m.routes) {
    const label = `route="${esc(r.route)}"`;
    lines.push(`fxrt_requests_total{${label}} ${r.requests}`);
    lines.push(`fxrt_request_errors_total{${label},class="4xx"} ${r.clientErrors}`, `fxrt_request_errors_total{${label},class="5xx"} ${r.serverErrors}`);
    for (const q of ["p50", "p95", "p99"] as const) if (r.latencyMs[q] !== null) lines.push(`fxrt_request_latency_ms{${label},quantile="${q}"} ${r.latencyMs[q]}`);
  }
  if (m.feed) {
    lines.push("# TYPE fxrt_feed_streaming gauge", `fxrt_feed_streaming ${m.feed.stream?.state === "streaming" ? 1 : 0}`);
    lines.push("# TYPE fxrt_feed_connects_total counter", `fxrt_feed_connects_total ${m.feed.stream?.connects ?? 0}`);
    lines.push("# TYPE fxrt_feed_prices_total counter", `fxrt_feed_prices_total ${m.feed.forwarded}`, "# TYPE fxrt_feed_dropped_total counter", `fxrt_feed_dropped_total ${m.feed.dropped}`);
  }
  lines.push("# TYPE fxrt_room_connections gauge", "# TYPE fxrt_orders_last_minute gauge", "# TYPE fxrt_rejections_last_minute gauge", "# TYPE fxrt_latency_ms gauge");
  lines.push("# TYPE fxrt_broker_failing gauge", "# TYPE fxrt_broker_failures_total counter", "# TYPE fxrt_position_mismatch gauge");
  for (const p of m.pairs) {
    const label = `pair="${p.pair}"`;
    lines.push(`fxrt_room_connections{${label}} ${p.connections}`, `fxrt_orders_last_minute{${label}} ${p.ordersLastMinute}`, `fxrt_rejections_last_minute{${label}} ${p.rejectionsLastMinute}`);
    lines.push(`fxrt_broker_failing{${label}} ${p.broker.state === "failing" ? 1 : 0}`, `fxrt_broker_failures_total{${label}} ${p.broker.failures}`);
    if (p.positionCheck) lines.push(`fxrt_position_mismatch{${label}} ${p.positionCheck.ok ? 0 : 1}`);
    for (const [name, s] of Object.entries(p.latencyMs)) {
      for (const q of ["p50", "p95", "p99"] as const) if (s[q] !== null) lines.push(`fxrt_latency_ms{${label},path="${name}",quantile="${q}"} ${s[q]}`);
    }
  }
  lines.push("# TYPE fxrt_backup_age_ms gauge", "# TYPE fxrt_backup_failing gauge");
  for (const b of m.backups) {
    const label = `actor="${esc(b.actor)}"`;
    // No sample while an actor was never backed up (the backup_missed alert covers it).
    if (b.ageMs !== null) lines.push(`fxrt_backup_age_ms{${label}} ${b.ageMs}`);
    lines.push(`fxrt_backup_failing{${label}} ${b.failing ? 1 : 0}`);
  }
  return `${lines.join("\n")}\n`;
}

export function buildRouter() {
  const router = Router<IRequest, Args>({ catch: toErrorResponse });
  for (const route of ROUTES) {
    const name = `${route.method.toUpperCase()} ${route.path}`;
    router[route.method](route.path, async (req, env) => {
      const started = performance.now();
      let response: Response;
      try {
        response = await route.handler(req, env, await authorize(req, env, route.access));
      } catch (err) {
        response = toErrorResponse(err);
      }
      recordRequest(name, response.status, performance.now() - started);
      return response;
    });
  }
  router.all("/api/*", () => errorResponse(404, "not_found", "no such route"));
  return router;
}
