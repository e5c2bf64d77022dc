/**
 * A portfolio sweep on worker threads: the combinations are split into one
 * contiguous chunk per thread, each chunk run in one pass over the data by a
 * worker (scripts/sweep-worker.ts) exactly as the in-process runner runs it,
 * so the results are the same bytes whatever the thread count. Workers read
 * the lake through this thread (a message per ranged read, the bytes
 * transferred, not copied), so the bucket is opened once and memory stays
 * one batch per pair per worker. Progress is the rows read by all workers
 * together, for one progress bar.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { rename, writeFile } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import type { LakeBucket, LakeProgress } from "../src/replay/lake-reader.ts";
import type { ProgressListener } from "../src/replay/lake-run.ts";
import type { PortfolioRun, PortfolioRunner } from "../src/replay/portfolio-sweep.ts";
import type { PortfolioBacktestResult } from "../src/replay/portfolio-result.ts";

/** What a worker asks of the lake. */
export type BucketCall = { id: number; op: "head"; key: string } | { id: number; op: "get"; key: string; range?: { offset: number; length: number } };
/** What a worker says. */
export type WorkerMessage =
  | { type: "bucket"; call: BucketCall }
  | { type: "progress"; progress: LakeProgress }
  | { type: "done"; results: string[] }
  | { type: "failed"; message: string; name: string };

/** Threads to use by default: every core the machine offers. */
export function defaultThreads(): number {
  return availableParallelism();
}

/** Split `items` into at most `parts` contiguous chunks of near-equal size, in order. */
export function chunks<T>(items: readonly T[], parts: number): T[][] {
  const n = Math.max(1, Math.min(parts, items.length));
  const out: T[][] = [];
  let at = 0;
  for (let k = 0; k < n; k++) {
    const size = Math.floor(items.length / n) + (k < items.length % n ? 1 : 0);
    out.push(items.slice(at, at + size));
    at += size;
  }
  return out.filter((c) => c.length > 0);
}

/** Answer a worker's lake read (null when the object is absent). */
async function answer(bucket: LakeBucket, call: BucketCall): Promise<{ id: number; size?: number | null; bytes?: ArrayBuffer | null; error?: string }> {
  try {
    if (call.op === "head") return { id: call.id, size: (await bucket.head(call.key))?.size ?? null };
    const object = await bucket.get(call.key, call.range ? { range: call.range } : undefined);
    return { id: call.id, bytes: object ? await object.arrayBuffer() : null };
  } catch (err) {
    return { id: call.id, error: String(err) };
  }
}

/**
 * The worker's code as one JavaScript file: scripts/sweep-worker.ts and
 * everything it imports, bundled by esbuild once per process (a quarter of a
 * second) into the temp folder under a name from its content, so processes
 * running at once share it. A worker then starts in milliseconds instead of
 * compiling the TypeScript again (Node 20 would not apply `--import tsx` to
 * a worker's own module anyway).
 */
let workerFile: Promise<string> | null = null;
function workerScript(): Promise<string> {
  workerFile ??= (async () => {
    const { build } = await import("esbuild");
    const out = await build({
      entryPoints: [fileURLToPath(new URL("./sweep-worker.ts", import.meta.url))],
      bundle: true,
      format: "esm",
      platform: "node",
      target: "node20",
      write: false,
      logLevel: "silent",
      // CommonJS inside the bundle may require Node's own modules.
      banner: { js: 'import { createRequire as __fxrtRequire } from "node:module"; const require = __fxrtRequire(import.meta.url);' },
    });
    const code = out.outputFiles[0]?.contents;
    if (!code) throw new Error("esbuild produced no sweep worker");
    const file = path.join(tmpdir(), `fxrt-sweep-worker-${createHash("sha256").update(code).digest("hex").slice(0, 16)}.mjs`);
    if (!existsSync(file)) {
      const partial = `${file}.${process.pid}.tmp`;
      await writeFile(partial, code);
      await rename(partial, file);
    }
    return file;
  })();
  return workerFile;
}

/** Run one chunk on a new worker thread. */
async function runChunk(bucket: LakeBucket, runs: readonly PortfolioRun[], onRows: (progress: LakeProgress) => void): Promise<PortfolioBacktestResult[]> {
  const script = await workerScript();
  return new Promise((resolve, reject) => {
    const worker = new Worker(script, { workerData: { runs } });
    let settled = false;
    const finish = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      fn();
      void worker.terminate();
    };
    worker.on("message", (msg: WorkerMessage) => {
      if (msg.type === "bucket") {
        void answer(bucket, msg.call).then((reply) => worker.postMessage(reply, reply.bytes ? [reply.bytes] : []));
      } else if (msg.type === "progress") onRows(msg.progress);
      else if (msg.type === "done") finish(() => resolve(msg.results.map((r) => JSON.parse(r) as PortfolioBacktestResult)));
      else finish(() => reject(Object.assign(new Error(msg.message), { name: msg.name })));
    });
    worker.on("error", (err) => finish(() => reject(err)));
    worker.on("exit", (code) => finish(() => reject(new Error(`sweep worker exited with code ${code} before it finished`))));
  });
}

/** A runner over `threads` worker threads (1 still runs on a worker: use inProcessRunner for none). */
export function threadRunner(bucket: LakeBucket, threads: number): PortfolioRunner {
  if (!(Number.isInteger(threads) && threads >= 1)) throw new RangeError(`threads must be a whole number >= 1, got ${threads}`);
  return async (runs: readonly PortfolioRun[], onProgress?: ProgressListener) => {
    const parts = chunks(runs, threads);
    const rows = parts.map(() => ({ rowsRead: 0, rowsTotal: 0, atMs: 0 }));
    const report = (k: number, p: LakeProgress): void => {
      rows[k] = p;
      let read = 0;
      let total = 0;
      for (const r of rows) {
        read += r.rowsRead;
        total += r.rowsTotal;
      }
      // Totals are known once every worker has started; until then the sum understates them.
      void onProgress?.({ rowsRead: read, rowsTotal: total, atMs: Math.min(...rows.map((r) => r.atMs)) });
    };
    const results = await Promise.all(parts.map((part, k) => runChunk(bucket, part, (p) => report(k, p))));
    return results.flat();
  };
}
