/**
 * HTTP to the v20 REST API: a bearer token, a timeout on every call, and
 * retries with exponential backoff and full jitter for idempotent calls only
 * (GETs). An order POST is never retried here: after a timeout nobody knows
 * whether OANDA took it (the broker looks it up by client order id before any
 * send). Every call goes through OANDA's rate limit on our side (rate-limit.ts),
 * a 429 pauses every call for a while, and a 401 or 403 stops this client for
 * good: its token is refused, and sending it again would change nothing but
 * OANDA's view of us. New credentials make a new client.
 */
import * as v from "valibot";
import { retryAfterMs, sharedLimiter, type RateLimiter } from "./rate-limit.ts";
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

/** A call waits at most this long for its turn under the rate limit; longer, and it fails unsent (status 429, code rate_limited). */
const LIMIT_WAIT_MAX_MS = 5_000;

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

  /** The token was refused (401: not valid; 403: not allowed): nothing is sent with it again. */
  get credentialsRefused(): boolean {
    return this.status === 401 || this.status === 403;
  }
}

/** Full jitter: a random wait up to the exponential bound, so clients that failed together do not retry together. */
export function backoffMs(attempt: number, policy: RetryPolicy, random: () => number = Math.random): number {
  return Math.floor(random() * Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt));
}

export class OandaHttp {
  /** The 401/403 that stopped this client; every later call fails with it, unsent. */
  private refusal: OandaError | null = null;

  constructor(
    readonly endpoint: OandaEndpoint,
    readonly policy: RetryPolicy = DEFAULT_RETRY,
    private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
    /** Shared by every client of the same OANDA host in this isolate (OANDA counts per IP). */
    private readonly limiter: RateLimiter = sharedLimiter("rest", endpoint.apiUrl),
  ) {}

  /** Whether OANDA refused this client's token (it sends nothing more). */
  get stopped(): boolean {
    return this.refusal !== null;
  }

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
    if (this.refusal) throw new OandaError(this.refusal.status, "stopped", `not sent: OANDA refused this token (${this.refusal.message}); new credentials are needed`);
    const wait = this.limiter.reserve(LIMIT_WAIT_MAX_MS);
    if (wait === null) throw new OandaError(429, "rate_limited", `not sent: OANDA's rate limit would hold it over ${LIMIT_WAIT_MAX_MS} ms`);
    if (wait > 0) await this.sleep(wait);
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
    // The status first: a 429 or 401 from a proxy in front of OANDA may carry no JSON at all.
    if (res.status === 429) this.limiter.throttled(retryAfterMs(res.headers.get("retry-after")));
    else this.limiter.passed();
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      const parsed = v.safeParse(V20Error, json);
      const err = new OandaError(res.status, parsed.success ? (parsed.output.errorCode ?? "error") : "error", parsed.success ? parsed.output.errorMessage : text.slice(0, 200), json ?? null);
      if (err.credentialsRefused) this.refusal = err;
      throw err;
    }
    if (json === undefined) throw new OandaError(res.status, "bad_json", `answer is not JSON: ${text.slice(0, 120)}`);
    const parsed = v.safeParse(schema, json);
    if (!parsed.success) throw new OandaError(res.status, "unexpected_answer", `${method} ${path}: ${parsed.issues[0]?.message ?? "schema mismatch"}`, json);
    return parsed.output;
  }
}
