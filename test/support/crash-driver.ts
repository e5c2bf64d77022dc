/**
 * Black-box crash test of the whole local runtime (issue 14).
 *
 * Runs `npm start` (scripts/start.ts) as a child process group on one state
 * folder, drives it over HTTP with a seeded workload (tick batches with
 * batchIds, market and limit orders with client ids, kill switch halts and
 * resumes), SIGKILLs the whole group (Node and workerd) at a random instant
 * around one of these requests, starts it again on the same state, re-sends
 * every request whose answer it did not get (same body, same ids), and then
 * checks through the API that:
 *  (a) every order is recorded once, answers agree with the records, no order
 *      has more fills than units and no fill is lost or changed by a restart;
 *  (b) each pair's open position equals the signed sum of its orders' fills;
 *  (c) every acknowledged tick is stored once (ticksStored and the 1m candles'
 *      tick counts equal the ticks the answers say were accepted);
 *  (d) the coordinator and every pair report the same trading state within a
 *      stated bound after the restart, and an acknowledged halt or resume
 *      survives the crash.
 * Nothing inside the runtime is touched: what it does not expose over HTTP is
 * not checked.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { SeededRandom } from "../../src/domain/random.ts";
import { getInstrument } from "../../src/domain/instruments.ts";
import { ROOT } from "../../scripts/runtime.ts";

export const CRASH_KEY = "crash-test-admin-key";
/** The bound stated for (d): coordinator and pairs agree this long after the restarted runtime first answers. */
export const CONVERGENCE_BOUND_MS = 10_000;
export const DEFAULT_PAIRS = ["EUR_USD", "USD_JPY", "GBP_USD"] as const;
/** Realistic mids (decimal) the price walks start from. */
const START_MID: Record<string, number> = { EUR_USD: 1.1, USD_JPY: 150, GBP_USD: 1.27, AUD_USD: 0.66, USD_CHF: 0.88, USD_CAD: 1.36 };
/** The kinds of request a kill is aimed at ("timer": any instant, whatever is in flight). */
export const KILL_TARGETS = ["halt", "resume", "order", "ticks", "timer"] as const;
export type KillTarget = (typeof KILL_TARGETS)[number];
/** A request still unanswered this long counts as lost (it is re-sent like one cut by a kill). */
const REQUEST_TIMEOUT_MS = 30_000;
/** The orders route answers at most this many per pair: a run that makes more cannot be checked whole. */
const ORDERS_ROUTE_MAX = 1000;

export interface CrashOptions {
  seed: number;
  cycles: number;
  /** Run folder: the state folder and the child's temp folder (bundles) go inside. */
  dir: string;
  pairs?: readonly string[];
  /** Workload time before the kill is aimed, ms: drawn in [min, max]. */
  warmupMs?: [number, number];
  /** What each cycle's kill is aimed at, in turn; default all of KILL_TARGETS from a seeded start, so every kind gets its share. */
  targets?: readonly KillTarget[];
  /**
   * The first cycle's kill goes out the moment its aimed request has left, so
   * at least that request is cut off: a run of few cycles then always
   * exercises re-sending (aimed kills land at random inside a request's time,
   * and a handful of them may all fall after the answers).
   */
  cutFirst?: boolean;
  log?: (line: string) => void;
}

export interface CrashReport {
  seed: number;
  cycles: number;
  kills: number;
  /** Kills whose process group held a workerd (the runtime itself, not only its Node parent). */
  killsWithWorkerd: number;
  targets: Record<KillTarget, number>;
  requests: { sent: number; unanswered: number; resent: number; serverErrors: number };
  ticks: { batches: number; resentBatches: number; sent: number; accepted: number; stored: number };
  orders: { sent: number; resent: number; recorded: number; filled: number; working: number; refused: number; fills: number };
  killSwitch: { sent: number; resent: number };
  restartMs: number[];
  /** From the restarted runtime's first answer until coordinator and pairs agree, before anything is re-sent. */
  convergenceMs: number[];
  /** From the re-sent requests' answers until coordinator and pairs agree on the expected state. */
  convergenceAfterResendMs: number[];
  violations: string[];
}

type Json = Record<string, any>;
type Answer = { status: number; json: Json } | null;
interface WireTick { ts: number; bid: number; ask: number }

