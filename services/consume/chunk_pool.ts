/**
 * COPY chunk buffers, reused: a buffer given back once its COPY is over is
 * handed out again instead of new memory. Fresh memory costs here: in CPU
 * profiles of the consumer the first write into each new 1 MiB chunk (page
 * faults) cost about as much as encoding what went into it, and every new
 * chunk counts as external memory that brings V8's next full collection
 * closer. postgres.js copies each chunk as it is written (`b().raw`), so a
 * chunk is free again once its COPY stream has finished, or was destroyed
 * (what it still held is never read).
 *
 * @module
 */

/** Bytes per pooled chunk. */
export const CHUNK_BYTES = 1 << 20;
/** Buffers kept for reuse, at most: two flushes in flight write about 6 MiB each. */
const KEEP = 16;

const free: ArrayBuffer[] = [];
/** Buffers this pool handed out, so that only those come back. */
const ours = new WeakSet<ArrayBuffer>();

/** A buffer of {@link CHUNK_BYTES}, reused when one was given back. */
export function takeChunk(): Uint8Array {
  const buffer = free.pop() ?? new ArrayBuffer(CHUNK_BYTES);
  ours.add(buffer);
  return new Uint8Array(buffer);
}

/**
 * Gives back the buffers under `chunks` that {@link takeChunk} handed out.
 * The caller guarantees nothing reads them any more.
 */
export function giveChunks(chunks: Iterable<Uint8Array>): void {
  for (const chunk of chunks) {
    const buffer = chunk.buffer as ArrayBuffer;
    if (!ours.has(buffer)) continue;
    ours.delete(buffer);
    if (free.length < KEEP) free.push(buffer);
  }
}
