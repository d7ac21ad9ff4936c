/**
 * Pushes: the leases a push round committed go to their agents' sockets, each agent's in one frame, as soon as
 * their transaction committed, whatever the operation that committed them still waits for (a long poll). Only
 * committed leases are ever sent; a lease whose socket went away stays with its agent until its heartbeats are
 * missed, as for any closed socket.
 *
 * Frames stay under MAX_PUSH_FRAME_BYTES: an agent's tasks are split over as many frames as they need, and a task
 * that would not fit a frame even alone goes with its payload left out (`payloadOmitted`): the agent fetches it with
 * GET /v1/tasks/:id/payload under its lease token (docs/payloads.md). A payload kept in R2 that is larger than a
 * frame is not even read here; one that cannot be read right now goes left out too, rather than not at all.
 */
import type { LeasedTask } from "../../../contract/records.ts";
import { utf8Bytes } from "../../../contract/json.ts";
import { FramePacker, MAX_PUSH_FRAME_BYTES, meshMessage } from "../../../contract/wire/mesh.ts";
import { presentLeased } from "../../../lib/present.ts";
import { isBlobRef, openedBytes } from "../../../lib/security/blob-refs.ts";
import { openTask, type KnownPlaintexts, type SealingEnv } from "../../../lib/security/sealing.ts";
import type { AuditBatcher } from "../audit-batcher.ts";
import type { PlaintextCache } from "../plaintexts.ts";
import type { TaskTenants } from "../task-tenants.ts";
import type { SocketRegistry } from "./registry.ts";

export interface OutboxHost {
  env: SealingEnv;
  sockets: SocketRegistry;
  /** Plaintexts of payloads just submitted, spared a decrypt (taken once pushed). */
  plaintexts: PlaintextCache & KnownPlaintexts;
  /** Tenants of pushed tasks, for sealing their results without a read. */
  tenants: TaskTenants;
  audit: AuditBatcher;
}

export class Outbox {
  private readonly queue: Map<string, LeasedTask[]>[] = [];
  private sending: Promise<void> | null = null;

  constructor(private readonly host: OutboxHost) {}

  /** Leases that committed: sent right away. */
  send(pushed: Map<string, LeasedTask[]>): void {
    this.queue.push(pushed);
    this.start();
  }

  /** Resolves once everything queued so far has been sent. */
  async idle(): Promise<void> {
    if (this.sending) await this.sending;
  }

  private start(): void {
    if (this.sending) return;
    this.sending = this.drain().finally(() => {
      this.sending = null;
      if (this.queue.length > 0) this.start();
    });
  }

  private async drain(): Promise<void> {
    const { sockets, plaintexts, tenants, audit } = this.host;
    while (this.queue.length > 0) {
      for (const pushed of this.queue.splice(0)) {
        for (const [agentId, tasks] of pushed) {
          try {
            // Payloads in the rows open together; those in R2 one at a time, each frame sent once full, so the
            // object holds about one frame of them at a time.
            const inline = await Promise.all(tasks.map((task) => (isBlobRef(task.payload) ? null : this.message(task))));
            for (const task of tasks) {
              plaintexts.take(task.payload);
              tenants.remember(task.id, task.tenant);
            }
            const socket = sockets.of(agentId);
            if (socket) {
              const packer = new FramePacker((frame) => socket[0].send(frame), MAX_PUSH_FRAME_BYTES);
              for (const [i, task] of tasks.entries()) packer.add(inline[i] ?? (await this.message(task)));
              packer.flush();
              audit.later(socket[1], "task.lease", tasks.map((t) => t.id), "success");
              audit.othersLater(socket[1], "task.lease", tasks);
            }
          } catch (err) {
            console.warn(`agent ${agentId}: could not push ${tasks.length} task(s)`, err);
          }
        }
      }
    }
  }

  /** The `task` message of a pushed task as JSON text, within a frame: its payload in clear, or left out. */
  private async message(task: LeasedTask): Promise<string> {
    const stored = task.payload;
    if (isBlobRef(stored) && openedBytes(stored) > MAX_PUSH_FRAME_BYTES) return withoutPayload(task);
    let opened: LeasedTask;
    try {
      opened = await openTask(this.host.env, task, this.host.plaintexts);
    } catch (err) {
      // An inline envelope that does not open fails the push as before; an R2 read that fails now may work later.
      if (!isBlobRef(stored)) throw err;
      console.warn(`task ${task.id}: could not read its payload from R2 for a push; pushing it without`, err);
      return withoutPayload(task);
    }
    const text = JSON.stringify(meshMessage.task(presentLeased(opened)));
    return utf8Bytes(text) <= MAX_PUSH_FRAME_BYTES ? text : withoutPayload(task);
  }
}

function withoutPayload(task: LeasedTask): string {
  return JSON.stringify(meshMessage.task(presentLeased({ ...task, payload: "null", result: null, payloadOmitted: true })));
}
