/**
 * A full garbage collection in every V8 isolate of a workerd process, through
 * its inspector (Miniflare's `inspectorPort`). workerd's inspector has no
 * `HeapProfiler.collectGarbage`, but a heap snapshot collects first, so one is
 * taken and its chunks are dropped. Used by the soak to tell memory the
 * runtime holds from garbage V8 has not collected yet.
 */
import { InspectorSession, inspectorTargets } from "./inspector-session.ts";

/**
 * Collect garbage in every isolate the inspector lists; then the V8 heaps' live objects (used) and the
 * memory V8 keeps for them (total: it gives free pages back to the system only over time), MB.
 */
export async function collectGarbage(inspectorPort: number): Promise<{ isolates: number; heapUsedMb: number; heapTotalMb: number }> {
  let heapUsed = 0;
  let heapTotal = 0;
  const targets = await inspectorTargets(inspectorPort);
  for (const target of targets) {
    const session = await InspectorSession.open(target);
    try {
      await session.call("HeapProfiler.enable");
      // The snapshot's chunks arrive as events, which the session drops.
      await session.call("HeapProfiler.takeHeapSnapshot", { reportProgress: false });
      const usage = (await session.call("Runtime.getHeapUsage")) as { usedSize: number; totalSize: number };
      heapUsed += usage.usedSize;
      heapTotal += usage.totalSize;
    } finally {
      session.close();
    }
  }
  const mb = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10;
  return { isolates: targets.length, heapUsedMb: mb(heapUsed), heapTotalMb: mb(heapTotal) };
}
