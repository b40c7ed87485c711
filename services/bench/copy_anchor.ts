/**
 * The PostgreSQL anchor: a raw `COPY ... FROM STDIN` of warehouse rows
 * (the `realtime_events` shape, same indexes) into a scratch table of the
 * bench namespace, timed from the first byte to the server's acknowledgement.
 * It is what loading the same rows costs with nothing else in the way: no
 * Kafka, no parsing, no conflict handling.
 *
 * @module
 */

import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Sql } from "../../lib/db.ts";
import { names, type TopicKey } from "../../lib/contracts.ts";
import type { SampleMessage } from "./payload.ts";
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

export type CopyRow = readonly [string, string, number, string, string, number, number, string];

/** One row as a line of COPY text: the consumer's own escaping, so the anchor loads the same bytes. */
export { copyLine };

/** Warehouse rows for synthetic messages, as the consumer would store them. */
export function rowsFromMessages(
  messages: readonly SampleMessage[],
  namespace: string,
  partitions: number,
): CopyRow[] {
  const topics = names(namespace).topics;
  return messages.map((m, i) => {
    const event = JSON.parse(m.value) as {
      event_id: string;
      event_type: string;
      customer_id: number;
      timestamp: string;
    };
    const topic: TopicKey = event.event_type === "transaction" ? "transactions" : "userBehavior";
    return [
      event.event_id,
      event.event_type,
      event.customer_id,
      event.timestamp,
      topics[topic],
      i % partitions,
      Math.floor(i / partitions),
      m.value,
    ] as const;
  });
}

/**
 * Reads the rows the consumer stored, as COPY text lines, to load them again.
 * A plain cursor rather than `COPY ... TO STDOUT`: with postgres.js on Deno, a
 * multi-chunk COPY TO left the connection unable to run its next query.
 */
export async function exportWarehouseLines(sql: Sql): Promise<string[]> {
  const lines: string[] = [];
  const cursor = sql<
    {
      event_id: string;
      event_type: string;
      customer_id: number;
      timestamp: string;
      source_topic: string;
      source_partition: number;
      source_offset: number;
      payload: string;
    }[]
  >`select event_id, event_type, customer_id, "timestamp"::text as "timestamp", source_topic,
      source_partition, source_offset, payload::text as payload
    from realtime_events order by source_topic, source_partition, source_offset`.cursor(5000);
  for await (const rows of cursor) {
    for (const r of rows) {
      lines.push(copyLine([
        r.event_id,
        r.event_type,
        r.customer_id,
        r.timestamp,
        r.source_topic,
        r.source_partition,
        r.source_offset,
        r.payload,
      ]));
    }
  }
  return lines;
}

export interface CopyResult {
  rows: number;
  ms: number;
  table: string;
}

/**
 * Creates `table` like `realtime_events` (indexes included) and COPYs `lines`
 * into it, timed. The table is dropped first so that a re-run starts empty.
 */
export async function copyAnchor(
  sql: Sql,
  lines: readonly string[],
  { table = "bench_copy_events", chunkRows = 2000 } = {},
): Promise<CopyResult> {
  await sql.unsafe(`drop table if exists ${table}`);
  await sql.unsafe(`create table ${table} (like realtime_events including all)`);
  const chunks = function* () {
    for (let i = 0; i < lines.length; i += chunkRows) {
      yield lines.slice(i, i + chunkRows).join("");
    }
  };
  const started = performance.now();
  const load = async () => {
    const writable = await sql`copy ${sql(table)} (${
      sql(COPY_COLUMNS as unknown as string[])
    }) from stdin`.writable();
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
                `Cannot finish the COPY anchor: ${lines.length} rows took over ${limitMs} ms`,
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
    throw new Error(`Cannot trust the COPY anchor as it loaded ${count} of ${lines.length} rows`);
  }
  return { rows: count, ms, table };
}
