declare module "cloudflare:workers" {
  // The bindings of wrangler.toml, as `wrangler types` generated them.
  interface ProvidedEnv extends Env {}
}

// Test-only bindings of vitest.config.ts, on top of wrangler.toml's.
declare namespace Cloudflare {
  interface Env {
    /** The embedder's model bucket (workers/embedder/wrangler.toml), bound to the tests to put models in. */
    MODELS: R2Bucket;
  }
}

// vitest.config.ts loads .onnx files as their bytes (test/embed/).
declare module "*.onnx" {
  const bytes: ArrayBuffer;
  export default bytes;
}
