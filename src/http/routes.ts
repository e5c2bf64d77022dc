import { Router, type IRequest } from "itty-router";
import * as v from "valibot";
import { findInstrument } from "../domain/instruments.ts";
import { configFor, type RuntimeConfig } from "../config.ts";
import { issuesToDetails } from "../../schemas/common.ts";
import { CandleQuery } from "../../schemas/candle.ts";
import { TICK_BATCH_MAX, TICK_BODY_MAX_BYTES, TickBatch } from "../../schemas/tick.ts";
import { StrategyConfigList } from "../../schemas/strategy.ts";
import { ExecuteBody } from "../../schemas/trading-events.ts";
import { FillModelConfig, RiskLimits } from "../../schemas/trading.ts";
import { HttpError, errorResponse, toErrorResponse } from "./errors.ts";
import { readJson } from "./read-json.ts";

type Args = [Env, ExecutionContext];

const STRATEGIES_BODY_MAX_BYTES = 32 * 1024;
const SMALL_BODY_MAX_BYTES = 8 * 1024;
const RiskBody = v.object({ limits: v.optional(RiskLimits), fillModel: v.optional(FillModelConfig) });
const StrategiesBody = v.object({ strategies: StrategyConfigList });
const SignalQuery = v.object({
  limit: v.optional(v.pipe(v.string(), v.regex(/^\d+$/, "limit must be a positive integer"), v.transform(Number), v.minValue(1), v.maxValue(1000)), "100"),
});

export const API_VERSION = "0.1.0";

/** The pair named in the path, if the runtime serves it; otherwise a 404 that lists what is served. */
export function servedPair(config: RuntimeConfig, pair: string | undefined): string {
  if (pair && config.pairs.includes(pair)) return pair;
  throw new HttpError(404, "unknown_pair", `pair ${pair ?? ""} is not served here`, { pair, pairs: config.pairs });
}

function pairStub(env: Env, pair: string) {
  return env.Pair.getByName(pair);
}

function parseOrThrow<S extends v.GenericSchema>(schema: S, input: unknown, code: string): v.InferOutput<S> {
  const parsed = v.safeParse(schema, input);
  if (!parsed.success) throw new HttpError(400, code, "the request does not match the schema", issuesToDetails(parsed.issues));
  return parsed.output;
}

