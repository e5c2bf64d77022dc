import { describe, expect, it } from "vitest";
import { maskAccountId, readBrokerConfig } from "../../src/broker/broker-config.ts";

describe("broker configuration", () => {
  it("paper by default, OANDA's practice hosts unless told otherwise", () => {
    expect(readBrokerConfig({})).toEqual({
      kind: "paper",
      oanda: { environment: "practice", apiUrl: "https://api-fxpractice.oanda.com", streamUrl: "https://stream-fxpractice.oanda.com", accountId: null, token: null },
    });
    const live = readBrokerConfig({ BROKER: "oanda", OANDA_ENV: "live", OANDA_ACCOUNT_ID: "001-011-1234567-001", OANDA_TOKEN: "tok" });
    expect(live).toMatchObject({ kind: "oanda", oanda: { environment: "live", apiUrl: "https://api-fxtrade.oanda.com", streamUrl: "https://stream-fxtrade.oanda.com", accountId: "001-011-1234567-001", token: "tok" } });
    const local = readBrokerConfig({ BROKER: "oanda", OANDA_API_URL: "http://127.0.0.1:9000/", OANDA_STREAM_URL: "http://127.0.0.1:9001" });
    expect(local.oanda).toMatchObject({ apiUrl: "http://127.0.0.1:9000", streamUrl: "http://127.0.0.1:9001" });
  });

  it("fails loudly on a bad value", () => {
    expect(() => readBrokerConfig({ BROKER: "ib" })).toThrow(/BROKER must be "paper" or "oanda"/);
    expect(() => readBrokerConfig({ OANDA_ENV: "prod" })).toThrow(/OANDA_ENV/);
    expect(() => readBrokerConfig({ OANDA_ACCOUNT_ID: "12345" })).toThrow(/OANDA_ACCOUNT_ID/);
    expect(() => readBrokerConfig({ OANDA_API_URL: "ftp://x" })).toThrow(/OANDA_API_URL/);
    expect(() => readBrokerConfig({ OANDA_STREAM_URL: "https://host/path" })).toThrow(/OANDA_STREAM_URL/);
  });

  it("shows an account id with only its last three digits", () => {
    expect(maskAccountId("101-004-1234567-001")).toBe("***-***-*******-001");
    expect(maskAccountId(null)).toBeNull();
  });
});
