/**
 * The record batches of an Arrow IPC file in the lake, read by byte ranges
 * instead of whole: a replay holds about one batch's bytes per partition it
 * reads (the batch being replayed, 2.9 MB of candles, and a 256 KB
 * read-ahead), not the year's 16 MB, so many pairs can stream side by side
 * within a bounded memory.
 * apache-arrow's file reader does the parsing; it reads through a file
 * handle, which here answers from ranged GETs of the object.
 */
import { RecordBatchReader, type RecordBatch } from "apache-arrow";

/** The object calls it needs (an R2 bucket has them). */
export interface RangedBucket {
  get(key: string, options?: { range: { offset: number; length: number } }): Promise<{ arrayBuffer(): Promise<ArrayBuffer> } | null>;
  head(key: string): Promise<{ size: number } | null>;
}

/**
 * Small reads (the footer, a batch's metadata) are served from a read-ahead
 * chunk of this many bytes; a read this large or larger (a batch's body) is
 * one GET of exactly its bytes. So a batch costs about two GETs.
 */
export const RANGE_CHUNK_BYTES = 256 * 1024;

/** The object changed or went away while it was being read. */
export class RangedReadError extends Error {
  override readonly name = "RangedReadError";
}

/** The record batches of `key`, in order; null when there is no such object. */
export async function rangedRecordBatches(bucket: RangedBucket, key: string, chunkBytes = RANGE_CHUNK_BYTES): Promise<AsyncIterable<RecordBatch> | null> {
  const head = await bucket.head(key);
  if (head === null) return null;
  const size = head.size;
  let chunk: { offset: number; bytes: Uint8Array } | null = null;
  const fetchRange = async (offset: number, length: number): Promise<Uint8Array> => {
    const object = await bucket.get(key, { range: { offset, length } });
    const bytes = object === null ? null : new Uint8Array(await object.arrayBuffer());
    if (bytes === null || bytes.byteLength !== length) throw new RangedReadError(`${key}: asked for ${length} bytes at ${offset}, got ${bytes?.byteLength ?? "no object"}`);
    return bytes;
  };
  // The shape of a Node FileHandle, which apache-arrow reads at positions.
  const handle = {
    fd: 0,
    stat: async () => ({ size }),
    close: async () => {},
    read: async (buffer: Uint8Array, offset: number, length: number, position: number) => {
      const wanted = Math.min(length, size - position);
      if (wanted >= chunkBytes) {
        buffer.set(await fetchRange(position, wanted), offset);
        return { bytesRead: wanted, buffer };
      }
      if (chunk === null || position < chunk.offset || position + wanted > chunk.offset + chunk.bytes.byteLength) {
        chunk = { offset: position, bytes: await fetchRange(position, Math.min(size - position, chunkBytes)) };
      }
      const from = position - chunk.offset;
      buffer.set(chunk.bytes.subarray(from, from + wanted), offset);
      return { bytesRead: wanted, buffer };
    },
  };
  const reader = await RecordBatchReader.from(handle as never);
  return reader as unknown as AsyncIterable<RecordBatch>;
}
