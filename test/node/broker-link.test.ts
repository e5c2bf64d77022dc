import { describe, expect, it } from "vitest";
import type { Broker } from "../../src/broker/broker.ts";
import { BrokerLink, BrokerUnavailable } from "../../src/broker/broker-link.ts";

const QUOTE = { ts: 0, bid: 100_000, ask: 100_010 };

/** A broker whose onQuote fails while `down`, counting the calls that reached it. */
function flaky() {
  const state = { down: true, calls: 0 };
  const broker: Broker = {
    place: async () => ({ status: "rejected", reason: "unused", fills: [] }),
    lookup: async () => null,
    cancel: async () => null,
    onQuote: async () => {
      state.calls++;
      if (state.down) throw new Error("oanda 0 timeout: no answer within 5000 ms");
      return [];
    },
  };
  return { state, broker };
}

describe("broker link", () => {
  it("leaves a failing broker alone for 1 s, doubling to 30 s; calls meanwhile fail at once without reaching it", async () => {
    let now = 0;
    const { state, broker } = flaky();
    const link = new BrokerLink("oanda", async () => broker, true, () => now);
    const failures: number[] = [];
    for (const at of [0, 500, 1_000, 2_999, 3_000, 7_000, 15_000, 31_000, 61_000, 91_000]) {
      now = at;
      const err = await link.onQuote(QUOTE).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BrokerUnavailable);
      failures.push(state.calls);
    }
    // Reached the broker at 0, 1 s, 3 s (after 2 s), 7 s (4 s), 15 s (8 s), 31 s (16 s), 61 s (30 s cap), 91 s.
    expect(failures).toEqual([1, 1, 2, 2, 3, 4, 5, 6, 7, 8]);
    expect(link.state).toMatchObject({ state: "failing", consecutiveFailures: 8, failures: 8, retryAt: 121_000 });

    state.down = false;
    now = 121_000;
    await link.onQuote(QUOTE);
    expect(link.state).toMatchObject({ state: "ok", consecutiveFailures: 0, retryAt: null, lastOkAt: 121_000 });
    expect(link.available()).toBe(true);
  });

  it("reset (new credentials) makes the next call go out at once, and a failed creation is tried again", async () => {
    let now = 0;
    let creations = 0;
    const { state, broker } = flaky();
    const link = new BrokerLink("oanda", async () => {
      if (++creations === 1) throw new Error("no OANDA credentials");
      return broker;
    }, true, () => now);
    await expect(link.onQuote(QUOTE)).rejects.toThrow(/no OANDA credentials/);
    expect(link.available()).toBe(false);
    link.reset();
    state.down = false;
    await link.onQuote(QUOTE);
    expect(creations).toBe(2);
    expect(link.state.state).toBe("ok");
  });

  it("reports positions only for a broker with its own book", async () => {
    const { broker } = flaky();
    expect(new BrokerLink("paper", async () => broker, false).openUnits).toBeUndefined();
    const withBook = new BrokerLink("oanda", async () => ({ ...broker, openUnits: async () => 42 }), true);
    expect(await withBook.openUnits!()).toBe(42);
  });
});
