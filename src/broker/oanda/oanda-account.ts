/**
 * What the operator sees of the OANDA account: its summary, the positions it
 * holds (every instrument, so a stray one outside the served pairs shows), and
 * whether OANDA's instrument table agrees with the runtime's (a different
 * precision would turn every price into the wrong integer).
 */
import { findInstrument } from "../../domain/instruments.ts";
import type { OandaHttp } from "./oanda-http.ts";
import { AccountInstruments, AccountSummary, OpenPositions } from "./v20.ts";

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
  /** Served pairs whose precision or pip location at OANDA differs from the runtime's table. */
  instrumentMismatches: { instrument: string; oanda: { displayPrecision: number; pipLocation: number } | null }[];
}

const num = (x: string | undefined): number | null => (x === undefined ? null : Number(x));

export async function readAccount(http: OandaHttp, servedPairs: readonly string[]): Promise<AccountView> {
  const [summary, positions, instruments] = await Promise.all([
    http.get("/summary", AccountSummary),
    http.get("/openPositions", OpenPositions),
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
    instrumentMismatches: servedPairs.flatMap((pair) => {
      const ours = findInstrument(pair)!;
      const theirs = byName.get(pair);
      if (theirs && theirs.displayPrecision === ours.displayPrecision && theirs.pipLocation === ours.pipLocation) return [];
      return [{ instrument: pair, oanda: theirs ? { displayPrecision: theirs.displayPrecision, pipLocation: theirs.pipLocation } : null }];
    }),
  };
}
