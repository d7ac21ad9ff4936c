/**
 * Audit records of socket traffic (pushes and settlements over WebSockets). They gather for a moment and go to
 * each tenant's log in one append. Within that moment the frames of one socket that did the same thing with
 * success are one record over all their tasks (a refused frame keeps a record of its own): the log grows by a few
 * records a second per agent, not one per frame. Targets are worded as HTTP batches are (lib/audit/records.ts).
 */
import { batchTarget, idsOfOtherTenants, recordAudit, type AuditEntry, type AuditLogs } from "../../lib/audit/records.ts";
import type { SocketAttachment } from "./sockets/attachment.ts";

/** How long audit records of socket traffic gather before they go to the audit log in one append. */
export const AUDIT_FLUSH_MS = 100;

interface PendingAudit {
  socket: SocketAttachment;
  action: string;
  outcome: string;
  ids: string[];
  /** When the first frame of the record was handled. */
  at: number;
}

export interface AuditBatcherHost {
  logs: AuditLogs;
  /** Keeps the object alive until the flush is done. */
  waitUntil(promise: Promise<unknown>): void;
}

export class AuditBatcher {
  private readonly queue = new Map<string, PendingAudit[]>();
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(private readonly host: AuditBatcherHost) {}

  /** Records that a socket did `action` to these tasks, in the chain of `chain` (the socket's tenant by default). */
  later(socket: SocketAttachment, action: string, ids: readonly string[], outcome: string, chain = socket.principal.tenant): void {
    let queue = this.queue.get(chain);
    if (!queue) this.queue.set(chain, (queue = []));
    const sameSource = (p: PendingAudit) => p.socket.agentId === socket.agentId && p.socket.actor === socket.actor && p.socket.ip === socket.ip;
    const same = outcome === "success" ? queue.find((p) => p.outcome === "success" && p.action === action && sameSource(p)) : undefined;
    if (same) same.ids.push(...ids);
    else queue.push({ socket, action, outcome, ids: [...ids], at: Date.now() });
    this.timer ??= setTimeout(() => this.host.waitUntil(this.flush()), AUDIT_FLUSH_MS);
  }

  /**
   * A shared agent's batch may touch other tenants' tasks: each of those tenants gets a record naming only its own
   * (the actor's record names the whole batch). Refused items, which carry no tenant, changed nothing.
   */
  othersLater(socket: SocketAttachment, action: string, touched: readonly ({ id: string; tenant: string } | { id: string })[]): void {
    for (const [tenant, ids] of idsOfOtherTenants(touched, socket.principal.tenant)) this.later(socket, action, ids, "success", tenant);
  }

  async flush(): Promise<void> {
    this.timer = null;
    const batches = [...this.queue.entries()];
    this.queue.clear();
    await Promise.all(
      batches.map(async ([tenant, pending]) => {
        const entries = await Promise.all(
          pending.map(
            async ({ socket, action, outcome, ids, at }): Promise<AuditEntry> => ({
              actor: socket.actor,
              action,
              target: await batchTarget(ids, `${socket.agentId} (websocket): `),
              outcome,
              ip: socket.ip,
              at,
            }),
          ),
        );
        await recordAudit(this.host.logs, tenant, entries);
      }),
    );
  }
}
