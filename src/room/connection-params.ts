import * as v from "valibot";
import { TIMEFRAMES, type Timeframe } from "../domain/candle.ts";
import { SNAPSHOT_CANDLES_DEFAULT, SNAPSHOT_CANDLES_MAX } from "../../schemas/room.ts";
import type { Role } from "../../schemas/auth.ts";

/** What a room connection asked for in its URL, kept in the hibernation attachment. */
export interface RoomConnectionState {
  timeframes: Timeframe[];
  snapshotCandles: number;
  /** Role of the connection's API key as the Worker verified it; null = anonymous (market data only). */
  role: Role | null;
  /** Id of that key ("bootstrap" for the ADMIN_API_KEY secret): the socket closes when the key is revoked (actors/key-sockets.ts). */
  keyId?: string;
}

const Params = v.object({
  tf: v.optional(
    v.pipe(
      v.string(),
      v.transform((s) => [...new Set(s.split(",").map((x) => x.trim()).filter(Boolean))]),
      v.array(v.picklist(TIMEFRAMES)),
      v.minLength(1),
    ),
    "1m",
  ),
  limit: v.optional(
    v.pipe(v.string(), v.regex(/^\d+$/), v.transform(Number), v.minValue(0), v.maxValue(SNAPSHOT_CANDLES_MAX)),
    String(SNAPSHOT_CANDLES_DEFAULT),
  ),
  key: v.optional(v.pipe(v.string(), v.maxLength(256))),
});

/** Parse `?tf=1m,5m&limit=300&key=...` from a room URL (the key itself was checked by the Worker). */
export function parseConnectionParams(
  url: URL,
  role: Role | null,
  keyId: string | null = null,
): { ok: true; state: RoomConnectionState } | { ok: false; issues: { path: string; message: string }[] } {
  const raw: Record<string, string> = {};
  for (const name of ["tf", "limit", "key"]) {
    const value = url.searchParams.get(name);
    if (value !== null) raw[name] = value;
  }
  const parsed = v.safeParse(Params, raw);
  if (!parsed.success) {
    return {
      ok: false,
      issues: parsed.issues.map((i) => ({ path: i.path?.map((p) => String(p.key)).join(".") ?? "", message: i.message })),
    };
  }
  // Defaults run through the pipes too: tf is an array, limit a number.
  return { ok: true, state: { timeframes: parsed.output.tf as Timeframe[], snapshotCandles: parsed.output.limit, role, ...(keyId ? { keyId } : {}) } };
}