interface TickBatch { pair: string; batchId: string; ticks: WireTick[] }
interface PairBook {
  pair: string;
  /** Mid in integer points and the pair's precision. */
  mid: number;
  precision: number;
  lastTs: number;
  seq: number;
  accepted: number;
  sent: number;
  firstTs: number | null;
  lastAcceptedTs: number | null;
  /** The batch sent and not answered (one in flight per pair, so ticks stay in time order). */
  pending: TickBatch | null;
}
interface OrderReq {
  id: string;
  pair: string;
  body: Json;
  /** The answer that settled it (a 2xx or 4xx), null while in doubt. */
  answer: { status: number; json: Json } | null;
  /** Fills known for it, by fill id (from its answers and the reads since). */
  fills: Map<string, { units: number; price: number }>;
  /** Status in the orders list when last read (its fills are read again when it changes). */
  listed: string | null;
}
interface KillSwitchReq { action: "halt" | "resume"; reason: string; answered: boolean }

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const stateOf = (action: "halt" | "resume") => (action === "halt" ? "HALTED" : "ACTIVE");
const signed = (side: string, units: number) => (side === "buy" ? units : -units);

// ---- the runtime as a process group ------------------------------------------------------

interface ProcInfo { pid: number; name: string; state: string }

/** Live processes of a process group (Linux /proc); zombies are dead and left out. */
async function groupMembers(pgid: number): Promise<ProcInfo[]> {
  const out: ProcInfo[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, "utf8").catch(() => null);
    if (stat === null) continue;
    const close = stat.lastIndexOf(")");
    const [state, , pgrp] = stat.slice(close + 2).split(" ");
    if (Number(pgrp) === pgid && state !== "Z") out.push({ pid: Number(entry), name: stat.slice(stat.indexOf("(") + 1, close), state: state ?? "?" });
  }
  return out;
}

class RuntimeProcess {
  private output = "";
  /** The group's processes once it served: the ones a kill must take (workerd among them). */
  members: ProcInfo[] = [];
  private constructor(readonly child: ChildProcess, readonly url: string, private readonly onExit: () => void) {}

