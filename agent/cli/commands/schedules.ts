import { ok } from "../../client/index.ts";
import { COMMON_HELP, connection, flag, positionals } from "../args.ts";
import type { Command } from "../command.ts";
import { table } from "../table.ts";

export const schedulesCommand: Command = {
  name: "schedules",
  summary: "list schedules, or show one schedule's recent runs",
  help: `usage: daa schedules [<id>] [--json]

Without <id>: your tenant's schedules, oldest first, with their next and last run (GET /v1/schedules). With <id>:
the schedule and its last 20 runs, newest first, with the task or workflow each submitted
(GET /v1/schedules/:id).

  --json     print the mesh's answer as JSON instead of a table

${COMMON_HELP}
`,
  options: { json: { type: "boolean" } },
  async run(parsed, io) {
    if (parsed.positionals.length > 1) positionals(parsed, ["id"]);
    const id = parsed.positionals[0];
    const { api } = connection(parsed.values, io);
    const json = flag(parsed.values, "json");
    if (id !== undefined) {
      const s = await ok(api.GET("/v1/schedules/{id}", { params: { path: { id } } }));
      if (json) return io.out(`${JSON.stringify(s, null, 2)}\n`), 0;
      const target = s.task ? `task ${String(s.task.type)}` : `workflow ${String(s.workflow?.name ?? "")}`;
      io.out(`${s.id}  ${s.name ?? ""}  ${s.cron} ${s.timezone}  ${target}  ${s.paused ? "paused" : `next ${s.nextRunAt}`}\n`);
      if (s.runs.length === 0) return io.out("no runs yet\n"), 0;
      const rows = s.runs.map((r) => [r.slot, r.trigger ? "trigger" : "cron", r.status, r.reason ?? "", r.taskId ?? r.workflowId ?? ""]);
      io.out(table(["SLOT", "BY", "STATUS", "REASON", "TASK OR WORKFLOW"], rows, ["left", "left", "left", "left", "left"]));
      return 0;
    }
    const page = await ok(api.GET("/v1/schedules", { params: { query: { limit: 100 } } }));
    if (json) return io.out(`${JSON.stringify(page, null, 2)}\n`), 0;
    if (page.schedules.length === 0) return io.out("no schedules yet\n"), 0;
    const rows = page.schedules.map((s) => [s.id, s.name ?? "", s.cron, s.timezone, s.paused ? "paused" : (s.nextRunAt ?? ""), s.lastRunAt ?? "", String(s.runs.length)]);
    io.out(table(["ID", "NAME", "CRON", "TIMEZONE", "NEXT", "LAST", "RUNS"], rows, ["left", "left", "left", "left", "left", "left", "right"]));
    return 0;
  },
};
