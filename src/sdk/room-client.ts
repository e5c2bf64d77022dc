import { PartySocket } from "partysocket";
import * as v from "valibot";
import type { Timeframe } from "../domain/candle.ts";
import { ServerMessage, type ClientMessage } from "../../schemas/room.ts";
import type { TickBatchResult, WireTick } from "../../schemas/tick.ts";

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
  /** "ticks" messages waiting for their "ticks_result", by id. */
  private readonly feeding = new Map<string, { resolve: (r: TickBatchResult) => void; reject: (e: Error) => void; timer: ReturnType<typeof setTimeout> }>();
  private nextFeedId = 0;

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

  /**
   * Feed ticks to the pair over this socket (needs a trader or admin key; at
   * most ROOM_TICKS_MAX a message): stored and broadcast as a POST to
   * /api/pairs/:pair/ticks would be, without an HTTP request per tick.
   * Resolves with the pair's answer; rejects on a refusal carrying this
   * message's id (`forbidden` without such a key, `ticks_failed`), or after
   * `timeoutMs` (a refusal the server cannot tie to the message, such as
   * `invalid_message` or `rate_limited`, arrives as an "error" frame to
   * on("error") only). `batchId`: as on POST, a batch sent again under it
   * (after a timeout or a reconnect) stores nothing twice.
   */
  sendTicks(ticks: readonly WireTick[], timeoutMs = 10_000, batchId?: string): Promise<TickBatchResult> {
    const id = `feed-${++this.nextFeedId}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.feeding.delete(id);
        reject(new Error(`no ticks_result for ${id} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.feeding.set(id, { resolve, reject, timer });
      this.send({ type: "ticks", id, ticks: [...ticks], ...(batchId !== undefined ? { batchId } : {}) });
    });
  }

  close(): void {
    for (const [id, f] of this.feeding) {
      clearTimeout(f.timer);
      f.reject(new Error(`room closed before ${id} was answered`));
    }
    this.feeding.clear();
    this.socket.close();
  }

  /** Settle a sendTicks promise from its answer or its refusal. */
  private settleFeed(msg: ServerMessage): void {
    const id = msg.type === "ticks_result" ? msg.id : msg.type === "error" ? (msg.details as { id?: unknown } | undefined)?.id : undefined;
    const waiting = typeof id === "string" ? this.feeding.get(id) : undefined;
    if (!waiting || typeof id !== "string") return;
    this.feeding.delete(id);
    clearTimeout(waiting.timer);
    if (msg.type === "ticks_result") waiting.resolve({ accepted: msg.accepted, rejected: msg.rejected });
    else if (msg.type === "error") waiting.reject(new Error(`${msg.code}: ${msg.message}`));
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
    if (msg.type === "ticks_result" || msg.type === "error") this.settleFeed(msg);
    for (const h of this.handlers.get(msg.type) ?? []) h(msg);
  }
}
