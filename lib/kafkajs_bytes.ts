/**
 * The byte-level pieces of the Produce request that ./kafkajs_produce.ts
 * writes: zigzag varints, the lengths and writes of keys and values (strings
 * as UTF-8, byte arrays as they are), kafkajs' string sizes, and CRC-32C by
 * slicing-by-8. Each gives the bytes kafkajs' own encoder gives
 * (`tests/kafkajs_produce_test.ts`).
 *
 * @module
 */

import { Buffer } from "node:buffer";

/** Bytes of a zigzag varint of a 32-bit value, as kafkajs' `sizeOfVarInt`. */
export function sizeOfVarInt(value: number): number {
  let z = (value << 1) ^ (value >> 31);
  let bytes = 1;
  while ((z & 0xffffff80) !== 0) {
    bytes++;
    z >>>= 7;
  }
  return bytes;
}

/** Writes a zigzag varint of a 32-bit value at `offset`; returns the offset after it. */
export function writeVarInt(buf: Buffer, offset: number, value: number): number {
  let z = (value << 1) ^ (value >> 31);
  while ((z & 0xffffff80) !== 0) {
    buf[offset++] = (z & 0x7f) | 0x80;
    z >>>= 7;
  }
  buf[offset++] = z & 0x7f;
  return offset;
}

/** UTF-8 length of a key or value, or -1 for null; undefined when this path cannot encode it. */
export function lengthOf(value: unknown): number | undefined {
  if (typeof value === "string") {
    return isShortAscii(value) ? value.length : Buffer.byteLength(value, "utf8");
  }
  if (value === null || value === undefined) return -1;
  // A Buffer, or a plain Uint8Array (consume's transaction_item values): bytes as they are.
  if (value instanceof Uint8Array) return value.length;
  return undefined;
}

/** Short ASCII (a key): its length is its UTF-8 length, with no call out to count it. */
function isShortAscii(value: string): boolean {
  if (value.length > 32) return false;
  for (let i = 0; i < value.length; i++) if (value.charCodeAt(i) >= 0x80) return false;
  return true;
}

/** Bytes of kafkajs' `writeString` (int16 length, UTF-8; null is length -1 alone). */
export function sizeOfString(value: string | null | undefined): number {
  return 2 + (value === null || value === undefined ? 0 : Buffer.byteLength(value, "utf8"));
}

const utf8 = new TextEncoder();

/**
 * Writes a key or value of `length` bytes at `offset`. Strings go through
 * `encodeInto` on a plain `Uint8Array` view: Deno's `Buffer#write` costs
 * about 3 µs a call, this about 0.2 µs (same UTF-8, lone surrogates as U+FFFD).
 */
export function writeBytes(
  bytes: Uint8Array,
  offset: number,
  value: unknown,
  length: number,
): number {
  if (length <= 0) return offset;
  if (typeof value !== "string") bytes.set(value as Uint8Array, offset);
  else if (length === value.length && length <= 32) {
    // Short ASCII (a key), byte by byte.
    for (let i = 0; i < length; i++) bytes[offset + i] = value.charCodeAt(i);
  } else utf8.encodeInto(value, bytes.subarray(offset, offset + length));
  return offset + length;
}

/** CRC-32C (Castagnoli) tables for slicing-by-8: T[k * 256 + b] is byte b followed by k zeros. */
const T = new Int32Array(8 * 256);
for (let b = 0; b < 256; b++) {
  let c = b;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  T[b] = c;
}
for (let i = 256; i < T.length; i++) T[i] = (T[i - 256]! >>> 8) ^ T[T[i - 256]! & 0xff]!;

/**
 * CRC-32C of `buf[from, to)`, as kafkajs' `crc32C` of that slice (unsigned).
 * The odd bytes go first, byte by byte, so that both loops have run when the
 * first long call is optimised on stack replacement inside the 8-byte loop:
 * with the byte loop after it, that code had never seen the byte loop and was
 * thrown away there (16 deoptimisations in a 100,000-event drain, 4-8 now).
 */
export function crc32c(buf: Uint8Array, from: number, to: number): number {
  let crc = -1;
  let i = from;
  for (const head = from + ((to - from) & 7); i < head; i++) {
    crc = T[(crc ^ buf[i]!) & 0xff]! ^ (crc >>> 8);
  }
  for (; i < to; i += 8) {
    const lo = crc ^ (buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24));
    crc = T[0x700 + (lo & 0xff)]! ^ T[0x600 + ((lo >>> 8) & 0xff)]! ^
      T[0x500 + ((lo >>> 16) & 0xff)]! ^ T[0x400 + (lo >>> 24)]! ^ T[0x300 + buf[i + 4]!]! ^
      T[0x200 + buf[i + 5]!]! ^ T[0x100 + buf[i + 6]!]! ^ T[buf[i + 7]!]!;
  }
  return (crc ^ -1) >>> 0;
}
