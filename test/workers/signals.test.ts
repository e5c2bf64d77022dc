import { abortAllDurableObjects } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import * as v from "valibot";
import { ServerMessage } from "../../schemas/room.ts";
import { call, openRoom, postJson } from "./helpers.ts";

const MINUTE = 60_000;

function putStrategies(pair: string, strategies: unknown) {
  return call(`/api/admin/pairs/${pair}/strategies`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ strategies }),
  });
}

/** One tick per minute at these bid prices (EUR_USD style, 1 pip spread), starting at `start`. */
function minuteTicks(start: number, bids: number[]) {
  return bids.map((bid, i) => ({ ts: start + i * MINUTE + 1_000, bid, ask: Math.round((bid + 0.0001) * 1e5) / 1e5 }));
}

describe("strategies and signals", () => {
  it("validates the strategy configuration and changes nothing on a bad one", async () => {
    const bad = await putStrategies("EUR_USD", [{ id: "x", kind: "sma-cross", params: { fast: 5, slow: 3 } }]);
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: { code: "invalid_strategies" } });
    const dup = await putStrategies("EUR_USD", [{ id: "a", kind: "sma-cross" }, { id: "a", kind: "ema-cross" }]);
    expect(dup.status).toBe(400);
    const current = (await (await call("/api/admin/pairs/EUR_USD/strategies")).json()) as { strategies: unknown[] };
    expect(current.strategies).toEqual([]);
  });

  it("a crossing emits one stored signal, broadcast in the room and on the all-pairs stream", async () => {
    const put = await putStrategies("GBP_USD", [{ id: "fast-cross", kind: "sma-cross", params: { timeframe: "1m", fast: 2, slow: 3 } }]);
    expect(put.status).toBe(200);
    expect(await put.json()).toMatchObject({ strategies: [{ id: "fast-cross", kind: "sma-cross", enabled: true, params: { fast: 2, slow: 3, price: "bid" } }] });

    const room = await openRoom("/parties/pair/GBP_USD?tf=1m&limit=0");
    await room.waitFor((f) => f.type === "snapshot");
    const stream = await openRoom("/api/signals/realtime");

    const start = Math.floor(Date.now() / MINUTE) * MINUTE - 10 * MINUTE;
    // Falling then rising: at minute 4 SMA2 = SMA3 (126900 points), at minute 5 (bid 1.2705) SMA2 is above: a cross up.
    const res = await postJson("/api/pairs/GBP_USD/ticks", { ticks: minuteTicks(start, [1.271, 1.27, 1.269, 1.268, 1.27, 1.2705, 1.27]) });
    expect(await res.json()).toMatchObject({ accepted: 7 });

    const signal = await room.waitFor((f) => f.type === "signal");
    expect(v.safeParse(ServerMessage, signal).success).toBe(true);
    expect(signal.signal).toMatchObject({ pair: "GBP_USD", strategyId: "fast-cross", type: "buy", timeframe: "1m", candleT: start + 5 * MINUTE, time: start + 6 * MINUTE });
    const streamed = await stream.waitFor((f) => f.type === "signal");
    expect(streamed).toEqual(signal);

    const stored = (await (await call("/api/pairs/GBP_USD/signals")).json()) as { signals: { id: string; type: string }[] };
    expect(stored.signals).toHaveLength(1);
    expect(stored.signals[0]?.id).toBe((signal.signal as { id: string }).id);
    room.ws.close();
    stream.ws.close();
  });

  it("strategy state survives a restart: the next cross is found without re-warming", async () => {
    await putStrategies("AUD_USD", [{ id: "x", kind: "sma-cross", params: { timeframe: "1m", fast: 2, slow: 3 } }]);
    const start = Math.floor(Date.now() / MINUTE) * MINUTE - 20 * MINUTE;
    await postJson("/api/pairs/AUD_USD/ticks", { ticks: minuteTicks(start, [0.66, 0.659, 0.658, 0.657]) });
    await abortAllDurableObjects();
    // After the restart: rising prices make a cross up; a fresh state would need 3 more candles first.
    await postJson("/api/pairs/AUD_USD/ticks", { ticks: minuteTicks(start + 4 * MINUTE, [0.662, 0.663]) });
    const stored = (await (await call("/api/pairs/AUD_USD/signals")).json()) as { signals: { type: string; candleT: number }[] };
    expect(stored.signals.map((s) => [s.type, s.candleT])).toEqual([["buy", start + 4 * MINUTE]]);
    const config = (await (await call("/api/admin/pairs/AUD_USD/strategies")).json()) as { strategies: { id: string }[] };
    expect(config.strategies.map((s) => s.id)).toEqual(["x"]);
  });

  it("the signal stream is read-only and WebSocket-only", async () => {
    expect((await call("/api/signals/realtime")).status).toBe(426);
    const stream = await openRoom("/api/signals/realtime");
    stream.ws.send("hello");
    expect(await stream.waitFor((f) => f.type === "error")).toMatchObject({ code: "read_only" });
    stream.ws.close();
  });
});
