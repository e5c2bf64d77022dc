import { exports } from "cloudflare:workers";

/** The bootstrap admin key bound in vitest.config.ts. */
export const ADMIN_KEY = "test-admin-key";

/** Call the Worker's own fetch handler, as a client on the network would; with the admin key unless `key` says otherwise. */
export function call(path: string, init: RequestInit = {}, key: string | null = ADMIN_KEY): Promise<Response> {
  const headers = new Headers(init.headers);
  if (key !== null) headers.set("x-api-key", key);
  return exports.default.fetch(new Request(new URL(path, "http://runtime.test"), { ...init, headers }));
}

export function postJson(path: string, body: unknown, key: string | null = ADMIN_KEY): Promise<Response> {
  return call(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) }, key);
}

/** A WebSocket client inside workerd: collects every parsed frame in order. */
export async function openRoom(pathAndQuery: string, key: string | null = ADMIN_KEY): Promise<{
  ws: WebSocket;
  frames: { type: string; [k: string]: unknown }[];
  waitFor: (pred: (f: { type: string; [k: string]: unknown }) => boolean, timeoutMs?: number) => Promise<{ type: string; [k: string]: unknown }>;
}> {
  const url = new URL(pathAndQuery, "http://runtime.test");
  if (key !== null) url.searchParams.set("key", key);
  const res = await call(url.pathname + url.search, { headers: { Upgrade: "websocket" } }, null);
  const ws = res.webSocket;
  if (!ws) throw new Error(`no WebSocket: ${res.status} ${await res.text()}`);
  ws.accept();
  const frames: { type: string; [k: string]: unknown }[] = [];
  const waiters: { pred: (f: { type: string }) => boolean; resolve: (f: { type: string }) => void }[] = [];
  ws.addEventListener("message", (e) => {
    const frame = JSON.parse(String(e.data)) as { type: string };
    frames.push(frame);
    for (const w of [...waiters]) {
      if (w.pred(frame)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(frame);
      }
    }
  });
  const waitFor = (pred: (f: { type: string; [k: string]: unknown }) => boolean, timeoutMs = 3_000) =>
    new Promise<{ type: string; [k: string]: unknown }>((resolve, reject) => {
      const seen = frames.find(pred);
      if (seen) return resolve(seen);
      const timer = setTimeout(() => reject(new Error(`timed out; frames: ${JSON.stringify(frames).slice(0, 500)}`)), timeoutMs);
      waiters.push({
        pred: pred as (f: { type: string }) => boolean,
        resolve: (f) => {
          clearTimeout(timer);
          resolve(f as { type: string; [k: string]: unknown });
        },
      });
    });
  return { ws, frames, waitFor };
}
