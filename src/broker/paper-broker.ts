import { expired, fillMarket, triggerPending } from "../domain/trading/fill-model.ts";
import type { Instrument } from "../domain/instruments.ts";
import type { Fill, OrderIntent, Quote } from "../domain/trading/types.ts";
import type { FillModelConfig } from "../../schemas/trading.ts";
import { CANCELLED_ON_REQUEST, type Broker, type BrokerAnswer, type BrokerCancel } from "./broker.ts";

/** Where the paper broker keeps its book (SQLite in the actor, a Map in a backtest). */
export interface PaperBook {
  get(clientOrderId: string): { intent: OrderIntent; answer: BrokerAnswer } | undefined;
  put(intent: OrderIntent, answer: BrokerAnswer): void;
  working(): OrderIntent[];
}

/**
 * The default broker: fills from the pair's own quotes through the shared
 * fill model (the one backtests use). Market orders fill at once; limit and
 * stop orders rest until a quote triggers them.
 */
export class PaperBroker implements Broker {
  private cancelled: BrokerCancel[] = [];

  constructor(
    private readonly book: PaperBook,
    private readonly model: () => FillModelConfig,
    private readonly instrument: Instrument,
  ) {}

  async place(intent: OrderIntent, quote: Quote): Promise<BrokerAnswer> {
    const known = this.book.get(intent.clientOrderId);
    if (known) return known.answer;
    let answer: BrokerAnswer;
    try {
      if (intent.type === "market") {
        answer = { status: "filled", fills: [fillMarket(intent, quote, this.model(), this.instrument, 1)] };
      } else if (expired(intent, quote)) {
        answer = { status: "rejected", reason: "expired", fills: [] };
      } else {
        const fill = triggerPending(intent, quote, this.model(), this.instrument, 1, "arrival");
        answer = fill ? { status: "filled", fills: [fill] } : { status: "working", fills: [] };
      }
    } catch (err) {
      // An order the fill model cannot price is refused, as a broker refuses a malformed order:
      // an exception here would read as the broker failing and hold up every order of the pair.
      answer = { status: "rejected", reason: unfillable(err), fills: [] };
    }
    this.book.put(intent, answer);
    return answer;
  }

  async lookup(clientOrderId: string): Promise<BrokerAnswer | null> {
    return this.book.get(clientOrderId)?.answer ?? null;
  }

  async cancel(clientOrderId: string): Promise<BrokerAnswer | null> {
    const known = this.book.get(clientOrderId);
    if (!known || known.answer.status !== "working") return known?.answer ?? null;
    const answer: BrokerAnswer = { status: "rejected", reason: CANCELLED_ON_REQUEST, fills: [] };
    this.book.put(known.intent, answer);
    return answer;
  }

  async onQuote(quote: Quote): Promise<Fill[]> {
    const fills: Fill[] = [];
    for (const intent of this.book.working()) {
      // Good till its time: at or after it, cancelled before it can trigger (as OANDA's GTD).
      if (expired(intent, quote)) {
        this.book.put(intent, { status: "rejected", reason: "expired", fills: [] });
        this.cancelled.push({ clientOrderId: intent.clientOrderId, reason: "expired" });
        continue;
      }
      let fill: Fill | null;
      try {
        fill = triggerPending(intent, quote, this.model(), this.instrument, 1, "resting");
      } catch (err) {
        // An order the fill model cannot price (risk checks its prices, so a defect or a stored order
        // from before they did) is cancelled, as a broker would refuse it, instead of failing every quote.
        const reason = unfillable(err);
        this.book.put(intent, { status: "rejected", reason, fills: [] });
        this.cancelled.push({ clientOrderId: intent.clientOrderId, reason });
        continue;
      }
      if (!fill) continue;
      this.book.put(intent, { status: "filled", fills: [fill] });
      fills.push(fill);
    }
    return fills;
  }

  takeCancelled(): BrokerCancel[] {
    const out = this.cancelled;
    this.cancelled = [];
    return out;
  }
}

function unfillable(err: unknown): string {
  return `unfillable: ${err instanceof Error ? err.message : String(err)}`.slice(0, 200);
}
