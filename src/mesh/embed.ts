/**
 * Text to vectors at the edge, for the semantic cache (`cache.semantic.model`) and `text` queries of the vector
 * indexes: the one caller of the embedder Worker (workers/embedder/, contract/embedder.ts) through the service
 * binding `EMBEDDER`. The runtime and the model live there, never in this Worker.
 */
import type { EmbedModelRef } from "../../contract/embedder.ts";
import { ApiError } from "../../contract/errors.ts";

/**
 * One vector per text, in order. Throws the embedder's refusal as an ApiError (400 naming the text's index or the
 * model's r2Key), or `internal` when the embedder cannot be reached.
 * @example const [vector] = await embedTexts(c.env, [task.text], pool.cache.semantic.model);
 */
export async function embedTexts(env: Pick<Env, "EMBEDDER">, texts: string[], model: EmbedModelRef): Promise<number[][]> {
  let outcome: Awaited<ReturnType<Env["EMBEDDER"]["embed"]>>;
  try {
    outcome = await env.EMBEDDER.embed(texts, { r2Key: model.r2Key, dimensions: model.dimensions });
  } catch (err) {
    console.error("embedder call failed:", err);
    throw new ApiError("internal", "the edge embedder did not answer");
  }
  if (!outcome.ok) throw ApiError.fromBody(outcome.error);
  return outcome.value.vectors;
}

/** The vector of one text. */
export async function embedText(env: Pick<Env, "EMBEDDER">, text: string, model: EmbedModelRef): Promise<number[]> {
  const [vector] = await embedTexts(env, [text], model);
  return vector!;
}
