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

/**
 * Collect garbage in every isolate the inspector lists; then the V8 heaps' live objects (used) and the
 * memory V8 keeps for them (total: it gives free pages back to the system only over time), MB.
 */
export async function collectGarbage(inspectorPort: number): Promise<{ isolates: number; heapUsedMb: number; heapTotalMb: number }> {
  const targets = (await (await fetch(`http://127.0.0.1:${inspectorPort}/json/list`)).json()) as InspectorTarget[];
  let heapUsed = 0;
  let heapTotal = 0;
  for (const target of targets) {
    const ws = new WebSocket(target.webSocketDebuggerUrl, { perMessageDeflate: false });
    try {
      await new Promise((resolve, reject) => (ws.once("open", resolve), ws.once("error", reject)));
      await command(ws, 1, "HeapProfiler.enable");
      await command(ws, 2, "HeapProfiler.takeHeapSnapshot", { reportProgress: false });
      const usage = (await command(ws, 3, "Runtime.getHeapUsage")) as { usedSize: number; totalSize: number };
      heapUsed += usage.usedSize;
      heapTotal += usage.totalSize;
    } finally {
      ws.terminate();
    }
  }
  const mb = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10;
  return { isolates: targets.length, heapUsedMb: mb(heapUsed), heapTotalMb: mb(heapTotal) };
}

/** One inspector command's result, answered by its id (the snapshot's chunk events in between are dropped). */
function command(ws: WebSocket, id: number, method: string, params: object = {}): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`inspector: ${method} unanswered after ${SNAPSHOT_TIMEOUT_MS} ms`)), SNAPSHOT_TIMEOUT_MS);
    ws.on("message", (data: WebSocket.RawData) => {
      const message = JSON.parse(data.toString()) as { id?: number; result?: unknown; error?: { message: string } };
      if (message.id !== id) return;
      clearTimeout(timer);
      if (message.error) reject(new Error(`inspector: ${method}: ${message.error.message}`));
      else resolve(message.result);
    });
    ws.send(JSON.stringify({ id, method, params }));
  });
}
