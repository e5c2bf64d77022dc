import type { Connection, ConnectionContext, WSMessage } from "partyserver";
import * as v from "valibot";
import type { Candle, Tick, Timeframe } from "../src/domain/candle.ts";
import type { IndicatorValues } from "../src/domain/indicators.ts";
import type { Instrument } from "../src/domain/instruments.ts";
import type { Signal } from "../src/domain/trading/types.ts";
import type { RuntimeConfig } from "../src/config.ts";
import { logEvent } from "../src/log.ts";
import { LatencyWindow } from "../src/metrics/latency-window.ts";
import { parseConnectionParams, type RoomConnectionState } from "../src/room/connection-params.ts";
import { MessageBudget } from "../src/room/message-budget.ts";
import { coalesceWindowMs, TickCoalescer } from "../src/room/tick-coalescer.ts";
import { roleAllows } from "../src/security/api-key.ts";
import { toWireCandle, toWireSignal, toWireTick } from "../src/wire.ts";
import { RoleSchema } from "../schemas/auth.ts";
import type { CandleList, CandleQuery } from "../schemas/candle.ts";
import { issuesToDetails } from "../schemas/common.ts";
import { ClientMessage, ROOM_MESSAGE_MAX_BYTES, ROOM_MESSAGES_PER_SECOND, type ServerMessage } from "../schemas/room.ts";
import type { SignalMessage } from "../schemas/signal.ts";
import type { TickBatchConflict, TickBatchResult, WireTick } from "../schemas/tick.ts";
import { KEY_ID_HEADER } from "./key-sockets.ts";
import type { ClosedWithIndicators } from "./pair-market.ts";
import { RoomMembers } from "./room-members.ts";

/** Set by the Worker alone (it strips any sent by a client): the role of the room connection's key. */
export const ROLE_HEADER = "x-fxrt-role";

type RoomConnection = Connection<RoomConnectionState>;

/** What the room needs from its actor (the Pair shell). */
export interface RoomHost {
  readonly instrument: Instrument;
  readonly config: Pick<RuntimeConfig, "roomMaxConnections" | "tickCoalesceMs">;
  /** The platform's sockets (partyserver's getConnections), read once after a wake from hibernation. */
  connections(): Iterable<RoomConnection>;
  /** Wall clock of the coalescer (the test hook). */
  clock(): number;
  /** Snapshot and tick-frame reads. */
  lastTick(): Tick | null;
  openCandle(tf: Timeframe): Candle | undefined;
  candles(query: CandleQuery): CandleList;
  latestIndicators(tf: Timeframe): IndicatorValues | null;
  /** A feed's ticks sent on a socket, as POST /ticks takes them (under `batchId` when given). */
  ingest(ticks: readonly WireTick[], batchId: string | undefined): Promise<TickBatchResult | TickBatchConflict>;
  /** A signal for the all-pairs stream (best effort: the signal is already stored). */
  streamSignal(message: SignalMessage): void;
}

/**
 * The pair's WebSocket room: its connections and their timeframes, each
 * connection's message budget, the room protocol, snapshots, and the frames
 * out (coalesced ticks with the open candles, closed candles per timeframe,
 * trading events to keyed connections only).
 */
export class PairRoom {
  private readonly members: RoomMembers<RoomConnectionState>;
  private readonly messageBudget = new MessageBudget<RoomConnection>(ROOM_MESSAGES_PER_SECOND);
  private readonly coalescer: TickCoalescer<Tick>;
  /** Time to send one tick frame to the whole room, ms. */
  readonly broadcastLatency = new LatencyWindow();

  constructor(private readonly host: RoomHost) {
    this.members = new RoomMembers<RoomConnectionState>(() => host.connections());
    this.coalescer = new TickCoalescer<Tick>(
      () => coalesceWindowMs(host.config.tickCoalesceMs, this.members.size),
      (tick, merged) => this.sendTickFrame(tick, merged),
      (fn, ms) => setTimeout(fn, ms),
      () => host.clock(),
    );
  }

  /** Open connections. */
  get size(): number {
    return this.members.size;
  }

  /** Open connections, and those opened with a key. */
  counts(): { connections: number; keyed: number } {
    let connections = 0;
    let keyed = 0;
    for (const state of this.members.all().values()) {
      connections++;
      if (state.role) keyed++;
    }
    return { connections, keyed };
  }

  // ---- connections ------------------------------------------------------------------

  connect(connection: RoomConnection, ctx: ConnectionContext): void {
    const role = v.safeParse(RoleSchema, ctx.request.headers.get(ROLE_HEADER));
    const params = parseConnectionParams(new URL(ctx.request.url), role.success ? role.output : null, ctx.request.headers.get(KEY_ID_HEADER));
    if (!params.ok) {
      this.sendTo(connection, { type: "error", code: "bad_connect_params", message: "invalid room parameters", details: params.issues });
      connection.close(1008, "bad parameters");
      return;
    }
    // The new connection is not a member yet.
    const limit = this.host.config.roomMaxConnections;
    if (this.members.size >= limit) {
      this.sendTo(connection, { type: "error", code: "room_full", message: `this room accepts ${limit} connections`, details: { limit } });
      connection.close(1013, "room full");
      return;
    }
    this.setRoomState(connection, params.state);
    this.sendSnapshot(connection, params.state.timeframes, params.state.snapshotCandles);
  }

