/**
 * Splitting a full part in two (docs/indexes.md, "Growing"): the part of prefix p at depth d keeps the hashes with
 * bit d clear and a new part, prefix p + 2^d, takes those with it set; both are then at depth d + 1. The steps, each
 * recorded in the part row so that the object's alarm resumes a split cut short:
 *
 * 1. `copying`: the new part is made (`filling`: it refuses other writes) and the moving vectors are copied to it
 *    in batches. Writes of moving ids are refused here as busy (the caller retries), so the copy cannot go stale;
 *    writes of the ids that stay go on.
 * 2. The registry lists the new part, with both at depth d + 1, before this part lets go of anything: a query
 *    fanned out over the registry's list never misses a vector. `copied`: this part leaves the moving vectors out
 *    of its answers and counts, as the new part answers for them.
 * 3. `activating`: one transaction drops the moved vectors here and sets depth d + 1; ids of the other half are
 *    refused as moved from now on (the caller re-routes).
 * 4. The new part is told to serve (`active`), then this part is `active` again.
 */
import { ApiError, unwrap, type Outcome } from "../../contract/errors.ts";
import { MAX_DEPTH, partName, type PartRef, type PartStats, type StoredVector } from "../../contract/index-rpc.ts";
import type { PartRow, PartStore } from "./store.ts";

/** Bytes of vectors per copy call (RPC messages are limited to 32 MiB). */
const COPY_BYTES = 4 * 1024 * 1024;
/** How long a split may go without progress before the alarm resumes it. */
export const SPLIT_WATCHDOG_MS = 30_000;

/** What a part being split needs of the part it makes (the RPC methods of VectorIndex). */
export interface SplitTarget {
  initPart(ref: PartRef, depth: number, state: "active" | "filling"): Promise<PartStats>;
  absorb(ref: PartRef, vectors: StoredVector[]): Promise<Outcome<number>>;
  activate(ref: PartRef): Promise<Outcome<null>>;
}

export interface SplitHost {
  store: PartStore;
  transaction<T>(fn: () => T): T;
  setAlarm(at: number): Promise<void>;
  deleteAlarm(): Promise<void>;
  part(name: string): SplitTarget;
  addPart(tenant: string, index: string, incarnation: string, parent: number, depth: number, child: number): Promise<void>;
  /** The moved vectors left this part: the in-memory copy must be rebuilt. */
  dropResident(): void;
  clock(): number;
}

export class Splitter {
  readonly #host: SplitHost;
  #running: Promise<void> | null = null;

  constructor(host: SplitHost) {
    this.#host = host;
  }

  get running(): boolean {
    return this.#running !== null;
  }

  /**
   * Starts a split if the part is still too full for `need` more bytes (another caller may have split it already)
   * and waits for it; 409 when the part cannot split further.
   */
  async split(need: number): Promise<void> {
    const row = this.#host.store.row();
    if (row === null || row.state === "filling") return;
    if (row.state === "active") {
      if (row.bytes + need <= row.ref.partBytes) return;
      if (row.depth >= MAX_DEPTH) {
        throw new ApiError("conflict", `index ${row.ref.index} is full: its part ${row.ref.prefix} holds ${row.bytes} bytes of vectors and cannot split again`);
      }
      this.#host.transaction(() => this.#host.store.setState("copying", row.ref.prefix + 2 ** row.depth));
      await this.#host.setAlarm(this.#host.clock() + SPLIT_WATCHDOG_MS);
    }
    await this.resume();
  }

  /** Runs the split in progress to its end (one run at a time; a second caller waits for the first). */
  resume(): Promise<void> {
    this.#running ??= this.#run().finally(() => {
      this.#running = null;
    });
    return this.#running;
  }

  async #run(): Promise<void> {
    const host = this.#host;
    let row = host.store.row();
    if (row === null || row.child === null) return;
    const childRef: PartRef = { ...row.ref, prefix: row.child };
    const child = host.part(partName(childRef));
    if (row.state === "copying") {
      await child.initPart(childRef, row.depth + 1, "filling");
      await this.#copy(row, childRef, child);
      await host.addPart(row.ref.tenant, row.ref.index, row.ref.incarnation, row.ref.prefix, row.depth + 1, row.child);
      host.transaction(() => host.store.setState("copied", row!.child));
      row = host.store.row()!;
    }
    if (row.state === "copied") {
      const depth = row.depth;
      host.transaction(() => host.store.flip(depth));
      host.dropResident();
      row = host.store.row()!;
    }
    if (row.state === "activating") {
      unwrap(await child.activate(childRef));
      host.transaction(() => host.store.setState("active", null));
      await host.deleteAlarm();
    }
  }

  async #copy(row: PartRow, childRef: PartRef, child: SplitTarget): Promise<void> {
    const perRow = Math.max(1, Math.ceil(row.bytes / Math.max(1, row.vectors)));
    const limit = Math.max(1, Math.floor(COPY_BYTES / perRow));
    let after = "";
    for (;;) {
      const batch = this.#host.store.moving(row.depth, after, limit);
      if (batch.length === 0) return;
      unwrap(await child.absorb(childRef, batch));
      after = batch[batch.length - 1]!.id;
      await this.#host.setAlarm(this.#host.clock() + SPLIT_WATCHDOG_MS);
    }
  }
}
