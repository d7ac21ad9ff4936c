// Entry point of `daa` (started by bin/daa.mjs on a Node that runs TypeScript). The commands are in cli/.
import { main } from "./cli/main.ts";
import { processIo } from "./cli/io.ts";

process.exitCode = await main(process.argv.slice(2), processIo());
