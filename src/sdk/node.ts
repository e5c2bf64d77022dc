/**
 * Node entry of the SDK: Node 20 has no global WebSocket, so rooms default to
 * the `ws` package here.
 */
import WebSocket from "ws";
import { PairRoom, type PairRoomOptions } from "./room-client.ts";

export * from "./index.ts";

export function connectPair(options: PairRoomOptions): PairRoom {
  return new PairRoom({ WebSocket, ...options });
}
