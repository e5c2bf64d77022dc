import type { Access, Role } from "../../schemas/auth.ts";
import { constantTimeEqual, parseKey, roleAllows, sha256Hex } from "../security/api-key.ts";
import { configFor } from "../config.ts";
import { HttpError } from "./errors.ts";
import { enforceKeyRateLimit, enforceUnverifiedKeyRateLimit } from "./rate-limit.ts";

export interface Identity {
  /** "bootstrap" for the ADMIN_API_KEY secret, else the key's id. */
  keyId: string;
  role: Role;
}

export function isWebSocketUpgrade(request: Request): boolean {
  return request.headers.get("upgrade")?.toLowerCase() === "websocket";
}

/**
 * The API key a request carries: `X-API-Key`, or `?key=` on an upgrade to a
 * WebSocket route (browsers cannot set headers there). Never `?key=` on an
 * HTTP route, even one sent with `Upgrade: websocket`: a key in a URL ends up
 * in logs and histories, so it is taken only where nothing else works.
 */
export function presentedKey(request: Request, socketRoute = false): string | null {
  const header = request.headers.get("x-api-key");
  if (header) return header;
  if (socketRoute && isWebSocketUpgrade(request)) return new URL(request.url).searchParams.get("key");
  return null;
}

/**
 * The ADMIN_API_KEY secret's hash, computed once per isolate (it was hashed
 * again on every request), and whether the secret has a Gatekeeper key's form.
 */
let bootstrapHashed: { key: string; hash: Promise<string>; keyForm: boolean } | null = null;
function bootstrapOf(key: string): { hash: Promise<string>; keyForm: boolean } {
  if (bootstrapHashed?.key !== key) bootstrapHashed = { key, hash: sha256Hex(key), keyForm: parseKey(key) !== null };
  return bootstrapHashed;
}

/** Who holds this key, or null when it is wrong, unknown or revoked. */
export async function identify(raw: string, env: Env): Promise<Identity | null> {
  if (raw.length > 256) return null;
  const parsed = parseKey(raw);
  const bootstrap = env.ADMIN_API_KEY ? bootstrapOf(env.ADMIN_API_KEY) : null;
  // A key of the Gatekeeper's form cannot equal a secret that does not have that form, so the
  // constant-time comparison with the secret is made only when it can match (it cost a SHA-256
  // on every request of a Gatekeeper key). The time taken tells at most whether the secret has
  // that form, nothing of its value; the Gatekeeper's check below is unchanged.
  if (bootstrap && (!parsed || bootstrap.keyForm)) {
    const [a, b] = await Promise.all([sha256Hex(raw), bootstrap.hash]);
    if (constantTimeEqual(a, b)) return { keyId: "bootstrap", role: "admin" };
  }
  if (!parsed) return null;
  const found = await env.Gatekeeper.getByName("main").authenticate(raw);
  return found ? { keyId: found.id, role: found.role } : null;
}

/**
 * Decide whether a request may use something of the given access level.
 * Returns the identity (null for anonymous access that is allowed) or throws
 * 401 (no key / wrong key), 403 (a key whose role is too low) or 429 (the
 * key's budget, or this IP's budget of failed keys, is spent).
 * `socketRoute`: the route is a WebSocket endpoint, where `?key=` is taken.
 */
export async function authorize(request: Request, env: Env, access: Access, socketRoute = false): Promise<Identity | null> {
  if (access === "public") return null;
  const raw = presentedKey(request, socketRoute);
  if (access === "market" && configFor(env).marketDataPublic && !raw) return null;
  if (!raw) throw new HttpError(401, "unauthenticated", "send an API key as X-API-Key (WebSocket: ?key=)");
  const identity = await identify(raw, env);
  if (!identity) {
    await enforceUnverifiedKeyRateLimit(request, env);
    throw new HttpError(401, "invalid_key", "the API key is wrong, unknown or revoked");
  }
  await enforceKeyRateLimit(env, identity.keyId);
  const needed: Role = access === "market" ? "viewer" : access;
  if (!roleAllows(identity.role, needed)) {
    throw new HttpError(403, "forbidden", `this needs the ${needed} role`, { role: identity.role, needed });
  }
  return identity;
}
