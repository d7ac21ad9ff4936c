/**
 * The WebSocket protocol, mesh to agent (API.md, "WebSocket messages"). The coordinator builds every message with
 * the typed builders below; the agent SDK reads them with the schemas, which are loose on purpose: the mesh may
 * add fields (and message types, which an agent skips), and an agent must not break when it does.
 */
import { z } from "zod";
import type { ErrorBody } from "../errors.ts";
import { utf8Bytes } from "../json.ts";
import type { AgentState, TaskStatus } from "../records.ts";
import { LeasedTaskWire, type LeasedTaskJson } from "./task.ts";

const ErrorShape = z.looseObject({ code: z.string(), message: z.string() });

/** A shard of the agent's pool that serves agents (API.md, "Shards, routing and shared state"). */
export const ShardEntry = z.looseObject({ id: z.string(), state: z.string() });
/**
 * `shard`: the shard this socket is connected to; `shards`: the pool's shards that serve agents (active and
 * draining), so an agent can hold a socket to each (older meshes send neither: one socket, as before).
 */
export const HelloMessage = z.looseObject({
  type: z.literal("hello"),
  agentId: z.string(),
  heartbeatIntervalMs: z.number().int().positive(),
  shard: z.string().optional(),
  shards: z.array(ShardEntry).optional(),
});
export const TaskMessage = z.looseObject({ type: z.literal("task"), task: LeasedTaskWire });
export const AckMessage = z.looseObject({ type: z.literal("ack"), id: z.string(), status: z.string(), leaseExpiresAt: z.string().optional() });
/** `id` null: the whole frame was refused (not parsed, or not applied). */
export const ErrorMessage = z.looseObject({ type: z.literal("error"), id: z.string().nullish(), error: ErrorShape });
/** The answer to a heartbeat frame: the agent's state and the interval to keep (an extension of the contract). */
export const HeartbeatMessage = z.looseObject({ type: z.literal("heartbeat"), state: z.string(), heartbeatIntervalMs: z.number().int().positive(), shards: z.array(ShardEntry).optional() });

export const MeshMessage = z.discriminatedUnion("type", [HelloMessage, TaskMessage, AckMessage, ErrorMessage, HeartbeatMessage]);
export type MeshMessage = z.infer<typeof MeshMessage>;

/** A batch is read message by message, so one unknown or malformed entry does not hide the others. */
export const BatchEnvelope = z.looseObject({ type: z.literal("batch"), messages: z.array(z.unknown()) });

// ---- builders (the mesh side) -------------------------------------------------------------------------------

/** What a socket says of the pool's shards: its own, and every shard serving agents. */
export interface ShardView {
  shard: string;
  shards: { id: string; state: "active" | "draining" }[];
}

export type OutgoingMessage =
  | ({ type: "hello"; agentId: string; heartbeatIntervalMs: number } & Partial<ShardView>)
  | { type: "task"; task: LeasedTaskJson }
  | { type: "ack"; id: string; status: TaskStatus; leaseExpiresAt?: string }
  | { type: "error"; id: string | null; error: ErrorBody }
  | { type: "heartbeat"; state: AgentState; heartbeatIntervalMs: number; shards?: ShardView["shards"] };

export const meshMessage = {
  hello: (agentId: string, heartbeatIntervalMs: number, view?: ShardView): OutgoingMessage => ({ type: "hello", agentId, heartbeatIntervalMs, ...view }),
  task: (task: LeasedTaskJson): OutgoingMessage => ({ type: "task", task }),
  ack: (id: string, status: TaskStatus, leaseExpiresAt?: number): OutgoingMessage =>
    leaseExpiresAt === undefined ? { type: "ack", id, status } : { type: "ack", id, status, leaseExpiresAt: new Date(leaseExpiresAt).toISOString() },
  error: (id: string | null, error: ErrorBody): OutgoingMessage => ({ type: "error", id, error }),
  heartbeat: (state: AgentState, heartbeatIntervalMs: number, shards?: ShardView["shards"]): OutgoingMessage =>
    shards === undefined ? { type: "heartbeat", state, heartbeatIntervalMs } : { type: "heartbeat", state, heartbeatIntervalMs, shards },
};

/** One frame of messages: a single message as itself, several as a `batch`. */
export function meshFrame(messages: readonly OutgoingMessage[]): string {
  return JSON.stringify(messages.length === 1 ? messages[0] : { type: "batch", messages });
}

/**
 * Largest frame the mesh sends an agent: Cloudflare delivers WebSocket messages of up to 1 MiB, and this stays under
 * it. A pushed task too large for it goes without its payload (`payloadOmitted`, docs/payloads.md).
 */
export const MAX_PUSH_FRAME_BYTES = 1_000_000;

const BATCH_HEAD = '{"type":"batch","messages":[';
/** Bytes of a batch frame around its messages: the head and the closing `]}`. */
const BATCH_FRAME = BATCH_HEAD.length + 2;

/**
 * Packs messages already serialized (JSON.stringify of an OutgoingMessage), in order, into frames of at most
 * `maxBytes`, each the same text {@link meshFrame} makes of its group, and hands each frame to `send` as soon as it
 * is full: a sender holds one frame at a time. A message larger than `maxBytes` goes alone.
 */
export class FramePacker {
  private group: string[] = [];
  private bytes = BATCH_FRAME;
  private readonly send: (frame: string) => void;
  private readonly maxBytes: number;

  constructor(send: (frame: string) => void, maxBytes = MAX_PUSH_FRAME_BYTES) {
    this.send = send;
    this.maxBytes = maxBytes;
  }

  add(message: string): void {
    const size = utf8Bytes(message) + 1;
    if (this.group.length > 0 && this.bytes + size > this.maxBytes) this.flush();
    this.group.push(message);
    this.bytes += size;
  }

  /** Sends what is packed so far. */
  flush(): void {
    if (this.group.length === 0) return;
    this.send(this.group.length === 1 ? this.group[0]! : `${BATCH_HEAD}${this.group.join(",")}]}`);
    this.group = [];
    this.bytes = BATCH_FRAME;
  }
}

/** {@link FramePacker} over a list: the frames of these messages. */
export function packFrames(messages: readonly string[], maxBytes = MAX_PUSH_FRAME_BYTES): string[] {
  const frames: string[] = [];
  const packer = new FramePacker((frame) => frames.push(frame), maxBytes);
  for (const message of messages) packer.add(message);
  packer.flush();
  return frames;
}
