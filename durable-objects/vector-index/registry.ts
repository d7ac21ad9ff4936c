/**
 * A tenant's indexes: their settings, incarnation and parts (the registry role of a VectorIndex object, named
 * `registry:<tenant>`). The list of parts is a superset of the parts holding data: a split adds its new part here
 * before the old one lets go of the vectors it moved (split.ts), so a query fanned out over this list never misses
 * one. A removed index waits in `purges` until every part has been emptied.
 */
import { ApiError } from "../../contract/errors.ts";
import type { IndexRecord, IndexSettings } from "../../contract/index-rpc.ts";

interface IndexRow {
  [column: string]: SqlStorageValue;
  name: string;
  tenant: string;
  dimensions: number;
  metric: string;
  precision: string;
  incarnation: string;
  part_bytes: number;
  parts: string;
  created_at: number;
  model: string | null;
}

function recordOf(row: IndexRow): IndexRecord {
  return {
    tenant: row.tenant,
    index: row.name,
    dimensions: row.dimensions,
    metric: row.metric as IndexRecord["metric"],
    precision: row.precision as IndexRecord["precision"],
    incarnation: row.incarnation,
    partBytes: row.part_bytes,
    parts: JSON.parse(row.parts) as IndexRecord["parts"],
    createdAt: row.created_at,
    model: row.model === null ? null : (JSON.parse(row.model) as IndexRecord["model"]),
  };
}

const modelOf = (s: IndexSettings): string => (s.model ? `${s.model.r2Key} (${s.model.dimensions})` : "no model");
export const sameSettings = (a: IndexSettings, b: IndexSettings): boolean => a.dimensions === b.dimensions && a.metric === b.metric && a.precision === b.precision && modelOf(a) === modelOf(b);

export class Registry {
  readonly #sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  get(name: string): IndexRecord | null {
    const row = this.#sql.exec<IndexRow>("SELECT * FROM indexes WHERE name = ?", name).toArray()[0];
    return row ? recordOf(row) : null;
  }

  list(): IndexRecord[] {
    return this.#sql.exec<IndexRow>("SELECT * FROM indexes ORDER BY name").toArray().map(recordOf);
  }

  /**
   * Creates the index, or answers the existing one when its settings are the same (`created: false`); 409 when
   * they differ. Call inside a transaction.
   */
  create(tenant: string, name: string, settings: IndexSettings, incarnation: string, partBytes: number, now: number): { created: boolean; record: IndexRecord } {
    const existing = this.get(name);
    if (existing) {
      if (!sameSettings(existing, settings)) {
        // The settings go in the message: the documented 409 details name task and agent states only.
        throw new ApiError("conflict", `index ${name} exists with other settings (${existing.dimensions} dimensions, ${existing.metric}, ${existing.precision}, ${modelOf(existing)})`);
      }
      return { created: false, record: existing };
    }
    this.#sql.exec(
      "INSERT INTO indexes (name, tenant, dimensions, metric, precision, incarnation, part_bytes, parts, created_at, model) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      name, tenant, settings.dimensions, settings.metric, settings.precision, incarnation, partBytes, JSON.stringify([{ prefix: 0, depth: 0 }]), now,
      settings.model ? JSON.stringify({ r2Key: settings.model.r2Key, dimensions: settings.model.dimensions }) : null,
    );
    return { created: true, record: this.get(name)! };
  }

  /**
   * A split of part `parent` to `depth` made part `child`: both are listed at `depth`. Repeating it changes
   * nothing; an index that is gone (or re-created since) is left alone. Call inside a transaction.
   */
  addPart(name: string, incarnation: string, parent: number, depth: number, child: number): void {
    const withPart = (parts: IndexRecord["parts"]): IndexRecord["parts"] =>
      [...parts.filter((p) => p.prefix !== parent && p.prefix !== child), { prefix: parent, depth }, { prefix: child, depth }].sort((a, b) => a.prefix - b.prefix);
    const record = this.get(name);
    if (record && record.incarnation === incarnation) {
      this.#sql.exec("UPDATE indexes SET parts = ? WHERE name = ?", JSON.stringify(withPart(record.parts)), name);
      return;
    }
    // A split that raced with the index's removal: its new part must be emptied too.
    const purge = this.#sql.exec<{ record: string }>("SELECT record FROM purges WHERE incarnation = ?", incarnation).toArray()[0];
    if (!purge) return;
    const removed = JSON.parse(purge.record) as IndexRecord;
    this.#sql.exec("UPDATE purges SET record = ? WHERE incarnation = ?", JSON.stringify({ ...removed, parts: withPart(removed.parts) }), incarnation);
  }

  /** Removes the index from the list; its parts wait in `purges` to be emptied. Call inside a transaction. */
  remove(name: string, now: number): IndexRecord | null {
    const record = this.get(name);
    if (!record) return null;
    this.#sql.exec("DELETE FROM indexes WHERE name = ?", name);
    this.#sql.exec("INSERT OR REPLACE INTO purges (incarnation, record, at) VALUES (?, ?, ?)", record.incarnation, JSON.stringify(record), now);
    return record;
  }

  pendingPurges(): IndexRecord[] {
    return this.#sql.exec<{ record: string }>("SELECT record FROM purges ORDER BY at").toArray().map((r) => JSON.parse(r.record) as IndexRecord);
  }

  /**
   * The parts `emptied` of a removed index have been emptied: its purge is done unless a split added another
   * meanwhile (then the next try empties them all again, which is harmless). Call inside a transaction.
   */
  purged(incarnation: string, emptied: readonly number[]): boolean {
    const purge = this.#sql.exec<{ record: string }>("SELECT record FROM purges WHERE incarnation = ?", incarnation).toArray()[0];
    if (!purge) return true;
    const { parts } = JSON.parse(purge.record) as IndexRecord;
    if (!parts.every((p) => emptied.includes(p.prefix))) return false;
    this.#sql.exec("DELETE FROM purges WHERE incarnation = ?", incarnation);
    return true;
  }
}
