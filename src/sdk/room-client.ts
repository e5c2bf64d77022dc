import { PartySocket } from "partysocket";
import * as v from "valibot";
import type { Timeframe } from "../domain/candle.ts";
import { ServerMessage, type ClientMessage } from "../../schemas/room.ts";

export type ServerMessageType = ServerMessage["type"];
export type MessageOf<T extends ServerMessageType> = Extract<ServerMessage, { type: T }>;

export interface PairRoomOptions {
  /** Runtime base URL, e.g. http://127.0.0.1:8787 (https -> wss). */
  url: string;
  pair: string;
  timeframes?: readonly Timeframe[];
  /** Candles per timeframe in the snapshot (0..1000). */
  snapshotCandles?: number;
  /** API key, sent as `?key=` since browsers cannot set headers on a WebSocket. */
  apiKey?: string;
  /** WebSocket implementation; required on Node 20 (use `ws`, or import from "src/sdk/node.ts"). */
  WebSocket?: unknown;
  /** Reconnect with backoff after a drop (default true). Snapshots are resent on reconnect. */
  reconnect?: boolean;
  /** Validate every inbound frame against the schemas (default true). */
  validate?: boolean;
}

type Handler<T extends ServerMessageType> = (msg: MessageOf<T>) => void;

/**
 * Typed client for a pair's room: partysocket for reconnection, the room
 * schemas for every frame in and out.
 */
export class PairRoom {
  readonly socket: PartySocket;
  private readonly handlers = new Map<string, Set<(msg: ServerMessage) => void>>();
  private readonly invalidHandlers = new Set<(raw: unknown, issues: unknown) => void>();

  constructor(private readonly options: PairRoomOptions) {
    const base = new URL(options.url);
    const WebSocketImpl = options.WebSocket ?? (globalThis as { WebSocket?: unknown }).WebSocket;
    if (!WebSocketImpl) {
      throw new Error("no WebSocket implementation: on Node 20 pass { WebSocket } from the 'ws' package");
    }
    const query: Record<string, string> = { tf: (options.timeframes ?? ["1m"]).join(",") };
    if (options.snapshotCandles !== undefined) query.limit = String(options.snapshotCandles);
    if (options.apiKey) query.key = options.apiKey;
    this.socket = new PartySocket({
      host: base.host,
      protocol: base.protocol === "https:" ? "wss" : "ws",
      party: "pair",
      room: options.pair,
      query,
      WebSocket: WebSocketImpl,
      ...(options.reconnect === false ? { maxRetries: 0 } : {}),
      minReconnectionDelay: 250,
      maxReconnectionDelay: 5_000,
    });
    this.socket.addEventListener("message", (event: MessageEvent) => this.dispatch(event.data));
  }

  /** Listen to one message type; returns an unsubscribe function. */
  on<T extends ServerMessageType>(type: T, handler: Handler<T>): () => void {
    let set = this.handlers.get(type);
    if (!set) this.handlers.set(type, (set = new Set()));
    const h = handler as (msg: ServerMessage) => void;
    set.add(h);
    return () => set.delete(h);
  }

  /** Frames that failed validation (a newer server, or a bug). */
  onInvalid(handler: (raw: unknown, issues: unknown) => void): () => void {
    this.invalidHandlers.add(handler);
    return () => this.invalidHandlers.delete(handler);
  }

  /** Resolve with the next message of a type (e.g. the first snapshot). */
  next<T extends ServerMessageType>(type: T, timeoutMs = 10_000): Promise<MessageOf<T>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`no ${type} message within ${timeoutMs} ms`));
      }, timeoutMs);
      const off = this.on(type, (msg) => {
        clearTimeout(timer);
        off();
        resolve(msg);
      });
    });
  }

  send(msg: ClientMessage): void {
    this.socket.send(JSON.stringify(msg));
  }

  subscribe(timeframes: Timeframe[]): void {
    this.send({ type: "subscribe", timeframes });
  }

  unsubscribe(timeframes: Timeframe[]): void {
    this.send({ type: "unsubscribe", timeframes });
  }

  ping(id?: string): void {
    this.send(id === undefined ? { type: "ping" } : { type: "ping", id });
  }

  close(): void {
    this.socket.close();
  }

  private dispatch(data: unknown): void {
    let json: unknown;
    try {
      json = JSON.parse(String(data));
    } catch {
      for (const h of this.invalidHandlers) h(data, "invalid JSON");
      return;
    }
    let msg: ServerMessage;
    if (this.options.validate === false) {
      msg = json as ServerMessage;
    } else {
      const parsed = v.safeParse(ServerMessage, json);
      if (!parsed.success) {
        for (const h of this.invalidHandlers) h(json, parsed.issues);
        return;
      }
      msg = parsed.output;
    }
    for (const h of this.handlers.get(msg.type) ?? []) h(msg);
  }
}
