import { TIMEFRAMES, type Timeframe } from "./domain/candle.ts";
import { findInstrument } from "./domain/instruments.ts";
import { readBrokerConfig, type BrokerConfig } from "./broker/broker-config.ts";

/** How long rows are kept, in days (TICK_RETENTION_DAYS, LOG_RETENTION_DAYS, CLOSED_POSITION_RETENTION_DAYS). */
export interface RetentionDays {
  /** Ticks (pair). */
  tickDays: number;
  /** Audit logs (every actor), risk rejections and signals (pair). */
  logDays: number;
  /** Closed positions, with their orders and fills (pair). */
  closedPositionDays: number;
}

/** Runtime configuration read from Worker vars (wrangler.jsonc `vars`, or the environment under `npm start`). */
export interface RuntimeConfig {
  pairs: readonly string[];
  feed: "synthetic" | "off" | "oanda";
  feedSeed: number;
  feedHours: "fx" | "always";
  tickCoalesceMs: number;
  tickRetentionCount: number;
  candleRetention: Record<Timeframe, number>;
  /** Time-based retention, run hourly by every actor (actors/retention.ts); count caps apply too. */
  retention: RetentionDays;
  maxSpreadPips: Readonly<Record<string, number>>;
  candleCloseGraceMs: number;
  /** Connections one pair room accepts; more are refused with an error frame. */
  roomMaxConnections: number;
  /** Currency P&L is reported in (besides each pair's quote currency). */
  accountCurrency: string;
  /** The account's balance before the runtime's P&L, in the account currency: equity = this + realised + unrealised. */
  accountBalance: number;
  /** Optional advisor endpoint that may veto or shrink strategy orders; null = off. */
  advisor: { url: string; timeoutMs: number } | null;
  /** Market data (pairs, candles, ticks and candles in rooms) readable without a key. */
  marketDataPublic: boolean;
  /** How often each actor's state is backed up to R2 (the recovery point objective), ms; 0 = off. */
  backupIntervalMs: number;
  /** Where orders go (BROKER) and OANDA's settings (OANDA_*). */
  broker: BrokerConfig;
}

export const CANDLE_RETENTION_DEFAULT: Record<Timeframe, number> = {
  "1m": 20_160,
  "5m": 8_640,
  "15m": 8_640,
  "1h": 8_760,
  "4h": 4_380,
  "1D": 3_650,
};

type Vars = Partial<Record<string, unknown>>;

/**
 * What a pair keeps in SQLite is bounded by its backup: a snapshot reads the
 * whole database into the actor, whose isolate has 128 MB (200,000 ticks make
 * 5.6 MB of snapshot; these bounds keep a pair's under about 50 MB).
 */
const MAX_TICKS_KEPT = 500_000;
const MAX_CANDLES_KEPT = 50_000;
const SNAPSHOT_BOUND = "a backup reads a pair's whole database into its 128 MB isolate";

function int(vars: Vars, name: string, fallback: number, min: number, max: number): number {
  const raw = vars[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new Error(`config ${name}=${String(raw)} must be an integer in [${min}, ${max}]`);
  }
  return n;
}

/** Parse "a=1,b=2" lists. */
function assignments(raw: unknown, name: string): [string, number][] {
  if (raw === undefined || raw === "") return [];
  return String(raw)
    .split(",")
    .map((part) => part.trim())
    .filter(Boolean)
    .map((part) => {
      const [key, value] = part.split("=");
      const n = Number(value);
      if (!key || !Number.isFinite(n) || n <= 0) throw new Error(`config ${name}: bad entry "${part}"`);
      return [key.trim(), n];
    });
}

function bool(vars: Vars, name: string, fallback: boolean): boolean {
  const raw = vars[name];
  if (raw === undefined || raw === "") return fallback;
  if (raw === "true" || raw === true) return true;
  if (raw === "false" || raw === false) return false;
  throw new Error(`config ${name} must be "true" or "false"`);
}

