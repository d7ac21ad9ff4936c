declare module "cloudflare:workers" {
  // The bindings of wrangler.toml, as `wrangler types` generated them.
  interface ProvidedEnv extends Env {}
}
