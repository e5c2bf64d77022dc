/**
 * Broker credentials at rest: sealed with AES-256-GCM (Web Crypto) under the
 * CREDENTIALS_KEY secret (32 random bytes, base64). The purpose string is
 * bound as additional data, so a sealed value cannot be moved to another use;
 * any change to it, or the wrong key, fails to open. Sealed form:
 * `v1.<iv>.<ciphertext+tag>`, both base64url.
 */

const IV_BYTES = 12;

function b64url(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function fromB64(text: string): Uint8Array<ArrayBuffer> {
  const s = atob(text.replaceAll("-", "+").replaceAll("_", "/"));
  const out = new Uint8Array(new ArrayBuffer(s.length));
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/**
 * The last base64 character can carry bits that decoding drops, so two texts
 * can decode to the same bytes: only the canonical spelling opens, so that any
 * change to the sealed text fails (found by the property test).
 */
function canonicalBytes(text: string): Uint8Array<ArrayBuffer> {
  const bytes = fromB64(text);
  if (b64url(bytes) !== text) throw new Error("not canonical base64url");
  return bytes;
}

async function importKey(keyB64: string): Promise<CryptoKey> {
  let raw: Uint8Array<ArrayBuffer>;
  try {
    raw = fromB64(keyB64.trim());
  } catch {
    throw new Error("CREDENTIALS_KEY is not base64");
  }
  if (raw.byteLength !== 32) throw new Error(`CREDENTIALS_KEY must be 32 bytes (base64), got ${raw.byteLength}`);
  return crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]);
}

export async function seal(plaintext: string, keyB64: string, purpose: string): Promise<string> {
  const key = await importKey(keyB64);
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const data = new TextEncoder().encode(plaintext);
  const sealed = await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: new TextEncoder().encode(purpose) }, key, data);
  return `v1.${b64url(iv)}.${b64url(new Uint8Array(sealed))}`;
}

/** The plaintext; throws on a wrong key, another purpose, or any change to the sealed text. */
export async function open(sealed: string, keyB64: string, purpose: string): Promise<string> {
  const [version, iv, body] = sealed.split(".");
  if (version !== "v1" || !iv || !body) throw new Error("not a sealed credential");
  const key = await importKey(keyB64);
  try {
    const plain = await crypto.subtle.decrypt({ name: "AES-GCM", iv: canonicalBytes(iv), additionalData: new TextEncoder().encode(purpose) }, key, canonicalBytes(body));
    return new TextDecoder().decode(plain);
  } catch {
    throw new Error("sealed credential does not open with this key (wrong key, or altered)");
  }
}
