import { randomUUID } from 'node:crypto';
import { Binary, type Collection } from 'mongodb';

/**
 * MongoDB limits a document to 16 MiB; the embedded store has no limit, and FHIR Bundles can
 * be larger. A body up to INLINE_BYTES stays in its version document. A longer one is split
 * into chunk documents of UTF-8 bytes (joined again before decoding, so a character cut at a
 * chunk edge comes back whole), written before the version that refers to them: a version
 * never points at a partial body. Chunks of a write that loses its race are deleted; those of
 * a writer that dies midway stay behind as unreferenced garbage.
 */

export const BODY_CHUNKS = 'resource_body_chunks';

const INLINE_BYTES = 8 * 1024 * 1024;
const CHUNK_BYTES = 8 * 1024 * 1024;

export interface ChunkDocument {
  _id: string;
  data: Binary;
}

/** How a version document holds its body: inline, in chunks, or (tombstone) not at all. */
export interface BodyFields {
  body?: string;
  bodyChunks?: { id: string; count: number };
}

const chunkIds = ({ id, count }: { id: string; count: number }) =>
  Array.from({ length: count }, (_, index) => `${id}/${index}`);

export class BodyChunks {
  constructor(private readonly chunks: Collection<ChunkDocument>) {}

  /** Writes the chunks a body needs, if any, and returns the fields for its version document. */
  async store(body: string | undefined): Promise<BodyFields> {
    if (body === undefined) return {};
    const bytes = Buffer.from(body, 'utf8');
    if (bytes.length <= INLINE_BYTES) return { body };
    const bodyChunks = { id: randomUUID(), count: Math.ceil(bytes.length / CHUNK_BYTES) };
    await this.chunks.insertMany(
      chunkIds(bodyChunks).map((_id, index) => ({
        _id,
        data: new Binary(bytes.subarray(index * CHUNK_BYTES, (index + 1) * CHUNK_BYTES)),
      })),
    );
    return { bodyChunks };
  }

  /** Deletes the chunks of a version that was not written. */
  async discard({ bodyChunks }: BodyFields): Promise<void> {
    if (bodyChunks) await this.chunks.deleteMany({ _id: { $in: chunkIds(bodyChunks) } });
  }

  async load({ body, bodyChunks }: BodyFields): Promise<string | undefined> {
    if (!bodyChunks) return body;
    const ids = chunkIds(bodyChunks);
    const found = new Map(
      (await this.chunks.find({ _id: { $in: ids } }).toArray()).map((chunk) => [chunk._id, chunk.data.buffer]),
    );
    const parts = ids.map((id) => {
      const part = found.get(id);
      if (!part) throw new Error(`body chunk ${id} is missing`);
      return part;
    });
    return Buffer.concat(parts).toString('utf8');
  }
}
