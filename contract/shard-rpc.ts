/**
 * The calls that make several coordinators one pool (API.md, "Shards, routing and shared state"): the Worker's
 * shard administration and the shards among themselves. Like PoolRpc, each is one transaction of the shard called,
 * and none has a principal: only the Worker's gateway (src/mesh/) and the pool's own shards make them.
 */
import type { Outcome } from "./errors.ts";
import type { AgentMember, CacheFill, PoolConfig, Requirements, ShardList, ShardLoad } from "./records.ts";

/** The sections of the shared state (the seed's SemanticStateCRDT), as the API names them. */
export const SECTIONS = ["image_embeddings", "content_mappings", "agent_loads", "task_queue"] as const;
export type Section = (typeof SECTIONS)[number];

/** One section of a shard's digest (lib/gossip/exchange.ts). */
export interface SectionDigest {
  /** Replica -> the largest event of it this section has seen (empty for the G-Set). */
  vc: Record<string, number>;
  /** SHA-256 (hex) of the section's canonical encoding. */
  hash: string;
  size: number;
}

export type Digest = Record<Section, SectionDigest>;

/** What `GET /v1/pools/:pool/state` shows of one shard, with its exchange counters. */
export interface SharedStateSummary {
  shard: number;
  vclock: Record<string, number>;
  sizes: Record<Section, number>;
  digest: string;
  rounds: number;
  bytes: number;
  merges: number;
}

/** A task as it travels to another shard: what its row says, without the shard-local columns. */
export interface MovingTask {
  id: string;
  tenant: string;
  type: string;
  status: "queued" | "waiting";
  priority: number;
  payload: string;
  attempts: number;
  maxAttempts: number;
  timeoutMs: number;
  idempotencyKey: string | null;
  dependsOn: string;
  error: string | null;
  agentId: string | null;
  runAfter: number | null;
  createdAt: number;
  requires: Requirements;
  /** A cacheable task's fill (its success writes the output cache). */
  cache?: CacheFill;
  /** Its keys (tasks/fairness.ts, tasks/gates.ts), absent when empty. */
  fairnessKey?: string;
  concurrencyKey?: string;
  rateLimitKey?: string;
}

/** What a new shard of a pool copies from an existing one (shard/snapshot.ts). */
export interface PoolSnapshot {
  config: PoolConfig;
  tenants: { tenant: string; firstAt: number }[];
  values: { tenant: string; maxUnfinishedGranted: number | null; maxUnfinishedOwn: number | null; weight: number | null; gpuSecondsPerHour: number | null }[];
  agents: AgentMember[];
}

/** An idempotency key a shard holds, for the pool's key index. */
export interface HeldKey {
  tenant: string;
  key: string;
  taskId: string;
  at: number;
}

export interface ShardRpc {
  /**
   * The pool's shard list (a newer version replaces the shard's copy; an older one is ignored). Out: the list the
   * shard holds. A shard that learns it drains starts handing its movable tasks to the active shards.
   */
  setPeers(list: ShardList): Promise<ShardList>;

  /** Tasks a draining shard hands over, ids kept; an id seen before is skipped. Out: how many were new. */
  adopt(tasks: MovingTask[]): Promise<Outcome<number>>;

  /** Queued work, drain rate and agents at home here; null for a shard never written to. Changes nothing. */
  loadSummary(): Promise<ShardLoad | null>;

  /** Configuration, tenants and their values, agents: what a new shard copies. 404 pool. Changes nothing. */
  poolSnapshot(): Promise<Outcome<PoolSnapshot>>;

  /** Become a shard of the snapshot's pool: its configuration and tenants, its agents as members. */
  joinPool(snapshot: PoolSnapshot): Promise<Outcome<null>>;

  /** From now on keyed submits need the task id their claim chose. Out: the keys held here. 404 pool. */
  indexKeys(): Promise<Outcome<HeldKey[]>>;

  /** The agents at home here (ids and metadata JSON), as their home drains. Changes nothing. */
  agentsAtHome(): Promise<{ agentId: string; metadata: string }[]>;

  /**
   * Anti-entropy (lib/gossip/exchange.ts): a peer's digest; out: what it lacks of this shard's state (null: nothing)
   * and the sections it should send back. Null when this shard drops the peer's exchanges (test partition).
   */
  gossipExchange(from: number, digest: Digest): Promise<{ delta: Uint8Array | null; want: Section[] } | null>;

  /** Sections a peer sends back; merged into this shard's state. False when dropped (test partition). */
  gossipPush(from: number, delta: Uint8Array): Promise<boolean>;

  /** Sizes, vector clock and digest of this shard's shared state (a shard never written to: the empty state). */
  sharedState(): Promise<SharedStateSummary>;

  /** Make this shard the home of these agents, or not (their home drained). */
  setAgentHome(agentIds: string[], home: boolean): Promise<Outcome<null>>;
}
