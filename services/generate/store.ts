/**
 * The generator's PostgreSQL side: base data when the shop is empty,
 * sequences caught up with rows inserted by hand, the shop loaded for the
 * session model, and the batched writes. A batch is two statements: one writes
 * its transactions with all their items (atomic: one statement is one
 * transaction), the other its behaviour rows, each in its own database.
 *
 * @module
 */

import type { Sql } from "../../lib/db.ts";
import { baseBuyers, baseCustomers, baseProducts } from "./base_data.ts";
import {
  behaviorColumns,
  type EventBatch,
  numberArray,
  splitEvents,
  textArray,
  transactionColumns,
} from "./batch.ts";
import type { Shop, ShopCustomer } from "./session.ts";

/** What the shop held when the generator started. */
export interface ShopState {
  shop: Shop;
  counts: {
    customers: number;
    buyers: number;
    products: number;
    transactions: number;
    behaviors: number;
  };
  /** Base rows this start inserted (all zero on a shop that had data). */
  inserted: { customers: number; buyers: number; products: number };
}

/** Rows one batch wrote. */
export interface WriteResult {
  transactions: number;
  items: number;
  behaviors: number;
  revenueCents: number;
}

export interface ShopStore {
  prepare(): Promise<ShopState>;
  write(batch: EventBatch): Promise<WriteResult>;
  /** Ends both connection pools. */
  close(): Promise<void>;
}

const INSTASHOP_TABLES = ["products", "customers", "buyers", "transactions", "transaction_details"];
const CRM_TABLES = ["user_behavior"];

// Ids are drawn first (in batch order) so that items can point at their
// transaction within the same statement; the foreign keys are checked at its end.
const INSERT_TRANSACTIONS = `
with ids as materialized (
  select ord, nextval($1::regclass) as id from generate_series(1::bigint, $2::bigint) as ord
), t as (
  insert into transactions (id, customer_id, buyer_id, total_cents, payment_method, status, created_at)
  select ids.id, u.customer_id, u.buyer_id, u.total_cents, u.payment_method, u.status,
         to_timestamp($8::int8 / 1000.0)
  from unnest($3::int8[], $4::int8[], $5::int8[], $6::text[], $7::text[])
       with ordinality as u(customer_id, buyer_id, total_cents, payment_method, status, ord)
  join ids using (ord)
  order by ids.id
)
insert into transaction_details (transaction_id, product_id, quantity, unit_price_cents)
select ids.id, d.product_id, d.quantity, d.unit_price_cents
from unnest($9::int8[], $10::int8[], $11::int4[], $12::int4[])
     with ordinality as d(ord, product_id, quantity, unit_price_cents, n)
join ids using (ord)
order by d.n`;

const INSERT_BEHAVIORS = `
insert into user_behavior
  (customer_id, session_id, event_type, product_id, search_query, device, created_at)
select customer_id, session_id, event_type, product_id, search_query, device,
       to_timestamp($7::int8 / 1000.0)
from unnest($1::int8[], $2::text[], $3::text[], $4::int8[], $5::text[], $6::text[])
     as u(customer_id, session_id, event_type, product_id, search_query, device)`;

/** Runs one statement, again after a passing failure (each statement is atomic). */
export type Attempt = <T>(what: string, statement: () => Promise<T>) => Promise<T>;

/**
 * @example
 * ```ts ignore
 * const store = createShopStore({ instashop, crm });
 * const { shop } = await store.prepare();
 * ```
 */
