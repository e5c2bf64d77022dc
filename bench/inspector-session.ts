/**
 * One connection to a V8 inspector target of workerd (Miniflare's
 * `inspectorPort`): commands answered by id, events ignored. Used to force
 * garbage collections (isolate-gc.ts) and to CPU-profile (isolate-profile.ts).
 */
import { createServer } from "node:net";
import WebSocket from "ws";

const COMMAND_TIMEOUT_MS = 60_000;

export interface InspectorTarget {
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

/** The inspector's targets: one per isolate of the workerd process. */
export async function inspectorTargets(inspectorPort: number): Promise<InspectorTarget[]> {
  return (await (await fetch(`http://127.0.0.1:${inspectorPort}/json/list`)).json()) as InspectorTarget[];
}

export class InspectorSession {
  private next = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  private constructor(private readonly ws: WebSocket) {
    ws.on("message", (data: WebSocket.RawData) => {
      const message = JSON.parse(data.toString()) as { id?: number; result?: unknown; error?: { message: string } };
      const waiter = message.id === undefined ? undefined : this.pending.get(message.id);
      if (!waiter) return;
      this.pending.delete(message.id!);
      if (message.error) waiter.reject(new Error(`inspector: ${message.error.message}`));
      else waiter.resolve(message.result);
    });
  }

  static async open(target: InspectorTarget): Promise<InspectorSession> {
    const ws = new WebSocket(target.webSocketDebuggerUrl, { perMessageDeflate: false });
    await new Promise((resolve, reject) => (ws.once("open", resolve), ws.once("error", reject)));
    return new InspectorSession(ws);
  }

  /** One command's result; a command unanswered for a minute fails. */
  call(method: string, params: object = {}): Promise<unknown> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`inspector: ${method} unanswered after ${COMMAND_TIMEOUT_MS} ms`));
      }, COMMAND_TIMEOUT_MS);
      this.pending.set(id, {
        resolve: (v) => (clearTimeout(timer), resolve(v)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  close(): void {
    this.ws.terminate();
  }
}
