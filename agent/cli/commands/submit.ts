import { MeshError, ok, type MeshApi, type Schemas } from "../../client/index.ts";
import { Backoff } from "../../sdk/backoff.ts";
import { sleep } from "../../sdk/timers.ts";
import { COMMON_HELP, connection, flag, int, poolName, positionals, str, UsageError } from "../args.ts";
import type { Command } from "../command.ts";
import type { Io } from "../io.ts";

/** Each long poll waits this long; short enough that the progress line shows status changes promptly. */
const POLL_WAIT_MS = 5_000;
/** Consecutive failed polls (mesh unreachable, 5xx, 429) tolerated while waiting. */
const MAX_POLL_ERRORS = 5;

export const submitCommand: Command = {
  name: "submit",
  summary: "submit a task; with --wait, wait and print its result",
  help: `usage: daa submit <type> [--payload json] [--priority n] [--wait]

Submits a task of <type> (its pool is the part before the first dot, unless --pool says otherwise) and prints
it as JSON. With --wait, waits until it is final instead, showing its status on stderr, and prints its result
as JSON: exit status 0 if it succeeded, 1 if it ended dead or cancelled (its error goes to stderr).

  --payload <json>          the task's input (default {})
  --priority <0-9>          higher is served first (default 5)
  --wait                    wait for the result
  --pool <pool>             the pool, when it is not the type's prefix
  --idempotency-key <key>   submitting again with the same key answers the first task
  --max-attempts <1-100>    attempts before the task goes dead (default 3)
  --timeout-ms <ms>         lease length, 1000-3600000 (default 30000)
  --delay-ms <ms>           hold the task this long before it can run

${COMMON_HELP}
`,
  options: {
    payload: { type: "string" },
    priority: { type: "string" },
    wait: { type: "boolean" },
    pool: { type: "string" },
    "idempotency-key": { type: "string" },
    "max-attempts": { type: "string" },
    "timeout-ms": { type: "string" },
    "delay-ms": { type: "string" },
  },
  async run(parsed, io) {
    const [type = ""] = positionals(parsed, ["type"]);
    const { values } = parsed;
    const body: Schemas["SubmitTask"] = { type };
    const payload = str(values, "payload");
    if (payload !== undefined) {
      try {
        body.payload = JSON.parse(payload);
      } catch (err) {
        throw new UsageError(`--payload is not JSON: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    const pool = str(values, "pool");
    if (pool !== undefined) body.pool = poolName(pool);
    const numbers: [string, "priority" | "maxAttempts" | "timeoutMs" | "delayMs", number, number][] = [
      ["priority", "priority", 0, 9],
      ["max-attempts", "maxAttempts", 1, 100],
      ["timeout-ms", "timeoutMs", 1000, 3_600_000],
      ["delay-ms", "delayMs", 0, 2_592_000_000],
    ];
    for (const [option, field, min, max] of numbers) {
      const n = int(values, option, min, max);
      if (n !== undefined) body[field] = n;
    }
    const key = str(values, "idempotency-key");
    if (key !== undefined) body.idempotencyKey = key;
    const { api } = connection(values, io);

    const task = await ok(api.POST("/v1/tasks", { body }));
    if (!flag(values, "wait")) {
      io.out(`${JSON.stringify(task, null, 2)}\n`);
      return 0;
    }
    const final = await waitUntilFinal(api, task, io);
    if (final.status === "succeeded") {
      io.out(`${JSON.stringify(final.result ?? null, null, 2)}\n`);
      return 0;
    }
    io.err(`task ${final.id} ended ${final.status}${final.error ? `: ${JSON.stringify(final.error)}` : ""}\n`);
    return 1;
  },
};

type Task = Schemas["Task"];

/** Long polls `GET /v1/tasks/:id/result` (200 once final, 202 before) until the task is final. */
async function waitUntilFinal(api: MeshApi, submitted: Task, io: Io): Promise<Task> {
  const progress = new Progress(io, submitted.id);
  progress.show(submitted.status);
  const backoff = new Backoff({ baseMs: 500, maxMs: 5_000 });
  try {
    for (;;) {
      try {
        const call = api.GET("/v1/tasks/{id}/result", { params: { path: { id: submitted.id }, query: { waitMs: POLL_WAIT_MS } } });
        const final = (await call).response.status === 200;
        const task = await ok(call);
        backoff.reset();
        progress.show(task.status);
        if (final) return task;
      } catch (err) {
        const transient = err instanceof MeshError && (err.status === 0 || err.status === 429 || err.status >= 500);
        if (!transient || backoff.failures >= MAX_POLL_ERRORS) throw err;
        const delay = err.retryAfterMs ?? backoff.next();
        progress.note(`${err.code}: ${err.message}; asking again in ${delay} ms`);
        await sleep(delay);
      }
    }
  } finally {
    progress.end();
  }
}

/**
 * The waiting line on stderr: redrawn in place every second on a terminal; elsewhere (logs, CI) one line per
 * status change, so that the output stays readable.
 */
class Progress {
  private readonly io: Io;
  private readonly id: string;
  private readonly startedAt = Date.now();
  private status = "";
  private readonly ticker: ReturnType<typeof setInterval> | null;

  constructor(io: Io, id: string) {
    this.io = io;
    this.id = id;
    this.ticker = io.stderrIsTTY ? setInterval(() => this.draw(), 1000) : null;
    this.ticker?.unref();
  }

  show(status: string): void {
    if (status === this.status) return;
    this.status = status;
    if (this.io.stderrIsTTY) this.draw();
    else this.io.err(`${this.id}: ${status} (${this.elapsed()})\n`);
  }

  note(text: string): void {
    if (this.io.stderrIsTTY) this.io.err("\r\x1b[2K");
    this.io.err(`${text}\n`);
  }

  end(): void {
    if (this.ticker) clearInterval(this.ticker);
    // On a terminal the line was being redrawn: leave it as a final line.
    if (this.io.stderrIsTTY) this.io.err(`\r\x1b[2K${this.id}: ${this.status} (${this.elapsed()})\n`);
  }

  private draw(): void {
    this.io.err(`\r\x1b[2Kwaiting for ${this.id}: ${this.status} (${this.elapsed()})`);
  }

  private elapsed(): string {
    return `${((Date.now() - this.startedAt) / 1000).toFixed(1)} s`;
  }
}
