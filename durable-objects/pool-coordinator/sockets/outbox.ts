/**
 * Pushes: the leases a push round committed go to their agents' sockets, each agent's in one frame, as soon as
 * their transaction committed, whatever the operation that committed them still waits for (a long poll). Only
 * committed leases are ever sent; a lease whose socket went away stays with its agent until its heartbeats are
 * missed, as for any closed socket.
 */
import type { LeasedTask } from "../../../contract/records.ts";
import { meshFrame, meshMessage } from "../../../contract/wire/mesh.ts";
import { presentLeased } from "../../../lib/present.ts";
import type { KeyringEnv } from "../../../lib/security/keyring.ts";
import { openTasks, type KnownPlaintexts } from "../../../lib/security/sealing.ts";
import type { AuditBatcher } from "../audit-batcher.ts";
import type { PlaintextCache } from "../plaintexts.ts";
import type { TaskTenants } from "../task-tenants.ts";
import type { SocketRegistry } from "./registry.ts";

export interface OutboxHost {
  env: KeyringEnv;
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
    const { env, sockets, plaintexts, tenants, audit } = this.host;
    while (this.queue.length > 0) {
      for (const pushed of this.queue.splice(0)) {
        for (const [agentId, tasks] of pushed) {
          try {
            const opened = await openTasks(env, tasks, plaintexts);
            for (const task of tasks) {
              plaintexts.take(task.payload);
              tenants.remember(task.id, task.tenant);
            }
            const socket = sockets.of(agentId);
            if (socket) {
              socket[0].send(meshFrame(opened.map((task) => meshMessage.task(presentLeased(task)))));
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
}
