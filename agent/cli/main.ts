// `daa`: the command line of ../shared/API.md ("Command line"). Exit status: 0 success, 1 a failed operation (the
// mesh refused or could not be reached), 2 bad usage (with the help text).
import { MeshError } from "../sdk/api.ts";
import { COMMON_HELP, parse, UsageError } from "./args.ts";
import type { Command } from "./command.ts";
import { agentCommand } from "./commands/agent.ts";
import { agentsCommand } from "./commands/agents.ts";
import { poolsCommand } from "./commands/pools.ts";
import { submitCommand } from "./commands/submit.ts";
import { taskCommand } from "./commands/task.ts";
import { workflowsCommand } from "./commands/workflows.ts";
import { schedulesCommand } from "./commands/schedules.ts";
import type { Io } from "./io.ts";

export const COMMANDS: readonly Command[] = [agentCommand, submitCommand, taskCommand, poolsCommand, agentsCommand, workflowsCommand, schedulesCommand];

export const USAGE = `usage: daa <command> [options]

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(8)}  ${c.summary}`).join("\n")}

${COMMON_HELP}

Exit status: 0 success, 1 the operation failed, 2 bad usage.
Run \`daa <command> --help\` for a command's options.
`;

export async function main(argv: readonly string[], io: Io): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    io.err(USAGE);
    return 2;
  }
  if (name === "--help" || name === "-h" || name === "help") {
    io.out(USAGE);
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    io.err(`daa: unknown command ${JSON.stringify(name)}\n\n${USAGE}`);
    return 2;
  }
  try {
    const parsed = parse(rest, command.options);
    // Help wins over everything else, so that `daa agent --help` works without the required options.
    if (parsed.values.help === true) {
      io.out(command.help);
      return 0;
    }
    return await command.run(parsed, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`daa ${command.name}: ${err.message}\n\n${command.help}`);
      return 2;
    }
    io.err(`daa ${command.name}: ${describe(err)}\n`);
    return 1;
  }
}

function describe(err: unknown): string {
  if (err instanceof MeshError) {
    const details = Array.isArray(err.details)
      ? err.details.map((d: unknown) => `\n  ${typeof d === "object" && d !== null && "field" in d && "message" in d ? `${String(d.field)}: ${String(d.message)}` : JSON.stringify(d)}`).join("")
      : err.details === undefined ? "" : `\n  ${JSON.stringify(err.details)}`;
    return `${err.status === 0 ? "" : `${err.status} `}${err.code}: ${err.message}${details}`;
  }
  return err instanceof Error ? err.message : String(err);
}
