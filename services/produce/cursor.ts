/**
 * The producer's position in a stream: the `(txid, id)` of the last row Kafka
 * acknowledged. Rows are published in `(txid, id)` order, so "after the
 * cursor" is one row comparison that the `(txid, id)` index answers.
 *
 * @module
 */

/** A position in `(txid, id)` order; `txid` is an `xid8` (64-bit, epoch included). */
export interface Cursor {
  readonly txid: bigint;
  readonly id: bigint;
}

/** Before every row: xid8 values of real transactions start at 3. */
export const START: Cursor = { txid: 0n, id: 0n };

/** Negative, zero or positive as `a` is before, at or after `b`. */
export function compareCursor(a: Cursor, b: Cursor): number {
  if (a.txid !== b.txid) return a.txid < b.txid ? -1 : 1;
  if (a.id !== b.id) return a.id < b.id ? -1 : 1;
  return 0;
}

/** The later of two cursors. */
export function maxCursor(a: Cursor, b: Cursor): Cursor {
  return compareCursor(a, b) >= 0 ? a : b;
}

/**
 * A cursor from the text the queries return (`txid::text`) and an id column.
 *
 * @example
 * ```ts
 * import { cursorOf, formatCursor } from "./cursor.ts";
 * formatCursor(cursorOf("812", 41)); // "812:41"
 * ```
 */
export function cursorOf(txid: string | bigint, id: number | bigint | string): Cursor {
  return { txid: BigInt(txid), id: BigInt(id) };
}

/** `txid:id`, as logs and the heartbeat show it. */
export function formatCursor(cursor: Cursor): string {
  return `${cursor.txid}:${cursor.id}`;
}

/** Query parameters of a cursor (`$n::xid8`, `$n::int8` take text). */
export function cursorParams(cursor: Cursor): [string, string] {
  return [cursor.txid.toString(), cursor.id.toString()];
}