  /** The socket closed or failed. */
  leave(connection: RoomConnection): void {
    this.members.delete(connection);
  }

  /** Close the sockets whose key ended (`closeEnded`: actors/key-sockets.ts); how many. */
  async closeEndedKeySockets(
    closeEnded: (sockets: ReadonlyMap<RoomConnection, RoomConnectionState>) => Promise<RoomConnection[]>,
  ): Promise<number> {
    const closed = await closeEnded(this.members.all());
    for (const conn of closed) this.members.delete(conn);
    return closed.length;
  }

  // ---- messages in ------------------------------------------------------------------

  message(connection: RoomConnection, message: WSMessage): void {
    try {
      this.handleMessage(connection, message);
    } catch (err) {
      // One bad message must never take the room down.
      logEvent("error", "room.message_failed", { pair: this.host.instrument.symbol, error: String(err) });
      this.sendTo(connection, { type: "error", code: "internal_error", message: "message could not be handled" });
    }
  }

  private handleMessage(connection: RoomConnection, message: WSMessage): void {
    if (!this.messageBudget.take(connection, Date.now())) {
      this.sendTo(connection, {
        type: "error",
        code: "rate_limited",
        message: `a connection may send ${ROOM_MESSAGES_PER_SECOND} messages a second`,
        details: { limitPerSecond: ROOM_MESSAGES_PER_SECOND },
      });
      return;
    }
    if (typeof message !== "string") {
      this.sendTo(connection, { type: "error", code: "unsupported_frame", message: "send JSON text frames" });
      return;
    }
    if (message.length > ROOM_MESSAGE_MAX_BYTES) {
      this.sendTo(connection, {
        type: "error",
        code: "message_too_large",
        message: `messages are limited to ${ROOM_MESSAGE_MAX_BYTES} bytes`,
        details: { limit: ROOM_MESSAGE_MAX_BYTES, size: message.length },
      });
      return;
    }
    let json: unknown;
    try {
      json = JSON.parse(message);
    } catch {
      this.sendTo(connection, { type: "error", code: "invalid_json", message: "message is not valid JSON" });
      return;
    }
    const parsed = v.safeParse(ClientMessage, json);
    if (!parsed.success) {
      this.sendTo(connection, {
        type: "error",
        code: "invalid_message",
        message: "message does not match the room protocol",
        details: issuesToDetails(parsed.issues),
      });
      return;
    }
    const msg = parsed.output;
    const state = this.members.all().get(connection) ?? connection.state ?? { timeframes: ["1m"], snapshotCandles: 300, role: null };
    switch (msg.type) {
      case "ping":
        this.sendTo(connection, msg.id !== undefined ? { type: "pong", id: msg.id } : { type: "pong" });
        return;
      case "subscribe": {
        const added = msg.timeframes.filter((tf) => !state.timeframes.includes(tf));
        const timeframes = [...state.timeframes, ...added];
        this.setRoomState(connection, { ...state, timeframes });
        this.sendTo(connection, { type: "subscribed", timeframes });
        if (added.length > 0) this.sendSnapshot(connection, added, state.snapshotCandles);
        return;
      }
      case "unsubscribe": {
        const timeframes = state.timeframes.filter((tf) => !msg.timeframes.includes(tf));
        this.setRoomState(connection, { ...state, timeframes });
        this.sendTo(connection, { type: "subscribed", timeframes });
        return;
      }
      case "ticks": {
        if (!state.role || !roleAllows(state.role, "trader")) {
          this.sendTo(connection, {
            type: "error",
            code: "forbidden",
            message: "feeding ticks needs a trader or admin key",
            details: { role: state.role, needed: "trader", ...(msg.id !== undefined ? { id: msg.id } : {}) },
          });
          return;
        }
        void this.ingestFromRoom(connection, msg.ticks, msg.id, msg.batchId);
        return;
      }
    }
  }

  /** A feed's ticks, as POST /ticks takes them; the result (or the failure) goes back to the sender. */
  private async ingestFromRoom(connection: RoomConnection, ticks: readonly WireTick[], id: string | undefined, batchId: string | undefined): Promise<void> {
    try {
      const result = await this.host.ingest(ticks, batchId);
      if ("conflict" in result) {
        this.sendTo(connection, { type: "error", code: "batch_id_conflict", message: "this batchId was sent before with other ticks", details: { ...result.conflict, ...(id !== undefined ? { id } : {}) } });
        return;
      }
      this.sendTo(connection, { type: "ticks_result", ...(id !== undefined ? { id } : {}), ...result });
    } catch (err) {
      logEvent("error", "room.ticks_failed", { pair: this.host.instrument.symbol, error: String(err) });
      this.sendTo(connection, { type: "error", code: "ticks_failed", message: "the ticks could not all be stored: read the pair's last tick (GET /api/pairs/:pair) before sending them again", ...(id !== undefined ? { details: { id } } : {}) });
    }
  }

