/**
 * Frames from agents, applied in groups: those that arrive while one group commits wait for the next, and every
 * frame of a group (of any number of agents) is applied in one transaction, because what a Durable Object pays
 * per write is the commit, not the statement (group commit). Each frame is still answered in one frame of its own,
 * and a frame refused as a whole (no client certificate) does not affect the others.
 */
import { ApiError, type ErrorBody, type Outcome } from "../../../contract/errors.ts";
import type { AgentLoad, AgentState, Settlement, SettlementResult } from "../../../contract/records.ts";
import { parseFrame, settlementsOf, type AgentMessage } from "../../../contract/wire/agent.ts";
import { meshFrame, meshMessage, type OutgoingMessage, type ShardView } from "../../../contract/wire/mesh.ts";
import type { AuditBatcher } from "../audit-batcher.ts";
import type { PoolCore } from "../core.ts";
import { shardView } from "./accept.ts";
import { attachmentOf, CLOSE, expired, type SocketAttachment } from "./attachment.ts";

interface PendingFrame {
  ws: WebSocket;
  attachment: SocketAttachment;
  messages: AgentMessage[];
}

type FrameOutcome = { ok: true; results: SettlementResult[]; state: { state: AgentState; heartbeatIntervalMs: number; shards: ShardView["shards"] } | null } | { ok: false; error: ErrorBody };

export interface InboxHost {
  clock(): number;
  /** Runs `fn` as one transaction of the pool (never creating it). */
  apply<T>(fn: (core: PoolCore, now: number) => T): Outcome<T>;
  /** What follows an operation's commits (shell.ts). */
  settle(): Promise<void>;
  seal(items: readonly Settlement[]): Promise<Settlement[]>;
  /** Deletes the R2 objects of sealed results whose completion was not applied (by position). */
  release(sealed: readonly Settlement[], applied: readonly boolean[]): Promise<void>;
  audit: AuditBatcher;
}

/**
 * Applies one agent frame inside the group's transaction: a sign of life, credits, then its settlements in order.
 * A refusal of the whole frame (no client certificate) is thrown before it writes anything, so it is answered
 * without undoing the other frames of the group.
 */
function applyFrame(core: PoolCore, f: PendingFrame, sealed: Settlement[], now: number): FrameOutcome {
  const { agentId, principal } = f.attachment;
  let load: AgentLoad | null = null;
  let credits = 0;
  let heartbeat = false;
  for (const m of f.messages) {
    if (m.type === "heartbeat") {
      heartbeat = true;
      if (m.load) load = m.load;
    }
    if (m.type === "ready") credits += m.credits;
  }
  let results: SettlementResult[];
  try {
    results = sealed.length > 0 ? core.settle(principal, sealed, now) : [];
  } catch (err) {
    if (err instanceof ApiError) return { ok: false, error: err.toBody() };
    throw err;
  }
  // Every frame is a sign of life.
  core.agents.seen(agentId, load, now);
  if (credits > 0) core.agents.addCredits(agentId, credits);
  // A heartbeat is answered with the agent's state and the interval to keep (an extension of the protocol): an
  // agent on a socket learns a new interval, or that it was told to terminate, without an HTTP call.
  const state = heartbeat ? { state: core.agents.row(agentId)?.state ?? "terminating", heartbeatIntervalMs: core.config().heartbeatIntervalMs, shards: shardView(core).shards } : null;
  return { ok: true, results, state };
}

function answer(f: PendingFrame, outcome: FrameOutcome & { ok: true }): void {
  const replies: OutgoingMessage[] = outcome.results.map((r) => ("error" in r ? meshMessage.error(r.id, r.error) : meshMessage.ack(r.id, r.status, r.leaseExpiresAt)));
  if (outcome.state) replies.push(meshMessage.heartbeat(outcome.state.state, outcome.state.heartbeatIntervalMs, outcome.state.shards));
  try {
    if (replies.length > 0) f.ws.send(meshFrame(replies));
  } catch (err) {
    console.warn(`agent ${f.attachment.agentId}: could not answer a frame`, err);
  }
}

export class Inbox {
  private readonly pending: PendingFrame[] = [];
  private draining: Promise<void> | null = null;

  constructor(private readonly host: InboxHost) {}

  /** One frame of an agent: refused at once when it does not parse, else applied with the next group. */
  async receive(ws: WebSocket, raw: string | ArrayBuffer): Promise<void> {
    const attachment = attachmentOf(ws);
    if (expired(attachment.principal, this.host.clock())) {
      // A socket lives no longer than the credential that opened it.
      ws.close(CLOSE.credentialExpired, "the credential expired; reconnect with a fresh token");
      return;
    }
    const parsed = parseFrame(raw);
    if (!parsed.ok) {
      ws.send(meshFrame([meshMessage.error(null, { code: "invalid_request", message: parsed.message, details: parsed.details })]));
      return;
    }
    this.pending.push({ ws, attachment, messages: parsed.messages });
    this.draining ??= this.drain();
    await this.draining;
  }

  private async drain(): Promise<void> {
    const { audit } = this.host;
    try {
      // Let the frames already on their way join this group.
      await new Promise((resolve) => setTimeout(resolve, 0));
      while (this.pending.length > 0) {
        const frames = this.pending.splice(0);
        const sealed = await Promise.all(frames.map((f) => this.host.seal(settlementsOf(f.messages))));
        const applied = this.host.apply((core, now) => frames.map((f, i) => applyFrame(core, f, sealed[i]!, now)));
        const outcomes = frames.map((_, i): FrameOutcome => (applied.ok ? applied.value[i]! : applied));
        frames.forEach((f, i) => {
          const outcome = outcomes[i]!;
          if (!outcome.ok) {
            f.ws.send(meshFrame([meshMessage.error(null, outcome.error)]));
            return;
          }
          answer(f, outcome);
          if (sealed[i]!.length > 0) {
            const refused = outcome.results.filter((r) => "error" in r).length;
            audit.later(f.attachment, "task.settle", sealed[i]!.map((s) => s.id), refused === 0 ? "success" : `${refused} refused`);
            audit.othersLater(f.attachment, "task.settle", outcome.results);
          }
        });
        // Results written to R2 for completions that were refused (a lost lease) are deleted again.
        await Promise.all(outcomes.map((o, i) => this.host.release(sealed[i]!, o.ok ? o.results.map((r) => !("error" in r)) : [])));
        await this.host.settle();
      }
    } finally {
      this.draining = null;
    }
  }
}
