// Argument parsing shared by the commands: node:util parseArgs (strict), plus typed accessors that turn bad values
// into usage errors (exit status 2) with the command's help.
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { createMeshApi, type MeshApi } from "../client/index.ts";
import { MeshClient } from "../sdk/api.ts";
import type { Io } from "./io.ts";

export const DEFAULT_URL = "http://127.0.0.1:8787";

/** Bad usage: exit status 2, with the command's help. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** Options every command takes. */
export const COMMON_OPTIONS = {
  url: { type: "string" },
  token: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const satisfies ParseArgsOptionsConfig;

export const COMMON_HELP = `Every command takes:
  --url <url>       the mesh (default: $DAA_URL, else ${DEFAULT_URL})
  --token <token>   a credential (default: $DAA_TOKEN)
  -h, --help        this help`;

export type Values = Readonly<Record<string, string | boolean | undefined>>;

export interface Parsed {
  values: Values;
  positionals: string[];
}

export function parse(argv: readonly string[], options: ParseArgsOptionsConfig): Parsed {
  try {
    const { values, positionals } = parseArgs({ args: [...argv], options: { ...COMMON_OPTIONS, ...options }, allowPositionals: true, strict: true });
    return { values, positionals };
  } catch (err) {
    // parseArgs explains unknown options and missing values well; keep its words.
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
}

export function str(values: Values, name: string): string | undefined {
  const v = values[name];
  return typeof v === "string" ? v : undefined;
}

export function required(values: Values, name: string): string {
  const v = str(values, name);
  if (v === undefined || v === "") throw new UsageError(`--${name} is required`);
  return v;
}

export function flag(values: Values, name: string): boolean {
  return values[name] === true;
}

export function int(values: Values, name: string, min: number, max: number): number | undefined {
  const v = str(values, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^-?\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be an integer from ${min} to ${max}, not ${JSON.stringify(v)}`);
  return n;
}

export function num(values: Values, name: string, min: number, max: number): number | undefined {
  const v = str(values, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n) || n < min || n > max) throw new UsageError(`--${name} must be a number from ${min} to ${max}, not ${JSON.stringify(v)}`);
  return n;
}

/** Exactly the positionals a command expects, by name (for the error message). */
export function positionals(parsed: Parsed, names: readonly string[]): string[] {
  if (parsed.positionals.length < names.length) throw new UsageError(`missing <${names[parsed.positionals.length]}>`);
  if (parsed.positionals.length > names.length) throw new UsageError(`unexpected argument ${JSON.stringify(parsed.positionals[names.length])}`);
  return parsed.positionals;
}

export const POOL_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;

export function poolName(value: string, what = "pool"): string {
  if (!POOL_NAME.test(value)) throw new UsageError(`${JSON.stringify(value)} is not a ${what} name: lowercase letters, digits, _ and -, starting with a letter or digit, at most 63`);
  return value;
}

export interface Connection {
  url: string;
  token: string;
  /** The agent runtime's client (daa agent). */
  client: MeshClient;
  /** The typed client of the whole API (agent/client), for every other command. */
  api: MeshApi;
}

/** --url / DAA_URL and --token / DAA_TOKEN. */
export function connection(values: Values, io: Io): Connection {
  const url = str(values, "url") ?? io.env.DAA_URL ?? DEFAULT_URL;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`--url ${JSON.stringify(url)} is not a URL`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new UsageError(`--url must be http:// or https://, not ${JSON.stringify(url)}`);
  const token = str(values, "token") ?? io.env.DAA_TOKEN;
  if (!token) throw new UsageError("no credential: pass --token or set DAA_TOKEN (locally: DAA_ADMIN_KEY in .dev.vars)");
  return { url, token, client: new MeshClient({ url, token }), api: createMeshApi({ url, token }) };
}
