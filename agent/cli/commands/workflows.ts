import { ok } from "../../client/index.ts";
import { COMMON_HELP, connection, flag, positionals, UsageError } from "../args.ts";
import type { Command } from "../command.ts";
import { table } from "../table.ts";

const ms = (from: string | null, to: string | null): string => (from && to ? `${Date.parse(to) - Date.parse(from)}ms` : "");

export const workflowsCommand: Command = {
  name: "workflows",
  summary: "list workflow runs, or show one run's per-step timeline",
  help: `usage: daa workflows [<id>] [--status running|succeeded|failed|cancelled] [--json]

Without <id>: your tenant's runs, newest first (GET /v1/workflows). With <id>: the run's steps in order with
their status, attempts, tasks, agent and how long each took (GET /v1/workflows/:id).

  --status   only runs with this status
  --json     print the mesh's answer as JSON instead of a table

${COMMON_HELP}
`,
  options: { json: { type: "boolean" }, status: { type: "string" } },
  async run(parsed, io) {
    if (parsed.positionals.length > 1) positionals(parsed, ["id"]);
    const id = parsed.positionals[0];
    const { api } = connection(parsed.values, io);
    const json = flag(parsed.values, "json");
    if (id !== undefined) {
      const w = await ok(api.GET("/v1/workflows/{id}", { params: { path: { id } } }));
      if (json) return io.out(`${JSON.stringify(w, null, 2)}\n`), 0;
      io.out(`${w.id}  ${w.name ?? ""}  ${w.status}  created ${w.createdAt}${w.finishedAt ? `  took ${ms(w.createdAt, w.finishedAt)}` : ""}\n`);
      const rows = w.steps.map((s) => [s.key, s.type, s.status, String(s.attempts), String(s.taskIds.length), s.agent ?? "", s.startedAt ?? "", ms(s.startedAt, s.finishedAt)]);
      const headers = ["STEP", "TYPE", "STATUS", "ATTEMPTS", "TASKS", "AGENT", "STARTED", "TOOK"];
      io.out(table(headers, rows, ["left", "left", "left", "right", "right", "left", "left", "right"]));
      return 0;
    }
    const status = parsed.values.status;
    if (status !== undefined && !["running", "succeeded", "failed", "cancelled"].includes(String(status))) throw new UsageError(`--status is running, succeeded, failed or cancelled`);
    const query = status === undefined ? { limit: 100 } : { limit: 100, status: status as "running" | "succeeded" | "failed" | "cancelled" };
    const page = await ok(api.GET("/v1/workflows", { params: { query } }));
    if (json) return io.out(`${JSON.stringify(page, null, 2)}\n`), 0;
    if (page.workflows.length === 0) return io.out("no workflows yet\n"), 0;
    const rows = page.workflows.map((w) => [w.id, w.name ?? "", w.status, `${w.steps.filter((s) => s.status === "succeeded").length}/${w.steps.length}`, w.createdAt, ms(w.createdAt, w.finishedAt)]);
    io.out(table(["ID", "NAME", "STATUS", "STEPS", "CREATED", "TOOK"], rows, ["left", "left", "left", "right", "left", "right"]));
    return 0;
  },
};
