import { readFileSync } from "node:fs";

import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

import { TEST_ADMIN_KEY, TEST_MASTER_KEY } from "./test/constants.ts";
import { embedderTestWorker } from "./scripts/bundle.mjs";
import { ensureEmbedModel } from "./scripts/make-embed-model.mjs";

// The embedder Worker behind the service binding EMBEDDER (workers/embedder/), run from its bundle (rebuilt only
// when its sources change), and the generated model that test/embed/ puts into its R2 bucket.
const embedder = embedderTestWorker();
ensureEmbedModel({ quiet: true });

/**
 * Lets a test import an .onnx file as its bytes (an ArrayBuffer). A Data module rule cannot do it: the plugin
 * keeps only the first rule of each type, and wrangler's default one (*.bin) comes first.
 */
const onnxAsBytes = {
  name: "daa-onnx-as-bytes",
  load(id: string) {
    if (!id.endsWith(".onnx")) return null;
    const base64 = readFileSync(id).toString("base64");
    return `export default Uint8Array.from(atob(${JSON.stringify(base64)}), (c) => c.charCodeAt(0)).buffer;`;
  },
};

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
              // Test-only: the embedder's model bucket (the main Worker has no binding to it).
              r2Buckets: { MODELS: "daa-models" },
              workers: [embedder],
            },
          }),
          onnxAsBytes,
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
              workers: [embedder],
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
