import { z } from "zod";
import { Load } from "../../src/schemas/agents";
import { TaskErrorSchema } from "../../src/schemas/tasks";
import { jsonDepth, MAX_JSON_DEPTH } from "../../src/shared/json-depth";
import type { Settlement } from "./types";

/**
 * The WebSocket protocol between an agent and its pool (API.md, "WebSocket messages"), agent to mesh. Frames are
 * JSON text; a `batch` holds several messages that the mesh applies in order, in one transaction.
 */
const id = z.string().min(1).max(128);
const leaseToken = z.string().min(1).max(256);

export const AgentMessage = z.discriminatedUnion("type", [
  z.object({ type: z.literal("ready"), credits: z.number().int().min(0).max(10_000) }),
  z.object({ type: z.literal("complete"), id, leaseToken, result: z.unknown().optional() }),
  z.object({ type: z.literal("fail"), id, leaseToken, error: TaskErrorSchema.optional(), retryable: z.boolean().default(true) }),
  z.object({ type: z.literal("extend"), id, leaseToken, extendMs: z.number().int().min(1000).max(3_600_000).optional() }),
  z.object({ type: z.literal("heartbeat"), load: Load.optional() }),
]);
export type AgentMessage = z.output<typeof AgentMessage>;

export const Frame = z.union([AgentMessage, z.object({ type: z.literal("batch"), messages: z.array(AgentMessage).max(1000) })]);

/** Largest frame the mesh reads (the same bound as an HTTP body). */
export const MAX_FRAME_BYTES = 1024 * 1024;

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
 * anything wrong, answers null and goes through the schema, which also words the errors.
 */
export function fastFrame(json: unknown): AgentMessage[] | null {
  if (!isObject(json)) return null;
  if (json.type !== "batch") {
    const one = fastMessage(json);
    return one === null ? null : [one];
  }
  const { messages } = json;
  if (!Array.isArray(messages) || messages.length > 1000) return null;
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
    if (!isString(m.id, 128) || !isString(m.leaseToken, 256)) return null;
    return "result" in m ? { type: "complete", id: m.id, leaseToken: m.leaseToken, result: m.result } : { type: "complete", id: m.id, leaseToken: m.leaseToken };
  }
  if (m.type === "ready") {
    const { credits } = m;
    if (typeof credits !== "number" || !Number.isInteger(credits) || credits < 0 || credits > 10_000) return null;
    return { type: "ready", credits };
  }
  return null;
}

/** The settlements (complete, fail, extend) of a frame, in order, as the coordinator applies them. */
export function settlementsOf(messages: readonly AgentMessage[]): Settlement[] {
  const out: Settlement[] = [];
  for (const m of messages) {
    if (m.type === "complete") out.push({ action: "complete", id: m.id, leaseToken: m.leaseToken, result: JSON.stringify(m.result ?? null) });
    else if (m.type === "fail")
      out.push({ action: "fail", id: m.id, leaseToken: m.leaseToken, error: JSON.stringify(m.error ?? { message: "the agent reported a failure" }), retryable: m.retryable });
    else if (m.type === "extend") out.push({ action: "extend", id: m.id, leaseToken: m.leaseToken, extendMs: m.extendMs ?? null });
  }
  return out;
}

/** Mesh-to-agent frames: several messages travel as one `batch`. */
export function frame(messages: readonly object[]): string {
  return JSON.stringify(messages.length === 1 ? messages[0] : { type: "batch", messages });
}
