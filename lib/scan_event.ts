/**
 * What both consuming stages' byte-level fast paths (services/aggregate/scan.ts,
 * services/consume/scan.ts) check the same way on a scanned event: which
 * fields each kind of event has, its `event_id`, and its timestamp. Over a
 * {@link Scan} of lib/scan_json.ts.
 *
 * @module
 */

import { C, F, mask, NULL, type Scan } from "./scan_json.ts";

/** The bytes of an ASCII string, for the constants the scanners compare against. */
export const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);
/** `event_type` of a `transactions` event. */
export const TRANSACTION = ascii("transaction");
/** The `event_id` prefixes of the pipeline's own events (transactions, behaviour, items). */
export const ID_PREFIX = { txn: ascii("txn-"), ub: ascii("ub-"), ti: ascii("ti-") };

/** The fields every event has (lib/schemas.ts `base`). */
export const BASE = [
  "schema_version",
  "event_id",
  "event_type",
  "customer_id",
  "timestamp",
] as const;
/** A `transactions` event's fields, as a mask for `has`. */
export const TRANSACTION_FIELDS = mask(
  ...BASE,
  "transaction_id",
  "buyer_id",
  "total_cents",
  "payment_method",
  "status",
  "items",
);
/** An item's fields inside a `transactions` event. */
export const ITEM_FIELDS = mask(
  "detail_id",
  "product_id",
  "product_name",
  "category",
  "quantity",
  "unit_price_cents",
);
/** A behaviour event's fields. */
export const BEHAVIOR_FIELDS = mask(
  ...BASE,
  "behavior_id",
  "session_id",
  "product_id",
  "search_query",
  "device",
);
/** `event_id` is `<prefix><id>`, the id in its shortest decimal form. */
export function eventIdIs(s: Scan, prefix: Uint8Array, id: number): boolean {
  const start = s.values[F.event_id]!;
  const end = s.ends[F.event_id]!;
  if (start === NULL || end - start <= prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (s.bytes[start + i] !== prefix[i]) return false;
  const digits = start + prefix.length;
  if (end - digits > 15 || s.bytes[digits] === C.Zero) return false;
  let v = 0;
  for (let p = digits; p < end; p++) {
    const c = s.bytes[p]!;
    if (c < C.Zero || c > C.Nine) return false;
    v = v * 10 + (c - C.Zero);
  }
  return v === id;
}

// The last second seen (`YYYY-MM-DDTHH:MM:SS`) and its time: events of a backlog share seconds.
const lastSecond = new Uint8Array(19);
let lastSecondMs = NaN;
const TIMESTAMP_SHAPE = "dddd-dd-ddTdd:dd:dd.dddZ";
// The shape as positions: a loop over the shape's characters cost 0.4 µs an event.
const DIGITS = Uint8Array.from([...TIMESTAMP_SHAPE].flatMap((c, i) => c === "d" ? [i] : []));
const MARKS = Uint8Array.from([...TIMESTAMP_SHAPE].flatMap((c, i) => c === "d" ? [] : [i]));

/** Event time of a `YYYY-MM-DDTHH:MM:SS.mmmZ` timestamp that Date.parse accepts; else NaN. */
export function timestampMs(s: Scan): number {
  const start = s.values[F.timestamp]!;
  if (start === NULL || s.ends[F.timestamp]! - start !== TIMESTAMP_SHAPE.length) return NaN;
  const b = s.bytes;
  for (let k = 0; k < MARKS.length; k++) {
    const i = MARKS[k]!;
    if (b[start + i] !== TIMESTAMP_SHAPE.charCodeAt(i)) return NaN;
  }
  for (let k = 0; k < DIGITS.length; k++) {
    if (((b[start + DIGITS[k]!]! - C.Zero) >>> 0) > 9) return NaN;
  }
  // Plain clock times only (no hour 24, no leap second): those Date.parse handles alike
  // with any milliseconds, which the tests check.
  const two = (i: number) => (b[start + i]! - C.Zero) * 10 + b[start + i + 1]! - C.Zero;
  if (two(11) > 23 || two(14) > 59 || two(17) > 59) return NaN;
  // From the end: the seconds differ first.
  let same = lastSecondMs === lastSecondMs; // not NaN
  for (let i = 18; same && i >= 0; i--) same = b[start + i] === lastSecond[i];
  if (!same) {
    for (let i = 0; i < 19; i++) lastSecond[i] = b[start + i]!;
    // Date.parse itself decides what is a date; the milliseconds only add on.
    lastSecondMs = Date.parse(`${String.fromCharCode(...lastSecond)}.000Z`);
  }
  const milli = (b[start + 20]! - C.Zero) * 100 + (b[start + 21]! - C.Zero) * 10 +
    (b[start + 22]! - C.Zero);
  return lastSecondMs + milli;
}
