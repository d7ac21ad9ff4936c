import { ok } from "../../client/index.ts";
import { COMMON_HELP, connection, flag, positionals } from "../args.ts";
import type { Command } from "../command.ts";
import { table } from "../table.ts";

const STATUSES = ["waiting", "queued", "leased", "succeeded", "dead", "cancelled"] as const;

export const poolsCommand: Command = {
  name: "pools",
  summary: "list pools with their tasks by status and agents by state",
  help: `usage: daa pools [--json]

Lists the pools your credential's tenant uses (every pool with the bootstrap key): tasks by status
(your tenant's) and agents (running and all).

  --json   print the mesh's answer as JSON instead of a table

${COMMON_HELP}
`,
  options: { json: { type: "boolean" } },
  async run(parsed, io) {
    positionals(parsed, []);
    const { api } = connection(parsed.values, io);
    const { pools } = await ok(api.GET("/v1/pools"));
    if (flag(parsed.values, "json")) {
      io.out(`${JSON.stringify({ pools }, null, 2)}\n`);
      return 0;
    }
    if (pools.length === 0) {
      io.out("no pools yet (a pool exists from its first task, agent or config)\n");
      return 0;
    }
    const rows = pools.map((p) => {
      const agents = Object.values(p.agents).reduce((a, b) => a + b, 0);
      return [p.pool, ...STATUSES.map((s) => String(p.queue[s])), String(p.agents.running), String(agents)];
    });
    const headers = ["POOL", ...STATUSES.map((s) => s.toUpperCase()), "RUNNING", "AGENTS"];
    io.out(table(headers, rows, ["left", ...headers.slice(1).map(() => "right" as const)]));
    return 0;
  },
};
