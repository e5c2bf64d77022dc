import { Server, type Connection } from "partyserver";
import type { SignalMessage } from "../schemas/signal.ts";
import type { Alert } from "../src/alerts/rules.ts";

/** What a hub broadcasts: signals ("all" instance) or alerts ("admin" instance). */
export type HubMessage = SignalMessage | { type: "alert"; alert: Alert; raisedAt: number };

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

  override onMessage(connection: Connection): void {
    // Listen-only stream: say so instead of silently ignoring.
    connection.send(JSON.stringify({ type: "error", code: "read_only", message: "this stream only sends signals" }));
  }
}
