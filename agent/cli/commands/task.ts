import { ok } from "../../client/index.ts";
import { COMMON_HELP, connection, positionals } from "../args.ts";
import type { Command } from "../command.ts";

export const taskCommand: Command = {
  name: "task",
  summary: "show a task (status, result, error) as JSON",
  help: `usage: daa task <id>

Prints the task as the mesh answers GET /v1/tasks/:id, as JSON.

${COMMON_HELP}
`,
  options: {},
  async run(parsed, io) {
    const [id = ""] = positionals(parsed, ["id"]);
    const { api } = connection(parsed.values, io);
    io.out(`${JSON.stringify(await ok(api.GET("/v1/tasks/{id}", { params: { path: { id } } })), null, 2)}\n`);
    return 0;
  },
};