function advisor(vars: Vars): RuntimeConfig["advisor"] {
  const url = String(vars.ADVISOR_URL ?? "");
  const timeoutMs = int(vars, "ADVISOR_TIMEOUT_MS", 100, 1, 10_000);
  if (url === "") return null;
  if (!/^https?:\/\//.test(url)) throw new Error(`config ADVISOR_URL must be an http(s) URL, not "${url}"`);
  return { url, timeoutMs };
}

function accountCurrency(raw: unknown): string {
  const value = raw === undefined || raw === "" ? "USD" : String(raw);
  if (!/^[A-Z]{3}$/.test(value)) throw new Error(`config ACCOUNT_CURRENCY must be a 3-letter code, not "${value}"`);
  return value;
}

/** The required recovery point objective: no actor's state may be older than this in R2. */
const BACKUP_RPO_SECONDS = 300;
/** How often the cron checks whether a backup is due (wrangler.jsonc `triggers.crons`). */
const CRON_PERIOD_SECONDS = 60;
/**
 * A backup is taken at the first cron run after the interval has passed, so
 * up to interval + one cron period can separate two of them: the interval
 * may be at most the RPO minus that period (240 s).
 */
const BACKUP_INTERVAL_SECONDS_MAX = BACKUP_RPO_SECONDS - CRON_PERIOD_SECONDS;

/** "0" turns backups off; otherwise at least a minute (the cron's period) and at most BACKUP_INTERVAL_SECONDS_MAX. */
function backupInterval(vars: Vars): number {
  const raw = vars.BACKUP_INTERVAL_SECONDS;
  const seconds = raw === undefined || raw === "" ? 240 : Number(raw);
  if (seconds !== 0 && !(Number.isInteger(seconds) && seconds >= CRON_PERIOD_SECONDS && seconds <= BACKUP_INTERVAL_SECONDS_MAX)) {
    throw new Error(
      `config BACKUP_INTERVAL_SECONDS=${String(raw)} must be 0 (off) or an integer in [${CRON_PERIOD_SECONDS}, ${BACKUP_INTERVAL_SECONDS_MAX}]: ` +
        `the cron checks every ${CRON_PERIOD_SECONDS} s, so backups can be interval + ${CRON_PERIOD_SECONDS} s apart, and the recovery point objective is ${BACKUP_RPO_SECONDS} s`,
    );
  }
  return seconds * 1000;
}

/** Validates everything up front: a typo in configuration fails loudly at start, not at the first tick. */
export function readConfig(vars: Vars): RuntimeConfig {
  const pairs = String(vars.PAIRS ?? "EUR_USD,USD_JPY")
    .split(",")
    .map((p) => p.trim())
    .filter(Boolean);
  for (const p of pairs) if (!findInstrument(p)) throw new Error(`config PAIRS: unknown pair ${p}`);
  if (pairs.length === 0) throw new Error("config PAIRS is empty");

  const feed = String(vars.FEED ?? "off");
  if (feed !== "synthetic" && feed !== "off" && feed !== "oanda") throw new Error(`config FEED must be "synthetic", "oanda" or "off", not "${feed}"`);
  const feedHours = String(vars.FEED_HOURS ?? "fx");
  if (feedHours !== "fx" && feedHours !== "always") throw new Error(`config FEED_HOURS must be "fx" or "always"`);

  const candleRetention = { ...CANDLE_RETENTION_DEFAULT };
  for (const [tf, n] of assignments(vars.CANDLE_RETENTION, "CANDLE_RETENTION")) {
    if (!(TIMEFRAMES as readonly string[]).includes(tf)) throw new Error(`config CANDLE_RETENTION: unknown timeframe ${tf}`);
    if (n > MAX_CANDLES_KEPT) throw new Error(`config CANDLE_RETENTION: ${tf}=${n} is over ${MAX_CANDLES_KEPT} (${SNAPSHOT_BOUND})`);
    // At least a day of 1m candles: higher timeframes are derived from them.
    candleRetention[tf as Timeframe] = Math.max(Math.floor(n), tf === "1m" ? 1440 : 10);
  }

  const maxSpreadPips: Record<string, number> = {};
  for (const [pair, pips] of assignments(vars.MAX_SPREAD_PIPS, "MAX_SPREAD_PIPS")) {
    if (!findInstrument(pair)) throw new Error(`config MAX_SPREAD_PIPS: unknown pair ${pair}`);
    maxSpreadPips[pair] = pips;
  }

  return {
    pairs,
    feed,
    feedSeed: int(vars, "FEED_SEED", 42, 0, 2 ** 31 - 1),
    feedHours,
    tickCoalesceMs: int(vars, "TICK_COALESCE_MS", 10, 0, 10_000),
    tickRetentionCount: int(vars, "TICK_RETENTION_COUNT", 200_000, 1_000, MAX_TICKS_KEPT),
    candleRetention,
    retention: {
      tickDays: int(vars, "TICK_RETENTION_DAYS", 90, 1, 3650),
      logDays: int(vars, "LOG_RETENTION_DAYS", 90, 1, 3650),
      closedPositionDays: int(vars, "CLOSED_POSITION_RETENTION_DAYS", 365, 1, 3650),
    },
    maxSpreadPips,
    candleCloseGraceMs: int(vars, "CANDLE_CLOSE_GRACE_MS", 200, 0, 60_000),
    roomMaxConnections: int(vars, "ROOM_MAX_CONNECTIONS", 2_000, 1, 32_000),
    accountCurrency: accountCurrency(vars.ACCOUNT_CURRENCY),
    accountBalance: int(vars, "ACCOUNT_BALANCE", 100_000, 1, 1_000_000_000_000),
    advisor: advisor(vars),
    marketDataPublic: bool(vars, "MARKET_DATA_PUBLIC", true),
    backupIntervalMs: backupInterval(vars),
    broker: readBrokerConfig(vars),
  };
}

const cache = new WeakMap<object, RuntimeConfig>();

/** readConfig once per env object (the Worker's env is stable across requests). */
export function configFor(env: object): RuntimeConfig {
  let config = cache.get(env);
  if (!config) {
    config = readConfig(env as Vars);
    cache.set(env, config);
  }
  return config;
}
