/**
 * What a shard knows of its pool's other shards: the list the Worker last gave it (versioned, kept in `meta`), and
 * whether it is draining itself. A draining shard takes no new tasks; its quota share and drain targets come from
 * the active shards of the list.
 */
import { ApiError } from "../../../contract/errors.ts";
import type { ShardList, ShardRecord } from "../../../contract/records.ts";
import type { HeldKey } from "../../../contract/shard-rpc.ts";

export class ShardPeers {
  private list: ShardList | null = null;
  private indexed: boolean | null = null;

  constructor(
    private readonly sql: SqlStorage,
    private readonly pool: string,
    readonly shard: number,
  ) {}

  current(): ShardList {
    if (this.list === null) {
      const row = this.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = 'shards'").toArray()[0];
      this.list = row ? (JSON.parse(row.value) as ShardList) : { pool: this.pool, version: 0, shards: [{ id: 0, region: null, state: "active", createdAt: 0 }] };
    }
    return this.list;
  }

  /** A newer list from the Worker (an older one is ignored). Call inside a transaction. Answers whether it changed. */
  update(list: ShardList): boolean {
    if (list.version < this.current().version) return false;
    this.sql.exec("INSERT INTO meta (key, value) VALUES ('shards', ?1) ON CONFLICT (key) DO UPDATE SET value = ?1", JSON.stringify(list));
    this.list = list;
    return true;
  }

  /** This shard's own record in the list (shard 0 of a pool never sharded: active). */
  self(): ShardRecord {
    return this.current().shards.find((s) => s.id === this.shard) ?? { id: this.shard, region: null, state: "active", createdAt: 0 };
  }

  get draining(): boolean {
    return this.self().state !== "active";
  }

  /** The other shards that take tasks. */
  activePeers(): ShardRecord[] {
    return this.current().shards.filter((s) => s.state === "active" && s.id !== this.shard);
  }

  /** How many shards share a tenant's quota (the active ones, this one counted when it is active). */
  activeCount(): number {
    return Math.max(1, this.current().shards.filter((s) => s.state === "active").length);
  }

  /** A submit to a draining shard is refused; the gateway sends the task elsewhere. */
  refuseIfDraining(): void {
    if (this.draining) throw new ApiError("conflict", `shard ${this.shard} of pool ${this.pool} is ${this.self().state}: it takes no new tasks`, { draining: true });
  }

  /**
   * Whether idempotency keys of this pool go through its key index (the pool has had more than one shard): a keyed
   * submit must then come with the task id its claim chose, and one without is refused (the Worker claims first).
   */
  get keysIndexed(): boolean {
    this.indexed ??= this.sql.exec("SELECT 1 FROM meta WHERE key = 'keys_indexed'").toArray().length > 0;
    return this.indexed;
  }

  /** From now on keyed submits need a claim. Answers the keys this shard holds, for the index. Call inside a transaction. */
  indexKeys(): HeldKey[] {
    this.sql.exec("INSERT OR IGNORE INTO meta (key, value) VALUES ('keys_indexed', '1')");
    this.indexed = true;
    return this.sql
      .exec<{ tenant: string; idempotency_key: string; id: string; created_at: number }>("SELECT tenant, idempotency_key, id, created_at FROM tasks WHERE idempotency_key IS NOT NULL")
      .toArray()
      .map((r) => ({ tenant: r.tenant, key: r.idempotency_key, taskId: r.id, at: r.created_at }));
  }

  refuseUnclaimedKeys(inputs: readonly { id?: string | undefined; idempotencyKey: string | null }[]): void {
    if (this.keysIndexed && inputs.some((i) => i.idempotencyKey !== null && i.id === undefined)) {
      throw new ApiError("conflict", `pool ${this.pool} has several shards: an idempotency key is claimed in its key index first`, { keysIndexed: true });
    }
  }

  discard(): void {
    this.list = null;
    this.indexed = null;
  }
}
