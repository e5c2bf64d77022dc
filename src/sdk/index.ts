/** Client SDK for browsers and Node: typed HTTP client and pair room client. */
export { FxClient, ApiError, type CandleRequest } from "./http-client.ts";
export { PairRoom, type PairRoomOptions, type MessageOf, type ServerMessageType } from "./room-client.ts";
export type { ServerMessage, ClientMessage } from "../../schemas/room.ts";