export function buildRouter() {
  const router = Router<IRequest, Args>({ catch: toErrorResponse });

  router.get("/api/health", (_req, env) => {
    const config = configFor(env);
    return Response.json({ status: "ok", version: API_VERSION, time: Date.now(), pairs: config.pairs.length, feed: config.feed });
  });

  router.get("/api/pairs", async (_req, env) => {
    const config = configFor(env);
    const pairs = await Promise.all(
      config.pairs.map(async (symbol) => {
        const instrument = findInstrument(symbol)!;
        const status = await pairStub(env, symbol).status();
        return {
          pair: symbol,
          base: instrument.base,
          quote: instrument.quote,
          pipLocation: instrument.pipLocation,
          displayPrecision: instrument.displayPrecision,
          lastTick: status.lastTick,
          room: `/parties/pair/${symbol}`,
        };
      }),
    );
    return Response.json({ pairs });
  });

  router.get("/api/pairs/:pair", async (req, env) => {
    const pair = servedPair(configFor(env), req.params.pair);
    return Response.json(await pairStub(env, pair).status());
  });

  router.post("/api/pairs/:pair/ticks", async (req, env) => {
    const pair = servedPair(configFor(env), req.params.pair);
    const body = await readJson(req, TICK_BODY_MAX_BYTES);
    const count = (body as { ticks?: unknown } | null)?.ticks;
    if (Array.isArray(count) && count.length > TICK_BATCH_MAX) {
      throw new HttpError(413, "batch_too_large", `a batch holds at most ${TICK_BATCH_MAX} ticks`, {
        maxTicks: TICK_BATCH_MAX,
        received: count.length,
      });
    }
    const batch = parseOrThrow(TickBatch, body, "invalid_ticks");
    return Response.json(await pairStub(env, pair).ingest(batch.ticks));
  });

  router.get("/api/pairs/:pair/candles", async (req, env) => {
    const pair = servedPair(configFor(env), req.params.pair);
    const raw: Record<string, string> = {};
    for (const [k, value] of new URL(req.url).searchParams) raw[k] = value;
    const query = parseOrThrow(CandleQuery, raw, "invalid_query");
    return Response.json(await pairStub(env, pair).candles(query));
  });

  router.get("/api/pairs/:pair/signals", async (req, env) => {
    const pair = servedPair(configFor(env), req.params.pair);
    const { limit } = parseOrThrow(SignalQuery, Object.fromEntries(new URL(req.url).searchParams), "invalid_query");
    return Response.json(await pairStub(env, pair).signals(limit));
  });

  // Strategy configuration of a pair. Admin-only once API keys exist (coordinator issue).
  router.get("/api/admin/pairs/:pair/strategies", async (req, env) => {
    const pair = servedPair(configFor(env), req.params.pair);
    return Response.json({ pair, strategies: await pairStub(env, pair).strategies() });
  });

  router.put("/api/admin/pairs/:pair/strategies", async (req, env) => {
    const pair = servedPair(configFor(env), req.params.pair);
    const body = parseOrThrow(StrategiesBody, await readJson(req, STRATEGIES_BODY_MAX_BYTES), "invalid_strategies");
    return Response.json({ pair, strategies: await pairStub(env, pair).setStrategies(body.strategies) });
  });

  router.post("/api/trade/execute", async (req, env) => {
    const body = parseOrThrow(ExecuteBody, await readJson(req, SMALL_BODY_MAX_BYTES), "invalid_order");
    const pair = servedPair(configFor(env), body.pair);
    if (body.type !== "market" && body.price === undefined) {
      throw new HttpError(400, "invalid_order", `a ${body.type} order needs a price`, [{ path: "price", message: "required for limit and stop orders" }]);
    }
    const result = await pairStub(env, pair).execute(body);
    if (!result.ok) {
      throw new HttpError(422, "risk_rejected", `order refused by per-pair risk: ${result.rejection.type}`, result.rejection);
    }
    return Response.json({ order: result.order, fills: result.fills, position: result.position });
  });

  router.get("/api/pairs/:pair/orders", async (req, env) => {
    const pair = servedPair(configFor(env), req.params.pair);
    const { limit } = parseOrThrow(SignalQuery, Object.fromEntries(new URL(req.url).searchParams), "invalid_query");
    return Response.json({ pair, orders: await pairStub(env, pair).recentOrders(limit) });
  });

  router.get("/api/pairs/:pair/positions", async (req, env) => {
    const pair = servedPair(configFor(env), req.params.pair);
    const { limit } = parseOrThrow(SignalQuery, Object.fromEntries(new URL(req.url).searchParams), "invalid_query");
    return Response.json({ pair, positions: await pairStub(env, pair).recentPositions(limit) });
  });

  router.get("/api/admin/pairs/:pair/risk", async (req, env) => {
    const pair = servedPair(configFor(env), req.params.pair);
    const stub = pairStub(env, pair);
    return Response.json({ pair, limits: await stub.riskLimits(), fillModel: await stub.fillModel() });
  });

  router.put("/api/admin/pairs/:pair/risk", async (req, env) => {
    const pair = servedPair(configFor(env), req.params.pair);
    const body = parseOrThrow(RiskBody, await readJson(req, SMALL_BODY_MAX_BYTES), "invalid_risk");
    const stub = pairStub(env, pair);
    const limits = body.limits ? await stub.setRiskLimits(body.limits) : await stub.riskLimits();
    const fillModel = body.fillModel ? await stub.setFillModel(body.fillModel) : await stub.fillModel();
    return Response.json({ pair, limits, fillModel });
  });

  router.all("/api/*", () => errorResponse(404, "not_found", "no such route"));
  return router;
}
