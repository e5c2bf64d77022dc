/** Crash points, runs 750-999: see crash-points.test.ts (each test file is a new runtime, which is why the runs are split). */
import { it } from "vitest";
import { crashPointRuns } from "./pair-kit.ts";

it("crash points, runs 750-999: one order per client id, reconciled before any new one, position = sum of fills", { timeout: 300_000 }, () => crashPointRuns(750, 250));
