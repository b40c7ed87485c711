/**
 * The PostgreSQL anchor: a raw `COPY ... FROM STDIN` of the warehouse rows
 * the consumer stored (`realtime_events` and `fact_sales`, same indexes) into
 * scratch twins in the bench namespace, timed from the first byte to the
 * server's acknowledgement.
 * It is what loading the same rows costs with nothing else in the way: no
 * Kafka, no parsing, no conflict handling.
 *
 * @module
 */

import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Sql } from "../../lib/db.ts";
import { copyLine } from "../consume/copy.ts";

/** Columns written, in order; `processed_at` takes its default as in the consumer. */
export const COPY_COLUMNS = [
  "event_id",
  "event_type",
  "customer_id",
  "timestamp",
  "source_topic",
  "source_partition",
  "source_offset",
  "payload",
] as const;

/** `fact_sales` columns, in the consumer's COPY order. */
export const SALE_COLUMNS = [
  "detail_id",
  "event_id",
  "transaction_id",
  "customer_id",
  "product_id",
  "category",
  "quantity",
  "unit_price_cents",
  "revenue_cents",
  "event_time",
] as const;

/** The warehouse rows a load writes per event and per item, as COPY text lines. */
export interface WarehouseLines {
  /** `realtime_events`, one a stored event. */
  events: string[];
  /** `fact_sales`, one a transaction item. */
  sales: string[];
}

/**
 * Reads the rows the consumer stored in `realtime_events` and `fact_sales`,
 * as COPY text lines, to load them again. A plain cursor rather than
 * `COPY ... TO STDOUT`: with postgres.js on Deno, a multi-chunk COPY TO left
 * the connection unable to run its next query.
 */
export async function exportWarehouseLines(sql: Sql): Promise<WarehouseLines> {
  const events: string[] = [];
  for await (
    const rows of sql<Record<string, string | number>[]>`select event_id, event_type, customer_id,
      "timestamp"::text as "timestamp", source_topic, source_partition, source_offset,
      payload::text as payload
    from realtime_events order by source_topic, source_partition, source_offset`.cursor(5000)
  ) {
    for (const r of rows) events.push(copyLine(COPY_COLUMNS.map((c) => r[c]!)));
  }
  const sales: string[] = [];
  for await (
    const rows of sql<Record<string, string | number>[]>`select detail_id, event_id,
      transaction_id, customer_id, product_id, category, quantity, unit_price_cents,
      revenue_cents, event_time::text as event_time
    from fact_sales order by detail_id`.cursor(5000)
  ) {
    for (const r of rows) sales.push(copyLine(SALE_COLUMNS.map((c) => r[c]!)));
  }
  return { events, sales };
}

export interface CopyResult {
  /** `realtime_events` rows loaded. */
  rows: number;
  /** `fact_sales` rows loaded. */
  saleRows: number;
  /** Both loads. */
  ms: number;
  eventsMs: number;
  salesMs: number;
  tables: string[];
}

/**
 * Loads `lines` with `COPY ... FROM STDIN` into empty twins of
 * `realtime_events` and `fact_sales` (`like ... including all`: the same
 * keys and indexes), timed; the twins are dropped first so that a re-run
 * starts empty. Both tables, because those are the rows the consumer writes
 * for the same events: a transaction is one `realtime_events` row and one
 * `fact_sales` row per item.
 */
export async function copyAnchor(
  sql: Sql,
  lines: WarehouseLines,
  { prefix = "bench_copy", chunkRows = 2000 } = {},
): Promise<CopyResult> {
  const eventsTable = `${prefix}_events`;
  const salesTable = `${prefix}_sales`;
  await twin(sql, eventsTable, "realtime_events");
  await twin(sql, salesTable, "fact_sales");
  const eventsMs = await timedCopy(sql, eventsTable, COPY_COLUMNS, lines.events, chunkRows);
  const salesMs = await timedCopy(sql, salesTable, SALE_COLUMNS, lines.sales, chunkRows);
  return {
    rows: lines.events.length,
    saleRows: lines.sales.length,
    ms: eventsMs + salesMs,
    eventsMs,
    salesMs,
    tables: [eventsTable, salesTable],
  };
}

async function twin(sql: Sql, table: string, like: string): Promise<void> {
  await sql.unsafe(`drop table if exists ${table}`);
  await sql.unsafe(`create table ${table} (like ${like} including all)`);
}

/** COPYs `lines` into `table` and checks the count; returns the ms from first byte to ack. */
async function timedCopy(
  sql: Sql,
  table: string,
  columns: readonly string[],
  lines: readonly string[],
  chunkRows: number,
): Promise<number> {
  const chunks = function* () {
    for (let i = 0; i < lines.length; i += chunkRows) {
      yield lines.slice(i, i + chunkRows).join("");
    }
  };
  const started = performance.now();
  const load = async () => {
    const writable = await sql`copy ${sql(table)} (${sql(columns as string[])}) from stdin`
      .writable();
    await pipeline(Readable.from(chunks()), writable);
  };
  // Never hang the whole run: a COPY slower than 1,000 rows/s plus a minute is a failure.
  const limitMs = 60_000 + lines.length;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      load(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new Error(
                `Cannot finish the COPY anchor into ${table}: ${lines.length} rows took over ${limitMs} ms`,
              ),
            ),
          limitMs,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
  const ms = performance.now() - started;
  const [{ count }] = await sql.unsafe<{ count: number }[]>(
    `select count(*)::int as count from ${table}`,
  ) as unknown as [{ count: number }];
  if (count !== lines.length) {
    throw new Error(
      `Cannot trust the COPY anchor as it loaded ${count} of ${lines.length} rows into ${table}`,
    );
  }
  return ms;
}
