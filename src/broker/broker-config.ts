/**
 * Which broker the pair actors trade through, from Worker vars and secrets:
 * BROKER ("paper", the default, or "oanda"), OANDA_ENV ("practice" or
 * "live": OANDA's hosts), OANDA_ACCOUNT_ID, optional OANDA_API_URL /
 * OANDA_STREAM_URL (another v20 server, e.g. a local stand-in), and the
 * OANDA_TOKEN secret. Credentials stored through the admin API (sealed in the
 * coordinator) take precedence over OANDA_ACCOUNT_ID / OANDA_TOKEN.
 */
import { OANDA_HOSTS } from "./oanda/oanda-http.ts";

export interface OandaSettings {
  environment: "practice" | "live";
  apiUrl: string;
  streamUrl: string;
  accountId: string | null;
  token: string | null;
}

/** The broker orders go to, and OANDA's settings (used by BROKER=oanda and by FEED=oanda, which may run with paper trading). */
export interface BrokerConfig {
  kind: "paper" | "oanda";
  oanda: OandaSettings;
}

type Vars = Partial<Record<string, unknown>>;

function url(vars: Vars, name: string, fallback: string): string {
  const raw = String(vars[name] ?? "").trim();
  if (raw === "") return fallback;
  if (!/^https?:\/\/[^\s/]+(:\d+)?\/?$/.test(raw)) throw new Error(`config ${name} must be an http(s) origin like https://api-fxpractice.oanda.com, not "${raw}"`);
  return raw.replace(/\/$/, "");
}

export function readBrokerConfig(vars: Vars): BrokerConfig {
  const kind = String(vars.BROKER ?? "paper") || "paper";
  if (kind !== "paper" && kind !== "oanda") throw new Error(`config BROKER must be "paper" or "oanda", not "${kind}"`);
  const environment = String(vars.OANDA_ENV ?? "practice") || "practice";
  if (environment !== "practice" && environment !== "live") throw new Error(`config OANDA_ENV must be "practice" or "live", not "${environment}"`);
  const accountId = String(vars.OANDA_ACCOUNT_ID ?? "").trim();
  if (accountId !== "" && !/^\d{3}-\d{3}-\d+-\d{3}$/.test(accountId)) throw new Error(`config OANDA_ACCOUNT_ID must look like 101-004-1234567-001`);
  const token = String(vars.OANDA_TOKEN ?? "").trim();
  return {
    kind,
    oanda: {
      environment,
      apiUrl: url(vars, "OANDA_API_URL", OANDA_HOSTS[environment].apiUrl),
      streamUrl: url(vars, "OANDA_STREAM_URL", OANDA_HOSTS[environment].streamUrl),
      accountId: accountId || null,
      token: token || null,
    },
  };
}

/** An account id for display: the last three digits only. */
export function maskAccountId(id: string | null): string | null {
  return id === null ? null : id.replace(/^(.*)-(\d+)-(\d{3})$/, (_m, head: string, mid: string, tail: string) => `${head.replace(/\d/g, "*")}-${mid.replace(/\d/g, "*")}-${tail}`);
}
