import { Server, type Connection } from "partyserver";
import type { SignalMessage } from "../schemas/signal.ts";

/**
 * The all-pairs signal stream behind `/api/signals/realtime`: pair actors
 * publish every signal here and it is broadcast to every connection. One
 * instance ("all"); connections hibernate between signals.
 */
export class SignalHub extends Server<Env> {
  static override options = { hibernate: true };

  publish(message: SignalMessage): number {
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
