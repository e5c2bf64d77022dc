export * from "./common.ts";
export * from "./tick.ts";
export * from "./candle.ts";
export * from "./indicators.ts";
export * from "./room.ts";
export * from "./trading.ts";
export * from "./strategy.ts";
export * from "./signal.ts";
