/**
 * Baseline for ws-fanout: a plain Node HTTP + `ws` server doing the minimum of
 * the runtime's job. It accepts the same tick POST body, and for each POST sends
 * every client the same frames the runtime's room sends (a "tick" frame and the
 * 1m candle in progress, same JSON shapes, so the same sizes), then answers.
 * Run as a child process (`node --import tsx bench/baseline-server.ts`), like
 * the runtime runs in workerd processes; prints `LISTENING <port>` when ready.
 */
import http from "node:http";
import { WebSocketServer, type WebSocket } from "ws";

const PAIR = "EUR_USD";
const ROOM_PATH = `/parties/pair/${PAIR}`;
const TICK_PATH = `/api/pairs/${PAIR}/ticks`;

interface WireTick {
  ts: number;
  bid: number;
  ask: number;
}

/** 1m candle in progress, in decimal prices (what the room sends as a "candle" frame). */
let candle: { t: number; bid: { o: number; h: number; l: number; c: number }; ask: { o: number; h: number; l: number; c: number }; n: number } | null = null;

function addToCandle(tick: WireTick): void {
  const t = Math.floor(tick.ts / 60_000) * 60_000;
  if (!candle || candle.t !== t) {
    candle = { t, bid: { o: tick.bid, h: tick.bid, l: tick.bid, c: tick.bid }, ask: { o: tick.ask, h: tick.ask, l: tick.ask, c: tick.ask }, n: 0 };
  }
  candle.bid.h = Math.max(candle.bid.h, tick.bid);
  candle.bid.l = Math.min(candle.bid.l, tick.bid);
  candle.bid.c = tick.bid;
  candle.ask.h = Math.max(candle.ask.h, tick.ask);
  candle.ask.l = Math.min(candle.ask.l, tick.ask);
  candle.ask.c = tick.ask;
  candle.n++;
}

const clients = new Set<WebSocket>();

function broadcast(frame: string): void {
  for (const ws of clients) if (ws.readyState === ws.OPEN) ws.send(frame);
}

const server = http.createServer((req, res) => {
  if (req.method !== "POST" || req.url !== TICK_PATH) {
    res.writeHead(404, { "content-type": "application/json" }).end('{"error":{"code":"not_found","message":"no such route"}}');
    return;
  }
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    let ticks: WireTick[];
    try {
      ticks = (JSON.parse(Buffer.concat(chunks).toString("utf8")) as { ticks: WireTick[] }).ticks;
      if (!Array.isArray(ticks) || ticks.length === 0) throw new Error("no ticks");
    } catch {
      res.writeHead(400, { "content-type": "application/json" }).end('{"error":{"code":"invalid_ticks","message":"bad body"}}');
      return;
    }
    for (const t of ticks) addToCandle(t);
    const last = ticks[ticks.length - 1]!;
    broadcast(JSON.stringify({ type: "tick", pair: PAIR, ts: last.ts, bid: last.bid, ask: last.ask, merged: ticks.length }));
    if (candle) broadcast(JSON.stringify({ type: "candle", pair: PAIR, tf: "1m", candle: { ...candle, complete: false } }));
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ accepted: ticks.length, rejected: [] }));
  });
});

const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
server.on("upgrade", (req, socket, head) => {
  const url = new URL(req.url ?? "/", "http://localhost");
  if (url.pathname !== ROOM_PATH) {
    socket.destroy();
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    clients.add(ws);
    ws.on("close", () => clients.delete(ws));
    ws.on("error", () => clients.delete(ws));
    ws.send(JSON.stringify({ type: "snapshot", pair: PAIR, tick: null, timeframes: [{ tf: "1m", candles: [], indicators: null }] }));
  });
});

server.keepAliveTimeout = 60_000;
server.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  process.stdout.write(`LISTENING ${port}\n`);
});

// Die with the parent: stdin closes when the parent exits, even on a crash.
process.stdin.resume();
process.stdin.on("end", () => process.exit(0));
process.on("SIGTERM", () => process.exit(0));
