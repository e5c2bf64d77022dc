/**
 * The metering of strategy code (scripts/meter-source.ts with
 * src/domain/strategy/meter.ts): the metered copy computes what the source
 * computes, counts one operation per loop iteration and per call of its own
 * functions, keeps every line where it was, and stops a runaway step even
 * when the strategy catches the error.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { meterSource } from "../../scripts/meter-source.ts";
import { lastOpsUsed, metered, StrategyBudgetError } from "../../src/domain/strategy/meter.ts";

const ROOT = path.resolve(import.meta.dirname, "../..");
const METER = path.join(ROOT, "src/domain/strategy/meter.ts");
const dir = mkdtempSync(path.join(os.tmpdir(), "fxrt-meter-"));
writeFileSync(path.join(dir, "package.json"), '{ "type": "module" }\n');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let seq = 0;
/** The source as written and metered, both imported. */
async function both<M>(source: string): Promise<{ plain: M; metered: M; text: string }> {
  const n = ++seq;
  const plainFile = path.join(dir, `plain-${n}.ts`);
  const outFile = path.join(dir, `metered-${n}.ts`);
  writeFileSync(plainFile, source);
  const text = meterSource(source, { sourceFile: plainFile, outFile, sourceRoot: dir, meterModule: METER });
  writeFileSync(outFile, text);
  return { plain: (await import(pathToFileURL(plainFile).href)) as M, metered: (await import(pathToFileURL(outFile).href)) as M, text };
}

const KITCHEN_SINK = `
const double = (x: number) => x * 2;
const pair = (a: number) => (b: number) => ({ sum: a + b });
class Box {
  constructor(readonly items: number[]) {}
  get total(): number { return this.items.reduce((s, x) => s + x, 0); }
  scaled(k: number) { return this.items.map((x) => x * k); }
}
export function run(): unknown {
  const out: unknown[] = [];
  let i = 0;
  while (i < 3) i++
  out.push(i);
  do { i-- } while (i > 0);
  outer: for (let a = 0; a < 4; a++) {
    for (let b = 0; b < 4; b++) {
      if (b > a) continue outer;
      if (a === 3) break outer;
      out.push([a, b]);
    }
  }
  for (const k in { p: 1, q: 2 }) out.push(k);
  for (const x of [1, 2]) out.push(double(x));
  let f: () => number = () => 0;
  for (let n = 0; n < 2; n++) f = () => n
  out.push(f(), pair(1)(2), new Box([1, 2, 3]).total, new Box([1, 2]).scaled(3));
  function* gen() { yield 1; yield 2; }
  out.push([...gen()]);
  return out;
}
`;

describe("metered strategy code", () => {
  it("computes what the source computes, with every line where it was", async () => {
    const { plain, metered: m, text } = await both<{ run(): unknown }>(KITCHEN_SINK);
    const expected = plain.run();
    expect(metered(10_000, () => m.run())).toEqual(expected);
    expect(lastOpsUsed()).toBeGreaterThan(30);
    const lines = text.split("\n");
    const written = KITCHEN_SINK.split("\n");
    expect(lines).toHaveLength(written.length);
    // Each line is the user's with calls (and the braces and parentheses around them) inserted.
    const bare = (line: string) => line.replace(/^import \{ meter as __fxrtMeter \} from "[^"]+"; /, "").replace(/__fxrtMeter\(\);(return )?/g, "").replace(/[{}();\s]/g, "");
    lines.forEach((line, i) => expect(bare(line)).toBe(bare(written[i]!)));
  });

  it("counts one operation per loop iteration and per call of the strategy's own functions", async () => {
    const { metered: m } = await both<{ loop(n: number): number; calls(n: number): number }>(`
      export function loop(n: number): number { let s = 0; for (let i = 0; i < n; i++) s += i; return s; }
      const one = () => 1;
      export function calls(n: number): number { let s = 0; let i = 0; while (i++ < n) s += one(); return s; }
    `);
    metered(1_000, () => m.loop(10));
    expect(lastOpsUsed()).toBe(1 + 10);
    metered(1_000, () => m.calls(10));
    expect(lastOpsUsed()).toBe(1 + 10 + 10);
    // Outside metered() the calls are free: the same code runs unbounded.
    expect(m.loop(100_000)).toBe(4_999_950_000);
  });

  it("stops a runaway loop or recursion at its budget, even one that catches the error", async () => {
    const { metered: m } = await both<{ spin(): number; swallow(): string; recurse(n: number): number }>(`
      export function spin(): number { let n = 0; for (;;) n++; }
      export function swallow(): string {
        for (;;) { try { while (true) {} } catch { /* ignored */ } }
      }
      export function recurse(n: number): number { return n <= 0 ? 0 : 1 + recurse(n - 1); }
    `);
    expect(() => metered(5_000, () => m.spin())).toThrow(StrategyBudgetError);
    expect(() => metered(5_000, () => m.swallow())).toThrow(/ran past its budget of 5000 operations/);
    expect(() => metered(5_000, () => m.recurse(100_000))).toThrow(StrategyBudgetError);
    expect(metered(5_000, () => m.recurse(100))).toBe(100);
    // A strategy that catches the error and returns normally is over budget all the same.
    const { metered: c } = await both<{ hide(): string }>(`export function hide(): string { try { for (;;) {} } catch { return "fine"; } }`);
    expect(() => metered(5_000, () => c.hide())).toThrow(StrategyBudgetError);
  });

  it("rewrites imports that leave the folder, keeps those inside it, and refuses the reserved name", () => {
    const sourceFile = path.join(ROOT, "strategies", "x.ts");
    const outFile = path.join(ROOT, "build", "strategies", "x.ts");
    const text = meterSource('import { v } from "../src/domain/strategy/index.ts";\nimport { h } from "./lib/h.ts";\nimport { SMA } from "trading-signals";\n', {
      sourceFile,
      outFile,
      sourceRoot: path.join(ROOT, "strategies"),
      meterModule: METER,
    });
    expect(text).toContain('from "../../src/domain/strategy/index.ts"');
    expect(text).toContain('from "./lib/h.ts"');
    expect(text).toContain('from "trading-signals"');
    expect(text.startsWith('import { meter as __fxrtMeter } from "../../src/domain/strategy/meter.ts"; ')).toBe(true);
    expect(() => meterSource("const __fxrtMeter = () => {};", { sourceFile, outFile, sourceRoot: path.dirname(sourceFile), meterModule: METER })).toThrow(/reserved/);
  });
});
