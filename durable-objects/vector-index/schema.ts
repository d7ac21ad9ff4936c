import type { Schema } from "../shared/migrations.ts";

/**
 * One schema for both roles of a VectorIndex object: a tenant's registry (`indexes`, `purges`) and a part of an
 * index (`part`, its one row, and `vectors`). An object uses the tables of its role and leaves the others empty.
 * The vector blob is the last column, so that reading a row's id, hash or size never walks its overflow pages.
 */
export const VECTOR_INDEX_SCHEMA: Schema = {
  migrations: [
    /* 1: the registry, a part and its vectors */ `
    CREATE TABLE indexes (
      name TEXT PRIMARY KEY,
      tenant TEXT NOT NULL,
      dimensions INTEGER NOT NULL CHECK (dimensions BETWEEN 1 AND 4096),
      metric TEXT NOT NULL CHECK (metric IN ('cosine')),
      precision TEXT NOT NULL CHECK (precision IN ('float32', 'int8')),
      incarnation TEXT NOT NULL,
      part_bytes INTEGER NOT NULL CHECK (part_bytes > 0),
      parts TEXT NOT NULL,
      created_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE purges (
      incarnation TEXT PRIMARY KEY,
      record TEXT NOT NULL,
      at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE part (
      only INTEGER PRIMARY KEY CHECK (only = 1),
      ref TEXT NOT NULL,
      depth INTEGER NOT NULL CHECK (depth BETWEEN 0 AND 16),
      state TEXT NOT NULL CHECK (state IN ('filling', 'active', 'copying', 'copied', 'activating')),
      child INTEGER,
      vectors INTEGER NOT NULL CHECK (vectors >= 0),
      bytes INTEGER NOT NULL CHECK (bytes >= 0),
      CHECK ((state IN ('copying', 'copied', 'activating')) = (child IS NOT NULL))
    );
    CREATE TABLE vectors (
      id TEXT PRIMARY KEY,
      hash INTEGER NOT NULL,
      bytes INTEGER NOT NULL,
      metadata TEXT NOT NULL,
      vec BLOB NOT NULL
    );`,
    /* 2: an index's embedding model, for text queries */ `ALTER TABLE indexes ADD COLUMN model TEXT;`,
  ],
};
