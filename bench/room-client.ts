/**
 * A benchmark's WebSocket client of a pair room (or of the Node baseline's
 * room): ready once the snapshot arrives; every "tick" frame is kept with its
 * arrival time, other frames only counted. Shared by ws-fanout and many-pairs.
 */
import { performance } from "node:perf_hooks";
import WebSocket from "ws";

export const ROOM_QUERY = "tf=1m&limit=0";

export interface RoomClient {
  ws: WebSocket;
  /** Tick frames in arrival order: the tick's ts and the arrival (performance.now()). */
  arrivals: { ts: number; at: number }[];
  tickFrames: number;
  tickBytes: number;
  otherFrames: number;
  otherBytes: number;
  /** Tick frames standing for more than one tick (the room coalesced them). */
  coalesced: number;
}

export const roomUrl = (baseUrl: string, pair: string): string => `${baseUrl.replace(/^http/, "ws")}/parties/pair/${pair}?${ROOM_QUERY}`;

export function connectRoomClient(url: string): Promise<RoomClient> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    const client: RoomClient = { ws, arrivals: [], tickFrames: 0, tickBytes: 0, otherFrames: 0, otherBytes: 0, coalesced: 0 };
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`no snapshot from ${url} within 15 s`));
    }, 15_000);
    let ready = false;
    ws.on("message", (data: WebSocket.RawData) => {
      const now = performance.now();
      const text = data.toString();
      const msg = JSON.parse(text) as { type: string; ts?: number; merged?: number };
      if (msg.type === "tick" && msg.ts !== undefined) {
        client.arrivals.push({ ts: msg.ts, at: now });
        client.tickFrames++;
        client.tickBytes += text.length;
        if ((msg.merged ?? 1) > 1) client.coalesced++;
        return;
      }
      if (msg.type === "snapshot" && !ready) {
        ready = true;
        clearTimeout(timer);
        resolve(client);
        return;
      }
      if (!ready && msg.type === "error") {
        clearTimeout(timer);
        ws.terminate();
        reject(new Error(`room refused the connection: ${text.slice(0, 200)}`));
        return;
      }
      client.otherFrames++;
      client.otherBytes += text.length;
    });
    ws.on("close", (code) => {
      if (!ready) {
        clearTimeout(timer);
        reject(new Error(`${url} closed the connection before the snapshot (${code})`));
      }
    });
    ws.on("error", (err) => {
      if (!ready) {
        clearTimeout(timer);
        reject(err);
      }
    });
  });
}

/**
 * Delivery latencies of sent ticks (`[ts, sent at]`, performance.now()) at
 * each client: a tick counts as delivered by the first tick frame carrying it
 * or a later tick (the room coalesces ticks closer than its window); lost when
 * no frame ever covered it. `lastClient`: per tick, the slowest client.
 */
export function deliveryLatencies(clients: readonly RoomClient[], sentAt: Iterable<readonly [number, number]>): { latencies: number[]; lastClient: number[]; lost: number } {
  const latencies: number[] = [];
  let lost = 0;
  const sent = [...sentAt].sort((a, b) => a[0] - b[0]);
  const worst = sent.map(() => -1);
  for (const c of clients) {
    let k = 0;
    for (const [si, [ts, t0]] of sent.entries()) {
      while (k < c.arrivals.length && c.arrivals[k]!.ts < ts) k++;
      const frame = c.arrivals[k];
      if (frame === undefined) {
        lost++;
        continue;
      }
      const l = frame.at - t0;
      latencies.push(l);
      if (l > worst[si]!) worst[si] = l;
    }
  }
  return { latencies, lastClient: worst.filter((w) => w >= 0), lost };
}

/** Close every client, waiting at most 2 s for each before terminating it. */
export async function closeRoomClients(clients: readonly { ws: WebSocket }[]): Promise<void> {
  await Promise.all(
    clients.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.ws.readyState === WebSocket.CLOSED) return resolve();
          const timer = setTimeout(() => {
            c.ws.terminate();
            resolve();
          }, 2_000);
          c.ws.once("close", () => {
            clearTimeout(timer);
            resolve();
          });
          c.ws.close(1000, "bench done");
        }),
    ),
  );
}

/**
 * A feed: ticks sent as "ticks" messages over one room socket (the runtime
 * needs a trader key, `?key=`), each answered by a "ticks_result" to it alone.
 * `send` resolves with the answer's status once it arrives.
 */
export class RoomFeed {
  private readonly waiting = new Map<string, (result: { accepted: number; rejected: unknown[] }) => void>();
  private nextId = 0;

  private constructor(readonly ws: WebSocket) {
    ws.on("message", (data: WebSocket.RawData) => {
      const msg = JSON.parse(data.toString()) as { type: string; id?: string; accepted?: number; rejected?: unknown[]; code?: string };
      if (msg.type === "ticks_result" && msg.id !== undefined) {
        this.waiting.get(msg.id)?.({ accepted: msg.accepted ?? 0, rejected: msg.rejected ?? [] });
        this.waiting.delete(msg.id);
      } else if (msg.type === "error") {
        console.error(`  feed refused: ${JSON.stringify(msg).slice(0, 200)}`);
      }
    });
  }

  static async open(url: string): Promise<RoomFeed> {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no snapshot from ${url} within 15 s`)), 15_000);
      ws.on("message", function first(data: WebSocket.RawData) {
        if ((JSON.parse(data.toString()) as { type: string }).type !== "snapshot") return;
        clearTimeout(timer);
        ws.off("message", first);
        resolve();
      });
      ws.once("error", reject);
    });
    return new RoomFeed(ws);
  }

  send(ticks: readonly { ts: number; bid: number; ask: number }[]): Promise<{ accepted: number; rejected: unknown[] }> {
    const id = String(this.nextId++);
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.ws.send(JSON.stringify({ type: "ticks", id, ticks }));
    });
  }

  close(): Promise<void> {
    return closeRoomClients([this]);
  }
}
