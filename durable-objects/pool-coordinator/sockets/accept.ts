/**
 * An agent's WebSocket, accepted. Only the Worker's connect route reaches this: it authenticated the caller,
 * checked the permission and passes who it is in `x-daa-principal` (the object has no other way in over fetch).
 */
import { ApiError, ERRORS, type ErrorBody, type Outcome } from "../../../contract/errors.ts";
import { SOCKET_UPGRADE_HEADERS } from "../../../contract/pool-rpc.ts";
import type { Principal } from "../../../contract/records.ts";
import { meshFrame, meshMessage, type ShardView } from "../../../contract/wire/mesh.ts";
import type { PoolCore } from "../core.ts";
import type { SocketAttachment } from "./attachment.ts";
import type { SocketRegistry } from "./registry.ts";

/** The shards a socket tells its agent about: its own, and every one that serves agents (hello, heartbeats). */
export function shardView(core: PoolCore): ShardView {
  const shards = core.peers.current().shards.flatMap((s) => (s.state === "retired" ? [] : [{ id: String(s.id), state: s.state }]));
  return { shard: String(core.shard), shards };
}


export interface AcceptHost {
  sockets: SocketRegistry;
  apply<T>(fn: (core: PoolCore, now: number) => T): Outcome<T>;
  settle(): Promise<void>;
}

function refuse(body: ErrorBody): Response {
  return Response.json({ error: body }, { status: ERRORS[body.code].status });
}

export async function acceptAgentSocket(request: Request, host: AcceptHost): Promise<Response> {
  const principal = JSON.parse(request.headers.get(SOCKET_UPGRADE_HEADERS.principal) ?? "null") as Principal | null;
  const agentId = request.headers.get(SOCKET_UPGRADE_HEADERS.agent);
  if (principal === null || agentId === null || request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
    return refuse(new ApiError("invalid_request", "expected an agent WebSocket upgrade", [{ field: "(header) upgrade", message: "expected an upgrade from the connect route" }]).toBody());
  }
  const opened = host.apply((core, now) => {
    core.requireCertificate(principal);
    core.agents.get(principal, agentId);
    core.agents.seen(agentId, null, now);
    // Credits belong to one connection: a new socket starts from none.
    core.agents.setCredits(agentId, 0);
    return { interval: core.config().heartbeatIntervalMs, view: shardView(core) };
  });
  if (!opened.ok) return refuse(opened.error);
  const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
  host.sockets.accept(server, {
    agentId,
    principal,
    actor: request.headers.get(SOCKET_UPGRADE_HEADERS.actor) ?? principal.actor,
    ip: request.headers.get("cf-connecting-ip"),
  } satisfies SocketAttachment);
  server.send(meshFrame([meshMessage.hello(agentId, opened.value.interval, opened.value.view)]));
  await host.settle();
  return new Response(null, { status: 101, webSocket: client });
}
