// The one part of node:crypto the Worker uses (nodejs_compat): a synchronous SHA-256 for the audit chain.
// Declared here rather than pulling Node's global types into the Worker's type check.
declare module "node:crypto" {
  interface Hash {
    update(data: string, encoding?: "utf8"): Hash;
    digest(encoding: "hex"): string;
  }
  export function createHash(algorithm: "sha256"): Hash;
}
