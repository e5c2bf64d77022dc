/**
 * Every strategy the runtime knows: the files of `strategies/`, found at
 * build time (scripts/build-strategies.ts writes build/strategies.ts). Each
 * is checked once here, so a malformed file fails the build and the start,
 * never a pair at trading time. Parameters are validated strictly: an
 * unknown or misspelt key is an error that names the valid ones.
 */
import * as v from "valibot";
import { STRATEGY_FILES } from "../../../build/strategies.ts";
import type { StrategyDefinition } from "./api.ts";
import { metered, STEP_BUDGET_OPS_DEFAULT, StrategyBudgetError } from "./meter.ts";

export type AnyStrategy = StrategyDefinition<Record<string, unknown>, unknown>;

const NAME = /^[a-z0-9][a-z0-9-]{0,39}$/;

export class StrategyCatalogError extends Error {
  override readonly name = "StrategyCatalogError";
}

/** The object schema under a params schema (itself, or the first schema of a pipe). */
function objectEntries(schema: unknown): Record<string, unknown> | null {
  const s = schema as { type?: string; entries?: Record<string, unknown>; pipe?: unknown[] };
  if ((s.type === "object" || s.type === "strict_object" || s.type === "loose_object") && s.entries) return s.entries;
  if (Array.isArray(s.pipe) && s.pipe.length > 0) return objectEntries(s.pipe[0]);
  return null;
}

export interface CatalogEntry {
  definition: AnyStrategy;
  file: string;
  /** The parameter names the schema declares, in its order. */
  paramNames: readonly string[];
}

function buildCatalog(files: readonly { file: string; definition: StrategyDefinition<never, never> }[]): Map<string, CatalogEntry> {
  const catalog = new Map<string, CatalogEntry>();
  for (const { file, definition } of files) {
    const d = definition as unknown as AnyStrategy;
    const where = `strategies/${file}`;
    if (!d || typeof d !== "object") throw new StrategyCatalogError(`${where}: the default export must be defineStrategy({ ... })`);
    if (typeof d.name !== "string" || !NAME.test(d.name)) throw new StrategyCatalogError(`${where}: name must be 1-40 of a-z, 0-9 and -`);
    if (`${d.name}.ts` !== file) throw new StrategyCatalogError(`${where}: the strategy is named "${d.name}"; its file must be strategies/${d.name}.ts`);
    if (typeof d.description !== "string" || d.description.length === 0 || d.description.length > 200) throw new StrategyCatalogError(`${where}: description must be one line of 1-200 characters`);
    for (const fn of ["watch", "init", "onCandle"] as const) {
      if (typeof d[fn] !== "function") throw new StrategyCatalogError(`${where}: ${fn} must be a function`);
    }
    const entries = objectEntries(d.params);
    if (!entries) throw new StrategyCatalogError(`${where}: params must be a valibot object schema (v.object({ ... }), optionally in a v.pipe with checks)`);
    catalog.set(d.name, { definition: d, file, paramNames: Object.keys(entries) });
  }
  return catalog;
}

const CATALOG = buildCatalog(STRATEGY_FILES);

/** Names of every strategy, sorted. */
export const STRATEGY_NAMES: readonly string[] = [...CATALOG.keys()].sort();

export function strategyEntry(kind: string): CatalogEntry | undefined {
  return CATALOG.get(kind);
}

export function strategyDefinition(kind: string): AnyStrategy {
  const entry = CATALOG.get(kind);
  if (!entry) throw new StrategyCatalogError(`unknown strategy "${kind}"; there are: ${STRATEGY_NAMES.join(", ")}`);
  return entry.definition;
}

export type ParamsCheck = { ok: true; params: Record<string, unknown> } | { ok: false; message: string; path?: string };

/** Validate `params` for `kind`, strictly: defaults filled in, an unknown key refused with the valid ones named. */
export function checkParams(kind: string, params: unknown): ParamsCheck {
  const entry = CATALOG.get(kind);
  if (!entry) return { ok: false, message: `unknown strategy "${kind}"; there are: ${STRATEGY_NAMES.join(", ")}`, path: "kind" };
  const given = params ?? {};
  if (typeof given !== "object" || Array.isArray(given)) return { ok: false, message: `params of ${kind} must be an object`, path: "params" };
  const unknown = Object.keys(given).filter((k) => !entry.paramNames.includes(k));
  if (unknown.length > 0) {
    const names = unknown.map((k) => `"${k}"`).join(", ");
    return { ok: false, message: `unknown parameter${unknown.length > 1 ? "s" : ""} ${names} for ${kind}; its parameters are: ${entry.paramNames.join(", ") || "none"}`, path: `params.${unknown[0]}` };
  }
  let parsed: ReturnType<typeof v.safeParse<typeof entry.definition.params>>;
  try {
    // The schema's checks are the user's code: metered like a step.
    parsed = metered(STEP_BUDGET_OPS_DEFAULT, () => v.safeParse(entry.definition.params, given));
  } catch (err) {
    if (err instanceof StrategyBudgetError) return { ok: false, message: `${kind}: checking the parameters ran past ${err.budgetOps} operations`, path: "params" };
    throw err;
  }
  if (!parsed.success) {
    const issue = parsed.issues[0];
    const at = v.getDotPath(issue);
    return { ok: false, message: `${kind}: ${at ? `${at}: ` : ""}${issue.message}`, path: at ? `params.${at}` : "params" };
  }
  return { ok: true, params: parsed.output };
}

/** A parameter's description for listings: its type, default and bounds, read from the schema. */
export interface ParamInfo {
  name: string;
  type: string;
  default?: unknown;
  options?: readonly unknown[];
  min?: number;
  max?: number;
}

export function paramInfo(kind: string): ParamInfo[] {
  const entry = CATALOG.get(kind);
  if (!entry) return [];
  const entries = objectEntries(entry.definition.params) ?? {};
  return entry.paramNames.map((name) => describe(name, entries[name]));
}

function describe(name: string, schema: unknown): ParamInfo {
  const info: ParamInfo = { name, type: "unknown" };
  let s = schema as { type?: string; wrapped?: unknown; default?: unknown; options?: unknown[]; pipe?: { type: string; requirement?: unknown }[] } | undefined;
  while (s && (s.type === "optional" || s.type === "nullable" || s.type === "nullish")) {
    if (s.type === "optional" && s.default !== undefined) info.default = typeof s.default === "function" ? (s.default as () => unknown)() : s.default;
    if (s.type !== "optional") info.type = `${s.type}`;
    s = s.wrapped as typeof s;
  }
  const base = (s?.pipe?.[0] as typeof s | undefined) ?? s;
  const type = base?.type ?? "unknown";
  info.type = info.type === "nullable" || info.type === "nullish" ? `${type} | null` : type;
  if (base?.options) info.options = base.options;
  for (const item of s?.pipe ?? []) {
    if ((item.type === "min_value" || item.type === "gt_value") && typeof item.requirement === "number") info.min = item.requirement;
    if ((item.type === "max_value" || item.type === "lt_value") && typeof item.requirement === "number") info.max = item.requirement;
    if (item.type === "integer") info.type = "integer";
  }
  return info;
}
