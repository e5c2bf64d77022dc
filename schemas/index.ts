export * from "./common.ts";
export * from "./tick.ts";
export * from "./candle.ts";
export * from "./indicators.ts";
export * from "./room.ts";
