/**
 * `fxrt strategy list|new`: the strategies of strategies/ and their
 * parameters (read from each one's schema), and a new strategy with its test
 * written from a template. Local: what this project would run, no runtime
 * needed.
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { paramInfo, STRATEGY_NAMES, strategyEntry, type ParamInfo } from "../../src/domain/strategy/catalog.ts";
import { noPositional, parseFlags, UsageError, type Ctx } from "./common.ts";

const STRATEGIES_DIR = fileURLToPath(new URL("../../strategies/", import.meta.url));
const NAME = /^[a-z0-9][a-z0-9-]{0,39}$/;

export const STRATEGY_HELP = `usage: fxrt strategy list [--json]
       fxrt strategy new <name>

  list        every strategy in strategies/ with its parameters (type, default, bounds)
  new NAME    write strategies/NAME.ts (a working example to edit) and its test,
              strategies/NAME.test.ts (run it with: npx vitest run strategies/NAME.test.ts);
              NAME is 1-40 of a-z, 0-9 and -`;

export async function strategyCommand(ctx: Ctx, args: readonly string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === "list") return list(ctx, rest);
  if (sub === "new") return create(ctx, rest);
  throw new UsageError(sub === undefined ? "strategy needs list or new" : `unknown strategy command '${sub}'`, "strategy");
}

function describeParam(p: ParamInfo): string {
  const bounds = p.options ? p.options.map(String).join("|") : p.min !== undefined || p.max !== undefined ? `${p.min ?? ""}..${p.max ?? ""}` : "";
  return `${p.name}=${JSON.stringify(p.default ?? null)} (${p.type}${bounds ? ` ${bounds}` : ""})`;
}

function list(ctx: Ctx, args: readonly string[]): number {
  noPositional("strategy", parseFlags("strategy", args, {}));
  const rows = STRATEGY_NAMES.map((name) => ({ name, description: strategyEntry(name)?.definition.description ?? "", params: paramInfo(name) }));
  if (ctx.json) {
    ctx.io.out(JSON.stringify({ strategies: rows }));
    return 0;
  }
  for (const row of rows) {
    ctx.io.out(`${row.name}  ${row.description}`);
    for (const p of row.params) ctx.io.out(`    ${describeParam(p)}`);
  }
  return 0;
}

function create(ctx: Ctx, args: readonly string[]): number {
  const parsed = parseFlags("strategy", args, {});
  const [name, extra] = parsed.positional;
  if (name === undefined) throw new UsageError("strategy new needs a name", "strategy");
  if (extra !== undefined) throw new UsageError(`unexpected argument '${extra}'`, "strategy");
  if (!NAME.test(name)) throw new UsageError(`'${name}' is not a strategy name: 1-40 of a-z, 0-9 and -`, "strategy");
  const file = path.join(STRATEGIES_DIR, `${name}.ts`);
  const test = path.join(STRATEGIES_DIR, `${name}.test.ts`);
  if (existsSync(file) || existsSync(test) || STRATEGY_NAMES.includes(name)) throw new UsageError(`strategy ${name} exists already (strategies/${name}.ts)`, "strategy");
  mkdirSync(STRATEGIES_DIR, { recursive: true });
  writeFileSync(file, strategyTemplate(name));
  writeFileSync(test, testTemplate(name));
  if (ctx.json) ctx.io.out(JSON.stringify({ strategy: name, files: [`strategies/${name}.ts`, `strategies/${name}.test.ts`] }));
  else {
    ctx.io.out(`wrote strategies/${name}.ts and strategies/${name}.test.ts`);
    ctx.io.out(`test it:      npx vitest run strategies/${name}.test.ts`);
    ctx.io.out(`backtest it:  npx fxrt backtest --pair EUR_USD --from 2018-01-01 --to 2019-01-01 --strategy ${name}`);
  }
  return 0;
}

export function strategyTemplate(name: string): string {
  return `import { ATR, defineStrategy, EMA, param, v } from "../src/domain/strategy/index.ts";

/**
 * ${name}: long while the close is above its EMA, short while below, with
 * a stop and a target in ATRs. A starting point: change the rule in
 * onCandle, the parameters in params, the indicators in indicators.
 * docs/strategies.md has the whole API.
 */
export default defineStrategy({
  name: ${JSON.stringify(name)},
  description: "Long above the EMA, short below it, ATR stop and target",
  params: v.object({
    timeframe: param.timeframe("1h"),
    period: param.period(50),
    atrPeriod: param.period(14),
    atrStopMultiple: param.number(2, 0.1, 20),
    atrTargetMultiple: param.number(4, 0.1, 40),
  }),
  // The timeframes whose closed candles step the strategy; history = candles kept for ctx.candles().
  watch: (p) => ({ timeframes: [p.timeframe], history: 1 }),
  // trading-signals indicators, fed with each closed candle of their timeframe (mid prices by default).
  indicators: (p) => ({
    ema: { timeframe: p.timeframe, create: () => new EMA(p.period) },
    atr: { timeframe: p.timeframe, input: "hlc", create: () => new ATR(p.atrPeriod) },
  }),
  // The strategy's own state: plain JSON, saved after every step.
  init: () => ({ side: 0 }),
  onCandle(ctx, state) {
    const ema = ctx.indicator("ema");
    const atr = ctx.indicator("atr");
    if (ema === null || atr === null) return state; // still warming up
    const close = ctx.candle.close;
    const side = close > ema ? 1 : close < ema ? -1 : state.side;
    if (side !== state.side && side !== 0) {
      const { atrStopMultiple: stop, atrTargetMultiple: target } = ctx.params;
      if (side > 0) ctx.buy({ reason: "close above the EMA", stopLoss: close - stop * atr, takeProfit: close + target * atr, metadata: { ema, atr } });
      else ctx.sell({ reason: "close below the EMA", stopLoss: close + stop * atr, takeProfit: close - target * atr, metadata: { ema, atr } });
    }
    return { side };
  },
});
`;
}

export function testTemplate(name: string): string {
  return `import { describe, expect, it } from "vitest";
import { runStrategy, type KitCandle } from "../src/replay/test-kit.ts";

/** Hourly EUR_USD candles from a list of closes (open = previous close, a 2-pip range). */
function hours(closes: number[]): KitCandle[] {
  const start = Date.UTC(2024, 0, 2); // a Tuesday
  return closes.map((close, i) => {
    const open = i === 0 ? close : (closes[i - 1] as number);
    return { time: start + i * 3_600_000, open, high: Math.max(open, close) + 0.0002, low: Math.min(open, close) - 0.0002, close };
  });
}

describe(${JSON.stringify(name)}, () => {
  it("goes long when the close rises above its EMA, short when it falls below", () => {
    const up = Array.from({ length: 20 }, (_, i) => 1.1 + i * 0.0005);
    const down = Array.from({ length: 20 }, (_, i) => 1.1095 - i * 0.001);
    const run = runStrategy(${JSON.stringify(name)}, { pair: "EUR_USD", timeframe: "1h", candles: hours([...up, ...down]), params: { period: 5, atrPeriod: 5 } });
    expect(run.signals.map((s) => s.type)).toEqual(["buy", "sell"]);
    expect(run.orders.every((o) => o.filled !== null)).toBe(true);
    expect(run.trades.length).toBeGreaterThanOrEqual(1);
  });

  it("refuses a misspelt parameter, naming the valid ones", () => {
    expect(() => runStrategy(${JSON.stringify(name)}, { pair: "EUR_USD", candles: [], params: { peroid: 5 } })).toThrow(/unknown parameter "peroid".*period/);
  });
});
`;
}
