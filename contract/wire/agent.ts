/**
 * The WebSocket protocol, agent to mesh (API.md, "WebSocket messages"). Frames are JSON text; a `batch` holds
 * several messages that the mesh applies in order, in one transaction. The schema is the rule; the agent SDK
 * builds its messages with the builders below, the coordinator reads them with {@link parseFrame}.
 */
import { z } from "zod";
import { jsonDepth, MAX_JSON_DEPTH } from "../json.ts";
import type { Settlement } from "../records.ts";
import { DEFAULT_FAILURE, ExtendMs, LeaseToken, Load, MAX_ID_LENGTH, MAX_LEASE_TOKEN_LENGTH, TaskErrorSchema, WireId } from "./shapes.ts";

export const MAX_CREDITS_PER_MESSAGE = 10_000;
export const MAX_BATCH_MESSAGES = 1_000;
/** Largest frame the mesh reads (Cloudflare's WebSocket message limit; larger results go over HTTP, whose body may be 10 MiB). */
export const MAX_FRAME_BYTES = 1024 * 1024;

export const AgentMessage = z.discriminatedUnion("type", [
  z.object({ type: z.literal("ready"), credits: z.number().int().min(0).max(MAX_CREDITS_PER_MESSAGE) }),
  z.object({ type: z.literal("complete"), id: WireId, leaseToken: LeaseToken, result: z.unknown().optional() }),
  z.object({ type: z.literal("fail"), id: WireId, leaseToken: LeaseToken, error: TaskErrorSchema.optional(), retryable: z.boolean().default(true) }),
  z.object({ type: z.literal("extend"), id: WireId, leaseToken: LeaseToken, extendMs: ExtendMs.optional() }),
  z.object({ type: z.literal("heartbeat"), load: Load.optional() }),
]);
/** A message as the mesh reads it (defaults applied, unknown keys dropped). */
export type AgentMessage = z.output<typeof AgentMessage>;
/** A message as an agent may send it. */
export type AgentMessageInput = z.input<typeof AgentMessage>;

export const Frame = z.union([AgentMessage, z.object({ type: z.literal("batch"), messages: z.array(AgentMessage).max(MAX_BATCH_MESSAGES) })]);

// ---- builders (the agent side) ------------------------------------------------------------------------------

export const agentMessage = {
  ready: (credits: number): AgentMessageInput => ({ type: "ready", credits }),
  complete: (id: string, leaseToken: string, result: unknown): AgentMessageInput => ({ type: "complete", id, leaseToken, result }),
  fail: (id: string, leaseToken: string, error: { message: string; [key: string]: unknown }, retryable: boolean): AgentMessageInput => ({ type: "fail", id, leaseToken, error, retryable }),
  extend: (id: string, leaseToken: string, extendMs: number): AgentMessageInput => ({ type: "extend", id, leaseToken, extendMs }),
  heartbeat: (load: { currentLoad: number; queueDepth: number; avgLatencyMs: number }): AgentMessageInput => ({ type: "heartbeat", load }),
};

/** One frame of messages: a single message as itself, several as a `batch`. */
export function agentFrame(messages: readonly AgentMessageInput[]): string {
  return JSON.stringify(messages.length === 1 ? messages[0] : { type: "batch", messages });
}

// ---- reading (the mesh side) --------------------------------------------------------------------------------

export type ParsedFrame = { ok: true; messages: AgentMessage[] } | { ok: false; message: string; details: { field: string; message: string }[] };

export function parseFrame(raw: string | ArrayBuffer): ParsedFrame {
  if (typeof raw !== "string") return { ok: false, message: "frames are JSON text", details: [] };
  if (raw.length > MAX_FRAME_BYTES) return { ok: false, message: `frames are at most ${MAX_FRAME_BYTES} bytes`, details: [] };
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return { ok: false, message: "the frame is not valid JSON", details: [] };
  }
  if (jsonDepth(json, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) {
    return { ok: false, message: `the frame nests deeper than ${MAX_JSON_DEPTH} levels`, details: [] };
  }
  const fast = fastFrame(json);
  if (fast !== null) return { ok: true, messages: fast };
  const parsed = Frame.safeParse(json);
  if (!parsed.success) {
    return {
      ok: false,
      message: "the frame is not a message of the protocol",
      details: parsed.error.issues.map((i) => ({ field: i.path.join(".") || "(root)", message: i.message })),
    };
  }
  return { ok: true, messages: parsed.data.type === "batch" ? parsed.data.messages : [parsed.data] };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isString = (v: unknown, max: number): v is string => typeof v === "string" && v.length >= 1 && v.length <= max;

/**
 * The messages agents send most (`complete` and `ready`, alone or in a `batch`), checked by hand: the same rules
 * as the schema above and the same output (unknown keys dropped), at a fraction of its cost. Anything else, or
 * anything wrong, answers null and goes through the schema, which also words the errors. A property test holds
 * the two equal.
 */
export function fastFrame(json: unknown): AgentMessage[] | null {
  if (!isObject(json)) return null;
  if (json.type !== "batch") {
    const one = fastMessage(json);
    return one === null ? null : [one];
  }
  const { messages } = json;
  if (!Array.isArray(messages) || messages.length > MAX_BATCH_MESSAGES) return null;
  const out: AgentMessage[] = [];
  for (const m of messages) {
    const message = isObject(m) ? fastMessage(m) : null;
    if (message === null) return null;
    out.push(message);
  }
  return out;
}

function fastMessage(m: Record<string, unknown>): AgentMessage | null {
  if (m.type === "complete") {
    if (!isString(m.id, MAX_ID_LENGTH) || !isString(m.leaseToken, MAX_LEASE_TOKEN_LENGTH)) return null;
    return "result" in m ? { type: "complete", id: m.id, leaseToken: m.leaseToken, result: m.result } : { type: "complete", id: m.id, leaseToken: m.leaseToken };
  }
  if (m.type === "ready") {
    const { credits } = m;
    if (typeof credits !== "number" || !Number.isInteger(credits) || credits < 0 || credits > MAX_CREDITS_PER_MESSAGE) return null;
    return { type: "ready", credits };
  }
  return null;
}

/** The settlements (complete, fail, extend) of a frame, in order, as the coordinator applies them. */
export function settlementsOf(messages: readonly AgentMessage[]): Settlement[] {
  const out: Settlement[] = [];
  for (const m of messages) {
    if (m.type === "complete") out.push({ action: "complete", id: m.id, leaseToken: m.leaseToken, result: JSON.stringify(m.result ?? null) });
    else if (m.type === "fail") out.push({ action: "fail", id: m.id, leaseToken: m.leaseToken, error: JSON.stringify(m.error ?? DEFAULT_FAILURE), retryable: m.retryable });
    else if (m.type === "extend") out.push({ action: "extend", id: m.id, leaseToken: m.leaseToken, extendMs: m.extendMs ?? null });
  }
  return out;
}
