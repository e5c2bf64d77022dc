/**
 * What the operator sees of the OANDA account: its summary, the positions it
 * holds (every instrument, so a stray one outside the served pairs shows), the
 * open trades behind them (a position built by the runtime in one order is one
 * trade; more trades mean adds, partial fills or trades made elsewhere), and
 * whether OANDA's instrument table agrees with the runtime's (a different
 * precision would turn every price into the wrong integer).
 */
import { findInstrument } from "../../domain/instruments.ts";
import type { OandaHttp } from "./oanda-http.ts";
import { AccountInstruments, AccountSummary, OpenPositions, OpenTrades } from "./v20.ts";

export interface AccountView {
  currency: string;
  balance: number;
  nav: number | null;
  unrealizedPL: number | null;
  marginAvailable: number | null;
  openTradeCount: number | null;
  pendingOrderCount: number | null;
  /** Net units per instrument held on the account (longs positive). */
  positions: { instrument: string; netUnits: number; served: boolean }[];
  /** Open trades per instrument: how many, and their units summed (longs positive). */
  trades: { instrument: string; count: number; units: number; served: boolean }[];
  /** Served pairs whose precision or pip location at OANDA differs from the runtime's table. */
  instrumentMismatches: { instrument: string; oanda: { displayPrecision: number; pipLocation: number } | null }[];
}

const num = (x: string | undefined): number | null => (x === undefined ? null : Number(x));

export async function readAccount(http: OandaHttp, servedPairs: readonly string[]): Promise<AccountView> {
  const [summary, positions, trades, instruments] = await Promise.all([
    http.get("/summary", AccountSummary),
    http.get("/openPositions", OpenPositions),
    http.get("/openTrades", OpenTrades),
    http.get(`/instruments?instruments=${servedPairs.join(",")}`, AccountInstruments),
  ]);
  const a = summary.account;
  const byName = new Map(instruments.instruments.map((i) => [i.name, i]));
  return {
    currency: a.currency,
    balance: Number(a.balance),
    nav: num(a.NAV),
    unrealizedPL: num(a.unrealizedPL),
    marginAvailable: num(a.marginAvailable),
    openTradeCount: a.openTradeCount ?? null,
    pendingOrderCount: a.pendingOrderCount ?? null,
    positions: positions.positions
      .map((p) => ({ instrument: p.instrument, netUnits: Number(p.long.units) + Number(p.short.units), served: servedPairs.includes(p.instrument) }))
      .filter((p) => p.netUnits !== 0),
    trades: tradesByInstrument(trades.trades, servedPairs),
    instrumentMismatches: servedPairs.flatMap((pair) => {
      const ours = findInstrument(pair)!;
      const theirs = byName.get(pair);
      if (theirs && theirs.displayPrecision === ours.displayPrecision && theirs.pipLocation === ours.pipLocation) return [];
      return [{ instrument: pair, oanda: theirs ? { displayPrecision: theirs.displayPrecision, pipLocation: theirs.pipLocation } : null }];
    }),
  };
}

function tradesByInstrument(trades: readonly { instrument: string; currentUnits: string }[], servedPairs: readonly string[]): AccountView["trades"] {
  const by = new Map<string, AccountView["trades"][number]>();
  for (const t of trades) {
    const row = by.get(t.instrument) ?? { instrument: t.instrument, count: 0, units: 0, served: servedPairs.includes(t.instrument) };
    row.count++;
    row.units += Number(t.currentUnits);
    by.set(t.instrument, row);
  }
  return [...by.values()].sort((a, b) => a.instrument.localeCompare(b.instrument));
}
