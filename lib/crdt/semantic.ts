// The seed's SemanticStateCRDT: image embeddings (G-Set), content mappings (OR-Map), agent loads (PN-Counter)
// and the task queue (OR-Set), merged section by section.
import { ByteReader, ByteWriter, type BytesLike } from "./bytes.js";
import { GSet } from "./gset.js";
import { CrdtType } from "./format.js";
import { ORMap } from "./ormap.js";
import { ORSet } from "./orset.js";
import { PNCounter } from "./pncounter.js";
import { CrdtError, CrdtErrorCode } from "./errors.js";

export interface Embedding {
  readonly imageId: string;
  readonly vector: Float32Array;
}

/** An `image_embeddings` element: varint length, the image id (UTF-8), then float32 little-endian values. */
export function embeddingElement(imageId: string, vector: ArrayLike<number>): Uint8Array {
  const id = new TextEncoder().encode(imageId);
  const w = new ByteWriter(id.length + vector.length * 4 + 8);
  w.bytesField(id);
  const floats = new Uint8Array(vector.length * 4);
  const view = new DataView(floats.buffer);
  for (let i = 0; i < vector.length; i++) view.setFloat32(i * 4, vector[i]!, true);
  for (const b of floats) w.byte(b);
  return w.finish();
}

export function parseEmbeddingElement(element: Uint8Array): Embedding {
  const r = new ByteReader(element);
  const id = r.bytesField();
  if ((r.end - r.pos) % 4 !== 0) throw new CrdtError(CrdtErrorCode.TRUNCATED, r.pos);
  const view = new DataView(element.buffer, element.byteOffset + r.pos, r.end - r.pos);
  const vector = new Float32Array(view.byteLength / 4);
  for (let i = 0; i < vector.length; i++) vector[i] = view.getFloat32(i * 4, true);
  return { imageId: new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(id), vector };
}

export class SemanticState {
  static readonly type = CrdtType.SemanticState;
  readonly imageEmbeddings: GSet;
  readonly contentMappings: ORMap;
  readonly agentLoads: PNCounter;
  readonly taskQueue: ORSet;

  constructor(imageEmbeddings = new GSet(), contentMappings = new ORMap(), agentLoads = new PNCounter(), taskQueue = new ORSet()) {
    this.imageEmbeddings = imageEmbeddings;
    this.contentMappings = contentMappings;
    this.agentLoads = agentLoads;
    this.taskQueue = taskQueue;
  }

  /** Each operation returns the delta: a semantic state with only the changed section. */
  addEmbedding(imageId: string, vector: ArrayLike<number>): SemanticState {
    return new SemanticState(this.imageEmbeddings.add(embeddingElement(imageId, vector)));
  }

  /**
   * @example
   * const s = new SemanticState(); s.updateMapping("img-1", "post-9", Date.now(), 7);
   */
  updateMapping(imageId: BytesLike, content: BytesLike, timestamp: number, replica: number): SemanticState {
    return new SemanticState(undefined, this.contentMappings.set(imageId, content, timestamp, replica));
  }

  removeMapping(imageId: BytesLike): SemanticState {
    return new SemanticState(undefined, this.contentMappings.remove(imageId));
  }

  adjustLoad(replica: number, amount: number): SemanticState {
    return new SemanticState(undefined, undefined, this.agentLoads.add(replica, amount));
  }

  enqueueTask(taskId: BytesLike, replica: number): SemanticState {
    return new SemanticState(undefined, undefined, undefined, this.taskQueue.add(taskId, replica));
  }

  removeTask(taskId: BytesLike): SemanticState {
    return new SemanticState(undefined, undefined, undefined, this.taskQueue.remove(taskId));
  }

  embeddings(): Embedding[] {
    return this.imageEmbeddings.elements().map(parseEmbeddingElement);
  }

  writeBody(w: ByteWriter): void {
    this.imageEmbeddings.writeBody(w);
    this.contentMappings.writeBody(w);
    this.agentLoads.writeBody(w);
    this.taskQueue.writeBody(w);
  }

  static readBody(r: ByteReader): SemanticState {
    const embeddings = GSet.readBody(r);
    const mappings = ORMap.readBody(r);
    const loads = PNCounter.readBody(r);
    const queue = ORSet.readBody(r);
    return new SemanticState(embeddings, mappings, loads, queue);
  }
}
