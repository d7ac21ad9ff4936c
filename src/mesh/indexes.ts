/**
 * Vector indexes from the Worker's side: the client lives in lib/vectors/client.ts, since the pool coordinators
 * use it too (a semantic cache fill upserts the task's vector, durable-objects/pool-coordinator/cache/filler.ts).
 * Here: `text` queries, embedded by the index's model through the edge embedder (embed.ts).
 */
import { ApiError } from "../../contract/errors.ts";
import { findIndex } from "../../lib/vectors/client.ts";
import { embedText } from "./embed.ts";

export * from "../../lib/vectors/client.ts";

/** The vector of a `text` query, by the index's model; 400 when the index has none. */
export async function embedQueryText(env: Env, tenant: string, index: string, text: string): Promise<number[]> {
  const record = await findIndex(env, tenant, index);
  if (!record.model) throw new ApiError("invalid_request", `index ${index} has no embedding model`, [{ field: "text", message: `index ${index} was created without a model; send "vector", or create an index with "model"` }]);
  return embedText(env, text, record.model);
}
