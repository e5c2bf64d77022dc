import type { Connection } from "partyserver";

/**
 * A room's open connections and their state, held in memory for broadcasts.
 *
 * partyserver's hibernating `getConnections()` asks the platform for the
 * socket list and deserializes every socket's attachment (twice: its own
 * metadata, then our state) on each call, per tick and per client. Here a
 * broadcast is a walk over a Map. The platform's list stays the source of truth: after a
 * wake from hibernation (a fresh actor instance, empty map) the members are
 * reloaded from it once. Connections without state (still connecting, or
 * refused) are not members.
 */
export class RoomMembers<S> {
  private members: Map<Connection<S>, S> | null = null;

  constructor(private readonly platformConnections: () => Iterable<Connection<S>>) {}

  /** Members and their state, loaded from the platform on first use. */
  all(): ReadonlyMap<Connection<S>, S> {
    return this.load();
  }

  get size(): number {
    return this.load().size;
  }

  set(conn: Connection<S>, state: S): void {
    this.load().set(conn, state);
  }

  delete(conn: Connection<S>): void {
    this.members?.delete(conn);
  }

  private load(): Map<Connection<S>, S> {
    if (this.members === null) {
      this.members = new Map();
      for (const conn of this.platformConnections()) {
        const state = conn.state;
        // The attachment is a structured clone the platform hands back: safe to keep as our copy.
        if (state !== null && state !== undefined) this.members.set(conn, state as S);
      }
    }
    return this.members;
  }
}
