/**
 * The COPY lines of `realtime_events` and `fact_sales`, in the tables' column
 * order, written straight into the COPY chunks ({@link LineWriter}): no array
 * of values and no string per line, and a payload the fast path read goes in
 * as its bytes.
 *
 * @module
 */

import type { WarehouseRows } from "./rows.ts";

const SPECIAL = /[\\\t\n\r]/;
const SPECIALS = /[\\\t\n\r]/g;
/** COPY text's escapes (as `copyLine` in ./copy.ts writes them). */
export const ESCAPES: Record<string, string> = {
  "\\": "\\\\",
  "\t": "\\t",
  "\n": "\\n",
  "\r": "\\r",
};

/** Bytes per write, about: whole lines, so no character is ever split between chunks. */
const CHUNK_BYTES = 1 << 20;
const encoder = new TextEncoder();

/**
 * Rows that write their own COPY lines ({@link LineWriter}), as
 * `realtime_events` and `fact_sales` rows do (below), rather than
 * value arrays.
 */
export interface LineSource {
  readonly length: number;
  /** Writes row `i`, newline included. */
  line(out: LineWriter, i: number): void;
}

/**
 * COPY text written as UTF-8 straight into chunks of about
 * {@link CHUNK_BYTES}, whole lines each: the line writers of ./lines.ts
 * put numbers, ASCII and the payload bytes in place, with no string per line.
 */
export class LineWriter {
  #buffer = new Uint8Array(CHUNK_BYTES);
  #used = 0;
  #lineStart = 0;
  /** Chunks completed, for the caller to take. */
  readonly full: Uint8Array[] = [];

  /** Makes room for `n` more bytes; a line that does not fit moves to a new chunk. */
  #room(n: number): Uint8Array {
    if (this.#used + n <= this.#buffer.length) return this.#buffer;
    const partial = this.#buffer.subarray(this.#lineStart, this.#used);
    if (this.#lineStart > 0) this.full.push(this.#buffer.subarray(0, this.#lineStart));
    const next = new Uint8Array(Math.max(CHUNK_BYTES, (partial.length + n) * 2));
    next.set(partial);
    this.#buffer = next;
    this.#used = partial.length;
    this.#lineStart = 0;
    return next;
  }

  /** A text value, escaped as {@link copyLine} escapes it. */
  text(v: string): void {
    const n = v.length;
    const b = this.#room(n * 3);
    const start = this.#used;
    if (n <= 64) {
      // Short ASCII with nothing to escape, byte by byte: cheaper than a call to the encoder.
      let o = start;
      for (let i = 0; i < n; i++) {
        const c = v.charCodeAt(i);
        if (c >= 0x80 || c === 0x5c || c === 0x09 || c === 0x0a || c === 0x0d) {
          o = -1;
          break;
        }
        b[o++] = c;
      }
      if (o >= 0) {
        this.#used = o;
        return;
      }
    }
    if (SPECIAL.test(v)) v = v.replace(SPECIALS, (c) => ESCAPES[c]!);
    // Escaping at most doubles the length: room for 3 bytes per character of that.
    const room = v.length > n ? this.#room(v.length * 3) : b;
    this.#used += encoder.encodeInto(v, room.subarray(this.#used)).written;
  }

  /** ASCII that is COPY text already (nothing to escape). */
  ascii(v: string): void {
    const b = this.#room(v.length);
    let o = this.#used;
    for (let i = 0; i < v.length; i++) b[o++] = v.charCodeAt(i);
    this.#used = o;
  }

  /** A number as `String(v)` writes it. */
  number(v: number): void {
    if (!(v >= 0 && v <= Number.MAX_SAFE_INTEGER && Number.isInteger(v))) {
      return this.text(String(v));
    }
    this.#used = writeDecimal(this.#room(16), this.#used, v);
  }

  /** Bytes that are COPY text already: UTF-8 with no backslash, tab, newline or return. */
  raw(bytes: Uint8Array): void {
    const b = this.#room(bytes.length);
    b.set(bytes, this.#used);
    this.#used += bytes.length;
  }

  /** The column separator. */
  tab(): void {
    this.#room(1)[this.#used++] = 0x09;
  }

  /** Ends the line. */
  end(): void {
    this.#room(1)[this.#used++] = 0x0a;
    this.#lineStart = this.#used;
  }

  /** Moves the lines written so far, if any, to {@link full}. */
  flush(): void {
    if (this.#used === 0) return;
    this.full.push(this.#buffer.subarray(0, this.#used));
    this.#buffer = this.#buffer.subarray(this.#used);
    if (this.#buffer.length < 4096) this.#buffer = new Uint8Array(CHUNK_BYTES);
    this.#used = this.#lineStart = 0;
  }
}

/**
 * Writes `v`, a safe integer >= 0, in decimal (as `String(v)`) at `o`;
 * returns the offset after it (at most 16 digits).
 */
export function writeDecimal(b: Uint8Array, o: number, v: number): number {
  if (v < 10) {
    b[o] = 0x30 + v;
    return o + 1;
  }
  let end = o + 2;
  for (let t = 100; t <= v && end - o < 16; t *= 10) end++;
  let p = end;
  // Below 2^31 the quotient is a small integer: `| 0` rather than Math.floor.
  while (v > 0x7fffffff) {
    const q = Math.floor(v / 10);
    b[--p] = 0x30 + (v - q * 10);
    v = q;
  }
  while (v >= 10) {
    const q = (v / 10) | 0;
    b[--p] = 0x30 + (v - q * 10);
    v = q;
  }
  b[--p] = 0x30 + v;
  return end;
}

/**
 * `realtime_events` rows: event_id, event_type, customer_id, timestamp,
 * source_topic, source_partition, source_offset, payload.
 */
export function eventLines(rows: WarehouseRows): LineSource {
  const events = rows.events;
  return {
    length: events.length,
    line(out: LineWriter, i: number) {
      const r = events[i]!;
      out.text(r.event_id);
      out.tab();
      out.text(r.event_type);
      out.tab();
      out.number(r.customer_id);
      out.tab();
      out.text(r.timestamp);
      out.tab();
      out.text(r.source_topic);
      out.tab();
      out.number(r.source_partition);
      out.tab();
      out.text(r.source_offset);
      out.tab();
      // Bytes only from the fast path, which vouched they need no escaping (rows.ts EventRow).
      if (typeof r.payload === "string") out.text(r.payload);
      else out.raw(r.payload);
      out.end();
    },
  };
}

/**
 * `fact_sales` rows: detail_id, event_id, transaction_id, customer_id,
 * product_id, category, quantity, unit_price_cents, revenue_cents, event_time.
 */
export function saleLines(rows: WarehouseRows): LineSource {
  const sales = rows.sales;
  return {
    length: sales.length,
    line(out: LineWriter, i: number) {
      const r = sales[i]!;
      out.number(r.detail_id);
      out.tab();
      out.text(r.event_id);
      out.tab();
      out.number(r.transaction_id);
      out.tab();
      out.number(r.customer_id);
      out.tab();
      out.number(r.product_id);
      out.tab();
      out.text(r.category);
      out.tab();
      out.number(r.quantity);
      out.tab();
      out.number(r.unit_price_cents);
      out.tab();
      out.number(r.revenue_cents);
      out.tab();
      out.text(r.event_time);
      out.end();
    },
  };
}
