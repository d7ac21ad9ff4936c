import type { ParseArgsOptionsConfig } from "node:util";
import type { Parsed } from "./args.ts";
import type { Io } from "./io.ts";

export interface Command {
  name: string;
  /** One line for `daa --help`. */
  summary: string;
  /** The whole `daa <name> --help`. */
  help: string;
  options: ParseArgsOptionsConfig;
  /** Answers the exit status; throws UsageError (2) or MeshError (1). */
  run(parsed: Parsed, io: Io): Promise<number>;
}
