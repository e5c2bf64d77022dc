import { describe, expect, it } from "vitest";
import * as v from "valibot";
import { ServerMessage, ROOM_MESSAGE_MAX_BYTES, ROOM_TICKS_MAX } from "../../schemas/room.ts";
import { call, openRoom, postJson } from "./helpers.ts";

const now = () => Date.now();

describe("pair room", () => {
  it("sends a snapshot on connect, then live ticks and candle updates, all matching the schema", async () => {
    const t = now() - 2_000;
    await postJson("/api/pairs/EUR_USD/ticks", { ticks: [{ ts: t, bid: 1.08501, ask: 1.08511 }] });

    const room = await openRoom("/parties/pair/EUR_USD?tf=1m,5m&limit=50");
    const snapshot = await room.waitFor((f) => f.type === "snapshot");
    expect(v.safeParse(ServerMessage, snapshot).success).toBe(true);
    expect(snapshot).toMatchObject({ pair: "EUR_USD", tick: { ts: t, bid: 1.08501, ask: 1.08511 } });
    const tfs = snapshot.timeframes as { tf: string; candles: { complete: boolean; n: number }[] }[];
    expect(tfs.map((x) => x.tf)).toEqual(["1m", "5m"]);
    expect(tfs[0]?.candles.at(-1)).toMatchObject({ complete: false, n: 1 });

    const t2 = now();
    const res = await postJson("/api/pairs/EUR_USD/ticks", { ticks: [{ ts: t2, bid: 1.08521, ask: 1.08529 }] });
    expect(await res.json()).toEqual({ accepted: 1, rejected: [] });
    const tick = await room.waitFor((f) => f.type === "tick" && f.ts === t2);
    // One frame per tick: the quote and the candles in progress of the connection's timeframes.
    expect(tick).toMatchObject({ pair: "EUR_USD", bid: 1.08521, ask: 1.08529, merged: 1 });
    const open = tick.candles as { tf: string; candle: { complete: boolean; n: number; bid: { c: number } } }[];
    expect(open.map((c) => c.tf)).toEqual(["1m", "5m"]);
    for (const c of open) expect(c.candle).toMatchObject({ complete: false, bid: { c: 1.08521 } });
    // "candle" frames are closes only (one may fall between the two ticks).
    expect(room.frames.filter((f) => f.type === "candle").every((f) => (f.candle as { complete: boolean }).complete)).toBe(true);
    expect(room.frames.every((f) => v.safeParse(ServerMessage, f).success)).toBe(true);
    room.ws.close();
  });

  it("coalesces a burst of ticks on the leading edge", async () => {
    const room = await openRoom("/parties/pair/USD_JPY?tf=1m&limit=0");
    await room.waitFor((f) => f.type === "snapshot");
    const base = now() - 1_000;
    // Three batches back to back, well inside one 50 ms interval.
    for (let i = 0; i < 3; i++) {
      await postJson("/api/pairs/USD_JPY/ticks", { ticks: [{ ts: base + i, bid: 151.2 + i / 1000, ask: 151.21 + i / 1000 }] });
    }
    const merged = await room.waitFor((f) => f.type === "tick" && f.ts === base + 2);
    const ticks = room.frames.filter((f) => f.type === "tick");
    // The first went out at once; the later ones came as one merged frame carrying the latest tick.
    expect(ticks[0]).toMatchObject({ ts: base, merged: 1 });
    expect(ticks.length).toBeLessThan(3);
    expect(merged.merged).toBe(2);
    room.ws.close();
  });

  it("answers bad messages with an error, changes nothing, and stays up", async () => {
    const room = await openRoom("/parties/pair/GBP_USD?tf=1m&limit=0");
    await room.waitFor((f) => f.type === "snapshot");
    const errors = () => room.frames.filter((f) => f.type === "error");

    room.ws.send("not json");
    await room.waitFor(() => errors().length >= 1);
    room.ws.send(JSON.stringify({ type: "subscribe", timeframes: ["7m"] }));
    await room.waitFor(() => errors().length >= 2);
    room.ws.send(JSON.stringify({ type: "launch_missiles" }));
    await room.waitFor(() => errors().length >= 3);
    room.ws.send(JSON.stringify({ type: "ping", id: "x".repeat(ROOM_MESSAGE_MAX_BYTES) }));
    await room.waitFor(() => errors().length >= 4);
    room.ws.send(new Uint8Array([1, 2, 3]));
    await room.waitFor(() => errors().length >= 5);
    expect(errors().map((e) => e.code)).toEqual([
      "invalid_json",
      "invalid_message",
      "invalid_message",
      "message_too_large",
      "unsupported_frame",
    ]);

    // Subscriptions unchanged by the bad subscribe; the room still answers.
    room.ws.send(JSON.stringify({ type: "ping", id: "still-here" }));
    expect(await room.waitFor((f) => f.type === "pong")).toEqual({ type: "pong", id: "still-here" });
    room.ws.send(JSON.stringify({ type: "subscribe", timeframes: ["1h"] }));
    expect(await room.waitFor((f) => f.type === "subscribed")).toEqual({ type: "subscribed", timeframes: ["1m", "1h"] });
    const snap = await room.waitFor((f) => f.type === "snapshot" && (f.timeframes as { tf: string }[])[0]?.tf === "1h");
    expect(snap).toBeTruthy();
    room.ws.close();
  });

  it("takes ticks fed over the socket with a trader key: stored, broadcast and answered as POST does; refused for a viewer", async () => {
    const pair = "AUD_USD";
    const trader = (await (await postJson("/api/admin/keys", { role: "trader", label: "feed" })).json()) as { key: string };
    const viewer = (await (await postJson("/api/admin/keys", { role: "viewer", label: "watcher" })).json()) as { key: string };
    const feed = await openRoom(`/parties/pair/${pair}?tf=1m&limit=0`, trader.key);
    const watcher = await openRoom(`/parties/pair/${pair}?tf=1m&limit=0`, viewer.key);
    await feed.waitFor((f) => f.type === "snapshot");
    await watcher.waitFor((f) => f.type === "snapshot");

    const t = now() - 1_000;
    feed.ws.send(JSON.stringify({ type: "ticks", id: "batch-1", ticks: [{ ts: t, bid: 0.65501, ask: 0.65511 }, { ts: t - 5, bid: 0.655, ask: 0.6551 }] }));
    const result = await feed.waitFor((f) => f.type === "ticks_result");
    expect(result).toEqual({ type: "ticks_result", id: "batch-1", accepted: 1, rejected: [{ index: 1, reason: { type: "out_of_order", ts: t - 5, lastTs: t } }] });
    expect(v.safeParse(ServerMessage, result).success).toBe(true);
    expect(await watcher.waitFor((f) => f.type === "tick" && f.ts === t)).toMatchObject({ bid: 0.65501, ask: 0.65511 });
    const status = (await (await call(`/api/pairs/${pair}`)).json()) as { lastTick: { ts: number } | null };
    expect(status.lastTick?.ts).toBe(t);

    // A viewer may watch, not feed; a message over the batch limit is refused whole.
    watcher.ws.send(JSON.stringify({ type: "ticks", ticks: [{ ts: t + 1, bid: 0.656, ask: 0.6561 }] }));
    expect(await watcher.waitFor((f) => f.type === "error")).toMatchObject({ code: "forbidden", details: { role: "viewer", needed: "trader" } });
    feed.ws.send(JSON.stringify({ type: "ticks", ticks: Array.from({ length: ROOM_TICKS_MAX + 1 }, (_, i) => ({ ts: t + 1 + i, bid: 0.656, ask: 0.6561 })) }));
    expect(await feed.waitFor((f) => f.type === "error")).toMatchObject({ code: "invalid_message" });
    expect(((await (await call(`/api/pairs/${pair}`)).json()) as { lastTick: { ts: number } }).lastTick.ts).toBe(t);
    feed.ws.close();
    watcher.ws.close();
  });

  it("refuses connections with bad parameters and rooms for unknown pairs", async () => {
    const bad = await openRoom("/parties/pair/EUR_USD?tf=2m");
    const err = await bad.waitFor((f) => f.type === "error");
    expect(err).toMatchObject({ code: "bad_connect_params" });

    const unknown = await call("/parties/pair/XXX_YYY", { headers: { Upgrade: "websocket" } });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ error: { code: "unknown_pair" } });
    const plain = await call("/parties/pair/EUR_USD");
    expect(plain.status).toBe(426);
  });
});
