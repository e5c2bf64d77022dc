import * as v from "valibot";
import { CandleList } from "../../schemas/candle.ts";
import { ErrorBody } from "../../schemas/common.ts";
import { TickBatchResult, type WireTick } from "../../schemas/tick.ts";
import type { Timeframe } from "../domain/candle.ts";

/** A non-2xx answer, carrying the runtime's error body. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(`${status} ${code}: ${message}`);
  }
}

export interface CandleRequest {
  tf?: Timeframe;
  from?: number | string;
  to?: number | string;
  limit?: number;
}

/** Typed HTTP client for the runtime's API; answers are validated against the same schemas. */
export class FxClient {
  constructor(
    readonly baseUrl: string,
    private readonly apiKey?: string,
  ) {}

  health(): Promise<{ status: string; version: string; time: number; pairs: number; feed: string }> {
    return this.request("GET", "/api/health");
  }

  pairs(): Promise<{ pairs: { pair: string; displayPrecision: number; lastTick: WireTick | null; room: string }[] }> {
    return this.request("GET", "/api/pairs");
  }

  async candles(pair: string, q: CandleRequest = {}): Promise<CandleList> {
    const params = new URLSearchParams();
    for (const [k, value] of Object.entries(q)) if (value !== undefined) params.set(k, String(value));
    return v.parse(CandleList, await this.request("GET", `/api/pairs/${pair}/candles?${params}`));
  }

  /**
   * `replay`: the ticks are history being replayed, and the pair trades on their clock.
   * `batchId`: name the batch so that sending it again after a lost answer stores nothing twice
   * (the pair answers with what it stored; the same id with other ticks is a 409).
   */
  async postTicks(pair: string, ticks: readonly WireTick[], options: { replay?: boolean; batchId?: string } = {}): Promise<TickBatchResult> {
    const body = { ticks, ...(options.replay ? { replay: true } : {}), ...(options.batchId !== undefined ? { batchId: options.batchId } : {}) };
    return v.parse(TickBatchResult, await this.request("POST", `/api/pairs/${pair}/ticks`, body));
  }

  /** Any route of the API (admin, trading, metrics), typed by the caller; errors as ApiError. */
  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers["content-type"] = "application/json";
    if (this.apiKey) headers["x-api-key"] = this.apiKey;
    const res = await fetch(new URL(path, this.baseUrl), {
      method,
      headers,
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    const json: unknown = text ? JSON.parse(text) : null;
    if (!res.ok) {
      const err = v.safeParse(ErrorBody, json);
      if (err.success) throw new ApiError(res.status, err.output.error.code, err.output.error.message, err.output.error.details);
      throw new ApiError(res.status, "http_error", text.slice(0, 200));
    }
    return json as T;
  }
}
