/**
 * The PostgreSQL anchor: a raw `COPY ... FROM STDIN` of the warehouse rows
 * the consumer stored (`realtime_events` and `fact_sales`, same indexes) into
 * scratch twins in the bench namespace, timed from the first byte to the
 * server's acknowledgement, in text and in binary format. It is what loading
 * the same rows costs with nothing else in the way: no Kafka, no parsing, no
 * conflict handling. The consumer's fast path COPYs in binary when it can
 * (`services/consume/copy_binary.ts`), so the anchor tries both formats with
 * the consumer's own encoders and keeps the faster.
 *
 * @module
 */

import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Sql } from "../../lib/db.ts";
import { copyChunks } from "../consume/copy.ts";
import { binaryEventChunks, binarySaleChunks } from "../consume/copy_binary.ts";
import type { EventRow, SaleRow, WarehouseRows } from "../consume/rows.ts";
import { eventLines, saleLines } from "../consume/staged.ts";

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

/** The rows a load writes: one `realtime_events` row an event, one `fact_sales` row an item. */
export type StoredRows = Pick<WarehouseRows, "events" | "sales">;

export type CopyFormat = "text" | "binary";

/** ISO 8601 in UTC with microseconds: the form the events carry and the binary encoder takes. */
const ISO = `'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'`;

/**
 * Reads the rows the consumer stored in `realtime_events` and `fact_sales`,
 * to load them again. A plain cursor rather than `COPY ... TO STDOUT`: with
 * postgres.js on Deno, a multi-chunk COPY TO left the connection unable to
 * run its next query.
 */
export async function exportWarehouseRows(sql: Sql): Promise<StoredRows> {
  const events: EventRow[] = [];
  for await (
    const rows of sql<EventRow[]>`select event_id, event_type, customer_id::float8 as customer_id,
      to_char("timestamp" at time zone 'UTC', ${sql.unsafe(ISO)}) as "timestamp", source_topic,
      source_partition, source_offset::text as source_offset, payload::text as payload
    from realtime_events order by source_topic, source_partition, source_offset`.cursor(5000)
  ) {
    events.push(...rows);
  }
  const sales: SaleRow[] = [];
  for await (
    const rows of sql<SaleRow[]>`select detail_id::float8 as detail_id, event_id,
      transaction_id::float8 as transaction_id, customer_id::float8 as customer_id,
      product_id::float8 as product_id, category, quantity,
      unit_price_cents::float8 as unit_price_cents, revenue_cents::float8 as revenue_cents,
      to_char(event_time at time zone 'UTC', ${sql.unsafe(ISO)}) as event_time
    from fact_sales order by detail_id`.cursor(5000)
  ) {
    sales.push(...rows);
  }
  return { events, sales };
}

/** The rows as COPY data, per table, in `format`; `undefined` if binary cannot hold them. */
export function copyData(
  rows: StoredRows,
  format: CopyFormat,
): { events: Uint8Array[]; sales: Uint8Array[] } | undefined {
  const whole = { ...rows, products: [], customers: [], transactionIds: [], readTwice: [] };
  if (format === "binary") {
    const events = binaryEventChunks(whole);
    const sales = binarySaleChunks(whole);
    return events && sales ? { events, sales } : undefined;
  }
  return { events: [...copyChunks(eventLines(whole))], sales: [...copyChunks(saleLines(whole))] };
}

export interface CopyResult {
  format: CopyFormat;
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
 * Loads `data` with `COPY ... FROM STDIN` into empty twins of
 * `realtime_events` and `fact_sales` (`like ... including all`: the same
 * keys and indexes), timed; the twins are dropped first so that a re-run
 * starts empty. Both tables, because those are the rows the consumer writes
 * for the same events.
 */
export async function copyAnchor(
  sql: Sql,
  data: { events: Uint8Array[]; sales: Uint8Array[] },
  counts: { events: number; sales: number },
  { format = "text" as CopyFormat, prefix = "bench_copy" } = {},
): Promise<CopyResult> {
  const eventsTable = `${prefix}_events`;
  const salesTable = `${prefix}_sales`;
  await twin(sql, eventsTable, "realtime_events");
  await twin(sql, salesTable, "fact_sales");
  const load = { sql, format };
  const eventsMs = await timedCopy(load, eventsTable, COPY_COLUMNS, data.events, counts.events);
  const salesMs = await timedCopy(load, salesTable, SALE_COLUMNS, data.sales, counts.sales);
  return {
    format,
    rows: counts.events,
    saleRows: counts.sales,
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

/** COPYs `chunks` into `table` and checks the count; returns the ms from first byte to ack. */
async function timedCopy(
  { sql, format }: { sql: Sql; format: CopyFormat },
  table: string,
  columns: readonly string[],
  chunks: readonly Uint8Array[],
  rows: number,
): Promise<number> {
  const started = performance.now();
  const load = async () => {
    const writable = await sql`copy ${sql(table)} (${sql(columns as string[])}) from stdin ${
      sql.unsafe(format === "binary" ? "(format binary)" : "")
    }`.writable();
    await pipeline(Readable.from(chunks), writable);
  };
  // Never hang the whole run: a COPY slower than 1,000 rows/s plus a minute is a failure.
  const limitMs = 60_000 + rows;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      load(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new Error(
                `Cannot finish the COPY anchor into ${table}: ${rows} rows took over ${limitMs} ms`,
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
  if (count !== rows) {
    throw new Error(
      `Cannot trust the COPY anchor as it loaded ${count} of ${rows} rows into ${table}`,
    );
  }
  return ms;
}
