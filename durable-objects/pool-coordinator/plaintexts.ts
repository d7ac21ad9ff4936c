/**
 * Plaintext payloads of tasks just submitted, keyed by their sealed envelope, held in memory (never stored) so
 * that pushing a task right after its submit does not decrypt what the Worker had in clear a moment before. An
 * envelope has a random IV, so it names one sealing of one payload. Bounded by characters held: the oldest go
 * first, and a miss (a restart, a retry, an evicted entry) simply decrypts.
 */
import { isBlobRef } from "../../lib/security/blob-refs.ts";

export class PlaintextCache {
  private readonly entries = new Map<string, string>();
  private held = 0;

  constructor(private readonly maxChars: number) {}

  /**
   * Remembers a plaintext; one larger than a quarter of the bound is not worth holding, and a payload kept in R2
   * (its Worker sends no plaintext for it) is read from there when pushed.
   */
  remember(envelope: string, plaintext: string): void {
    const size = envelope.length + plaintext.length;
    if (size > this.maxChars / 4 || isBlobRef(envelope) || this.entries.has(envelope)) return;
    this.entries.set(envelope, plaintext);
    this.held += size;
    for (const [key, value] of this.entries) {
      if (this.held <= this.maxChars) break;
      this.forget(key, value);
    }
  }

  /** Drops an entry once its task has been pushed (a later lease of the same task decrypts). */
  take(envelope: string): string | undefined {
    const value = this.entries.get(envelope);
    if (value !== undefined) this.forget(envelope, value);
    return value;
  }

  private forget(key: string, value: string): void {
    this.entries.delete(key);
    this.held -= key.length + value.length;
  }

  get(envelope: string): string | undefined {
    return this.entries.get(envelope);
  }

  get heldChars(): number {
    return this.held;
  }

  get size(): number {
    return this.entries.size;
  }
}
