import { attachmentOf, CLOSE, closeQuietly, expired, type SocketAttachment } from "./attachment.ts";

/**
 * The open agent sockets of a shard (the hibernation API keeps them across evictions) and what each remembers,
 * read from the runtime once and kept until a socket opens or closes; after hibernation the object starts without
 * the cache and reads it again.
 */
export class SocketRegistry {
  private cache: Map<WebSocket, SocketAttachment> | null = null;
  /** The same sockets by agent (the first of an agent's, as `getWebSockets(agentId)[0]`), rebuilt with the cache. */
  private index: { from: Map<WebSocket, SocketAttachment>; byAgent: Map<string, [WebSocket, SocketAttachment]> } | null = null;

  constructor(private readonly ctx: Pick<DurableObjectState, "getWebSockets" | "acceptWebSocket">) {}

  all(): Map<WebSocket, SocketAttachment> {
    this.cache ??= new Map(this.ctx.getWebSockets().map((ws) => [ws, attachmentOf(ws)]));
    return this.cache;
  }

  get size(): number {
    return this.all().size;
  }

  /** A socket opened or closed. */
  changed(): void {
    this.cache = null;
  }

  of(agentId: string): [WebSocket, SocketAttachment] | undefined {
    const all = this.all();
    if (this.index?.from !== all) {
      const byAgent = new Map<string, [WebSocket, SocketAttachment]>();
      for (const [ws, attachment] of all) if (!byAgent.has(attachment.agentId)) byAgent.set(attachment.agentId, [ws, attachment]);
      this.index = { from: all, byAgent };
    }
    return this.index.byAgent.get(agentId);
  }

  /** Accepts a new socket for an agent, closing its older ones: one connection per agent. */
  accept(server: WebSocket, attachment: SocketAttachment): void {
    for (const old of this.ctx.getWebSockets(attachment.agentId)) closeQuietly(old, CLOSE.replaced, "replaced by a newer connection of this agent");
    this.ctx.acceptWebSocket(server, [attachment.agentId]);
    server.serializeAttachment(attachment);
    this.changed();
  }

  /**
   * The agents with an open WebSocket that may be pushed work: a socket whose credential expired is closed, and
   * one without a verified client certificate gets nothing in a pool that requires it.
   */
  connected(now: number, certRequired: boolean): Set<string> {
    const agents = new Set<string>();
    for (const [ws, { agentId, principal }] of this.all()) {
      if (expired(principal, now)) {
        closeQuietly(ws, CLOSE.credentialExpired, "the credential expired; reconnect with a fresh token");
        this.changed();
        continue;
      }
      if (certRequired && !principal.certVerified) continue;
      agents.add(agentId);
    }
    return agents;
  }

  /** Closes the sockets opened with a credential of this API key (directly or through a token issued from it). */
  closeOfKey(keyId: string): number {
    let closed = 0;
    for (const [ws, { principal }] of this.all()) {
      if (principal.allTenants || principal.actor !== keyId) continue;
      closeQuietly(ws, CLOSE.credentialRevoked, "the API key was revoked");
      closed++;
    }
    if (closed > 0) this.changed();
    return closed;
  }

  closeAgent(agentId: string, code: number, reason: string): void {
    for (const ws of this.ctx.getWebSockets(agentId)) closeQuietly(ws, code, reason);
    this.changed();
  }
}
