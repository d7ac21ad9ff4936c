// The limits of the similarity module. The loader reads them through exports (see similarity.ts), so they are
// stated here once.

/** Vectors have 1 to MAX_DIM components. */
export const MAX_DIM: i32 = 4096;
/** A top-k query asks for 1 to MAX_K results (and never more than the corpus holds). */
export const MAX_K: i32 = 4096;
/** A batch holds 1 to MAX_BATCH queries. */
export const MAX_BATCH: i32 = 4096;
/** Live buffers and corpora together (the registry that validates every pointer and handle). */
export const MAX_ALLOCATIONS: i32 = 1024;
/** The largest single allocation: below the allocator's block limit (TLSF: 1 GiB). */
export const MAX_ALLOCATION_BYTES: u64 = (1 << 30) - 1024;
/** Corpus rows are stored in segments of about this many bytes, so a corpus grows without copying. */
export const SEGMENT_BYTES: i32 = 1 << 20;
/** Corpus sizes and indices are i32 on the JS side. */
export const MAX_VECTORS: u64 = 0x7fffffff;

/** Element kinds of a corpus. */
export const KIND_F32: i32 = 0;
export const KIND_I8: i32 = 1;

/** Scoring metrics. */
export const METRIC_DOT: i32 = 0;
export const METRIC_COSINE: i32 = 1;
