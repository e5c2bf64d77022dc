import { parseKey } from "../security/api-key.ts";
import { HttpError } from "./errors.ts";
import { presentedKey } from "./auth.ts";

/** The rate-limit window of the bindings in wrangler.jsonc (`simple.period`). */
const PERIOD_S = 60;

/** The caller's address as Cloudflare sees it (loopback under `npm start`). */
export function clientIp(request: Request): string {
  return request.headers.get("cf-connecting-ip") ?? "local";
}

/**
 * Every request, before authentication (so guessing keys is throttled too):
 * one budget per client IP and one per presented key. 429 with Retry-After
 * (the end of the current window) when either is spent.
 */
export async function enforceRateLimits(request: Request, env: Env): Promise<void> {
  const ip = await env.IP_RATE_LIMIT.limit({ key: `ip:${clientIp(request)}` });
  if (!ip.success) throw tooMany("ip");
  const raw = presentedKey(request);
  if (raw) {
    const id = parseKey(raw)?.id ?? "malformed";
    const key = await env.KEY_RATE_LIMIT.limit({ key: `key:${id}` });
    if (!key.success) throw tooMany("key");
  }
}

function tooMany(scope: "ip" | "key"): HttpError {
  const retryAfterS = PERIOD_S - (Math.floor(Date.now() / 1000) % PERIOD_S);
  return new HttpError(429, "rate_limited", `too many requests for this ${scope === "ip" ? "address" : "key"}`, { scope, retryAfterS }, {
    "retry-after": String(retryAfterS),
  });
}
