import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

import { TEST_ADMIN_KEY, TEST_MASTER_KEY } from "./test/constants.ts";

export default defineConfig({
  test: {
    projects: [
      {
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              // DAA_TEST_HOOKS: test-only hooks (per-request shard delays, gossip partitions); never set in production.
              bindings: { DAA_ADMIN_KEY: TEST_ADMIN_KEY, DAA_MASTER_KEY: TEST_MASTER_KEY, DAA_TEST_HOOKS: "1" },
            },
          }),
        ],
        test: {
          name: "workerd",
          include: ["test/**/*.test.ts"],
          exclude: ["test/node/**", "test/limits/**"],
          testTimeout: 30_000,
        },
      },
      {
        // The same Worker with tiny rate limits and CORS on, for the tests that need them (test/limits/).
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              bindings: { DAA_ADMIN_KEY: TEST_ADMIN_KEY, DAA_MASTER_KEY: TEST_MASTER_KEY, DAA_CORS_ORIGINS: "https://dash.example.com" },
              // Replaces the wrangler.toml bindings of the same names (miniflare's record form of [[ratelimits]]).
              ratelimits: {
                TENANT_RATE_LIMIT: { namespace_id: "1001", simple: { limit: 8, period: 10 } },
                CREDENTIAL_RATE_LIMIT: { namespace_id: "1002", simple: { limit: 5, period: 10 } },
              },
            },
          }),
        ],
        test: {
          name: "workerd-limits",
          include: ["test/limits/**/*.test.ts"],
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: "node",
          environment: "node",
          include: ["test/node/**/*.test.ts"],
          testTimeout: 120_000,
        },
      },
    ],
  },
});
