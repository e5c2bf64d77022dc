/**
 * HTTP to the v20 REST API: a bearer token, a timeout on every call, and
 * retries with exponential backoff and full jitter for idempotent calls only
 * (GETs). An order POST is never retried here: after a timeout nobody knows
 * whether OANDA took it, so the broker first looks it up by client order id
 * and sends it once more only when OANDA has no order under that id.
 */
import * as v from "valibot";
import { V20Error } from "./v20.ts";

export interface OandaEndpoint {
  /** REST base, e.g. https://api-fxpractice.oanda.com (practice) or https://api-fxtrade.oanda.com (live). */
  apiUrl: string;
  /** Streaming base, e.g. https://stream-fxpractice.oanda.com. */
  streamUrl: string;
  accountId: string;
  token: string;
}

export const OANDA_HOSTS = {
  practice: { apiUrl: "https://api-fxpractice.oanda.com", streamUrl: "https://stream-fxpractice.oanda.com" },
  live: { apiUrl: "https://api-fxtrade.oanda.com", streamUrl: "https://stream-fxtrade.oanda.com" },
} as const;

export interface RetryPolicy {
  timeoutMs: number;
  /** Attempts for idempotent calls, the first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: Readonly<RetryPolicy> = Object.freeze({ timeoutMs: 5_000, attempts: 4, baseDelayMs: 100, maxDelayMs: 2_000 });

/** A v20 call that failed: HTTP status (0 = no answer: timeout or network), v20's code and message. */
export class OandaError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly body: unknown = null,
  ) {
    super(`oanda ${status} ${code}: ${message}`);
  }

  /** Worth another try (for an idempotent call): no answer, rate limited, or a server error. */
  get retryable(): boolean {
    return this.status === 0 || this.status === 429 || this.status >= 500;
  }
}

/** Full jitter: a random wait up to the exponential bound, so clients that failed together do not retry together. */
export function backoffMs(attempt: number, policy: RetryPolicy, random: () => number = Math.random): number {
  return Math.floor(random() * Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt));
}

export class OandaHttp {
  constructor(
    readonly endpoint: OandaEndpoint,
    readonly policy: RetryPolicy = DEFAULT_RETRY,
    private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
  ) {}

  /** `GET /v3/accounts/{id}{path}`, retried on timeouts, 429 and 5xx; the answer validated by `schema`. */
  async get<S extends v.GenericSchema>(path: string, schema: S): Promise<v.InferOutput<S>> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.call("GET", path, schema);
      } catch (err) {
        if (!(err instanceof OandaError) || !err.retryable || attempt + 1 >= this.policy.attempts) throw err;
        await this.sleep(backoffMs(attempt, this.policy));
      }
    }
  }

  /** A non-idempotent call, exactly once. Non-2xx answers come back as OandaError with the v20 body. */
  send<S extends v.GenericSchema>(method: "POST" | "PUT", path: string, body: unknown, schema: S): Promise<v.InferOutput<S>> {
    return this.call(method, path, schema, body);
  }

  private async call<S extends v.GenericSchema>(method: string, path: string, schema: S, body?: unknown): Promise<v.InferOutput<S>> {
    let res: Response;
    let text: string;
    try {
      res = await fetch(`${this.endpoint.apiUrl}/v3/accounts/${this.endpoint.accountId}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.endpoint.token}`,
          "accept-datetime-format": "RFC3339",
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(this.policy.timeoutMs),
      });
      // Inside the try: the timeout covers the body too, and a body that stalls
      // or breaks off is no answer (status 0), so a GET retries and an order
      // POST looks its order up, exactly as when the headers never came.
      text = await res.text();
    } catch (err) {
      const timedOut = err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError");
      throw new OandaError(0, timedOut ? "timeout" : "network", timedOut ? `no answer within ${this.policy.timeoutMs} ms` : String(err));
    }
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      throw new OandaError(res.status, "bad_json", `answer is not JSON: ${text.slice(0, 120)}`);
    }
    if (!res.ok) {
      const err = v.safeParse(V20Error, json);
      throw new OandaError(res.status, err.success ? (err.output.errorCode ?? "error") : "error", err.success ? err.output.errorMessage : text.slice(0, 200), json);
    }
    const parsed = v.safeParse(schema, json);
    if (!parsed.success) throw new OandaError(res.status, "unexpected_answer", `${method} ${path}: ${parsed.issues[0]?.message ?? "schema mismatch"}`, json);
    return parsed.output;
  }
}
