/**
 * PostgreSQL `COPY ... FROM STDIN (FORMAT binary)` for the fast path's two
 * tables: `realtime_events` and `fact_sales` rows as binary COPY chunks.
 *
 * Why: in text format the server scans every line for escapes and parses each
 * `timestamptz` and `int8` from text; in binary it takes lengths and integers
 * as they come. Loading the same 100,000 events from a file took the backend
 * about a fifth less CPU in binary (see docs/consume.md, "Performance").
 *
 * A binary row must be stored exactly as its text line would be, so only
 * values whose binary form is certain are encoded: timestamps of the strict
 * form `YYYY-MM-DDTHH:MM:SS[.ffffff]Z` with a real calendar date (years
 * 1800-2200, so that microseconds stay exact in a double), integers in range.
 * For anything else the encoders return `undefined` and the caller COPYs that
 * table as text, so PostgreSQL itself judges the value (2026-02-30 is refused
 * exactly as before).
 *
 * @module
 */

import { CHUNK_BYTES, takeChunk } from "./chunk_pool.ts";
import type { EventRow, SaleRow, WarehouseRows } from "./rows.ts";

/** `PGCOPY\n\377\r\n\0`, then flags (int32 0) and header extension length (int32 0). */
const HEADER = [
  0x50,
  0x47,
  0x43,
  0x4f,
  0x50,
  0x59,
  0x0a,
  0xff,
  0x0d,
  0x0a,
  0x00,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
];
/** Milliseconds from 1970-01-01 to PostgreSQL's epoch, 2000-01-01 (UTC). */
const PG_EPOCH_MS = 946_684_800_000;
const INT4_MIN = -(2 ** 31);
const INT4_MAX = 2 ** 31 - 1;
const OFFSET = /^\d{1,15}$/;
const encoder = new TextEncoder();

/** Thrown inside an encoder for a value it cannot vouch for; the table then goes as text. */
class NotBinary extends Error {}

/** Writes binary COPY data into chunks of about {@link CHUNK_BYTES}. */
class BinaryCopyWriter {
  readonly chunks: Uint8Array[] = [];
  // Chunks come from the pool (./chunk_pool.ts); the COPY gives them back (./copy.ts).
  private buffer = takeChunk();
  private view = new DataView(this.buffer.buffer);
  private used = 0;
  private lastTime = "";
  private lastMicros: number | undefined;

  constructor() {
    this.buffer.set(HEADER);
    this.used = HEADER.length;
  }

  /** Starts a row of `fields` columns needing at most `bytes` bytes (lengths included). */
  row(fields: number, bytes: number): void {
    if (this.used + 2 + bytes > this.buffer.length) {
      this.chunks.push(this.buffer.subarray(0, this.used));
      this.buffer = 2 + bytes <= CHUNK_BYTES ? takeChunk() : new Uint8Array(2 + bytes);
      this.view = new DataView(this.buffer.buffer);
      this.used = 0;
    }
    this.view.setInt16(this.used, fields);
    this.used += 2;
  }

  text(value: string): void {
    if (typeof value !== "string") throw new NotBinary();
    const n = value.length;
    if (n <= 64) {
      // Short ASCII (ids, types, topics, categories) byte by byte: cheaper than the encoder.
      const b = this.buffer;
      let o = this.used + 4;
      let i = 0;
      for (; i < n; i++) {
        const c = value.charCodeAt(i);
        if (c >= 0x80) break;
        b[o++] = c;
      }
      if (i === n) {
        this.view.setInt32(this.used, n);
        this.used = o;
        return;
      }
    }
    const { read, written } = encoder.encodeInto(value, this.buffer.subarray(this.used + 4));
    if (read !== value.length) {
      throw new Error("Cannot encode a COPY value as its row's room is short");
    }
    this.view.setInt32(this.used, written);
    this.used += 4 + written;
  }

  /** Bytes that are the value's text as they are (a payload the fast path read). */
  bytes(value: Uint8Array): void {
    this.view.setInt32(this.used, value.length);
    this.buffer.set(value, this.used + 4);
    this.used += 4 + value.length;
  }

  int4(value: number): void {
    if (!Number.isInteger(value) || value < INT4_MIN || value > INT4_MAX) throw new NotBinary();
    this.view.setInt32(this.used, 4);
    this.view.setInt32(this.used + 4, value);
    this.used += 8;
  }

  int8(value: number): void {
    if (!Number.isSafeInteger(value)) throw new NotBinary();
    this.view.setInt32(this.used, 8);
    // A safe integer as two 32-bit halves: no BigInt per value.
    const high = Math.floor(value / 2 ** 32);
    this.view.setInt32(this.used + 4, high);
    this.view.setUint32(this.used + 8, value - high * 2 ** 32);
    this.used += 12;
  }

  /** `timestamptz` from an ISO 8601 UTC text: microseconds since 2000-01-01 as int8. */
  timestamptz(value: string): void {
    // Events of one moment share one timestamp string (the fast path's): parsed once.
    if (value !== this.lastTime) {
      this.lastMicros = isoMicros(value);
      this.lastTime = value;
    }
    if (this.lastMicros === undefined) throw new NotBinary();
    this.int8(this.lastMicros);
  }

