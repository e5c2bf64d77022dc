import { HttpError } from "./errors.ts";

/** The rate-limit window of the bindings in wrangler.jsonc (`simple.period`). */
const PERIOD_S = 60;

/** The caller's address as Cloudflare sees it (loopback under `npm start`). */
export function clientIp(request: Request): string {
  return request.headers.get("cf-connecting-ip") ?? "local";
}

/**
 * Every request, before anything else: one budget per client IP. 429 with
 * Retry-After (the end of the current window) when it is spent.
 */
export async function enforceIpRateLimit(request: Request, env: Env): Promise<void> {
  const ip = await env.IP_RATE_LIMIT.limit({ key: `ip:${clientIp(request)}` });
  if (!ip.success) throw tooMany("ip");
}

/**
 * The budget of a key, taken once the key is verified: only its holder can
 * spend it. Keyed by what was presented, anyone could spend a real key's
 * budget (a known id with a junk secret, or any junk for the bootstrap key)
 * and lock its holder out.
 */
export async function enforceKeyRateLimit(env: Env, keyId: string): Promise<void> {
  const key = await env.KEY_RATE_LIMIT.limit({ key: `key:${keyId}` });
  if (!key.success) throw tooMany("key");
}

/**
 * The budget of keys that failed verification (wrong, unknown, revoked,
 * malformed), per client IP: guessing is throttled where it comes from and
 * never spends a real key's budget.
 */
export async function enforceUnverifiedKeyRateLimit(request: Request, env: Env): Promise<void> {
  const key = await env.KEY_RATE_LIMIT.limit({ key: `unverified:${clientIp(request)}` });
  if (!key.success) throw tooMany("key");
}

function tooMany(scope: "ip" | "key"): HttpError {
  const retryAfterS = PERIOD_S - (Math.floor(Date.now() / 1000) % PERIOD_S);
  return new HttpError(429, "rate_limited", `too many requests for this ${scope === "ip" ? "address" : "key"}`, { scope, retryAfterS }, {
    "retry-after": String(retryAfterS),
  });
}
