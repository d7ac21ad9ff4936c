import { DurableObject } from "cloudflare:workers";
import { attempt, ApiError, failed, ok, type Outcome } from "../../contract/errors.ts";
import { partName, registryName, type IndexRecord, type IndexSettings, type Match, type MetadataFilter, type PartRef, type PartStats, type StoredVector, type WriteAnswer } from "../../contract/index-rpc.ts";
import { randomToken } from "../../lib/random.ts";
import { newSimilarity } from "../../lib/wasm/similarity-module.ts";
import type { Similarity } from "../../lib/wasm/similarity.ts";
import { migrate } from "../shared/migrations.ts";
import { Part } from "./part.ts";
import { Registry } from "./registry.ts";
import { VECTOR_INDEX_SCHEMA } from "./schema.ts";
import { SPLIT_WATCHDOG_MS, Splitter } from "./split.ts";
import { PartStore } from "./store.ts";

/** How long a failed purge of a deleted index's parts waits before the alarm tries again. */
const PURGE_RETRY_MS = 60_000;

/**
 * Vector indexes (docs/indexes.md). One class, two roles, each a capability over the object's SQLite storage:
 * - the registry of a tenant's indexes (`registry:<tenant>`, registry.ts): settings, incarnation, parts;
 * - a part of one index (`part:<tenant>:<index>:<incarnation>:<prefix>`, part.ts): the vectors whose id hash has
 *   `prefix` as its low `depth` bits, stored as float32 blobs with their metadata and served from the similarity
 *   module in memory; it splits in two when full (split.ts).
 * The alarm finishes what a crash cut short: a split (parts) or the purge of a deleted index's parts (registry).
 */
export class VectorIndex extends DurableObject<Env> {
  private readonly registry: Registry;
  private readonly store: PartStore;
  private readonly part: Part;
  private readonly splitter: Splitter;
  private sim: Similarity | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const storage = ctx.storage;
    storage.transactionSync(() => migrate(storage.sql, VECTOR_INDEX_SCHEMA));
    this.registry = new Registry(storage.sql);
    this.store = new PartStore(storage.sql);
    const transaction = <T>(fn: () => T): T => storage.transactionSync(fn);
    this.part = new Part({ store: this.store, transaction, similarity: () => (this.sim ??= newSimilarity()) });
    this.splitter = new Splitter({
      store: this.store,
      transaction,
      setAlarm: (at) => storage.setAlarm(at),
      deleteAlarm: () => storage.deleteAlarm(),
      part: (name) => env.VECTOR_INDEX.getByName(name),
      addPart: async (tenant, index, incarnation, parent, depth, child) => {
        await env.VECTOR_INDEX.getByName(registryName(tenant)).addPart(index, incarnation, parent, depth, child);
      },
      dropResident: () => this.part.drop(),
      clock: () => Date.now(),
    });
  }

  // ---- registry -----------------------------------------------------------------------------------------------

  /** Creates an index (201) or finds it with the same settings (200); 409 with other settings. */
  async createIndex(tenant: string, name: string, settings: IndexSettings, partBytes: number, now: number): Promise<Outcome<{ created: boolean; record: IndexRecord }>> {
    const incarnation = randomToken(12);
    return attempt(() => this.ctx.storage.transactionSync(() => this.registry.create(tenant, name, settings, incarnation, partBytes, now)));
  }

  async getIndex(name: string): Promise<IndexRecord | null> {
    return this.registry.get(name);
  }

  async listIndexes(): Promise<IndexRecord[]> {
    return this.registry.list();
  }

  async addPart(name: string, incarnation: string, parent: number, depth: number, child: number): Promise<void> {
    this.ctx.storage.transactionSync(() => this.registry.addPart(name, incarnation, parent, depth, child));
  }

  /** Removes an index at once and empties its parts (the alarm retries what fails); 404 if there is none. */
  async removeIndex(name: string, now: number): Promise<Outcome<IndexRecord>> {
    const record = this.ctx.storage.transactionSync(() => this.registry.remove(name, now));
    if (!record) return failed(new ApiError("not_found", `no index ${name}`));
    await this.ctx.storage.setAlarm(now + PURGE_RETRY_MS);
    await this.purgeParts(record).catch(() => undefined);
    return ok(record);
  }

  private async purgeParts(record: IndexRecord): Promise<boolean> {
    const { tenant } = record;
    const prefixes = record.parts.map((p) => p.prefix);
    await Promise.all(prefixes.map((prefix) => this.env.VECTOR_INDEX.getByName(partName({ tenant, index: record.index, incarnation: record.incarnation, prefix })).purge()));
    return this.ctx.storage.transactionSync(() => this.registry.purged(record.incarnation, prefixes));
  }

  // ---- part ---------------------------------------------------------------------------------------------------

  /** Makes the part (index creation makes part 0 `active`; a split makes its new part `filling`). */
  async initPart(ref: PartRef, depth: number, state: "active" | "filling"): Promise<PartStats> {
    return this.part.init(ref, depth, state);
  }

  async upsert(ref: PartRef, vectors: StoredVector[]): Promise<Outcome<WriteAnswer<number>>> {
    return attempt(() => this.part.upsert(ref, vectors));
  }

  async deleteVector(ref: PartRef, id: string, hash: number): Promise<Outcome<WriteAnswer<boolean>>> {
    return attempt(() => this.part.delete(ref, id, hash));
  }

  async query(ref: PartRef, vector: Float64Array, topK: number, filter: MetadataFilter | null): Promise<Outcome<{ matches: Match[]; depth: number }>> {
    return attempt(() => this.part.query(ref, vector, topK, filter));
  }

  async stats(ref: PartRef): Promise<Outcome<PartStats>> {
    return attempt(() => this.part.stats(ref));
  }

  /** Splits the part if `need` more bytes do not fit (split.ts); answers once the split is done. */
  async split(ref: PartRef, need: number): Promise<Outcome<null>> {
    const mine = attempt(() => this.part.stats(ref));
    if (!mine.ok) return mine;
    try {
      await this.splitter.split(need);
      return ok(null);
    } catch (err) {
      if (err instanceof ApiError) return failed(err);
      throw err;
    }
  }

  async absorb(ref: PartRef, vectors: StoredVector[]): Promise<Outcome<number>> {
    return attempt(() => this.part.absorb(ref, vectors));
  }

  async activate(ref: PartRef): Promise<Outcome<null>> {
    return attempt(() => {
      this.part.activate(ref);
      return null;
    });
  }

  /** Empties the object: the index it was a part of is gone. */
  async purge(): Promise<void> {
    this.part.drop();
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
    this.ctx.storage.transactionSync(() => migrate(this.ctx.storage.sql, VECTOR_INDEX_SCHEMA));
  }

  override async alarm(): Promise<void> {
    const row = this.store.row();
    if (row !== null && row.state !== "active" && row.state !== "filling") {
      await this.ctx.storage.setAlarm(Date.now() + SPLIT_WATCHDOG_MS);
      await this.splitter.resume();
    }
    const pending = this.registry.pendingPurges();
    let done = true;
    for (const record of pending) done = (await this.purgeParts(record).catch(() => false)) && done;
    if (!done) await this.ctx.storage.setAlarm(Date.now() + PURGE_RETRY_MS);
  }
}