  /** The trailer (int16 -1), then every chunk. */
  finish(): Uint8Array[] {
    this.row(-1, 0);
    this.chunks.push(this.buffer.subarray(0, this.used));
    return this.chunks;
  }
}

/** Bytes a string can take in UTF-8, at most (bytes: their length), plus its length word. */
function textBytes(value: string | Uint8Array): number {
  return 4 + (typeof value === "string" ? 3 * value.length : value.length);
}

/**
 * `realtime_events` rows in binary COPY format, columns `event_id,
 * event_type, customer_id, "timestamp", source_topic, source_partition,
 * source_offset, payload` (as in `eventLines`); `undefined` when any value
 * is not certain to be stored as its text form would be.
 *
 * @example
 * ```ts ignore
 * const chunks = binaryEventChunks(rows); // then `copy ... from stdin (format binary)`
 * ```
 */
export function binaryEventChunks(rows: WarehouseRows): Uint8Array[] | undefined {
  return encode(rows.events, (w, r: EventRow) => {
    w.row(
      8,
      textBytes(r.event_id) + textBytes(r.event_type) + 12 + 12 + textBytes(r.source_topic) +
        8 + 12 + textBytes(r.payload),
    );
    w.text(r.event_id);
    w.text(r.event_type);
    w.int8(r.customer_id);
    w.timestamptz(r.timestamp);
    w.text(r.source_topic);
    w.int4(r.source_partition);
    if (typeof r.source_offset !== "string" || !OFFSET.test(r.source_offset)) throw new NotBinary();
    w.int8(Number(r.source_offset));
    if (typeof r.payload === "string") w.text(r.payload);
    else w.bytes(r.payload);
  });
}

/**
 * `fact_sales` rows in binary COPY format, columns `detail_id, event_id,
 * transaction_id, customer_id, product_id, category, quantity,
 * unit_price_cents, revenue_cents, event_time` (as in `saleLines`);
 * `undefined` when any value is not certain.
 */
export function binarySaleChunks(rows: WarehouseRows): Uint8Array[] | undefined {
  return encode(rows.sales, (w, r: SaleRow) => {
    w.row(10, 12 + textBytes(r.event_id) + 36 + textBytes(r.category) + 8 + 36);
    w.int8(r.detail_id);
    w.text(r.event_id);
    w.int8(r.transaction_id);
    w.int8(r.customer_id);
    w.int8(r.product_id);
    w.text(r.category);
    w.int4(r.quantity);
    w.int8(r.unit_price_cents);
    w.int8(r.revenue_cents);
    w.timestamptz(r.event_time);
  });
}

function encode<T>(
  rows: readonly T[],
  write: (writer: BinaryCopyWriter, row: T) => void,
): Uint8Array[] | undefined {
  const writer = new BinaryCopyWriter();
  try {
    for (const row of rows) write(writer, row);
  } catch (error) {
    if (error instanceof NotBinary) return undefined;
    throw error;
  }
  return writer.finish();
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * Microseconds since 2000-01-01 UTC of `YYYY-MM-DDTHH:MM:SS[.f{1,6}]Z`, or
 * `undefined` unless the text has exactly that form, a real date (no Feb 30,
 * no hour 24, no leap second) and a year in 1800-2200. Where it answers, the
 * answer is what PostgreSQL's `timestamptz` input gives for the same text
 * (fractions of up to six digits are exact microseconds there too).
 *
 * @example
 * ```ts
 * import { isoMicros } from "./copy_binary.ts";
 * isoMicros("2000-01-01T00:00:01.5Z"); // 1500000
 * isoMicros("2026-02-30T00:00:00Z"); // undefined
 * ```
 */
export function isoMicros(text: string): number | undefined {
  const n = text.length;
  if (n < 20 || n > 27 || text.charCodeAt(n - 1) !== 0x5a /* Z */) return undefined;
  if (
    text[4] !== "-" || text[7] !== "-" || text[10] !== "T" || text[13] !== ":" ||
    text[16] !== ":"
  ) return undefined;
  const year = digits(text, 0, 4);
  const month = digits(text, 5, 2);
  const day = digits(text, 8, 2);
  const hour = digits(text, 11, 2);
  const minute = digits(text, 14, 2);
  const second = digits(text, 17, 2);
  if (year < 1800 || year > 2200 || month < 1 || month > 12 || day < 1) return undefined;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  if (day > DAYS_IN_MONTH[month - 1]! + (month === 2 && leap ? 1 : 0)) return undefined;
  if (hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59) {
    return undefined;
  }
  let fraction = 0;
  if (n > 20) {
    // ".f" to ".ffffff" between the seconds and the Z.
    if (text[19] !== "." || n === 21) return undefined;
    const places = n - 21;
    fraction = digits(text, 20, places);
    if (fraction < 0) return undefined;
    fraction *= 10 ** (6 - places);
  }
  const ms = Date.UTC(year, month - 1, day, hour, minute, second);
  return (ms - PG_EPOCH_MS) * 1000 + fraction;
}

/** The decimal number of `length` ASCII digits at `start`, or -1 if any is not a digit. */
function digits(text: string, start: number, length: number): number {
  let value = 0;
  for (let i = start; i < start + length; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    value = value * 10 + d;
  }
  return value;
}
