/**
 * The Node baseline of the WebSocket scenarios (ws-fanout, many-pairs): a
 * plain Node HTTP + `ws` server doing the minimum of the runtime's job, one
 * room per pair. It accepts the same tick POST (`/api/pairs/:pair/ticks`) and
 * the same "ticks" message on a room socket (a feed), and for each sends every
 * client of that pair's room (`/parties/pair/:pair`) the same frame the
 * runtime's room sends (a "tick" frame carrying the 1m candle in progress,
 * same JSON shape, so the same size), then answers.
 *
 * It runs as a child process, as the runtime runs in workerd processes:
 * startBaselineServer() spawns this file, which prints `LISTENING <port>`.
 */
import { spawn, type ChildProcess } from "node:child_process";
import http from "node:http";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { WebSocketServer, type WebSocket } from "ws";
import type { WireTick } from "../schemas/tick.ts";
import { onCleanup, ROOT } from "./common.ts";

const SELF = fileURLToPath(import.meta.url);
const PAIR = /^[A-Z]{3}_[A-Z]{3}$/;

type Candle = { t: number; bid: { o: number; h: number; l: number; c: number }; ask: { o: number; h: number; l: number; c: number }; n: number };

function serve(): void {
  const rooms = new Map<string, { clients: Set<WebSocket>; candle: Candle | null }>();
  const room = (pair: string) => {
    let r = rooms.get(pair);
    if (!r) rooms.set(pair, (r = { clients: new Set(), candle: null }));
    return r;
  };
  const broadcast = (clients: Set<WebSocket>, frame: string) => {
    for (const ws of clients) if (ws.readyState === ws.OPEN) ws.send(frame);
  };

  /** Fold the ticks into the 1m candle in progress and send every client of the room the tick frame. */
  const applyTicks = (pair: string, ticks: readonly WireTick[]) => {
    const r = room(pair);
    for (const tick of ticks) {
      const t = Math.floor(tick.ts / 60_000) * 60_000;
      if (!r.candle || r.candle.t !== t) {
        r.candle = { t, bid: { o: tick.bid, h: tick.bid, l: tick.bid, c: tick.bid }, ask: { o: tick.ask, h: tick.ask, l: tick.ask, c: tick.ask }, n: 0 };
      }
      const c = r.candle;
      c.bid.h = Math.max(c.bid.h, tick.bid);
      c.bid.l = Math.min(c.bid.l, tick.bid);
      c.bid.c = tick.bid;
      c.ask.h = Math.max(c.ask.h, tick.ask);
      c.ask.l = Math.min(c.ask.l, tick.ask);
      c.ask.c = tick.ask;
      c.n++;
    }
    const last = ticks[ticks.length - 1]!;
    const candles = r.candle ? [{ tf: "1m", candle: { ...r.candle, complete: false } }] : [];
    broadcast(r.clients, JSON.stringify({ type: "tick", pair, ts: last.ts, bid: last.bid, ask: last.ask, merged: ticks.length, candles }));
  };

  const server = http.createServer((req, res) => {
    // The floor of a plain HTTP request on this machine (bench/tick-path.ts).
    if (req.method === "GET" && req.url === "/api/health") {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ status: "ok", time: Date.now() }));
      return;
    }
    const m = /^\/api\/pairs\/([^/]+)\/ticks$/.exec(req.url ?? "");
    if (req.method !== "POST" || !m || !PAIR.test(m[1]!)) {
      res.writeHead(404, { "content-type": "application/json" }).end('{"error":{"code":"not_found","message":"no such route"}}');
      return;
    }
    const pair = m[1]!;
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
      applyTicks(pair, ticks);
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ accepted: ticks.length, rejected: [] }));
    });
  });

  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  server.on("upgrade", (req, socket, head) => {
    const pair = /^\/parties\/pair\/([^/?]+)/.exec(req.url ?? "")?.[1];
    if (!pair || !PAIR.test(pair)) {
      socket.destroy();
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const r = room(pair);
      r.clients.add(ws);
      ws.on("close", () => r.clients.delete(ws));
      ws.on("error", () => r.clients.delete(ws));
      // A feed sends ticks over its room socket, as to the runtime: applied, broadcast, answered.
      ws.on("message", (data: Buffer) => {
        const msg = JSON.parse(data.toString("utf8")) as { type?: string; id?: string; ticks?: WireTick[] };
        if (msg.type !== "ticks" || !Array.isArray(msg.ticks) || msg.ticks.length === 0) return;
        applyTicks(pair, msg.ticks);
        ws.send(JSON.stringify({ type: "ticks_result", ...(msg.id !== undefined ? { id: msg.id } : {}), accepted: msg.ticks.length, rejected: [] }));
      });
      ws.send(JSON.stringify({ type: "snapshot", pair, tick: null, timeframes: [{ tf: "1m", candles: [], indicators: null }] }));
    });
  });

  server.keepAliveTimeout = 60_000;
  server.listen(0, "127.0.0.1", () => {
    const addr = server.address();
    process.stdout.write(`LISTENING ${typeof addr === "object" && addr ? addr.port : 0}\n`);
  });
  // Die with the parent: stdin closes when the parent exits, even on a crash.
  process.stdin.resume();
  process.stdin.on("end", () => process.exit(0));
  process.on("SIGTERM", () => process.exit(0));
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === SELF) serve();

/** Spawn the baseline server; stopped on cleanup (and killed on signal or exit). */
export async function startBaselineServer(): Promise<{ url: string; pid: number; stop: () => Promise<void> }> {
  const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", SELF], { cwd: ROOT, stdio: ["pipe", "pipe", "inherit"] });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const alive = () => child.exitCode === null && child.signalCode === null;
  const stop = onCleanup(
    async () => {
      if (!alive()) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 3_000);
      await exited;
      clearTimeout(timer);
    },
    () => {
      if (alive()) child.kill("SIGKILL");
    },
  );
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("baseline server did not start within 20 s")), 20_000);
      child.once("exit", (code) => reject(new Error(`baseline server exited (${code})`)));
      createInterface({ input: child.stdout! }).on("line", (line) => {
        const m = /^LISTENING (\d+)$/.exec(line);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
    });
    return { url: `http://127.0.0.1:${port}`, pid: child.pid ?? -1, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