  private setRoomState(conn: RoomConnection, state: RoomConnectionState): void {
    conn.setState(state);
    this.members.set(conn, state);
  }

  // ---- frames out -------------------------------------------------------------------

  private sendSnapshot(connection: Connection, timeframes: readonly Timeframe[], candles: number): void {
    const { instrument } = this.host;
    const tick = this.host.lastTick();
    this.sendTo(connection, {
      type: "snapshot",
      pair: instrument.symbol,
      tick: tick ? toWireTick(tick, instrument) : null,
      timeframes: timeframes.map((tf) => ({
        tf,
        candles: candles > 0 ? this.host.candles({ tf, limit: candles }).candles : [],
        indicators: this.host.latestIndicators(tf),
      })),
    });
  }

  private sendTo(connection: Connection, msg: ServerMessage): void {
    try {
      connection.send(JSON.stringify(msg));
    } catch {
      // The socket is closing; its close handler cleans up.
    }
  }

  /** Trading events (signals, orders, fills, positions, risk) reach keyed connections only. */
  sendToKeyed(frame: string): void {
    for (const [conn, state] of this.members.all()) {
      if (state.role) this.sendFrame(conn, frame);
    }
  }

  /** Send a frame to every connection subscribed to `tf`. */
  private sendToTimeframe(tf: Timeframe, frame: string): void {
    for (const [conn, state] of this.members.all()) {
      if (state.timeframes.includes(tf)) this.sendFrame(conn, frame);
    }
  }

  /** A socket that can no longer be written to leaves the room; its close event may never come. */
  private sendFrame(conn: RoomConnection, frame: string): void {
    try {
      conn.send(frame);
    } catch {
      this.members.delete(conn);
    }
  }

  /** Closed candles with their indicators, to the connections following their timeframe. */
  publishClosed(closed: readonly ClosedWithIndicators[]): void {
    const { instrument } = this.host;
    for (const { tf, candle, indicators } of closed) {
      const msg: ServerMessage = { type: "candle", pair: instrument.symbol, tf, candle: toWireCandle(candle, instrument, true), indicators };
      this.sendToTimeframe(tf, JSON.stringify(msg));
    }
  }

  /** Signals go to the keyed connections and to the all-pairs stream. */
  publishSignals(signals: readonly Signal[]): void {
    for (const signal of signals) {
      const message: SignalMessage = { type: "signal", signal: toWireSignal(signal, this.host.instrument) };
      this.sendToKeyed(JSON.stringify(message));
      this.host.streamSignal(message);
    }
  }

  /** A batch's last tick, standing for `count` ticks: out now, or merged into the next frame (coalescing). */
  quote(tick: Tick, count: number): void {
    this.coalescer.push(tick, count);
  }

  /**
   * One coalesced frame per client: the latest tick with the candles in
   * progress of the client's timeframes, in a single pass over the room.
   */
  private sendTickFrame(tick: Tick, merged: number): void {
    const started = performance.now();
    this.sendTickFrameNow(tick, merged);
    this.broadcastLatency.record(performance.now() - started);
  }

  /** A connection's timeframe set as a key; a set is kept until its connection subscribes again, so it is joined once, not per tick. */
  private frameKey(timeframes: readonly Timeframe[]): string {
    let key = this.frameKeys.get(timeframes);
    if (key === undefined) {
      key = timeframes.join();
      this.frameKeys.set(timeframes, key);
    }
    return key;
  }

  private readonly frameKeys = new WeakMap<readonly Timeframe[], string>();

  private sendTickFrameNow(tick: Tick, merged: number): void {
    const { instrument } = this.host;
    const quote = { type: "tick" as const, pair: instrument.symbol, ...toWireTick(tick, instrument), merged };
    // Clients share few timeframe sets: one frame per distinct set, built once per tick.
    const frames = new Map<string, string>();
    const frameFor = (timeframes: readonly Timeframe[]): string => {
      const key = this.frameKey(timeframes);
      let frame = frames.get(key);
      if (frame === undefined) {
        const candles = timeframes.flatMap((tf) => {
          const open = this.host.openCandle(tf);
          return open ? [{ tf, candle: toWireCandle(open, instrument, false) }] : [];
        });
        frame = JSON.stringify({ ...quote, candles } satisfies ServerMessage);
        frames.set(key, frame);
      }
      return frame;
    };
    for (const [conn, state] of this.members.all()) this.sendFrame(conn, frameFor(state.timeframes));
  }
}
