/**
 * Vector indexes from the Worker's side: the client lives in lib/vectors/client.ts, since the pool coordinators
 * use it too (a semantic cache fill upserts the task's vector, durable-objects/pool-coordinator/cache/filler.ts).
 */
export * from "../../lib/vectors/client.ts";
