/**
 * Reading `npm run backtest` arguments, for one pair (scripts/backtest.ts) and
 * a portfolio (scripts/portfolio-cli.ts) alike: the flags with their values,
 * the repeatable KEY=VALUE ones and the sweep grid, every flag given twice or
 * unknown refused, and the sweep's options checked.
 */
import { OBJECTIVES, type Objective, type ParamGrid, type ParamValue } from "../src/replay/sweep.ts";

/** Bad arguments: the CLI says why and exits 2. */
export class UsageError extends Error {}

/** "true"/"false" as booleans, numbers as numbers, anything else as text. */
export function parseValue(text: string): ParamValue {
  if (text === "true" || text === "false") return text === "true";
  const n = Number(text);
  return text.trim() !== "" && Number.isFinite(n) ? n : text;
}

export function numberFlag(flag: string, text: string): number {
  const n = Number(text);
  if (text.trim() === "" || !Number.isFinite(n)) throw new UsageError(`${flag} must be a number, got '${text}'`);
  return n;
}

function keyValue(flag: string, text: string): [string, string] {
  const eq = text.indexOf("=");
  if (eq <= 0) throw new UsageError(`${flag} takes KEY=VALUE, got '${text}'`);
  return [text.slice(0, eq), text.slice(eq + 1)];
}

export interface Flags {
  /** Each value flag given, with its value (given twice is refused). */
  values: Map<string, string>;
  /** Every flag given, values or not. */
  given: Set<string>;
  /** The repeatable KEY=VALUE flags (--param, --limit), by flag. */
  keyed: Map<string, Record<string, ParamValue>>;
  /** --sweep KEY=V1,V2,...: the grid. */
  grid: ParamGrid;
}

/**
 * Read `argv`: `valueFlags` take a value, `keyedFlags` a repeatable KEY=VALUE,
 * `switches` none; --sweep KEY=V1,V2,... builds the grid. Anything else, a
 * missing value or a key given twice is a UsageError.
 */
export function readFlags(argv: readonly string[], valueFlags: ReadonlySet<string>, keyedFlags: ReadonlySet<string>, switches: ReadonlySet<string>): Flags {
  const flags: Flags = { values: new Map(), given: new Set(), keyed: new Map(), grid: {} };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    flags.given.add(arg);
    if (switches.has(arg)) continue;
    if (!valueFlags.has(arg) && !keyedFlags.has(arg) && arg !== "--sweep") throw new UsageError(`unknown argument ${arg}`);
    const value = argv[++i];
    if (value === undefined) throw new UsageError(`${arg} needs a value`);
    if (keyedFlags.has(arg)) {
      const into = flags.keyed.get(arg) ?? {};
      const [k, val] = keyValue(arg, value);
      if (k in into) throw new UsageError(`${arg} ${k} given twice`);
      into[k] = parseValue(val);
      flags.keyed.set(arg, into);
    } else if (arg === "--sweep") {
      const [k, list] = keyValue(arg, value);
      if (k in flags.grid) throw new UsageError(`--sweep ${k} given twice`);
      flags.grid[k] = list.split(",").map(parseValue);
    } else {
      if (flags.values.has(arg)) throw new UsageError(`${arg} given twice (${flags.values.get(arg)}, then ${value})`);
      flags.values.set(arg, value);
    }
  }
  return flags;
}

/** --objective, --walk-forward and --in-sample, checked (a walk-forward needs a grid to optimise). */
export function sweepOptions(flags: Flags): { grid: ParamGrid | null; objective: Objective; walkForwardFolds: number | null; inSamplePct: number } {
  const get = (flag: string) => flags.values.get(flag);
  const objective = (get("--objective") ?? "sharpe") as Objective;
  if (!OBJECTIVES.includes(objective)) throw new UsageError(`--objective must be one of ${OBJECTIVES.join(", ")}`);
  const foldsText = get("--walk-forward");
  const folds = foldsText === undefined ? null : numberFlag("--walk-forward", foldsText);
  if (folds !== null && !(Number.isInteger(folds) && folds >= 1)) throw new UsageError("--walk-forward must be a whole number of folds >= 1");
  const inSampleText = get("--in-sample");
  const inSamplePct = inSampleText === undefined ? 75 : numberFlag("--in-sample", inSampleText);
  if (!(inSamplePct > 0 && inSamplePct < 100)) throw new UsageError("--in-sample must be a percentage between 0 and 100");
  const hasGrid = Object.keys(flags.grid).length > 0;
  if (folds !== null && !hasGrid) throw new UsageError("--walk-forward needs a --sweep grid to optimise over");
  return { grid: hasGrid ? flags.grid : null, objective, walkForwardFolds: folds, inSamplePct };
}
