/**
 * The warehouse write that takes anything: `realtime_events` and `fact_sales`
 * load by COPY into temporary staging tables (text columns) and one
 * `INSERT ... SELECT ... ON CONFLICT DO NOTHING` each. It skips rows already
 * stored, and a value PostgreSQL refuses fails a statement with its reason
 * (never the COPY, whose late errors postgres.js loses). The fast path
 * (`direct.ts`) hands a batch over to it when its own COPY fails. Also the
 * steps both paths share: the dimension upserts and the outbox.
 *
 * @module
 */

import type postgres from "postgres";
import type { Sql } from "../../lib/db.ts";
import { writeCopy } from "./copy.ts";
import { eventLines, saleLines } from "./lines.ts";
import type { WarehouseRows } from "./rows.ts";

export { eventLines, saleLines };

/** What one warehouse transaction wrote. */
export interface Written {
  /** Rows added to `realtime_events`. */
  stored: number;
  /** Event ids of batch transactions whose items are still to be sent. */
  publish: Set<string>;
  /** The outbox row this transaction added (its transactions), if any. */
  outboxRow?: string;
  /** Transactions stored earlier that an older outbox row says are still owed. */
  earlier: string[];
}

/** Writes `rows` in one transaction through the staging tables. */
export async function writeStaged(sql: Sql, rows: WarehouseRows): Promise<Written> {
  return await sql.begin(async (tx) => {
    // Times travel as text so that PostgreSQL parses them: postgres.js would
    // round-trip them through Date (microseconds lost, 2026-02-30 rolled over).
    await tx`create temp table if not exists stage_events (event_id text, event_type text,
      customer_id bigint, ts text, source_topic text, source_partition integer,
      source_offset bigint, payload text) on commit delete rows`;
    await writeCopy(await tx`copy stage_events from stdin`.writable(), eventLines(rows));
    // The transactions just added are owed their items: the insert returns them and puts
    // them in one outbox row, so the outbox is read only for the batch's other transactions.
    const [inserted] = await tx<{ stored: number; owed: string[]; row: string | null }[]>`
      with added as (
        insert into realtime_events (event_id, event_type, customer_id, "timestamp",
          source_topic, source_partition, source_offset, payload)
        select event_id, event_type, customer_id, ts::timestamptz, source_topic,
          source_partition, source_offset, payload::json
        from stage_events order by event_id
        on conflict (event_id) do nothing
        returning event_id, event_type
      ), owed as (
        insert into transaction_items_outbox (event_ids)
        select array_agg(event_id order by event_id) from added
        where event_type = 'transaction' having count(*) > 0
        returning batch_id
      )
      select count(*)::int as stored,
        coalesce(array_agg(event_id) filter (where event_type = 'transaction'), '{}') as owed,
        (select batch_id::text from owed) as row
      from added`;
    if (rows.sales.length > 0) {
      await tx`create temp table if not exists stage_sales (detail_id bigint, event_id text,
        transaction_id bigint, customer_id bigint, product_id bigint, category text,
        quantity integer, unit_price_cents bigint, revenue_cents bigint, event_time text)
        on commit delete rows`;
      await writeCopy(await tx`copy stage_sales from stdin`.writable(), saleLines(rows));
      await tx`
        insert into fact_sales (detail_id, event_id, transaction_id, customer_id, product_id,
          category, quantity, unit_price_cents, revenue_cents, event_time)
        select detail_id, event_id, transaction_id, customer_id, product_id, category, quantity,
          unit_price_cents, revenue_cents, event_time::timestamptz
        from stage_sales order by detail_id
        on conflict (detail_id) do nothing`;
    }
    await upsertDimensions(tx, rows);
    const publish = new Set(inserted!.owed);
    const earlier = await owedEarlier(tx, rows.transactionIds.filter((id) => !publish.has(id)));
    for (const id of earlier) publish.add(id);
    return { stored: inserted!.stored, publish, outboxRow: inserted!.row ?? undefined, earlier };
  });
}

/**
 * Among `ids` (transactions stored by an earlier warehouse transaction), those
 * an outstanding outbox row still lists: their items were never acknowledged.
 */
export async function owedEarlier(tx: Sql | Tx, ids: readonly string[]): Promise<string[]> {
  if (ids.length === 0) return [];
  const owed = await tx<{ id: string }[]>`
    select distinct u.id from transaction_items_outbox o, unnest(o.event_ids) as u(id)
    where o.event_ids && ${ids as string[]}::text[] and u.id = any(${ids as string[]}::text[])`;
  return owed.map((r) => r.id);
}

/** The dimension upserts: latest product data by event time, customers' first and last seen. */
export async function upsertDimensions(tx: Tx, rows: WarehouseRows): Promise<void> {
  const p = columns(rows.products);
  const c = columns(rows.customers);
  if (rows.products.length > 0) {
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
  if (rows.customers.length === 0) return;
  await tx`
    insert into dim_customer (customer_id, first_seen, last_seen)
    select * from unnest(${c.customer_id}::int8[], ${c.first_seen}::text[]::timestamptz[],
      ${c.last_seen}::text[]::timestamptz[])
    on conflict (customer_id) do update
      set first_seen = least(dim_customer.first_seen, excluded.first_seen),
        last_seen = greatest(dim_customer.last_seen, excluded.last_seen)
    where excluded.first_seen < dim_customer.first_seen
      or excluded.last_seen > dim_customer.last_seen`;
}

/** A transaction of `sql.begin`. */
export type Tx = postgres.TransactionSql;

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
