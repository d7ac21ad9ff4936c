/**
 * Shapes shared by the HTTP API and the WebSocket protocol: the load an agent reports, a task's error, and the
 * bounds of ids and lease tokens. One definition, used by the Worker's schemas, the coordinator and the agent SDK.
 */
import { z } from "zod";

export const MAX_ID_LENGTH = 128;
export const MAX_LEASE_TOKEN_LENGTH = 256;
/** A lease can be extended to at most an hour from now (the longest `timeoutMs`). */
export const MIN_EXTEND_MS = 1_000;
export const MAX_EXTEND_MS = 3_600_000;

export const WireId = z.string().min(1).max(MAX_ID_LENGTH);
export const LeaseToken = z.string().min(1).max(MAX_LEASE_TOKEN_LENGTH);
export const ExtendMs = z.number().int().min(MIN_EXTEND_MS).max(MAX_EXTEND_MS);

export const Load = z
  .strictObject({
    currentLoad: z.number().min(0).max(1_000).default(0),
    queueDepth: z.number().int().min(0).max(1_000_000_000).default(0),
    avgLatencyMs: z.number().min(0).max(86_400_000).default(0),
  })
  .meta({ id: "Load" });

export const TaskErrorSchema = z.looseObject({ message: z.string().max(10_000) }).meta({ id: "TaskError" });

/** What an agent reports when a task failed and it did not say why. */
export const DEFAULT_FAILURE = { message: "the agent reported a failure" } as const;
