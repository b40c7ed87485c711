/**
 * PostgreSQL `COPY ... FROM STDIN` in text format: rows to lines, and the
 * write into a `copy` stream of postgres.js with backpressure.
 *
 * @module
 */

import type { Writable } from "node:stream";
import type postgres from "postgres";
import { giveChunks } from "./chunk_pool.ts";
import { ESCAPES, type LineSource, LineWriter } from "./lines.ts";

export { type LineSource, LineWriter, writeDecimal } from "./lines.ts";

/** A value of a COPY row; null is SQL NULL. */
export type CopyValue = string | number | null;

const SPECIAL = /[\\\t\n\r]/;
const SPECIALS = /[\\\t\n\r]/g;

/**
 * One row as a line of COPY text: tab-separated, `\N` for null, backslash,
 * tab, newline and carriage return escaped.
 *
 * @example
 * ```ts
 * import { copyLine } from "./copy.ts";
 * copyLine(["a\tb", 1, null]); // "a\\tb\t1\t\\N\n"
 * ```
 */
export function copyLine(row: readonly CopyValue[]): string {
  let line = "";
  for (let i = 0; i < row.length; i++) {
    const v = row[i];
    if (i > 0) line += "\t";
    if (v === null || v === undefined) line += "\\N";
    else if (typeof v === "number") line += String(v);
    else line += SPECIAL.test(v) ? v.replace(SPECIALS, (c) => ESCAPES[c]!) : v;
  }
  return line + "\n";
}

/** What a COPY takes: value arrays (see {@link copyLine}), or a {@link LineSource}. */
export type CopyRows = readonly (readonly CopyValue[])[] | LineSource;

/**
 * Rows as COPY text, UTF-8 encoded line by line into chunks of about
 * {@link CHUNK_BYTES}. Handing the stream bytes spares its own conversion of a
 * string concatenated from a thousand lines (flatten, count the UTF-8 bytes,
 * encode): in V8 profiles of `consume --drain` the COPY writes took about a
 * tenth less CPU (1.9 s against 2.1 s for 100,000 events and their items).
 *
 * @example
 * ```ts
 * import { copyChunks } from "./copy.ts";
 * const [chunk] = [...copyChunks([["é", 1]])];
 * new TextDecoder().decode(chunk); // "é\t1\n"
 * ```
 */
export function* copyChunks(rows: CopyRows): Generator<Uint8Array> {
  const out = new LineWriter();
  const source = "line" in rows ? rows : valueLines(rows);
  for (let i = 0; i < source.length; i++) {
    source.line(out, i);
    if (out.full.length > 0) yield* out.full.splice(0);
  }
  out.flush();
  yield* out.full.splice(0);
}

/** Value arrays as a {@link LineSource}: each line as {@link copyLine} writes it. */
function valueLines(rows: readonly (readonly CopyValue[])[]): LineSource {
  return {
    length: rows.length,
    line(out, i) {
      const row = rows[i]!;
      for (let j = 0; j < row.length; j++) {
        const v = row[j];
        if (j > 0) out.tab();
        if (v === null || v === undefined) out.ascii("\\N");
        else if (typeof v === "number") out.number(v);
        else out.text(v);
      }
      out.end();
    },
  };
}

/**
 * Writes the chunks of `rows` into `into` with backpressure, then ends it;
 * resolves once the end is written (not acknowledged), or never once the
 * stream is destroyed (its `error` tells).
 */
function pumpRows(into: Writable, data: Iterable<Uint8Array>): Promise<void> {
  return new Promise((resolve) => {
    const chunks = data[Symbol.iterator]();
    const pump = () => {
      for (;;) {
        if (into.destroyed) return;
        const next = chunks.next();
        if (next.done) break;
        if (!into.write(next.value)) return void into.once("drain", pump);
      }
      into.end();
      resolve();
    };
    pump();
  });
}

/**
 * Writes `rows` to a postgres.js COPY stream (`await tx\`copy t from stdin\`.writable()`)
 * and waits until the server has taken them. postgres.js never settles the
 * stream when the connection drops after the last row was written, so a
 * watchdog turns that into an error after `timeoutMs`.
 */
export async function writeCopy(
  into: Writable,
  rows: CopyRows,
  timeoutMs = 60_000,
): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      into.once("error", reject);
      into.once("finish", resolve);
      timer = setTimeout(
        () =>
          reject(new Error(`Cannot finish a COPY of ${rows.length} rows within ${timeoutMs} ms`)),
        timeoutMs,
      );
      void pumpRows(into, copyChunks(rows));
    });
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Like {@link writeCopy}, but for a COPY that may fail on the server (a unique
 * violation, a value the column refuses): resolves only once PostgreSQL
 * accepted every row, and rejects otherwise.
 *
 * postgres.js 3.4.9 loses an error raised after the end of the COPY data (its
 * query promise was resolved with the stream, and the stream neither finishes
 * nor errors). So once the end of the data is on the wire, a `select 1` goes
 * right behind it in the same transaction: it answers only after the COPY's
 * own answer, and fails with 25P02 (transaction aborted) exactly when the COPY
 * failed. An error raised while rows are still being written comes as the
 * stream's `error`, with its reason; one raised at the end is known only as
 * 25P02. Either way the transaction is aborted and the caller rolls back.
 */
export async function copyChecked(
  tx: postgres.TransactionSql,
  into: Writable,
  rows: CopyRows,
  timeoutMs = 60_000,
): Promise<void> {
  await copyCheckedChunks(tx, into, copyChunks(rows), rows.length, timeoutMs);
}

/**
 * {@link copyChecked} for data already encoded (`rows` rows in `chunks`, say
 * binary COPY from `copy_binary.ts`).
 */
export async function copyCheckedChunks(
  tx: postgres.TransactionSql,
  into: Writable,
  chunks: Iterable<Uint8Array>,
  rows: number,
  timeoutMs = 60_000,
): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  // postgres.js writes CopyDone in the stream's _final; a query issued before that is refused
  // (COPY_IN_PROGRESS). A stream that finishes (no _final, or one that waits for nothing) has
  // sent it too.
  const sink = into as Writable & { _final?(cb: (error?: Error | null) => void): void };
  const final = sink._final;
  let over = false;
  const ended = new Promise<void>((resolve) => {
    into.once("finish", resolve);
    if (!final) return;
    sink._final = function (cb) {
      final.call(this, cb);
      resolve();
    };
  }).then(() => void (over = true));
  const failed = new Promise<never>((_, reject) => into.once("error", reject));
  failed.catch(() => {});
  try {
    const written = pumpRows(into, chunks);
    const watchdog = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`Cannot finish a COPY of ${rows} rows within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    await Promise.race([written.then(() => ended), failed, watchdog]);
    await Promise.race([tx`select 1`, failed, watchdog]);
  } finally {
    clearTimeout(timer);
    // Every chunk was written (final runs after the last write), or none will be: reusable.
    if ((over || into.destroyed) && Array.isArray(chunks)) giveChunks(chunks);
  }
}
