import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";
import { writeStrategiesIndex } from "./scripts/build-strategies.ts";

process.env.CLOUDFLARE_CF_FETCH_ENABLED = "false";
process.env.WRANGLER_SEND_METRICS = "false";
// The strategy index (build/strategies.ts) with test/strategies/ too, the strategies that misbehave
// on purpose; the runtimes the tests start inherit the variable and build the same index.
process.env.FXRT_TEST_STRATEGIES = "1";
writeStrategiesIndex();

export default defineConfig({
  test: {
    // The JSON report lets .ci/run print a plain "N passed, N failed" line.
    reporters: ["default", ["json", { outputFile: "test-artifacts/vitest.json" }]],
    projects: [
      {
        // Pure domain, ingest and end-to-end tests against a started runtime, and the tests of
        // strategies/ (the strategy test kit), in Node.
        test: {
          name: "node",
          include: ["test/node/**/*.test.ts", "strategies/**/*.test.ts"],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        // Actors and HTTP inside workerd (SQLite Durable Objects, alarms, WebSockets).
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.jsonc" },
            // The bootstrap admin key of the test runtime (test/workers/helpers.ts); a coalescing
            // window wide enough that the room test's back-to-back POSTs always fall inside one.
            // A fixed CREDENTIALS_KEY (32 bytes, base64) seals broker credentials in the tests.
            // Two small rate limiters (20 a minute): the rate-limit test runs the Worker with them in place of
            // IP_RATE_LIMIT and KEY_RATE_LIMIT, so proving a lockout takes 20 requests, not 1,000.
            miniflare: {
              bindings: { ADMIN_API_KEY: "test-admin-key", TICK_COALESCE_MS: "50", CREDENTIALS_KEY: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" },
              ratelimits: { SMALL_IP_RATE_LIMIT: { simple: { limit: 20, period: 60 } }, SMALL_KEY_RATE_LIMIT: { simple: { limit: 20, period: 60 } } },
            },
          }),
        ],
        // trading-signals ships source maps without sources; Vite warns once per file.
        logLevel: "error",
        test: {
          name: "workers",
          include: ["test/workers/**/*.test.ts"],
          testTimeout: 30_000,
        },
      },
    ],
  },
});