export function createShopStore(
  { instashop, crm, attempt = (_what, statement) => statement() }: {
    instashop: Sql;
    crm: Sql;
    /** Default: once. Retries must be per statement: one of a batch's two may have committed. */
    attempt?: Attempt;
  },
): ShopStore {
  let transactionSequence = "";

  async function prepare(): Promise<ShopState> {
    await syncSequences();
    const inserted = await ensureBaseData();
    const [seq] = await instashop<{ name: string }[]>`
      select pg_get_serial_sequence('transactions', 'id') as name`;
    transactionSequence = seq!.name;
    const shop = await loadShop();
    const [tx] = await instashop<{ n: number }[]>`select count(*)::int as n from transactions`;
    const [ub] = await crm<{ n: number }[]>`select count(*)::int as n from user_behavior`;
    return {
      shop,
      inserted,
      counts: {
        customers: shop.customers.length,
        buyers: shop.customers.reduce((n, c) => n + c.buyers.length, 0),
        products: shop.products.length,
        transactions: tx!.n,
        behaviors: ub!.n,
      },
    };
  }

  /** Moves each identity sequence past the largest id, so hand-inserted rows never collide. */
  async function syncSequences(): Promise<void> {
    const sync = (sql: Sql, table: string) =>
      sql.unsafe(`
        select setval(s.seq, m.max_id)
        from (select pg_get_serial_sequence('${table}', 'id')::regclass as seq) s,
             (select max(id) as max_id from ${table}) m
        where m.max_id > coalesce(pg_sequence_last_value(s.seq), 0)`);
    await Promise.all([
      ...INSTASHOP_TABLES.map((t) => sync(instashop, t)),
      ...CRM_TABLES.map((t) => sync(crm, t)),
    ]);
  }

  /** Inserts the base data into each empty table, under a lock so that two starts do it once. */
  async function ensureBaseData(): Promise<ShopState["inserted"]> {
    return await instashop.begin(async (tx) => {
      await tx`select pg_advisory_xact_lock(hashtext('instashop.base_data'))`;
      const [empty] = await tx<{ products: boolean; customers: boolean; buyers: boolean }[]>`
        select not exists (select 1 from products) as products,
               not exists (select 1 from customers) as customers,
               not exists (select 1 from buyers) as buyers`;
      const inserted = { customers: 0, buyers: 0, products: 0 };
      if (empty!.products) {
        const rows = baseProducts();
        await tx.unsafe(
          `insert into products (name, category, price_cents, stock)
           select name, category, price_cents, stock
           from unnest($1::text[], $2::text[], $3::int4[], $4::int4[]) with ordinality
             as u(name, category, price_cents, stock, ord) order by ord`,
          [
            textArray(rows.map((p) => p.name)),
            textArray(rows.map((p) => p.category)),
            numberArray(rows.map((p) => p.priceCents)),
            numberArray(rows.map((p) => p.stock)),
          ],
        );
        inserted.products = rows.length;
      }
      if (empty!.customers) {
        const rows = baseCustomers();
        await tx.unsafe(
          `insert into customers (name, email, city, country)
           select name, email, city, country
           from unnest($1::text[], $2::text[], $3::text[], $4::text[]) with ordinality
             as u(name, email, city, country, ord) order by ord`,
          [
            textArray(rows.map((c) => c.name)),
            textArray(rows.map((c) => c.email)),
            textArray(rows.map((c) => c.city)),
            textArray(rows.map((c) => c.country)),
          ],
        );
        inserted.customers = rows.length;
      }
      if (empty!.buyers) {
        const owners = await tx<{ id: number; city: string }[]>`
          select id::float8 as id, city from customers order by id`;
        const rows = baseBuyers(owners);
        await tx.unsafe(
          `insert into buyers (customer_id, label, payment_method, shipping_city)
           select customer_id, label, payment_method, shipping_city
           from unnest($1::int8[], $2::text[], $3::text[], $4::text[]) with ordinality
             as u(customer_id, label, payment_method, shipping_city, ord) order by ord`,
          [
            numberArray(rows.map((b) => owners[b.customer]!.id)),
            textArray(rows.map((b) => b.label)),
            textArray(rows.map((b) => b.paymentMethod)),
            textArray(rows.map((b) => b.shippingCity)),
          ],
        );
        inserted.buyers = rows.length;
      }
      return inserted;
    });
  }

  async function loadShop(): Promise<Shop> {
    const products = await instashop<Shop["products"]>`
      select id::float8 as id, name, category, price_cents as "priceCents"
      from products order by id`;
    const customers = await instashop<{ id: number }[]>`
      select id::float8 as id from customers order by id`;
    const buyers = await instashop<{ id: number; customerId: number; paymentMethod: string }[]>`
      select id::float8 as id, customer_id::float8 as "customerId",
             payment_method as "paymentMethod"
      from buyers order by id`;
    const byId = new Map<number, ShopCustomer>(
      customers.map((c) => [c.id, { id: c.id, buyers: [] }]),
    );
    for (const b of buyers) {
      byId.get(b.customerId)?.buyers.push({ id: b.id, paymentMethod: b.paymentMethod });
    }
    return { customers: [...byId.values()], products: [...products] };
  }

  async function write({ atMs, events }: EventBatch): Promise<WriteResult> {
    const { transactions, behaviors } = splitEvents(events);
    const t = transactionColumns(transactions);
    const b = behaviorColumns(behaviors);
    const transactionRows = () =>
      instashop.unsafe(INSERT_TRANSACTIONS, [
        transactionSequence,
        t.count,
        t.customerIds,
        t.buyerIds,
        t.totalCents,
        t.paymentMethods,
        t.statuses,
        atMs,
        t.itemOrdinals,
        t.productIds,
        t.quantities,
        t.unitPriceCents,
      ], { prepare: true });
    const behaviorRows = () =>
      crm.unsafe(INSERT_BEHAVIORS, [
        b.customerIds,
        b.sessionIds,
        b.eventTypes,
        b.productIds,
        b.searchQueries,
        b.devices,
        atMs,
      ], { prepare: true });
    await Promise.all([
      t.count > 0 &&
      attempt(`write ${t.count} transactions`, () => withSequenceRetry(transactionRows)),
      b.count > 0 &&
      attempt(`write ${b.count} behaviour events`, () => withSequenceRetry(behaviorRows)),
    ]);
    return {
      transactions: t.count,
      items: t.items,
      behaviors: b.count,
      revenueCents: t.revenueCents,
    };
  }

  /**
   * A primary-key clash means someone inserted rows by hand while we ran: the
   * statement rolled back whole, so catch the sequences up and write it again, once.
   */
  async function withSequenceRetry<T>(statement: () => Promise<T>): Promise<T> {
    try {
      return await statement();
    } catch (error) {
      const { code, constraint_name } = error as { code?: string; constraint_name?: string };
      if (code !== "23505" || !constraint_name?.endsWith("_pkey")) throw error;
      await syncSequences();
      return await statement();
    }
  }

  async function close(): Promise<void> {
    await Promise.all([instashop.end({ timeout: 5 }), crm.end({ timeout: 5 })]);
  }

  return { prepare, write, close };
}
