/**
 * Writes to the warehouse: one transaction per batch. `realtime_events` and
 * `fact_sales` load by COPY into temporary staging tables and one
 * `INSERT ... SELECT ... ON CONFLICT DO NOTHING` each; the dimensions by one
 * upsert over `unnest` of column arrays. The outbox (`transaction_items_outbox`) says which stored
 * transactions still owe their `transaction_item` events.
 *
 * @module
 */

import type { Sql } from "../../lib/db.ts";
import { writeCopy } from "./copy.ts";
import { valueHash } from "./dead_letter.ts";
import { type Accepted, type Rejected, type WarehouseRows, warehouseRows } from "./rows.ts";

export interface StoreResult {
  /** Rows added to `realtime_events`. */
  stored: number;
  /** Event ids of batch transactions whose items are still to be sent. */
  publish: Set<string>;
  /** Events the database refused (a value the schema let through); they go to dead letters. */
  rejected: Rejected[];
}

/**
 * Stores `accepted` in one transaction. When PostgreSQL refuses a value
 * (SQLSTATE class 22, data exception), the batch is split in halves until the
 * refused events are isolated, so one bad value costs one dead letter, not a
 * stuck partition. Other errors are thrown for the caller to retry.
 *
 * @example
 * ```ts ignore
 * const { stored, publish, rejected } = await storeEvents(sql, accepted);
 * ```
 */
export async function storeEvents(sql: Sql, accepted: readonly Accepted[]): Promise<StoreResult> {
  const result: StoreResult = { stored: 0, publish: new Set(), rejected: [] };
  if (accepted.length === 0) return result;
  try {
    const rows = warehouseRows(accepted);
    const written = await writeRows(sql, rows);
    result.stored = written.stored;
    result.publish = written.publish;
    return result;
  } catch (error) {
    if (!isDataError(error)) throw error;
    if (accepted.length === 1) {
      result.rejected.push({
        source: accepted[0]!.source,
        reason: `warehouse refused it: ${(error as Error).message}`,
      });
      return result;
    }
    const half = Math.ceil(accepted.length / 2);
    for (const part of [accepted.slice(0, half), accepted.slice(half)]) {
      const sub = await storeEvents(sql, part);
      result.stored += sub.stored;
      for (const id of sub.publish) result.publish.add(id);
      result.rejected.push(...sub.rejected);
    }
    return result;
  }
}

/** Removes the outbox entries of transactions whose items Kafka acknowledged. */
export async function clearOutbox(sql: Sql, eventIds: readonly string[]): Promise<void> {
  if (eventIds.length === 0) return;
  await sql`delete from transaction_items_outbox where event_id = any(${eventIds as string[]})`;
}

/**
 * The dead letters among `rejected` not yet sent: a redelivered or replayed
 * poison message is in `dead_letter_log` already and is skipped.
 */
export async function unloggedDeadLetters(
  sql: Sql,
  rejected: readonly Rejected[],
): Promise<Rejected[]> {
  if (rejected.length === 0) return [];
  const c = deadLetterColumns(rejected);
  const fresh = await sql<{ i: number }[]>`
    select u.i::int as i
    from unnest(${c.topic}::text[], ${c.partition}::int4[], ${c.offset}::int8[], ${c.hash}::text[])
      with ordinality as u(t, p, o, h, i)
    where not exists (select 1 from dead_letter_log d
      where d.source_topic = u.t and d.source_partition = u.p and d.source_offset = u.o
        and d.value_sha256 = decode(u.h, 'hex'))`;
  return fresh.map((r) => rejected[r.i - 1]!);
}

/** Records dead letters Kafka acknowledged, so that they are sent once. */
export async function logDeadLetters(
  sql: Sql,
  rejected: readonly Rejected[],
  failedAt: Date,
): Promise<void> {
  if (rejected.length === 0) return;
  const unique = new Map(
    rejected.map((r) => [`${r.source.topic}:${r.source.partition}:${r.source.offset}`, r]),
  );
  const c = deadLetterColumns([...unique.values()]);
  await sql`
    insert into dead_letter_log (source_topic, source_partition, source_offset, value_sha256,
      reason, failed_at)
    select t, p, o, decode(h, 'hex'), r, ${failedAt.toISOString()}::timestamptz
    from unnest(${c.topic}::text[], ${c.partition}::int4[], ${c.offset}::int8[], ${c.hash}::text[],
      ${c.reason}::text[]) as u(t, p, o, h, r)
    on conflict (source_topic, source_partition, source_offset) do update
      set value_sha256 = excluded.value_sha256, reason = excluded.reason,
        failed_at = excluded.failed_at`;
}

function deadLetterColumns(rejected: readonly Rejected[]) {
  return {
    topic: rejected.map((r) => r.source.topic),
    partition: rejected.map((r) => r.source.partition),
    offset: rejected.map((r) => r.source.offset),
    hash: rejected.map((r) => valueHash(r.source.value)),
    reason: rejected.map((r) => r.reason),
  };
}

/** PostgreSQL's data exceptions: a value that cannot be stored, not a passing fault. */
export function isDataError(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return typeof code === "string" && code.startsWith("22");
}

