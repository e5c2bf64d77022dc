import type { SignalOrder, SignalType } from "./types.ts";

/** What a strategy's step decided; the runtime turns it into a Signal with an id. */
export interface SignalDraft {
  type: SignalType;
  confidence: number;
  reason: string;
  /** Protective levels, points. */
  stopLoss?: number;
  takeProfit?: number;
  /** Units and protection of the order, when the strategy set them (else its configuration's). */
  order?: SignalOrder;
  metadata: Record<string, number | string | boolean | null>;
}
