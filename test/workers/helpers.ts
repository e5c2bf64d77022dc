import { exports } from "cloudflare:workers";

/** Call the Worker's own fetch handler, as a client on the network would. */
export function call(path: string, init?: RequestInit): Promise<Response> {
  return exports.default.fetch(new Request(new URL(path, "http://runtime.test"), init));
}

export function postJson(path: string, body: unknown): Promise<Response> {
  return call(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
}

/** A WebSocket client inside workerd: collects every parsed frame in order. */
export async function openRoom(pathAndQuery: string): Promise<{
  ws: WebSocket;
  frames: { type: string; [k: string]: unknown }[];
  waitFor: (pred: (f: { type: string; [k: string]: unknown }) => boolean, timeoutMs?: number) => Promise<{ type: string; [k: string]: unknown }>;
}> {
  const res = await call(pathAndQuery, { headers: { Upgrade: "websocket" } });
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