async function writeRows(
  sql: Sql,
  rows: WarehouseRows,
): Promise<{ stored: number; publish: Set<string> }> {
  // Times travel as text so that PostgreSQL parses them: postgres.js would
  // round-trip them through Date (microseconds lost, 2026-02-30 rolled over).
  const p = columns(rows.products);
  const c = columns(rows.customers);
  return await sql.begin(async (tx) => {
    // The big tables load through COPY into session-local staging tables (no
    // WAL, no indexes), then one INSERT ... SELECT each skips what is stored.
    // Staged as text, so a bad value fails the INSERT (a clean error), never
    // the COPY (postgres.js loses errors raised after the end of COPY data).
    await tx`create temp table if not exists stage_events (event_id text, event_type text,
      customer_id bigint, ts text, source_topic text, source_partition integer,
      source_offset bigint, payload text) on commit delete rows`;
    await writeCopy(
      await tx`copy stage_events from stdin`.writable(),
      rows.events.map((r) => [
        r.event_id,
        r.event_type,
        r.customer_id,
        r.timestamp,
        r.source_topic,
        r.source_partition,
        r.source_offset,
        r.payload,
      ]),
    );
    // The transactions just added are owed their items: the insert returns them, so the
    // outbox is read only for the batch's other (already stored) transactions.
    const [inserted] = await tx<{ stored: number; owed: string[] }[]>`
      with added as (
        insert into realtime_events (event_id, event_type, customer_id, "timestamp",
          source_topic, source_partition, source_offset, payload)
        select event_id, event_type, customer_id, ts::timestamptz, source_topic,
          source_partition, source_offset, payload::json
        from stage_events order by event_id
        on conflict (event_id) do nothing
        returning event_id, event_type
      ), owed as (
        insert into transaction_items_outbox (event_id)
        select event_id from added where event_type = 'transaction'
        on conflict (event_id) do nothing
      )
      select count(*)::int as stored,
        coalesce(array_agg(event_id) filter (where event_type = 'transaction'), '{}') as owed
      from added`;
    if (rows.sales.length > 0) {
      await tx`create temp table if not exists stage_sales (detail_id bigint, event_id text,
        transaction_id bigint, customer_id bigint, product_id bigint, category text,
        quantity integer, unit_price_cents bigint, revenue_cents bigint, event_time text)
        on commit delete rows`;
      await writeCopy(
        await tx`copy stage_sales from stdin`.writable(),
        rows.sales.map((r) => [
          r.detail_id,
          r.event_id,
          r.transaction_id,
          r.customer_id,
          r.product_id,
          r.category,
          r.quantity,
          r.unit_price_cents,
          r.revenue_cents,
          r.event_time,
        ]),
      );
      await tx`
        insert into fact_sales (detail_id, event_id, transaction_id, customer_id, product_id,
          category, quantity, unit_price_cents, revenue_cents, event_time)
        select detail_id, event_id, transaction_id, customer_id, product_id, category, quantity,
          unit_price_cents, revenue_cents, event_time::timestamptz
        from stage_sales order by detail_id
        on conflict (detail_id) do nothing`;
      await tx`
        insert into dim_product (product_id, name, category, last_unit_price_cents,
          price_seen_at)
        select * from unnest(${p.product_id}::int8[], ${p.name}::text[], ${p.category}::text[],
          ${p.last_unit_price_cents}::int8[], ${p.price_seen_at}::text[]::timestamptz[])
        on conflict (product_id) do update set name = excluded.name,
          category = excluded.category, last_unit_price_cents = excluded.last_unit_price_cents,
          price_seen_at = excluded.price_seen_at, updated_at = now()
        where excluded.price_seen_at > dim_product.price_seen_at`;
    }
    await tx`
      insert into dim_customer (customer_id, first_seen, last_seen)
      select * from unnest(${c.customer_id}::int8[], ${c.first_seen}::text[]::timestamptz[],
        ${c.last_seen}::text[]::timestamptz[])
      on conflict (customer_id) do update
        set first_seen = least(dim_customer.first_seen, excluded.first_seen),
          last_seen = greatest(dim_customer.last_seen, excluded.last_seen)
      where excluded.first_seen < dim_customer.first_seen
        or excluded.last_seen > dim_customer.last_seen`;
    const publish = new Set(inserted!.owed);
    const earlier = rows.transactionIds.filter((id) => !publish.has(id));
    if (earlier.length > 0) {
      const owed = await tx<{ event_id: string }[]>`
        select event_id from transaction_items_outbox where event_id = any(${earlier}::text[])`;
      for (const r of owed) publish.add(r.event_id);
    }
    return { stored: inserted!.stored, publish };
  });
}

type Columns<T> = { [K in keyof T]: T[K][] };

/** Rows to column arrays, the shape `unnest` takes (no keys for no rows). */
export function columns<T extends object>(rows: readonly T[]): Columns<T> {
  const out = {} as Columns<T>;
  if (rows.length === 0) return out;
  for (const key of Object.keys(rows[0]!) as (keyof T)[]) {
    out[key] = rows.map((row) => row[key]);
  }
  return out;
}
