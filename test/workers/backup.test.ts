/**
 * Backups to R2 and restore: every actor's SQLite state goes to the BACKUPS
 * bucket incrementally (only changed chunks), and a restore rebuilds the
 * actor to the snapshot's exact state, checked by the state digest, or
 * changes nothing.
 */
import { createExecutionContext, createScheduledController, runInDurableObject, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import type { Pair } from "../../actors/pair.ts";
import { call, postJson } from "./helpers.ts";
import worker from "../../src/worker.ts";
import { liftPortfolioLimits, MINUTE, setClock, stub } from "./pair-kit.ts";
import { takeSnapshot } from "../../actors/backup/sql-snapshot.ts";

type Json = Record<string, any>;

const PAIR = "USD_CAD";
const ACTOR = `pair:${PAIR}`;
/** Wednesday 10:00 UTC: market open. */
const T0 = Date.UTC(2031, 0, 8, 10, 0, 0);

async function json(res: Response | Promise<Response>): Promise<Json> {
  return (await res).json();
}

async function backupNow(actors: string[]): Promise<Json[]> {
  const res = await postJson("/api/admin/backups", { actors });
  expect(res.status).toBe(200);
  return (await res.json<Json>()).results;
}

async function backupInfo(actor: string): Promise<Json> {
  const res = await call(`/api/admin/backups?actor=${actor}`);
  expect(res.status).toBe(200);
  return res.json();
}

/** One run of the Worker's cron (every minute in production), with `cronEnv` as its bindings. */
async function runCron(cronEnv: Env = env): Promise<void> {
  const ctx = createExecutionContext();
  await worker.scheduled(createScheduledController({ scheduledTime: Date.now(), cron: "* * * * *" }), cronEnv, ctx);
  await waitOnExecutionContext(ctx);
}

async function restore(body: Json): Promise<Response> {
  return postJson("/api/admin/backups/restore", body);
}

/** `count` ticks one second apart from `from`, posted in batches, with the pair's clock following. */
async function ticks(from: number, count: number, base = 1.35): Promise<number> {
  for (let start = 0; start < count; start += 1000) {
    const batch = [];
    for (let i = start; i < Math.min(count, start + 1000); i++) {
      const bid = Number((base + ((i * 7919) % 200) / 100_000).toFixed(5));
      batch.push({ ts: from + i * 1000, bid, ask: Number((bid + 0.0002).toFixed(5)) });
    }
    await setClock(PAIR, batch.at(-1)!.ts + 100);
    const res = await postJson(`/api/pairs/${PAIR}/ticks`, { ticks: batch });
    expect((await res.json<Json>()).accepted).toBe(batch.length);
  }
  return from + count * 1000;
}

/** What a client sees of the pair: candles, orders, positions, last tick. */
async function visible(): Promise<Json> {
  const [candles, orders, positions, status] = await Promise.all([
    json(call(`/api/pairs/${PAIR}/candles?tf=1m&limit=1000`)),
    json(call(`/api/pairs/${PAIR}/orders`)),
    json(call(`/api/pairs/${PAIR}/positions`)),
    json(call(`/api/pairs/${PAIR}`)),
  ]);
  return { candles, orders, positions, lastTick: status.lastTick };
}

/** Each table's chunk hashes, the audit log left out (a restore keeps the live one). */
function withoutAudit(tables: { name: string; chunks: { hash: string }[] }[]): Record<string, string[]> {
  return Object.fromEntries(tables.filter((t) => t.name !== "audit_log").map((t) => [t.name, t.chunks.map((c) => c.hash)]));
}

async function liveChunks(): Promise<Record<string, string[]>> {
  return withoutAudit(await runInDurableObject(stub(PAIR), (_: Pair, state: DurableObjectState) => takeSnapshot(state.storage.sql).tables));
}

async function snapshotChunks(snapshot: string): Promise<Record<string, string[]>> {
  return withoutAudit((await (await env.BACKUPS.get(snapshot))!.json<Json>()).tables);
}

beforeAll(async () => {
  await liftPortfolioLimits();
  await postJson("/api/admin/kill-switch", { action: "resume" });
});

describe("backups", () => {
  it("uploads only changed chunks, restores an older snapshot to its exact state (every table but the append-only audit log), and the pair trades on", async () => {
    let t = await ticks(T0, 3000);
    const buy = await postJson("/api/trade/execute", { pair: PAIR, side: "buy", units: 10_000 });
    expect(buy.status).toBe(200);

    const [first] = await backupNow([ACTOR]);
    expect(first).toMatchObject({ actor: ACTOR, unchanged: false });
    expect(first!.rows).toBeGreaterThan(3000);
    expect(first!.chunks).toBeGreaterThan(5);
    // The first snapshot of an actor uploads everything.
    expect(first!.uploadedChunks).toBe(first!.chunks);
    expect((await backupInfo(ACTOR)).digest).toBe(first!.digest);

    // Nothing changed: no new snapshot, nothing uploaded.
    const [same] = await backupNow([ACTOR]);
    expect(same).toMatchObject({ unchanged: true, uploadedChunks: 0, snapshot: first!.snapshot, digest: first!.digest });

    // A little more history and a trade: only the chunks at the changed ends go up.
    t = await ticks(t, 30);
    expect((await postJson("/api/trade/execute", { pair: PAIR, side: "buy", units: 5_000 })).status).toBe(200);
    await setClock(PAIR, t + MINUTE); // later than the first snapshot's stamp
    const [second] = await backupNow([ACTOR]);
    expect(second!.unchanged).toBe(false);
    expect(second!.digest).not.toBe(first!.digest);
    expect(second!.uploadedChunks).toBeGreaterThan(0);
    // The small tables (orders, fills, positions) changed whole; of the ticks only the newest chunk.
    expect(second!.uploadedBytes).toBeLessThan(first!.uploadedBytes / 3);
    const atSecond = await visible();
    expect(atSecond.positions.positions[0]).toMatchObject({ status: "OPEN", units: 15_000 });

    // Life goes on: more ticks, the position closed.
    t = await ticks(t + MINUTE, 120, 1.36);
    expect((await postJson("/api/trade/execute", { pair: PAIR, side: "sell", units: 15_000 })).status).toBe(200);
    const moved = await backupInfo(ACTOR);
    expect(moved.digest).not.toBe(second!.digest);
    expect(moved.snapshots.map((s: Json) => s.key)).toEqual([second!.snapshot, first!.snapshot]);

    const res = await restore({ actor: ACTOR, snapshot: second!.snapshot });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ actor: ACTOR, snapshot: second!.snapshot, digest: second!.digest, rows: second!.rows });
    // Every table is the snapshot's, but the audit log: append-only, it keeps the entries written since (the sell's).
    expect(await liveChunks()).toEqual(await snapshotChunks(second!.snapshot));
    const pairAudit = await runInDurableObject(stub(PAIR), (_: Pair, state: DurableObjectState) =>
      state.storage.sql.exec<{ action: string; after_json: string }>("SELECT action, after_json FROM audit_log").toArray(),
    );
    expect(pairAudit.filter((e) => e.action === "order.create" && JSON.parse(e.after_json).side === "sell")).toHaveLength(1);
    expect(await visible()).toEqual(atSecond);

    // The restored actor trades on from the restored position.
    await setClock(PAIR, t + 2 * MINUTE);
    await ticks(t + 2 * MINUTE - 5_000, 1, 1.361);
    const sell = await postJson("/api/trade/execute", { pair: PAIR, side: "sell", units: 15_000 });
    expect(sell.status).toBe(200);
    expect((await sell.json<Json>()).position).toBeNull();

    // The restore is in the coordinator's audit log.
    const audit = await json(call("/api/admin/audit?limit=20"));
    expect(audit.entries.find((e: Json) => e.action === "backup.restore" && e.target === ACTOR)).toMatchObject({ actor: "key:bootstrap", after: { snapshot: second!.snapshot } });
  });

  it("rebuilds a pair whose data was lost, from the newest snapshot", async () => {
    const before = await visible();
    const [snap] = await backupNow([ACTOR]);
    await runInDurableObject(stub(PAIR), (_: Pair, state: DurableObjectState) => {
      state.storage.sql.exec("DELETE FROM candles");
      state.storage.sql.exec("DELETE FROM positions");
    });
    expect((await backupInfo(ACTOR)).digest).not.toBe(snap!.digest);
    const res = await restore({ actor: ACTOR });
    expect(await res.json()).toMatchObject({ snapshot: snap!.snapshot, digest: snap!.digest });
    expect((await backupInfo(ACTOR)).digest).toBe(snap!.digest);
    expect(await visible()).toEqual(before);
  });

  it("a corrupt or missing chunk fails the restore and changes nothing", async () => {
    const [snap] = await backupNow([ACTOR]);
    const manifest = await (await env.BACKUPS.get(snap!.snapshot))!.json<Json>();
    const ticksChunk = manifest.tables.find((t: Json) => t.name === "ticks").chunks[0].hash;
    const key = `pair/${PAIR}/chunks/${ticksChunk}`;
    const original = await (await env.BACKUPS.get(key))!.arrayBuffer();
    // A valid gzip of other content: only the hash check can catch it.
    const other = new Uint8Array(await new Response(new Blob(['[1,2,3]']).stream().pipeThrough(new CompressionStream("gzip"))).arrayBuffer());
    await env.BACKUPS.put(key, other);
    await runInDurableObject(stub(PAIR), (_: Pair, state: DurableObjectState) => state.storage.sql.exec("DELETE FROM candles WHERE tf = '1m'"));
    const damaged = (await backupInfo(ACTOR)).digest;

    const corrupt = await restore({ actor: ACTOR, snapshot: snap!.snapshot });
    expect(corrupt.status).toBe(500);
    expect(await corrupt.json()).toMatchObject({ error: { code: "restore_failed", message: expect.stringContaining("corrupt") } });
    expect((await backupInfo(ACTOR)).digest).toBe(damaged);

    await env.BACKUPS.delete(key);
    const missing = await restore({ actor: ACTOR, snapshot: snap!.snapshot });
    expect(await missing.json()).toMatchObject({ error: { code: "restore_failed", message: expect.stringContaining("missing") } });
    expect((await backupInfo(ACTOR)).digest).toBe(damaged);

    await env.BACKUPS.put(key, original);
    expect((await restore({ actor: ACTOR, snapshot: snap!.snapshot })).status).toBe(200);
    expect((await backupInfo(ACTOR)).digest).toBe(snap!.digest);
  });

  it("refuses bad requests with typed errors", async () => {
    const cases: [Json, number, string][] = [
      [{ actor: "pair:XXX_YYY" }, 404, "unknown_pair"],
      [{ actor: "portfolio" }, 400, "invalid_restore_request"],
      [{ actor: ACTOR, snapshot: "pair/USD_CAD/snapshots/0000000000001.json" }, 404, "snapshot_not_found"],
      [{ actor: ACTOR, snapshot: "coordinator/main/snapshots/0000000000001.json" }, 404, "snapshot_not_found"],
      [{ actor: ACTOR, snapshot: "../../etc/passwd" }, 400, "invalid_restore_request"],
      [{ actor: ACTOR, extra: 1 }, 400, "invalid_restore_request"],
    ];
    for (const [body, status, code] of cases) {
      const res = await restore(body);
      expect(res.status, JSON.stringify(body)).toBe(status);
      expect(await res.json()).toMatchObject({ error: { code } });
    }
    expect((await postJson("/api/admin/backups", { actors: [] })).status).toBe(400);
    expect((await call("/api/admin/backups?actor=nobody")).status).toBe(400);
    // Admin only.
    expect((await postJson("/api/admin/backups/restore", { actor: ACTOR }, null)).status).toBe(401);
  });

  it("restores the coordinator's limits and the gatekeeper's keys, but not a revoked one", async () => {
    const put = (body: Json) => call("/api/admin/limits", { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    expect((await put({ maxOpenPositions: 77 })).status).toBe(200);
    const key = await json(postJson("/api/admin/keys", { role: "viewer", label: "restored" }));
    const [coordinator, gatekeeper] = await backupNow(["coordinator", "gatekeeper"]);

    expect((await put({ maxOpenPositions: 5 })).status).toBe(200);
    expect((await call(`/api/admin/keys/${key.id}`, { method: "DELETE" })).status).toBe(200);
    expect((await call("/api/metrics", {}, key.key)).status).toBe(401);

    // The gatekeeper first: a coordinator restore is written down in the gatekeeper's log.
    expect(await json(restore({ actor: "gatekeeper", snapshot: gatekeeper!.snapshot }))).toMatchObject({ digest: gatekeeper!.digest });
    expect(await json(restore({ actor: "coordinator", snapshot: coordinator!.snapshot }))).toMatchObject({ digest: coordinator!.digest });
    expect((await json(call("/api/admin/limits"))).maxOpenPositions).toBe(77);
    // A restore never brings a revoked key back (docs/operations.md, Backups and restore).
    expect((await call("/api/metrics", {}, key.key)).status).toBe(401);
    const audit = await json(call("/api/admin/audit?limit=50"));
    expect(audit.entries.some((e: Json) => e.action === "backup.restore" && e.target === "coordinator")).toBe(true);
  });

  it("the cron backs up every actor that is due, and not again before the interval", async () => {
    const run = () => runCron();
    await setClock(PAIR, T0 + 10 * 24 * 60 * MINUTE);
    await run();
    const all = await json(call("/api/admin/backups"));
    const pairs = (env.PAIRS as string).split(",");
    expect(all.actors.map((a: Json) => a.actor).sort()).toEqual(["coordinator", "gatekeeper", ...pairs.map((p) => `pair:${p}`)].sort());
    for (const a of all.actors) {
      expect(a.lastSnapshot, a.actor).toMatch(/\/snapshots\/\d{13}\.json$/);
      expect(a.intervalMs).toBe(240_000);
      expect(a.lastError).toBeNull();
    }
    const ours = all.actors.find((a: Json) => a.actor === ACTOR);
    expect(ours.lastBackupAt).toBe(T0 + 10 * 24 * 60 * MINUTE);

    // Within the interval the cron leaves the pair alone; after it, the pair is checked again.
    await setClock(PAIR, T0 + 10 * 24 * 60 * MINUTE + 239_000);
    await run();
    expect((await json(call("/api/admin/backups"))).actors.find((a: Json) => a.actor === ACTOR).lastBackupAt).toBe(T0 + 10 * 24 * 60 * MINUTE);
    await setClock(PAIR, T0 + 10 * 24 * 60 * MINUTE + 240_000);
    await run();
    expect((await json(call("/api/admin/backups"))).actors.find((a: Json) => a.actor === ACTOR).lastBackupAt).toBe(T0 + 10 * 24 * 60 * MINUTE + 240_000);
  });
  it("a pair that cannot wake stops neither the minute's backups nor its alerts", async () => {
    const failing = "EUR_USD";
    const pairs = (env.PAIRS as string).split(",");
    const due = T0 + 20 * 24 * 60 * MINUTE; // later than any backup the other tests took
    for (const p of pairs) await setClock(p, due);
    // The cron sees the real bindings, except that one pair's wake() throws and the coordinator counts the alert rounds it gets.
    let alertRounds = 0;
    const pairNs = {
      getByName: (name: string) => {
        const real = env.Pair.getByName(name);
        if (name !== failing) return real;
        return new Proxy(real, { get: (target, prop) => (prop === "wake" ? () => Promise.reject(new Error("wake refused (test)")) : Reflect.get(target, prop)) });
      },
    };
    const coordinatorNs = {
      getByName: (name: string) =>
        new Proxy(env.Coordinator.getByName(name), {
          get: (target, prop) =>
            prop === "applyAlerts"
              ? (...args: Parameters<typeof target.applyAlerts>) => {
                  alertRounds++;
                  return target.applyAlerts(...args);
                }
              : Reflect.get(target, prop),
        }),
    };
    const cronEnv = new Proxy(env, { get: (target, prop) => (prop === "Pair" ? pairNs : prop === "Coordinator" ? coordinatorNs : Reflect.get(target, prop)) });
    await runCron(cronEnv);
    const all = await json(call("/api/admin/backups"));
    for (const p of pairs) expect(all.actors.find((a: Json) => a.actor === `pair:${p}`).lastBackupAt, p).toBe(due);
    expect(alertRounds).toBe(1);
  });

  it("a missed recovery point raises backup_missed naming the actor, shows in the metrics, and ends with the next backup", async () => {
    const at = T0 + 30 * 24 * 60 * MINUTE; // later than any backup the other tests took
    await setClock(PAIR, at);
    await runCron();
    expect((await backupInfo(ACTOR)).lastBackupAt).toBe(at);

    // Six minutes on, the pair's backup fails (the bucket as the cron sees it refuses): nothing reaches R2.
    await setClock(PAIR, at + 6 * MINUTE);
    const pairNs = {
      getByName: (name: string) => {
        const real = env.Pair.getByName(name);
        if (name !== PAIR) return real;
        const backups = () => ({ backupIfDue: () => Promise.reject(new Error("R2 unavailable (test)")), status: () => real.backups().status() });
        return new Proxy(real, { get: (target, prop) => (prop === "backups" ? backups : Reflect.get(target, prop)) });
      },
    };
    await runCron(new Proxy(env, { get: (target, prop) => (prop === "Pair" ? pairNs : Reflect.get(target, prop)) }));
    const missed = async () => (await json(call("/api/admin/portfolio"))).alerts.map((a: Json) => a.alert).filter((a: Json) => a.rule === "backup_missed");
    expect(await missed()).toEqual([
      { id: `backup_missed:${ACTOR}`, rule: "backup_missed", subject: ACTOR, message: `${ACTOR}: last backup 6 min ago, past the 5-minute recovery point`, value: 6, threshold: 5 },
    ]);
    const metrics = await json(call("/api/metrics"));
    expect(metrics.backups.find((b: Json) => b.actor === ACTOR)).toEqual({ actor: ACTOR, ageMs: 6 * MINUTE, failing: false });
    expect(metrics.backups.map((b: Json) => b.actor)).toContain("coordinator");
    const prometheus = await (await call("/api/metrics?format=prometheus")).text();
    expect(prometheus).toContain(`fxrt_backup_age_ms{actor="${ACTOR}"} ${6 * MINUTE}`);
    expect(prometheus).toMatch(/^fxrt_backup_failing\{actor="gatekeeper"\} 0$/m);

    // The next minute's backup goes through: the alert ends.
    await runCron();
    expect((await backupInfo(ACTOR)).lastBackupAt).toBe(at + 6 * MINUTE);
    expect(await missed()).toEqual([]);
  });

  it("the actors left out of backups keep nothing to back up: Feed and SignalHub hold no table and no stored value", async () => {
    await env.Feed.getByName("main").wake();
    await env.SignalHub.getByName("all").publish({ type: "alert", alert: { id: "x:y", rule: "feed_down", subject: "y", message: "test", value: 0, threshold: 0 }, raisedAt: Date.now() });
    const stored = async (state: DurableObjectState) => ({
      tables: state.storage.sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%'").toArray(),
      // partyserver may record the room's own name, which is the name it is addressed by: nothing to restore.
      values: [...(await state.storage.list()).keys()].filter((k) => k !== "__ps_name"),
    });
    expect(await runInDurableObject(env.Feed.getByName("main"), (_: unknown, state: DurableObjectState) => stored(state))).toEqual({ tables: [], values: [] });
    expect(await runInDurableObject(env.SignalHub.getByName("all"), (_: unknown, state: DurableObjectState) => stored(state))).toEqual({ tables: [], values: [] });
    // The same check sees an actor that does keep state.
    expect((await runInDurableObject(stub(PAIR), (_: Pair, state: DurableObjectState) => stored(state))).tables.length).toBeGreaterThan(0);
  });
});

