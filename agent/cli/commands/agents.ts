import { ok } from "../../client/index.ts";
import { COMMON_HELP, connection, flag, poolName, positionals } from "../args.ts";
import type { Command } from "../command.ts";
import { ago, table } from "../table.ts";

export const agentsCommand: Command = {
  name: "agents",
  summary: "list a pool's agents with their state and load",
  help: `usage: daa agents <pool> [--json]

Lists the agents of a pool you may act for: state, tasks in flight out of their concurrency, the load they last
reported (share of CPU or memory, whichever is higher; tasks in flight; average handler time), circuit breaker,
capabilities and last heartbeat.

  --json   print the mesh's answer as JSON instead of a table

${COMMON_HELP}
`,
  options: { json: { type: "boolean" } },
  async run(parsed, io) {
    const [pool = ""] = positionals(parsed, ["pool"]);
    poolName(pool);
    const { api } = connection(parsed.values, io);
    const { agents } = await ok(api.GET("/v1/pools/{pool}/agents", { params: { path: { pool } } }));
    if (flag(parsed.values, "json")) {
      io.out(`${JSON.stringify({ agents }, null, 2)}\n`);
      return 0;
    }
    if (agents.length === 0) {
      io.out(`no agents in pool ${pool}\n`);
      return 0;
    }
    const now = Date.now();
    const rows = agents.map((a) => [
      a.agentId,
      a.state,
      `${a.inFlight}/${a.maxConcurrency}`,
      a.load.currentLoad.toFixed(2),
      String(a.load.queueDepth),
      String(Math.round(a.load.avgLatencyMs)),
      typeof a.breaker === "string" ? a.breaker : "",
      a.capabilities.join(",") || "-",
      ago(a.lastHeartbeatAt, now),
    ]);
    io.out(
      table(
        ["AGENT", "STATE", "TASKS", "LOAD", "QUEUE", "AVG MS", "BREAKER", "CAPABILITIES", "HEARTBEAT"],
        rows,
        ["left", "left", "right", "right", "right", "right", "left", "left", "left"],
      ),
    );
    return 0;
  },
};
