/**
 * CPU profiles of workerd's V8 isolates through its inspector (Miniflare's
 * `inspectorPort`): where a scenario's JavaScript time goes inside the
 * runtime. The actors' clocks stand still between I/O, so this is the only
 * view of what runs inside them below a millisecond. `npm run bench --
 * --profile` turns it on; each isolate's profile is written for Chrome
 * DevTools (Performance panel, "Load profile") and the heaviest functions are
 * printed.
 *
 * Read the shares, not the milliseconds: sampling slows the isolates down,
 * and every isolate of one workerd thread counts time spent in the others as
 * "(program)". Within one isolate, a function's share of the JS samples is
 * what a profile is good for.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import WebSocket from "ws";

/** Coarse on purpose: at 50 us the profiler itself doubled the latencies measured. */
const SAMPLING_INTERVAL_US = 1_000;
/** Not JavaScript: waiting, native code and other isolates, the collector. */
const NOT_JS = new Set(["(idle)", "(program)", "(root)", "(garbage collector)"]);

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface IsolateProfile {
  isolate: string;
  /** Sampled time in JavaScript functions (sampling inflates it: compare between isolates of one run). */
  jsMs: number;
  garbageCollectorMs: number;
  /** The heaviest functions by self time, with their share of this isolate's JS samples. */
  top: { fn: string; selfMs: number; share: number }[];
  file: string;
}

/** Start profiling every isolate; the returned function stops, writes `<dir>/<prefix>-<isolate>.cpuprofile` and summarises. */
export async function startProfiles(inspectorPort: number, dir: string, prefix: string): Promise<(topN?: number) => Promise<IsolateProfile[]>> {
  const targets = (await (await fetch(`http://127.0.0.1:${inspectorPort}/json/list`)).json()) as { title: string; webSocketDebuggerUrl: string }[];
  const sessions: { title: string; session: InspectorSession }[] = [];
  for (const target of targets) {
    const session = await InspectorSession.open(target.webSocketDebuggerUrl);
    await session.call("Profiler.enable");
    await session.call("Profiler.setSamplingInterval", { interval: SAMPLING_INTERVAL_US });
    await session.call("Profiler.start");
    sessions.push({ title: target.title, session });
  }
  return async (topN = 15) => {
    await mkdir(dir, { recursive: true });
    const out: IsolateProfile[] = [];
    for (const { title, session } of sessions) {
      try {
        const { profile } = (await session.call("Profiler.stop")) as { profile: CpuProfile };
        const file = join(dir, `${prefix}-${title.replace(/^workerd: worker /, "").replace(/[^a-z0-9]+/gi, "_")}.cpuprofile`);
        await writeFile(file, JSON.stringify(profile));
        out.push({ isolate: title, file, ...summarise(profile, topN) });
      } finally {
        session.close();
      }
    }
    return out.filter((p) => p.jsMs > 0).sort((a, b) => b.jsMs - a.jsMs);
  };
}

function summarise(profile: CpuProfile, topN: number): Omit<IsolateProfile, "isolate" | "file"> {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<string, number>();
  let jsUs = 0;
  let gcUs = 0;
  profile.samples.forEach((id, i) => {
    const frame = byId.get(id)?.callFrame;
    const dt = profile.timeDeltas[i] ?? 0;
    if (!frame || dt <= 0) return;
    if (frame.functionName === "(garbage collector)") gcUs += dt;
    if (NOT_JS.has(frame.functionName)) return;
    jsUs += dt;
    const file = frame.url.split("/").pop() ?? "";
    const key = `${frame.functionName || "(anonymous)"}${file ? ` ${file}:${frame.lineNumber + 1}` : " (native)"}`;
    selfUs.set(key, (selfUs.get(key) ?? 0) + dt);
  });
  const ms = (us: number) => Math.round(us / 100) / 10;
  const top = [...selfUs]
    .sort((a, b) => b[1] - a[1])
    .slice(0, topN)
    .map(([fn, us]) => ({ fn, selfMs: ms(us), share: Math.round((us / jsUs) * 1000) / 1000 }));
  return { jsMs: ms(jsUs), garbageCollectorMs: ms(gcUs), top };
}

/** One inspector connection: commands answered by id. */
class InspectorSession {
  private next = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  private constructor(private readonly ws: WebSocket) {
    ws.on("message", (data: WebSocket.RawData) => {
      const message = JSON.parse(data.toString()) as { id?: number; result?: unknown; error?: { message: string } };
      const waiter = message.id === undefined ? undefined : this.pending.get(message.id);
      if (!waiter) return;
      this.pending.delete(message.id!);
      if (message.error) waiter.reject(new Error(`inspector: ${message.error.message}`));
      else waiter.resolve(message.result);
    });
  }

  static async open(url: string): Promise<InspectorSession> {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    await new Promise((resolve, reject) => (ws.once("open", resolve), ws.once("error", reject)));
    return new InspectorSession(ws);
  }

  call(method: string, params: object = {}): Promise<unknown> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  close(): void {
    this.ws.terminate();
  }
}

/** Where `--profile` writes (not committed: one run's profiles are several MB). */
export const PROFILES_DIR = join(import.meta.dirname, "results", "profiles");

/** Each isolate's JS time, then the heaviest functions of the isolates doing most of it. */
export function printProfiles(profiles: readonly IsolateProfile[], isolates = 2): void {
  console.log(`\nCPU profile (${SAMPLING_INTERVAL_US} us sampling; files in ${PROFILES_DIR}): JS time per isolate`);
  for (const p of profiles) console.log(`  ${p.isolate.padEnd(48)} ${String(p.jsMs).padStart(9)} ms JS, ${p.garbageCollectorMs} ms GC`);
  for (const p of profiles.slice(0, isolates)) {
    console.log(`heaviest functions of ${p.isolate} (share of its JS samples):`);
    for (const f of p.top) console.log(`  ${(f.share * 100).toFixed(1).padStart(5)}%  ${f.fn}`);
  }
}
