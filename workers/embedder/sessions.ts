/**
 * The embedder isolate's model cache: one entry per R2 key, bounded by count and by the total size of the model
 * files, least recently used evicted first (its session released, so onnxruntime frees its part of the Wasm
 * heap for the next one; the heap itself never shrinks). Concurrent first uses of a key share one load; a failed
 * load is not kept, so the next call tries again. A session in use by a call is released only when that call is done. An entry older than `revalidateMs` is checked against the R2
 * object's etag before use, so a model replaced under the same key is picked up within that time (prefer a new
 * key per model version: nothing to wait for). Pure: the loader and the clock come from the host.
 */

export interface Loaded<T> {
  readonly value: T;
  readonly bytes: number;
  /** The R2 object's etag at load time. */
  readonly etag: string;
  release(): void;
}

export interface ModelCacheOptions<T> {
  load(key: string): Promise<Loaded<T>>;
  /** The object's current etag, or null when it is gone. */
  etagOf(key: string): Promise<string | null>;
  maxEntries: number;
  maxBytes: number;
  revalidateMs: number;
  now?: () => number;
}

interface Entry<T> {
  key: string;
  loading: Promise<Loaded<T>>;
  loaded: Loaded<T> | null;
  loadedAt: number;
  checkedAt: number;
  uses: number;
  /** Calls running on it now; a dropped entry is released when this reaches 0. */
  active: number;
  dropped: boolean;
}

export interface CacheEntryInfo<T> {
  key: string;
  value: T;
  bytes: number;
  loadedAt: number;
  uses: number;
}

export class ModelCache<T> {
  readonly #options: ModelCacheOptions<T>;
  readonly #now: () => number;
  /** Map order is recency order: the first entry is the least recently used. */
  readonly #entries = new Map<string, Entry<T>>();
  #loads = 0;
  #evictions = 0;

  constructor(options: ModelCacheOptions<T>) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Runs `fn` on the loaded model under `key`, loading it (or reloading it, if its etag changed) when needed. The
   * model is not released while `fn` runs, even if it is evicted meanwhile.
   */
  async use<R>(key: string, fn: (value: T) => Promise<R>): Promise<R> {
    let entry = this.#entries.get(key);
    if (entry?.loaded && this.#now() - entry.checkedAt >= this.#options.revalidateMs) {
      const etag = await this.#options.etagOf(key);
      // Another call may have replaced the entry while this one waited.
      if (this.#entries.get(key) === entry) {
        if (etag === entry.loaded.etag) entry.checkedAt = this.#now();
        else this.#drop(entry, false);
      }
      entry = this.#entries.get(key);
    }
    if (!entry) entry = this.#start(key);
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    entry.uses += 1;
    entry.active += 1;
    try {
      return await fn((await entry.loading).value);
    } finally {
      entry.active -= 1;
      if (entry.dropped && entry.active === 0) entry.loaded?.release();
    }
  }

  /** Entries least recently used first, loaded ones only. */
  entries(): CacheEntryInfo<T>[] {
    return [...this.#entries.values()].flatMap((e) => (e.loaded ? [{ key: e.key, value: e.loaded.value, bytes: e.loaded.bytes, loadedAt: e.loadedAt, uses: e.uses }] : []));
  }

  get loads(): number {
    return this.#loads;
  }

  get evictions(): number {
    return this.#evictions;
  }

  #start(key: string): Entry<T> {
    const entry: Entry<T> = { key, loading: this.#options.load(key), loaded: null, loadedAt: 0, checkedAt: 0, uses: 0, active: 0, dropped: false };
    entry.loading.then(
      (loaded) => {
        if (this.#entries.get(key) !== entry) {
          // Replaced while it loaded: the calls waiting for it still run on it, the last one releases it.
          entry.loaded = loaded;
          entry.dropped = true;
          if (entry.active === 0) loaded.release();
          return;
        }
        this.#loads += 1;
        entry.loaded = loaded;
        entry.loadedAt = entry.checkedAt = this.#now();
        this.#evict();
      },
      () => {
        if (this.#entries.get(key) === entry) this.#entries.delete(key);
      },
    );
    this.#entries.set(key, entry);
    return entry;
  }

  /** Drops least recently used loaded entries while over a bound; the newest entry always stays. */
  #evict(): void {
    const { maxEntries, maxBytes } = this.#options;
    for (;;) {
      const loaded = [...this.#entries.values()].filter((e) => e.loaded);
      const bytes = loaded.reduce((sum, e) => sum + e.loaded!.bytes, 0);
      if (loaded.length <= 1 || (loaded.length <= maxEntries && bytes <= maxBytes)) return;
      this.#drop(loaded[0]!, true);
    }
  }

  #drop(entry: Entry<T>, eviction: boolean): void {
    this.#entries.delete(entry.key);
    if (eviction) this.#evictions += 1;
    entry.dropped = true;
    if (entry.active === 0) entry.loaded?.release();
  }
}
