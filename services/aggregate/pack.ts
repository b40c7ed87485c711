/**
 * The events of a bitmap section as one MessagePack array of non-negative
 * integers, which the Redis script reads with `cmsgpack.unpack` in one call:
 * one argument per section instead of three strings per event (each of which
 * ioredis measured and wrote, and Redis parsed into an object and a Lua
 * string).
 *
 * @module
 */

/**
 * `values` (non-negative integers below 2^53) as a MessagePack array.
 *
 * @example
 * ```ts
 * import { packUints } from "./pack.ts";
 * packUints([1, 300]); // Uint8Array [0xdd, 0, 0, 0, 2, 0x01, 0xcd, 0x01, 0x2c]
 * ```
 */
export function packUints(values: readonly number[]): Uint8Array {
  const out = new Uint8Array(5 + 9 * values.length);
  const view = new DataView(out.buffer);
  out[0] = 0xdd; // array 32
  view.setUint32(1, values.length);
  let p = 5;
  for (const v of values) {
    if (!Number.isSafeInteger(v) || v < 0) {
      throw new RangeError(`Cannot pack ${v}: not a non-negative safe integer`);
    }
    if (v < 0x80) out[p++] = v;
    else if (v < 0x100) {
      out[p++] = 0xcc;
      out[p++] = v;
    } else if (v < 0x10000) {
      out[p++] = 0xcd;
      view.setUint16(p, v);
      p += 2;
    } else if (v < 0x100000000) {
      out[p++] = 0xce;
      view.setUint32(p, v);
      p += 4;
    } else {
      out[p++] = 0xcf;
      view.setUint32(p, Math.floor(v / 0x100000000));
      view.setUint32(p + 4, v % 0x100000000);
      p += 8;
    }
  }
  return out.subarray(0, p);
}
