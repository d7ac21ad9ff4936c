/**
 * Anti-entropy between two replicas of the seed's SemanticStateCRDT (lib/crdt/semantic.ts), digest first:
 *
 * 1. the initiator sends its digest: per section (`image_embeddings`, `content_mappings`, `agent_loads`,
 *    `task_queue`) a vector clock of what it has seen of each replica, a SHA-256 of the section's encoding and its size;
 * 2. the responder answers with the sections it holds something of that the initiator lacks (and nothing for a
 *    section whose hash is the same), and names the sections where the initiator holds something it lacks;
 * 3. the initiator merges what it got and sends those sections back.
 *
 * A section is sent whole when the other side lacks any of it (deltas are per section, not per element). The vector
 * clock of an OR-Set or OR-Map section is its causal context's largest counter per replica, of the PN-Counter each
 * replica's p + n (both only grow); a G-Set has no replicas, so differing hashes send it both ways. Merges go through
 * the `Merger` given, the WebAssembly CRDT module in the coordinators and in the benchmark alike.
 */
import { encode, GSet, ORMap, ORSet, PNCounter, SemanticState } from "../crdt/index.ts";
import { hex } from "../hash.ts";

import { SECTIONS, type Digest, type Section, type SectionDigest } from "../../contract/shard-rpc.ts";

export { SECTIONS, type Digest, type Section, type SectionDigest };

/** Merges two encoded CRDT states of the same type (the Wasm module's `merge`). */
export interface Merger {
  merge(a: Uint8Array, b: Uint8Array): Uint8Array;
}

/** The state with only one section (the others empty), as it travels. */
export function sectionOf(state: SemanticState, section: Section): SemanticState {
  switch (section) {
    case "image_embeddings":
      return new SemanticState(state.imageEmbeddings);
    case "content_mappings":
      return new SemanticState(undefined, state.contentMappings);
    case "agent_loads":
      return new SemanticState(undefined, undefined, state.agentLoads);
    case "task_queue":
      return new SemanticState(undefined, undefined, undefined, state.taskQueue);
  }
}

/** Only these sections of the state (the others empty). */
export function sectionsOf(state: SemanticState, sections: readonly Section[]): SemanticState {
  const has = (s: Section) => sections.includes(s);
  return new SemanticState(
    has("image_embeddings") ? state.imageEmbeddings : new GSet(),
    has("content_mappings") ? state.contentMappings : new ORMap(),
    has("agent_loads") ? state.agentLoads : new PNCounter(),
    has("task_queue") ? state.taskQueue : new ORSet(),
  );
}

function contextClock(context: ORSet["context"]): Record<string, number> {
  const replicas = new Set([...context.vv.keys(), ...context.cloud.keys()]);
  return Object.fromEntries([...replicas].sort((a, b) => a - b).map((r) => [String(r), context.max(r)]));
}

export function vclockOf(state: SemanticState, section: Section): Record<string, number> {
  switch (section) {
    case "image_embeddings":
      return {};
    case "content_mappings":
      return contextClock(state.contentMappings.context);
    case "agent_loads":
      return Object.fromEntries([...state.agentLoads.entries].sort(([a], [b]) => a - b).map(([r, e]) => [String(r), e.p + e.n]));
    case "task_queue":
      return contextClock(state.taskQueue.context);
  }
}

export function sizeOf(state: SemanticState, section: Section): number {
  switch (section) {
    case "image_embeddings":
      return state.imageEmbeddings.size;
    case "content_mappings":
      return state.contentMappings.keys().length;
    case "agent_loads":
      return state.agentLoads.entries.size;
    case "task_queue":
      return state.taskQueue.size;
  }
}

export async function sha256(bytes: Uint8Array): Promise<string> {
  return hex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
}

export async function digestOf(state: SemanticState): Promise<Digest> {
  const entries = await Promise.all(
    SECTIONS.map(async (s) => [s, { vc: vclockOf(state, s), hash: await sha256(encode(sectionOf(state, s))), size: sizeOf(state, s) }] as const),
  );
  return Object.fromEntries(entries) as Digest;
}

/** Whether the side with digest `mine` holds something of the section that the side with `theirs` lacks. */
export function holdsMore(section: Section, mine: SectionDigest, theirs: SectionDigest): boolean {
  if (mine.hash === theirs.hash) return false;
  if (section === "image_embeddings") return mine.size > 0;
  return Object.entries(mine.vc).some(([r, n]) => n > (theirs.vc[r] ?? 0));
}

/** The responder's answer to a digest: what the initiator lacks (encoded, or null), and what it should send back. */
export function answer(state: SemanticState, mine: Digest, theirs: Digest): { delta: Uint8Array | null; want: Section[] } {
  const send = SECTIONS.filter((s) => holdsMore(s, mine[s], theirs[s]));
  const want = SECTIONS.filter((s) => holdsMore(s, theirs[s], mine[s]));
  return { delta: send.length === 0 ? null : encode(sectionsOf(state, send)), want };
}

/** The bytes of a digest as it travels (JSON). */
export function digestBytes(digest: Digest): number {
  return new TextEncoder().encode(JSON.stringify(digest)).length;
}
