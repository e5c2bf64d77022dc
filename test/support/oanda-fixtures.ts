/**
 * What the OANDA adapter tests share: a fast retry policy, a quote, order
 * intents with fresh client ids, and the v20 stand-in started once per file
 * and put back to a clean, quoted state before each test.
 */
import type { OandaEndpoint, RetryPolicy } from "../../src/broker/oanda/oanda-http.ts";
import type { OrderIntent } from "../../src/domain/trading/types.ts";
import { OandaStandIn } from "./oanda-standin.ts";

export const FAST: RetryPolicy = { timeoutMs: 1_000, attempts: 3, baseDelayMs: 5, maxDelayMs: 20 };
export const QUOTE = { ts: 0, bid: 108_500, ask: 108_512 };

/** A maker of market buy intents on EUR_USD with ids `EUR_USD-<tag>-<n>` and `units` by default. */
export function intents(tag: string, units: number): (extra?: Partial<OrderIntent>) => OrderIntent {
  let seq = 0;
  return (extra = {}) => ({
    clientOrderId: `EUR_USD-${tag}-${++seq}`,
    pair: "EUR_USD",
    strategyId: "test",
    side: "buy",
    units,
    type: "market",
    reduceOnly: false,
    createdAt: 0,
    ...extra,
  });
}

export async function startStandIn(): Promise<{ standin: OandaStandIn; endpoint: OandaEndpoint }> {
  const standin = new OandaStandIn(100);
  const url = await standin.start();
  return { standin, endpoint: { apiUrl: url, streamUrl: url, accountId: standin.accountId, token: standin.token } };
}

/** No faults, full pages, and the two quotes the tests trade on. */
export function resetStandIn(standin: OandaStandIn): void {
  standin.faults = OandaStandIn.noFaults();
  standin.sinceIdPageMax = 1_000;
  standin.setQuote("EUR_USD", 1.085, 1.08512);
  standin.setQuote("USD_JPY", 151.2, 151.214);
}
