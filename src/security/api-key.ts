/**
 * API keys: `fxk_<id>_<secret>`. Only a SHA-256 of the secret is stored; the
 * id finds the row, the hash is compared in constant time. Web Crypto, so the
 * same code runs in workerd and in Node (CLI).
 */
import type { Role } from "../../schemas/auth.ts";

const PREFIX = "fxk_";

function base64url(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function hex(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export interface NewKey {
  id: string;
  role: Role;
  /** Shown once, never stored. */
  key: string;
  secretHash: string;
}

export async function generateKey(role: Role): Promise<NewKey> {
  const id = hex(crypto.getRandomValues(new Uint8Array(6)));
  const secret = base64url(crypto.getRandomValues(new Uint8Array(32)));
  return { id, role, key: `${PREFIX}${id}_${secret}`, secretHash: await sha256Hex(secret) };
}

export function parseKey(raw: string): { id: string; secret: string } | null {
  const m = /^fxk_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})$/.exec(raw);
  return m ? { id: m[1]!, secret: m[2]! } : null;
}

export async function sha256Hex(text: string): Promise<string> {
  return hex(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text))));
}

/** Equal-length strings compared without an early exit (no timing hint of where they differ). */
export function constantTimeEqual(a: string, b: string): boolean {
  let diff = a.length ^ b.length;
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) diff |= (a.charCodeAt(i) || 0) ^ (b.charCodeAt(i) || 0);
  return diff === 0;
}

const RANK: Record<Role, number> = { viewer: 1, trader: 2, admin: 3 };

export function roleAllows(held: Role, needed: Role): boolean {
  return RANK[held] >= RANK[needed];
}
