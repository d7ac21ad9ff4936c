// The similarity module as the Worker and the Durable Objects load it: wrangler's bundler turns the .wasm import
// into a compiled WebAssembly.Module (workerd does not compile bytes at run time).
import similarityModule from "../../build/similarity.wasm";
import { instantiateSimilarity, type Similarity } from "./similarity";

/**
 * A new instance of the similarity module, with its own linear memory (capped at 64 MiB). A vector index part
 * takes one of its own, so that what one part holds never takes memory from another in the same isolate.
 *
 * @example
 * const sim = newSimilarity();
 * const corpus = sim.createCorpus({ dim: 384, kind: "int8" });
 */
export function newSimilarity(): Similarity {
  return instantiateSimilarity(similarityModule);
}
