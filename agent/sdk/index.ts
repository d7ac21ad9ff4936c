// The DAA Mesh agent SDK: run task handlers against a mesh pool.
//
//   import { createAgent } from "./agent/sdk/index.ts";
//   const agent = createAgent({ url, token, pool: "images", handlers: "./handlers.mjs", maxConcurrency: 4 });
//   await agent.start();
//   process.on("SIGTERM", () => void agent.stop());
import { MeshAgent } from "./agent.ts";
import type { Agent, AgentOptions } from "./types.ts";

/**
 * Creates an agent; nothing happens until `start()`. With a module for `handlers`, tasks run in worker threads
 * (one per concurrency slot, each with a heap limit); with an object, in this thread.
 */
export function createAgent(options: AgentOptions): Agent {
  return new MeshAgent(options);
}

export { NonRetryableError } from "./errors.ts";
export { MeshClient, MeshError } from "./api.ts";
export type { Agent, AgentOptions, AgentPhase, AgentStats, Handler, HandlerContext, HandlerMap, LoadSample, Resources, TransportMode } from "./types.ts";
