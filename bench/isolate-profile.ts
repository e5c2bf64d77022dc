/**
 * CPU profiles of workerd's V8 isolates through its inspector (Miniflare's
 * `inspectorPort`): where a scenario's JavaScript time goes inside the
 * runtime. The actors' clocks stand still between I/O, so this is the only
 * view of what runs inside them below a millisecond. `npm run bench --
 * --profile` turns it on; each isolate's profile is written for Chrome
 * DevTools (Performance panel, "Load profile") and the heaviest functions are
 * printed.
 *
 * Samples are counted, not their time deltas: V8 takes none while an isolate
 * waits outside JavaScript, and the next sample's delta then holds the whole
 * wait (seconds, once), which would be charged to whatever function it caught.
 * Read the shares: within one isolate, a function's share of the JavaScript
 * samples is what a profile is good for.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { PROFILES_DIR } from "./common.ts";
import { InspectorSession, inspectorTargets } from "./inspector-session.ts";

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
  /** Samples taken in JavaScript functions (one per sampling interval while the isolate ran them). */
  jsSamples: number;
  garbageCollectorSamples: number;
  /** The heaviest functions by self samples, with their share of this isolate's JS samples. */
  top: { fn: string; samples: number; share: number }[];
  file: string;
}

/** Start profiling every isolate; the returned function stops, writes `PROFILES_DIR/<prefix>-<isolate>.cpuprofile` and summarises. */
export async function startProfiles(inspectorPort: number, prefix: string): Promise<(topN?: number) => Promise<IsolateProfile[]>> {
  const sessions: { title: string; session: InspectorSession }[] = [];
  for (const target of await inspectorTargets(inspectorPort)) {
    const session = await InspectorSession.open(target);
    await session.call("Profiler.enable");
    await session.call("Profiler.setSamplingInterval", { interval: SAMPLING_INTERVAL_US });
    await session.call("Profiler.start");
    sessions.push({ title: target.title, session });
  }
  return async (topN = 15) => {
    await mkdir(PROFILES_DIR, { recursive: true });
    const out: IsolateProfile[] = [];
    for (const { title, session } of sessions) {
      try {
        const { profile } = (await session.call("Profiler.stop")) as { profile: CpuProfile };
        const file = join(PROFILES_DIR, `${prefix}-${title.replace(/^workerd: worker /, "").replace(/[^a-z0-9]+/gi, "_")}.cpuprofile`);
        await writeFile(file, JSON.stringify(profile));
        out.push({ isolate: title, file, ...summarise(profile, topN) });
      } finally {
        session.close();
      }
    }
    return out.filter((p) => p.jsSamples > 0).sort((a, b) => b.jsSamples - a.jsSamples);
  };
}

function summarise(profile: CpuProfile, topN: number): Omit<IsolateProfile, "isolate" | "file"> {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map<string, number>();
  let js = 0;
  let gc = 0;
  for (const id of profile.samples) {
    const frame = byId.get(id)?.callFrame;
    if (!frame) continue;
    if (frame.functionName === "(garbage collector)") gc++;
    if (NOT_JS.has(frame.functionName)) continue;
    js++;
    const file = frame.url.split("/").pop() ?? "";
    const key = `${frame.functionName || "(anonymous)"}${file ? ` ${file}:${frame.lineNumber + 1}` : " (native)"}`;
    self.set(key, (self.get(key) ?? 0) + 1);
  }
  const top = [...self]
    .sort((a, b) => b[1] - a[1])
    .slice(0, topN)
    .map(([fn, samples]) => ({ fn, samples, share: Math.round((samples / js) * 1000) / 1000 }));
  return { jsSamples: js, garbageCollectorSamples: gc, top };
}

/** Each isolate's JavaScript samples, then the heaviest functions of the isolates doing most of it. */
export function printProfiles(profiles: readonly IsolateProfile[], isolates = 2): void {
  console.log(`\nCPU profile (a sample every ${SAMPLING_INTERVAL_US} us while JavaScript runs; files in ${PROFILES_DIR}):`);
  for (const p of profiles) console.log(`  ${p.isolate.padEnd(48)} ${String(p.jsSamples).padStart(7)} JS samples, ${p.garbageCollectorSamples} in GC`);
  for (const p of profiles.slice(0, isolates)) {
    console.log(`heaviest functions of ${p.isolate} (share of its JS samples):`);
    for (const f of p.top) console.log(`  ${(f.share * 100).toFixed(1).padStart(5)}%  ${f.fn}`);
  }
}
