import { Server, type Connection, type ConnectionContext } from "partyserver";
import { closeSocketsOfEndedKeys, KEY_ID_HEADER } from "./key-sockets.ts";
import type { SignalMessage } from "../schemas/signal.ts";
import type { Alert } from "../src/alerts/rules.ts";

/** What a hub broadcasts: signals ("all" instance) or alerts ("admin" instance). */
export type HubMessage = SignalMessage | { type: "alert"; alert: Alert; raisedAt: number };

interface HubConnectionState {
  keyId?: string;
}

/**
 * A broadcast-only room: "all" is the all-pairs signal stream behind
 * `/api/signals/realtime` (pair actors publish every signal), "admin" the
 * alert stream behind `/api/admin/alerts/realtime`. Connections hibernate
 * between messages.
 */
export class SignalHub extends Server<Env> {
  static override options = { hibernate: true };

  publish(message: HubMessage): number {
    this.broadcast(JSON.stringify(message));
    let n = 0;
    for (const _ of this.getConnections()) n++;
    return n;
  }

  /** The key that opened the socket, kept with it (it survives hibernation) so the socket ends with the key. */
  override onConnect(connection: Connection<HubConnectionState>, ctx: ConnectionContext): void {
    const keyId = ctx.request.headers.get(KEY_ID_HEADER);
    connection.setState(keyId ? { keyId } : {});
  }

  /** Close the sockets whose key was revoked (actors/key-sockets.ts); how many. */
  async closeEndedKeySockets(): Promise<number> {
    const sockets = [...this.getConnections<HubConnectionState>()].map((c) => [c, c.state] as const);
    return (await closeSocketsOfEndedKeys(this.env, sockets)).length;
  }

  override onMessage(connection: Connection): void {
    // Listen-only stream: say so instead of silently ignoring.
    connection.send(JSON.stringify({ type: "error", code: "read_only", message: "this stream only sends signals" }));
  }
}