  /** `npm start` in its own process group; resolves once /api/health answers. */
  static async start(dir: string, pairs: readonly string[]): Promise<RuntimeProcess> {
    const tmp = path.join(dir, "tmp");
    await mkdir(tmp, { recursive: true });
    const child = spawn(process.execPath, [path.join(ROOT, "node_modules/tsx/dist/cli.mjs"), "scripts/start.ts"], {
      cwd: ROOT,
      // Its own group, so one kill reaches tsx, Node and workerd at once, as a power cut would.
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...process.env,
        CLOUDFLARE_CF_FETCH_ENABLED: "false",
        WRANGLER_SEND_METRICS: "false",
        PORT: "0",
        STATE_DIR: path.join(dir, "state"),
        // Killed runtimes leave their bundle folders behind: keep them in the run folder.
        TMPDIR: tmp,
        FEED: "off",
        BROKER: "paper",
        PAIRS: pairs.join(","),
        ADMIN_API_KEY: CRASH_KEY,
        // One client sends everything: the per-IP and per-key limits would refuse the workload.
        RATE_LIMIT_PER_MINUTE: "1000000000",
      },
    });
    // If the driver itself exits, the runtime must not outlive it (it runs in a group of its own), even before it serves.
    const onExit = () => {
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        // gone
      }
    };
    process.on("exit", onExit);
    let output = "";
    const url = await new Promise<string>((resolve, reject) => {
      const onData = (d: Buffer) => {
        output = (output + d.toString()).slice(-20_000);
        const m = /FX actor runtime on (http:\/\/\S+)/.exec(output);
        if (m) resolve(m[1]!);
      };
      child.stdout!.on("data", onData);
      child.stderr!.on("data", onData);
      child.once("exit", (code, signal) => reject(new Error(`npm start exited (${code ?? signal}) before serving:\n${output}`)));
    }).catch((err: unknown) => {
      onExit();
      process.off("exit", onExit);
      throw err;
    });
    const runtime = new RuntimeProcess(child, url, onExit);
    runtime.output = output;
    const keep = (d: Buffer) => (runtime.output = (runtime.output + d.toString()).slice(-20_000));
    child.stdout!.on("data", keep);
    child.stderr!.on("data", keep);
    for (let i = 0; ; i++) {
      const res = await fetch(`${url}/api/health`).catch(() => null);
      if (res?.ok) break;
      if (i > 100) throw new Error(`${url}/api/health never answered:\n${runtime.output}`);
      await sleep(100);
    }
    runtime.members = await groupMembers(runtime.pgid);
    return runtime;
  }

  get pgid(): number {
    return this.child.pid!;
  }

  tail(): string {
    return this.output.slice(-3_000);
  }

  /** SIGKILL to the whole group, at once (synchronous: requests in flight stay in flight). */
  killGroup(): void {
    try {
      process.kill(-this.pgid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }

  /** Kills the group if still needed; resolves once no process of it is alive. */
  async kill(): Promise<void> {
    const exited = this.child.exitCode !== null || this.child.signalCode !== null ? Promise.resolve() : new Promise((r) => this.child.once("exit", r));
    this.killGroup();
    await exited;
    for (let i = 0; (await groupMembers(this.pgid)).length > 0; i++) {
      if (i > 100) throw new Error(`processes of group ${this.pgid} survived SIGKILL: ${JSON.stringify(await groupMembers(this.pgid))}`);
      await sleep(50);
    }
    process.off("exit", this.onExit);
  }

  /** A clean stop (start.ts disposes of the runtime on SIGTERM); SIGKILL if it hangs. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once("exit", r));
    process.kill(-this.pgid, "SIGTERM");
    const bound = setTimeout(() => void this.kill(), 20_000);
    await exited;
    clearTimeout(bound);
    await this.kill();
  }
}

// ---- the driver ---------------------------------------------------------------------------

class CrashRun {
  private readonly rng: SeededRandom;
  private readonly pairs: readonly string[];
  private readonly books = new Map<string, PairBook>();
  private readonly orders = new Map<string, OrderReq>();
  private readonly killSwitches: KillSwitchReq[] = [];
  private runtime!: RuntimeProcess;
  private cycle = 0;
  /** Set at the kill: lanes send nothing more. */
  private killed = false;
  private killNow: (() => void) | null = null;
  /** The request kind whose next send sets the kill off. */
  private armed: { kind: "ticks" } | null = null;
  private ksChain: Promise<unknown> = Promise.resolve();
  private orderSeq = 0;
  private readonly targetOffset: number;
  private stop = false;
  /** Recent answer times of each kind of request, ms: aimed kills land inside a request's own time. */
  private readonly latency = new Map<string, number[]>();
  /** Workload requests not settled yet: all are awaited after a kill, so none lands on the next life unseen. */
  private readonly inflight = new Set<Promise<Answer>>();
  readonly report: CrashReport;

  constructor(private readonly opts: CrashOptions) {
    this.rng = new SeededRandom(opts.seed);
    this.pairs = opts.pairs ?? DEFAULT_PAIRS;
    this.targetOffset = opts.targets ? 0 : Math.floor(this.rng.next() * KILL_TARGETS.length);
    for (const pair of this.pairs) {
      const precision = getInstrument(pair).displayPrecision;
      const mid = START_MID[pair];
      if (mid === undefined) throw new Error(`no start price for ${pair}`);
      this.books.set(pair, { pair, mid: Math.round(mid * 10 ** precision), precision, lastTs: 0, seq: 0, accepted: 0, sent: 0, firstTs: null, lastAcceptedTs: null, pending: null });
    }
    this.report = {
      seed: opts.seed, cycles: 0, kills: 0, killsWithWorkerd: 0,
      targets: { halt: 0, resume: 0, order: 0, ticks: 0, timer: 0 },
      requests: { sent: 0, unanswered: 0, resent: 0, serverErrors: 0 },
      ticks: { batches: 0, resentBatches: 0, sent: 0, accepted: 0, stored: 0 },
      orders: { sent: 0, resent: 0, recorded: 0, filled: 0, working: 0, refused: 0, fills: 0 },
      killSwitch: { sent: 0, resent: 0 },
      restartMs: [], convergenceMs: [], convergenceAfterResendMs: [], violations: [],
    };
  }

  private log(line: string): void {
    this.opts.log?.(`[crash seed=${this.opts.seed} cycle=${this.cycle}] ${line}`);
  }

  private violation(what: string, request: unknown, observed: unknown, expected: unknown): void {
    const line = `seed=${this.opts.seed} cycle=${this.cycle} ${what}: request ${JSON.stringify(request)}; observed ${JSON.stringify(observed)}; expected ${JSON.stringify(expected)}`;
    this.report.violations.push(line);
    this.log(`VIOLATION ${line}`);
  }

  private rand(min: number, max: number): number {
    return min + this.rng.next() * (max - min);
  }

  private pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.rng.next() * items.length)]!;
  }

  // ---- HTTP ----

  /** One call; null when no answer came (connection cut, refused, timed out) or a 5xx (the runtime failed it). */
  private async call(method: string, route: string, body?: unknown): Promise<Answer> {
    try {
      const res = await fetch(`${this.runtime.url}${route}`, {
        method,
        headers: { "x-api-key": CRASH_KEY, ...(body === undefined ? {} : { "content-type": "application/json" }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      const text = await res.text();
      if (res.status >= 500) {
        if (!this.killed) this.log(`${method} ${route} -> ${res.status} ${text.slice(0, 300)}`);
        this.report.requests.serverErrors++;
        return null;
      }
      return { status: res.status, json: text ? (JSON.parse(text) as Json) : {} };
    } catch {
      return null;
    }
  }

  /** A read (or a setup call) that must succeed: the runtime is up and nothing is being killed. */
  private async must(method: string, route: string, body?: unknown): Promise<Json> {
    for (let i = 0; i < 5; i++) {
      const answer = await this.call(method, route, body);
      if (answer && answer.status < 300) return answer.json;
      if (answer) throw new Error(`${method} ${route}: ${answer.status} ${JSON.stringify(answer.json).slice(0, 500)}`);
      await sleep(200);
    }
    throw new Error(`${method} ${route}: no answer\n${this.runtime.tail()}`);
  }

  /** A workload request: counted, and it may set the armed kill off. */
  private async send(kind: "ticks" | "order" | "kill-switch", route: string, body: unknown): Promise<Answer> {
    this.report.requests.sent++;
    const sentAt = performance.now();
    const answer = this.call("POST", route, body);
    void answer.then((a) => {
      if (a === null) return;
      const times = this.latency.get(kind) ?? [];
      times.push(performance.now() - sentAt);
      this.latency.set(kind, times.slice(-50));
    });
    this.inflight.add(answer);
    void answer.finally(() => this.inflight.delete(answer));
    if (this.armed?.kind === kind) {
      this.armed = null;
      setTimeout(() => this.killNow?.(), this.killDelay(kind));
    }
    const result = await answer;
    if (result === null) this.report.requests.unanswered++;
    return result;
  }

  /**
   * How long after an aimed request leaves the kill goes: up to 1.2 times its kind's median answer
   * time, so the kill falls before it arrives, while it is worked on (the narrow moment between a
   * commit and its answer among them), or just after. A fixed window missed most of that moment.
   */
  private killDelay(kind: string): number {
    if (this.opts.cutFirst && this.cycle === 1) return 0;
    const times = [...(this.latency.get(kind) ?? [])].sort((a, b) => a - b);
    const median = times[Math.floor(times.length / 2)] ?? 20;
    return this.rand(0, 1.2 * median);
  }

  // ---- ticks ----

  private nextBatch(book: PairBook): TickBatch {
    const n = 1 + Math.floor(this.rng.next() * 20);
    const spread = 12; // 1.2 pips: the pip is 10 points on every pair served here
    const base = Math.max(book.lastTs + 1, Date.now() - n);
    const ticks: WireTick[] = [];
    for (let i = 0; i < n; i++) {
      book.mid += Math.round(this.rng.normal() * 2);
      const bid = book.mid - spread / 2;
      const scale = 10 ** book.precision;
      ticks.push({ ts: base + i, bid: Number((bid / scale).toFixed(book.precision)), ask: Number(((bid + spread) / scale).toFixed(book.precision)) });
    }
    book.lastTs = base + n - 1;
    book.seq++;
    return { pair: book.pair, batchId: `crash-s${this.opts.seed}-${book.pair}-${book.seq}`, ticks };
  }

  /** Send a batch (or send it again); true once answered, and the answer is booked. */
  private async sendBatch(batch: TickBatch, again: boolean): Promise<boolean> {
    const book = this.books.get(batch.pair)!;
    const answer = await this.send("ticks", `/api/pairs/${batch.pair}/ticks`, { ticks: batch.ticks, batchId: batch.batchId });
    if (answer === null) {
      book.pending = batch;
      return false;
    }
    book.pending = null;
    if (answer.status !== 200) {
      // A batch sent again with the same ticks is never a conflict; nothing else here is malformed.
      this.violation(again ? "re-sent tick batch not taken" : "tick batch not taken", { batchId: batch.batchId, ticks: batch.ticks.length }, answer, "200");
      return true;
    }
    const rejected = (answer.json.rejected ?? []) as { index: number; reason: { type: string } }[];
    if (answer.json.accepted + rejected.length !== batch.ticks.length) {
      this.violation("tick batch answer does not add up", { batchId: batch.batchId, ticks: batch.ticks.length }, answer.json, "accepted + rejected = ticks");
    }
    const refusedAt = new Set(rejected.map((r) => r.index));
    batch.ticks.forEach((t, i) => {
      if (refusedAt.has(i)) return;
      book.firstTs ??= t.ts;
      book.lastAcceptedTs = t.ts;
    });
    book.accepted += answer.json.accepted as number;
    this.report.ticks.accepted += answer.json.accepted as number;
    return true;
  }

  private async tickLane(book: PairBook): Promise<void> {
    while (!this.killed && !this.stop) {
      const batch = this.nextBatch(book);
      this.report.ticks.batches++;
      this.report.ticks.sent += batch.ticks.length;
      book.sent += batch.ticks.length;
      if (!(await this.sendBatch(batch, false))) return;
      await sleep(this.rand(0, 40));
    }
  }

  // ---- orders ----

  private newOrder(): OrderReq | null {
    const book = this.books.get(this.pick(this.pairs))!;
    // The pair must have a quote the driver sent: orders are priced from it.
    if (book.lastAcceptedTs === null) return null;
    const side = this.rng.next() < 0.5 ? "buy" : "sell";
    const units = 1000 * (1 + Math.floor(this.rng.next() * 20));
    const id = `crash-s${this.opts.seed}-o${++this.orderSeq}`;
    const body: Json = { pair: book.pair, side, units, clientOrderId: id };
    if (this.rng.next() < 0.3) {
      // A limit 1-4 pips away on the resting side: the walk fills some of them later, on a tick.
      const away = 10 * (1 + Math.floor(this.rng.next() * 4));
      const points = side === "buy" ? book.mid - away : book.mid + away;
      body.type = "limit";
      body.price = Number((points / 10 ** book.precision).toFixed(book.precision));
    } else body.type = "market";
    const order: OrderReq = { id, pair: book.pair, body, answer: null, fills: new Map(), listed: null };
    this.orders.set(id, order);
    this.report.orders.sent++;
    return order;
  }

  /** Send an order (or send it again); true once answered. */
  private async sendOrder(order: OrderReq, again: boolean): Promise<boolean> {
    const answer = await this.send("order", "/api/trade/execute", order.body);
    if (answer === null) return false;
    order.answer = answer;
    if (answer.status === 200) this.takeFills(order, answer.json, again ? "re-sent order" : "order");
    else if (answer.status !== 422) this.violation(again ? "re-sent order not taken" : "order not taken", order.body, answer, "200 or 422 (risk)");
    return true;
  }

  /** Fills from an answer: each one the same as any earlier answer gave for it. */
  private takeFills(order: OrderReq, json: Json, what: string): void {
    for (const f of (json.fills ?? []) as { id: string; units: number; price: number }[]) {
      const known = order.fills.get(f.id);
      if (known && (known.units !== f.units || known.price !== f.price)) this.violation(`${what}: a fill changed`, order.body, f, known);
      order.fills.set(f.id, { units: f.units, price: f.price });
    }
  }

  private async orderLane(): Promise<void> {
    while (!this.killed && !this.stop) {
      await sleep(this.rand(30, 250));
      if (this.killed || this.stop) return;
      const order = this.newOrder();
      if (order && !(await this.sendOrder(order, false))) return;
    }
  }

  // ---- kill switch ----

  /** Halts and resumes go one at a time, so the last one sent is the state expected. */
  private sendKillSwitch(action: "halt" | "resume", onSent?: () => void): Promise<boolean> {
    const run = async () => {
      if (this.killed) return false;
      const req: KillSwitchReq = { action, reason: `crash test c${this.cycle} #${this.killSwitches.length + 1}`, answered: false };
      this.killSwitches.push(req);
      this.report.killSwitch.sent++;
      const answer = this.send("kill-switch", "/api/admin/kill-switch", { action: req.action, reason: req.reason });
      onSent?.();
      return this.settleKillSwitch(req, await answer, false);
    };
    const next = this.ksChain.then(run, run);
    this.ksChain = next.catch(() => undefined);
    return next;
  }

  private settleKillSwitch(req: KillSwitchReq, answer: Answer, again: boolean): boolean {
    if (answer === null) return false;
    req.answered = true;
    if (answer.status !== 200 || answer.json.status?.state !== stateOf(req.action)) {
      this.violation(again ? "re-sent kill switch" : "kill switch", req, answer, { status: 200, state: stateOf(req.action) });
    }
    return true;
  }

  private async killSwitchLane(): Promise<void> {
    while (!this.killed && !this.stop) {
      await sleep(this.rand(300, 1500));
      if (this.killed || this.stop) return;
      const last = this.killSwitches.at(-1)?.action ?? "resume";
      // Mostly a change; sometimes the same action again (idempotent: re-pushed to every pair).
      const action = this.rng.next() < 0.8 ? (last === "halt" ? "resume" : "halt") : last;
      if (!(await this.sendKillSwitch(action))) return;
    }
  }

  /** The trading state the driver's answered or re-sent kill switches ask for. */
  private expectedState(): string {
    const last = this.killSwitches.at(-1);
    return last ? stateOf(last.action) : "ACTIVE";
  }

  // ---- a cycle ----

  /** Workload, then a kill aimed at one kind of request; resolves once the group is dead and the lanes stopped. */
  private async workloadAndKill(): Promise<void> {
    this.killed = false;
    const targets = this.opts.targets ?? KILL_TARGETS;
    const target = targets[(this.targetOffset + this.cycle - 1) % targets.length]!;
    this.report.targets[target]++;
    const warmup = this.opts.warmupMs ?? [300, 2000];
    const warmupMs = this.rand(warmup[0], warmup[1]);
    const killedAt = new Promise<void>((resolve) => {
      this.killNow = () => {
        // The kill goes out before anything else runs: whatever is in flight now is cut off.
        this.runtime.killGroup();
        this.killed = true;
        resolve();
      };
    });
    const lanes = [...[...this.books.values()].map((b) => this.tickLane(b)), this.orderLane(), this.orderLane(), this.killSwitchLane()];
    await Promise.race([sleep(warmupMs), killedAt]);
    const fire = (kind: string) => setTimeout(() => this.killNow?.(), this.killDelay(kind));
    if (target === "timer") this.killNow?.();
    else if (target === "ticks") this.armed = { kind: "ticks" };
    else if (target === "order") {
      const order = this.newOrder();
      if (order) void this.sendOrder(order, false);
      fire("order");
    } else void this.sendKillSwitch(target, () => fire("kill-switch"));
    await killedAt;
    this.killNow = null;
    this.armed = null;
    this.killed = true;
    await this.runtime.kill();
    const names = this.runtime.members.map((m) => m.name);
    this.report.kills++;
    if (names.includes("workerd")) this.report.killsWithWorkerd++;
    this.log(`killed (aimed at ${target} after ${warmupMs.toFixed(0)} ms): ${names.join(", ")}`);
    await Promise.all(lanes);
    await this.ksChain;
    await Promise.allSettled([...this.inflight]);
  }

  private async startRuntime(): Promise<number> {
    const started = performance.now();
    this.runtime = await RuntimeProcess.start(this.opts.dir, this.pairs);
    return performance.now() - started;
  }

  /** Polls /api/metrics until the coordinator and every pair report the same state (and `want`, if given); ms taken. */
  private async converge(want: string | null, what: string): Promise<number> {
    const started = performance.now();
    let last: Json = {};
    while (performance.now() - started < CONVERGENCE_BOUND_MS) {
      last = await this.must("GET", "/api/metrics");
      const pairs = (last.pairs as { tradingState: string }[]).map((p) => p.tradingState);
      if (pairs.every((s) => s === last.trading) && (want === null || last.trading === want)) return performance.now() - started;
      await sleep(100);
    }
    const observed = { coordinator: last.trading, pairs: Object.fromEntries((last.pairs as { pair: string; tradingState: string }[]).map((p) => [p.pair, p.tradingState])) };
    this.violation(`${what}: coordinator and pairs not in the same trading state within ${CONVERGENCE_BOUND_MS} ms`, this.killSwitches.at(-1) ?? null, observed, want ?? "one state");
    return performance.now() - started;
  }

  /** Every unanswered request again, same body and ids, until it is answered. */
  private async resend(): Promise<void> {
    const retry = async (label: string, once: () => Promise<boolean>) => {
      for (let i = 0; i < 20; i++) {
        if (await once()) return;
        await sleep(250);
      }
      throw new Error(`${label}: no answer after 20 tries\n${this.runtime.tail()}`);
    };
    // Each pair's batch first and alone: the pair's later batches follow it in time.
    await Promise.all(
      [...this.books.values()].map(async (book) => {
        const batch = book.pending;
        if (!batch) return;
        this.report.ticks.resentBatches++;
        this.report.requests.resent++;
        await retry(`batch ${batch.batchId}`, () => this.sendBatch(batch, true));
      }),
    );
    for (const order of this.orders.values()) {
      if (order.answer !== null) continue;
      this.report.orders.resent++;
      this.report.requests.resent++;
      await retry(`order ${order.id}`, () => this.sendOrder(order, true));
    }
    for (const req of this.killSwitches) {
      if (req.answered) continue;
      this.report.killSwitch.resent++;
      this.report.requests.resent++;
      await retry(`kill switch ${req.reason}`, async () => this.settleKillSwitch(req, await this.send("kill-switch", "/api/admin/kill-switch", { action: req.action, reason: req.reason }), true));
    }
  }

  // ---- invariants ----

  private async checkTicks(): Promise<void> {
    let stored = 0;
    for (const book of this.books.values()) {
      const status = await this.must("GET", `/api/pairs/${book.pair}`);
      stored += status.ticksStored as number;
      if (status.ticksStored !== book.accepted) {
        this.violation(`${book.pair}: ticks stored != ticks acknowledged`, { pair: book.pair, batches: book.seq }, status.ticksStored, book.accepted);
      }
      if ((status.lastTick?.ts ?? null) !== book.lastAcceptedTs) {
        this.violation(`${book.pair}: last tick is not the last one acknowledged`, { pair: book.pair }, status.lastTick, book.lastAcceptedTs);
      }
      if (book.firstTs === null) continue;
      // The same count through the candles (each stored tick counted once in its 1m candle).
      const from = Math.floor(book.firstTs / 60_000) * 60_000;
      const candles = await this.must("GET", `/api/pairs/${book.pair}/candles?tf=1m&from=${from}&limit=5000`);
      const n = (candles.candles as { n: number }[]).reduce((s, c) => s + c.n, 0);
      if (n !== book.accepted) this.violation(`${book.pair}: 1m candles count another number of ticks`, { pair: book.pair, from }, n, book.accepted);
    }
    this.report.ticks.stored = stored;
  }

  /** (a) and (b). `full`: read every order's fills again, not only those whose status changed. */
  private async checkOrders(full: boolean): Promise<void> {
    const listed = new Map<string, Json>();
    for (const pair of this.pairs) {
      const orders = (await this.must("GET", `/api/pairs/${pair}/orders?limit=${ORDERS_ROUTE_MAX}`)).orders as Json[];
      if (orders.length >= ORDERS_ROUTE_MAX) throw new Error(`${pair} has ${ORDERS_ROUTE_MAX}+ orders: more than the orders route lists, run fewer cycles`);
      for (const o of orders) {
        if (listed.has(o.clientOrderId)) this.violation("an order is recorded twice", o, "twice", "once");
        listed.set(o.clientOrderId, o);
      }
    }
    for (const [id, o] of listed) {
      if (!this.orders.has(id)) this.violation("an order nobody sent is recorded", o, "recorded", "none: no strategies run here");
    }
    let filled = 0, working = 0, refused = 0;
    for (const order of this.orders.values()) {
      const record = listed.get(order.id);
      const answer = order.answer!;
      if (answer.status !== 200) {
        refused++;
        // Refused by risk: the refusal is the answer, so no order may stand behind it.
        if (record) this.violation("an order answered as refused is recorded", order.body, record, "not recorded");
        continue;
      }
      if (!record) {
        this.violation("an order answered as taken is not recorded", order.body, null, answer.json.order);
        continue;
      }
      if (record.status === "filled") filled++;
      if (record.status === "working") working++;
      if (full || record.status !== order.listed) {
        // The API's idempotent retry: the same body and id answer with the stored order and all its fills.
        const again = await this.must("POST", "/api/trade/execute", order.body);
        if (again.order?.clientOrderId !== order.id) this.violation("an order read again answers for another", order.body, again.order, order.id);
        const before = new Set(order.fills.keys());
        this.takeFills(order, again, "order read again");
        const now = new Set(((again.fills ?? []) as { id: string }[]).map((f) => f.id));
        for (const id of before) if (!now.has(id)) this.violation("a fill an answer gave is gone", order.body, [...now], `includes ${id}`);
        order.listed = record.status;
      }
      const units = [...order.fills.values()].reduce((s, f) => s + f.units, 0);
      if (units > order.body.units) this.violation("an order has more fills than units", order.body, units, `<= ${order.body.units}`);
      if (record.status === "filled" && units !== order.body.units) this.violation("a filled order's fills do not add up to its units", order.body, units, order.body.units);
    }
    const fillIds = [...this.orders.values()].flatMap((o) => [...o.fills.keys()]);
    if (new Set(fillIds).size !== fillIds.length) this.violation("a fill id belongs to two orders", null, fillIds.length, new Set(fillIds).size);
    Object.assign(this.report.orders, { recorded: listed.size, filled, working, refused, fills: fillIds.length });
    // (b) each pair's open position against the fills of its orders.
    const open = (await this.must("GET", `/api/admin/positions?limit=${ORDERS_ROUTE_MAX}`)).positions as Json[];
    for (const pair of this.pairs) {
      const held = open.filter((p) => p.pair === pair).reduce((s, p) => s + signed(p.side, p.units), 0);
      let fromFills = 0;
      for (const order of this.orders.values()) {
        if (order.pair !== pair) continue;
        for (const f of order.fills.values()) fromFills += signed(order.body.side, f.units);
      }
      if (held !== fromFills) this.violation(`${pair}: open position != signed sum of fills`, { pair }, held, fromFills);
    }
  }

  // ---- the run ----

  private async setup(): Promise<void> {
    // Orders as fast as the workload sends them, large enough positions, quotes that outlive a restart, any day of the week.
    for (const pair of this.pairs) {
      await this.must("PUT", `/api/admin/pairs/${pair}/risk`, { limits: { maxOrdersPerMinute: 1000, maxPositionUnits: 100_000_000, stalePriceMs: 600_000, weekendGuard: false } });
    }
    await this.must("PUT", "/api/admin/limits", {
      maxGrossExposure: 1e12, maxNetExposurePerCurrency: 1e12, maxOpenPositions: 10_000, maxExposurePerPair: 1e12, dailyLossLimit: 1e12, maxDrawdown: 1e12,
    });
  }

  async run(): Promise<CrashReport> {
    this.log(`starting the runtime in ${this.opts.dir}`);
    await this.startRuntime();
    try {
      await this.setup();
      for (this.cycle = 1; this.cycle <= this.opts.cycles; this.cycle++) {
        const before = this.report.violations.length;
        await this.workloadAndKill();
        const restartMs = await this.startRuntime();
        this.report.restartMs.push(restartMs);
        // Before anything is re-sent: what the runtime does by itself after a crash. An acknowledged
        // halt or resume must have survived; an unanswered one may or may not have been stored.
        const inDoubt = this.killSwitches.filter((k) => !k.answered);
        const acked = [...this.killSwitches].reverse().find((k) => k.answered);
        const allowed = new Set([acked ? stateOf(acked.action) : "ACTIVE", ...inDoubt.map((k) => stateOf(k.action))]);
        const convergenceMs = await this.converge(null, "after the restart");
        this.report.convergenceMs.push(convergenceMs);
        const state = (await this.must("GET", "/api/metrics")).trading as string;
        if (!allowed.has(state)) this.violation("the coordinator lost an acknowledged kill switch", acked ?? null, state, [...allowed]);
        await this.resend();
        this.report.convergenceAfterResendMs.push(await this.converge(this.expectedState(), "after the re-sends"));
        await this.checkTicks();
        await this.checkOrders(this.cycle === this.opts.cycles);
        this.report.cycles++;
        this.log(`restart ${restartMs.toFixed(0)} ms, converged ${convergenceMs.toFixed(0)} ms, ${this.report.requests.resent} re-sent so far, state ${this.expectedState()}`);
        // Later cycles would only pile consequences onto the first broken invariant.
        if (this.report.violations.length > before) break;
      }
    } finally {
      this.stop = true;
      await this.runtime.stop();
    }
    return this.report;
  }
}

/** Runs `cycles` kill-and-restart cycles on a fresh runtime in `dir`; the report lists any broken invariant. */
export function runCrashTest(options: CrashOptions): Promise<CrashReport> {
  return new CrashRun(options).run();
}
