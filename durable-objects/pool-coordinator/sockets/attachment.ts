import type { Principal } from "../../../contract/records.ts";

/** What a hibernated socket remembers: whose it is, who opened it, and from where (for the audit trail). */
export interface SocketAttachment {
  agentId: string;
  principal: Principal;
  actor: string;
  ip: string | null;
}

/** Close codes of the mesh (4000-4999 are the application's). */
export const CLOSE = {
  /** A newer connection of the same agent took over. */
  replaced: 4000,
  /** The credential ran out: the agent reconnects with a fresh token. */
  credentialExpired: 4001,
  agentRemoved: 4002,
  /** The API key the socket was opened with (or a token from it) was revoked. */
  credentialRevoked: 4003,
  /** The shard retired after a drain: the agent keeps its sockets to the pool's other shards. */
  shardRetired: 4004,
} as const;

export function expired(principal: Principal, now: number): boolean {
  return principal.expiresAt !== undefined && principal.expiresAt !== null && now >= principal.expiresAt;
}

export function attachmentOf(ws: WebSocket): SocketAttachment {
  return ws.deserializeAttachment() as SocketAttachment;
}

/** Closes a socket, ignoring one that is already closing. */
export function closeQuietly(ws: WebSocket, code: number, reason: string): void {
  try {
    ws.close(code, reason);
  } catch {
    // already closing
  }
}
