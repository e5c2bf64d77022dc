/**
 * Backups of a full pair actor to R2 (local R2 under the same serving path as
 * `npm start`): a pair holding TICKS ticks (the default tick retention is
 * 200,000) and the candles they make is backed up once in full, then again
 * after one more minute of ticks (incremental: only changed chunks go up),
 * then restored from that snapshot (every chunk re-hashed, the state digest
 * checked). Times are the admin API round trips. Baseline in the same run:
 * a backup with nothing changed (the cost of reading and hashing the whole
 * database, with no upload), so the upload share shows.
 * The requirement is a recovery point of at most 5 minutes: a backup must
 * take far less than that interval. The pair is busy only while the snapshot
 * is read and hashed (about the "nothing changed" figure); uploads and
 * restore reads are asynchronous.
 */
import { performance } from "node:perf_hooks";
import { fmt, printTable, resultBase, startBenchRuntime, tempDir, targetLine, json, type BenchOptions, type Scenario, type ScenarioResult } from "./common.ts";

const PAIR = "EUR_USD";
const BATCH = 1000;
/** A backup must finish far inside the 240 s interval that keeps the recovery point under 5 minutes. */
const TARGET_FULL_BACKUP_MS = 10_000;

interface Result {
  rows: number;
  chunks: number;
  uploadedChunks: number;
  uploadedBytes: number;
  unchanged: boolean;
  snapshot: string;
  digest: string;
}

export const backup: Scenario = {
  name: "backup",
  description: "backup of a full pair actor to R2: full, incremental, unchanged (baseline) and restore",
  async run(options: BenchOptions): Promise<ScenarioResult> {
    const base = await resultBase("backup", options);
    const ticks = options.quick ? 20_000 : 200_000;
    const tmp = await tempDir("fxrt-bench-backup-");
    const runtime = await startBenchRuntime(tmp.dir, { BACKUP_INTERVAL_SECONDS: "0" });
    try {
      const post = (path: string, body: unknown) => json<any>(`${runtime.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
      let ts = Date.now() - ticks * 1000 - 120_000;
      const send = async (count: number) => {
        for (let sent = 0; sent < count; sent += BATCH) {
          const batch = Array.from({ length: Math.min(BATCH, count - sent) }, (_, i) => {
            const bid = Number((1.08 + (((sent + i) * 7919) % 500) / 100_000).toFixed(5));
            return { ts: ts + i * 1000, bid, ask: Number((bid + 0.0001).toFixed(5)) };
          });
          ts += batch.length * 1000;
          await post(`/api/pairs/${PAIR}/ticks`, { ticks: batch, replay: true });
        }
      };
      await send(ticks);
      const timed = async (body: unknown) => {
        const t0 = performance.now();
        const res = await post("/api/admin/backups", body);
        return { ms: performance.now() - t0, result: res.results[0] as Result };
      };
      const full = await timed({ actors: [`pair:${PAIR}`] });
      const unchanged = await timed({ actors: [`pair:${PAIR}`] });
      await send(60);
      const incremental = await timed({ actors: [`pair:${PAIR}`] });
      await send(60);
      const t0 = performance.now();
      const restored = await post("/api/admin/backups/restore", { actor: `pair:${PAIR}`, snapshot: incremental.result.snapshot });
      const restoreMs = performance.now() - t0;
      const after = await json<{ digest: string }>(`${runtime.url}/api/admin/backups?actor=pair:${PAIR}`);
      if (after.digest !== incremental.result.digest || restored.digest !== incremental.result.digest) throw new Error("restored digest differs from the snapshot's");
      const kb = (b: number) => (b / 1024).toFixed(1);
      console.log(`\nbackup (${options.quick ? "quick" : "full"}): pair ${PAIR} with ${ticks} ticks (${full.result.rows} rows in all tables), local R2`);
      printTable(
        ["step", "ms", "rows", "chunks", "uploaded chunks", "uploaded KB"],
        [
          ["full backup (first snapshot)", fmt(full.ms), full.result.rows, full.result.chunks, full.result.uploadedChunks, kb(full.result.uploadedBytes)],
          ["nothing changed (baseline: read + hash)", fmt(unchanged.ms), unchanged.result.rows, unchanged.result.chunks, 0, "0.0"],
          ["after 60 more ticks (incremental)", fmt(incremental.ms), incremental.result.rows, incremental.result.chunks, incremental.result.uploadedChunks, kb(incremental.result.uploadedBytes)],
          ["restore that snapshot (digest checked)", fmt(restoreMs), restored.rows, "", "", ""],
        ],
      );
      const targets = [
        { description: `full backup of a full pair < ${TARGET_FULL_BACKUP_MS / 1000} s (interval 240 s, recovery point 5 min)`, value: full.ms, met: full.ms < TARGET_FULL_BACKUP_MS },
        { description: "incremental backup uploads < 5% of the full one's bytes", value: incremental.result.uploadedBytes / full.result.uploadedBytes, met: incremental.result.uploadedBytes < 0.05 * full.result.uploadedBytes },
      ];
      for (const t of targets) console.log(targetLine(t.description, t.value, t.met));
      return {
        ...base,
        parameters: { pair: PAIR, ticks, client: "admin API over loopback (POST /api/admin/backups, /restore)" },
        figures: { fullMs: full.ms, incrementalMs: incremental.ms, restoreMs, full: full.result, incremental: incremental.result },
        baseline: { description: "a backup with nothing changed: the whole database read and hashed, nothing uploaded", ms: unchanged.ms },
        ratios: { fullOverUnchanged: full.ms / unchanged.ms, incrementalBytesOverFull: incremental.result.uploadedBytes / full.result.uploadedBytes },
        targets,
        notes: [
          "The snapshot is read and hashed synchronously (one consistent point in time): for that long (about the 'nothing changed' figure) the pair handles nothing else. Uploads are asynchronous.",
        ],
      };
    } finally {
      await runtime.stop();
      await tmp.remove();
    }
  },
};
