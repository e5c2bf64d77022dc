/**
 * A full garbage collection in every V8 isolate of a workerd process, through
 * its inspector (Miniflare's `inspectorPort`). workerd's inspector has no
 * `HeapProfiler.collectGarbage`, but a heap snapshot collects first, so one is
 * taken and its chunks are dropped. Used by the soak to tell memory the
 * runtime holds from garbage V8 has not collected yet.
 */
import { createServer } from "node:net";
import WebSocket from "ws";

const SNAPSHOT_TIMEOUT_MS = 60_000;

interface InspectorTarget {
  title: string;
  webSocketDebuggerUrl: string;
}

/** A loopback port free right now (for the inspector, which Miniflare wants as a number). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Collect garbage in every isolate the inspector lists; the number collected. */
export async function collectGarbage(inspectorPort: number): Promise<number> {
  const targets = (await (await fetch(`http://127.0.0.1:${inspectorPort}/json/list`)).json()) as InspectorTarget[];
  let collected = 0;
  for (const target of targets) {
    const ws = new WebSocket(target.webSocketDebuggerUrl, { perMessageDeflate: false });
    try {
      await new Promise((resolve, reject) => (ws.once("open", resolve), ws.once("error", reject)));
      await command(ws, 1, "HeapProfiler.enable");
      await command(ws, 2, "HeapProfiler.takeHeapSnapshot", { reportProgress: false });
      collected++;
    } finally {
      ws.terminate();
    }
  }
  return collected;
}

/** One inspector command, answered by its id (the snapshot's chunk events in between are dropped). */
function command(ws: WebSocket, id: number, method: string, params: object = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`inspector: ${method} unanswered after ${SNAPSHOT_TIMEOUT_MS} ms`)), SNAPSHOT_TIMEOUT_MS);
    ws.on("message", (data: WebSocket.RawData) => {
      const message = JSON.parse(data.toString()) as { id?: number; error?: { message: string } };
      if (message.id !== id) return;
      clearTimeout(timer);
      if (message.error) reject(new Error(`inspector: ${method}: ${message.error.message}`));
      else resolve();
    });
    ws.send(JSON.stringify({ id, method, params }));
  });
}
