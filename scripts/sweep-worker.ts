/**
 * One worker thread of a portfolio sweep (scripts/sweep-pool.ts): runs its
 * chunk of combinations in one pass with the in-process runner, reading the
 * lake through the parent thread, and sends back each result as JSON text.
 */
import { parentPort, workerData } from "node:worker_threads";
import type { LakeBucket } from "../src/replay/lake-reader.ts";
import { inProcessRunner, type PortfolioRun } from "../src/replay/portfolio-sweep.ts";
import type { BucketCall, WorkerMessage } from "./sweep-pool.ts";

if (parentPort === null) throw new Error("sweep-worker runs as a worker thread");
const port = parentPort;

type Reply = { id: number; size?: number | null; bytes?: ArrayBuffer | null; error?: string };
const waiting = new Map<number, (reply: Reply) => void>();
let nextId = 1;
port.on("message", (reply: Reply) => waiting.get(reply.id)?.(reply));

function call(c: Omit<BucketCall, "id">): Promise<Reply> {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    waiting.set(id, (reply) => {
      waiting.delete(id);
      if (reply.error !== undefined) reject(new Error(reply.error));
      else resolve(reply);
    });
    const message: WorkerMessage = { type: "bucket", call: { ...c, id } as BucketCall };
    port.postMessage(message);
  });
}

/** The lake as the parent thread sees it. */
const bucket: LakeBucket = {
  head: async (key) => {
    const size = (await call({ op: "head", key })).size;
    return size === null || size === undefined ? null : { size };
  },
  get: async (key, options) => {
    const bytes = (await call({ op: "get", key, ...(options?.range ? { range: options.range } : {}) })).bytes;
    return bytes === null || bytes === undefined ? null : { arrayBuffer: async () => bytes };
  },
};

const { runs } = workerData as { runs: PortfolioRun[] };
try {
  const results = await inProcessRunner(bucket)(runs, (progress) => port.postMessage({ type: "progress", progress } satisfies WorkerMessage));
  port.postMessage({ type: "done", results: results.map((r) => JSON.stringify(r)) } satisfies WorkerMessage);
} catch (err) {
  const e = err as Error;
  port.postMessage({ type: "failed", message: e.message ?? String(err), name: e.name ?? "Error" } satisfies WorkerMessage);
}
