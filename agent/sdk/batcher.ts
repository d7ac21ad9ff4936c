// Collects outbound messages for a few milliseconds and sends them together. The mesh applies one batch in one
// transaction, so 64 completions in one message cost about what one costs: this is where agent throughput comes from.

export interface BatcherOptions<T> {
  /** Send as soon as this many are waiting (default 64). */
  maxItems?: number;
  /** Send at most this long after the first item arrived (default 3 ms). */
  maxDelayMs?: number;
  /** With `sizeOf`: keep each sent group under this many bytes (a request or frame has a size limit). */
  maxBytes?: number;
  sizeOf?: (item: T) => number;
  send: (items: T[]) => void;
}

export class Batcher<T> {
  private pending: T[] = [];
  private timer: ReturnType<typeof setTimeout> | null = null;
  private readonly maxItems: number;
  private readonly maxDelayMs: number;
  private readonly send: (items: T[]) => void;
  private readonly maxBytes: number;
  private readonly sizeOf: ((item: T) => number) | null;

  constructor({ maxItems = 64, maxDelayMs = 3, maxBytes = Infinity, sizeOf, send }: BatcherOptions<T>) {
    if (!Number.isInteger(maxItems) || maxItems < 1) throw new RangeError(`maxItems must be a positive integer, not ${maxItems}`);
    this.maxItems = maxItems;
    this.maxDelayMs = maxDelayMs;
    this.maxBytes = maxBytes;
    this.sizeOf = sizeOf ?? null;
    this.send = send;
  }

  get size(): number {
    return this.pending.length;
  }

  add(item: T): void {
    this.pending.push(item);
    if (this.pending.length >= this.maxItems) this.flush();
    // The clock starts with the first item, so an item never waits longer than maxDelayMs.
    else this.timer ??= setTimeout(() => this.flush(), this.maxDelayMs);
  }

  /** Sends what is waiting now, in groups of at most maxItems (and maxBytes; an item larger alone goes alone). */
  flush(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const items = this.pending;
    this.pending = [];
    let group: T[] = [];
    let bytes = 0;
    for (const item of items) {
      const size = this.sizeOf ? this.sizeOf(item) : 0;
      if (group.length > 0 && (group.length >= this.maxItems || bytes + size > this.maxBytes)) {
        this.send(group);
        group = [];
        bytes = 0;
      }
      group.push(item);
      bytes += size;
    }
    if (group.length > 0) this.send(group);
  }
}
