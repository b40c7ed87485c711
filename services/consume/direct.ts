/**
 * The warehouse's fast path: the batch's new rows go by COPY straight into
 * `realtime_events` and `fact_sales`, with no staging table and no
 * `ON CONFLICT`. Which rows are new is asked first for the events that may be
 * stored already (one index probe each); a transaction's `fact_sales` rows are written only in the transaction
 * that stores its event, so those of the transactions being added are new too.
 *
 * Should anything still be in the way (a concurrent writer stored one of the
 * events after the probe, or PostgreSQL refuses a value), the COPY fails, the
 * transaction rolls back, and the caller redoes the batch through the staging
 * path (`staged.ts`), which skips what is stored and isolates refused values.
 *
 * @module
 */

import { assertRowsIntact, type Sql } from "../../lib/db.ts";
import { copyChecked, copyCheckedChunks } from "./copy.ts";
import { binaryEventChunks, binarySaleChunks } from "./copy_binary.ts";
import { type Accepted, type WarehouseRows, warehouseRows } from "./rows.ts";
import {
  eventLines,
  owedEarlier,
  saleLines,
  type Tx,
  upsertDimensions,
  type Written,
} from "./staged.ts";

/** Thrown when the fast path could not write its batch (already rolled back). */
export class FastPathFailed extends Error {
  constructor(cause: unknown) {
    super(`The direct COPY failed: ${(cause as Error)?.message ?? cause}`, { cause });
    this.name = "FastPathFailed";
  }
}

/**
 * SQLSTATE classes after which the staging path is worth a try: integrity
 * (a row stored meanwhile), data (a refused value), an aborted transaction
 * (a COPY that failed at its end, reason unknown) and serialization/deadlock.
 */
const FALL_BACK = /^(22|23|25P02|40)/;

/**
 * Writes the new rows of `accepted` (as `rows`) in one transaction. Which are
 * new is asked, unless `probeAll`, only for the behaviour events of the types
 * read twice in normal running (searches and cart events: on `user_behavior`
 * and again on `searches` or `cart_events`, maybe in another flush, see
 * lib/contracts.ts); any other event comes once unless its batch is
 * redelivered or replayed, and then the COPY fails and tells. Throws {@link FastPathFailed} when the staging path should
 * take the batch, any other error (a cut connection) as it came.
 */
export async function writeDirect(
  sql: Sql,
  accepted: readonly Accepted[],
  rows: WarehouseRows,
  probeAll: boolean,
): Promise<Written & { storedTransactions: number }> {
  try {
    return await sql.begin(async (tx) => {
      const ids = probeAll ? rows.events.map((r) => r.event_id) : rows.readTwice;
      const stored = new Set<string>();
      if (ids.length > 0) {
        const found = await tx<{ event_id: string }[]>`
          select event_id from realtime_events where event_id = any(${ids}::text[])`;
        for (const r of assertRowsIntact(found, "probe the stored events")) stored.add(r.event_id);
      }
      const isStored = (id: string) => stored.has(id);
      const storedTransactions = stored.size > 0 ? rows.transactionIds.filter(isStored) : [];
      let fresh = rows;
      if (storedTransactions.length > 0) {
        // A redelivery or a replay: rebuilt from the new events alone, so that exactly
        // the new transactions' items are written.
        fresh = warehouseRows(accepted.filter((a) => !stored.has(a.id)));
      } else if (stored.size > 0) {
        // Only behaviour events were stored before: no item to leave out.
        fresh = { ...rows, events: rows.events.filter((r) => !stored.has(r.event_id)) };
      }
      if (fresh.events.length > 0) await copyEvents(tx, fresh);
      if (fresh.sales.length > 0) await copySales(tx, fresh);
      await upsertDimensions(tx, fresh);
      let outboxRow: string | undefined;
      if (fresh.transactionIds.length > 0) {
        const [row] = await tx<{ batch_id: string }[]>`
          insert into transaction_items_outbox (event_ids)
          values (${fresh.transactionIds}::text[]) returning batch_id::text`;
        outboxRow = row!.batch_id;
      }
      const earlier = await owedEarlier(tx, storedTransactions);
      return {
        stored: fresh.events.length,
        publish: new Set([...fresh.transactionIds, ...earlier]),
        outboxRow,
        earlier,
        storedTransactions: storedTransactions.length,
      };
    });
  } catch (error) {
    const code = String((error as { code?: unknown })?.code ?? "");
    if (FALL_BACK.test(code)) throw new FastPathFailed(error);
    throw error;
  }
}

/**
 * COPYs `rows.events` into `realtime_events`: in binary when every value's
 * binary form is certain (`copy_binary.ts`: less parsing on the server), else
 * as text, where PostgreSQL judges the value itself.
 */
async function copyEvents(tx: Tx, rows: WarehouseRows): Promise<void> {
  const binary = binaryEventChunks(rows);
  if (binary) {
    const into = await tx`copy realtime_events (event_id, event_type, customer_id, "timestamp",
      source_topic, source_partition, source_offset, payload) from stdin (format binary)`
      .writable();
    return await copyCheckedChunks(tx, into, binary, rows.events.length);
  }
  const into = await tx`copy realtime_events (event_id, event_type, customer_id, "timestamp",
    source_topic, source_partition, source_offset, payload) from stdin`.writable();
  await copyChecked(tx, into, eventLines(rows));
}

/** COPYs `rows.sales` into `fact_sales`, in binary when it can, as {@link copyEvents}. */
async function copySales(tx: Tx, rows: WarehouseRows): Promise<void> {
  const binary = binarySaleChunks(rows);
  if (binary) {
    const into = await tx`copy fact_sales (detail_id, event_id, transaction_id, customer_id,
      product_id, category, quantity, unit_price_cents, revenue_cents, event_time)
      from stdin (format binary)`.writable();
    return await copyCheckedChunks(tx, into, binary, rows.sales.length);
  }
  const into = await tx`copy fact_sales (detail_id, event_id, transaction_id, customer_id,
    product_id, category, quantity, unit_price_cents, revenue_cents, event_time)
    from stdin`.writable();
  await copyChecked(tx, into, saleLines(rows));
}
