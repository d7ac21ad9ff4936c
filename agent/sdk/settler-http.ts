// Outcomes over HTTP: collected for a few milliseconds, sent with POST /v1/tasks/settle (one transaction per pool
// on the mesh), retried while the mesh cannot be reached. Used by the HTTP transport, and by the WebSocket
// transport for whatever is pending while its socket is down.
import { Backoff } from "./backoff.ts";
import { Batcher } from "./batcher.ts";
import { MeshError, type MeshClient, type SettleItem } from "./api.ts";
import type { Settler, TransportHost } from "./transport.ts";
import { sleep } from "./timers.ts";

/** Under the mesh's 10 MiB body limit, with room for the envelope (a larger result alone still goes alone). */
const MAX_REQUEST_BYTES = 10_000_000;

export class HttpSettler implements Settler {
  private readonly client: Pick<MeshClient, "settle">;
  private readonly host: Pick<TransportHost, "onSettled" | "log">;
  private readonly batcher: Batcher<SettleItem>;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly stopping = new AbortController();

  constructor(client: Pick<MeshClient, "settle">, host: Pick<TransportHost, "onSettled" | "log">, { maxItems = 256, maxDelayMs = 5 }: { maxItems?: number; maxDelayMs?: number } = {}) {
    this.client = client;
    this.host = host;
    this.batcher = new Batcher<SettleItem>({
      maxItems,
      maxDelayMs,
      maxBytes: MAX_REQUEST_BYTES,
      sizeOf: (item) => Buffer.byteLength(JSON.stringify(item)),
      send: (items) => this.track(this.post(items)),
    });
  }

  send(item: SettleItem): void {
    this.batcher.add(item);
  }

  /** Sends what is queued and waits for every answer, at most `timeoutMs`; then gives up on what is left. */
  async drain(timeoutMs: number): Promise<void> {
    this.batcher.flush();
    const deadline = Date.now() + timeoutMs;
    while (this.inFlight.size > 0 && Date.now() < deadline) {
      await Promise.race([Promise.allSettled([...this.inFlight]), sleep(deadline - Date.now())]);
    }
    this.stopping.abort();
    await Promise.allSettled([...this.inFlight]);
  }

  private track(promise: Promise<void>): void {
    this.inFlight.add(promise);
    void promise.finally(() => this.inFlight.delete(promise));
  }

  private async post(items: SettleItem[]): Promise<void> {
    const backoff = new Backoff({ baseMs: 200, maxMs: 10_000 });
    for (;;) {
      try {
        const results = await this.client.settle(items, this.stopping.signal);
        items.forEach((item, i) => {
          const result = results[i];
          this.host.onSettled(item, result ?? { id: item.id, ok: false, code: "bad_answer", message: "the mesh answered fewer results than items" });
        });
        return;
      } catch (err) {
        const transient = err instanceof MeshError && (err.status === 0 || err.status === 429 || err.status >= 500);
        if (transient && !this.stopping.signal.aborted) {
          const delay = err.retryAfterMs ?? backoff.next();
          this.host.log(`settling ${items.length} outcome(s) failed (${err.code}: ${err.message}); retrying in ${delay} ms`);
          await sleep(delay, this.stopping.signal);
          continue;
        }
        // Refused for good (or given up at shutdown): each item gets the refusal, so the agent can account for it.
        const code = err instanceof MeshError ? err.code : "unsent";
        const message = err instanceof Error ? err.message : String(err);
        for (const item of items) this.host.onSettled(item, { id: item.id, ok: false, code, message });
        return;
      }
    }
  }
}
