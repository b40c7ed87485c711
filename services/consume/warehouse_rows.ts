/**
 * A batch of accepted events as the rows of `realtime_events`, `fact_sales`,
 * `dim_product` and `dim_customer`, without I/O ({@link warehouseRows}); an
 * event the fast path read (./scanned.ts) gives the same rows from its bytes.
 *
 * @module
 */

import { CART_TYPES, type TransactionEvent } from "../../lib/contracts.ts";
import type { Accepted } from "./rows.ts";
import { Item, ScannedEvent, ScannedItem } from "./scanned.ts";

/** A `realtime_events` row; `processed_at` is the database's `now()`. */
export interface EventRow {
  event_id: string;
  event_type: string;
  customer_id: number;
  timestamp: string;
  source_topic: string;
  source_partition: number;
  source_offset: string;
  /**
   * The message's JSON text; as bytes when the fast path read it, which
   * holds nothing COPY text escapes (printable ASCII, no backslash).
   */
  payload: string | Uint8Array;
}

/** A `fact_sales` row: one per transaction item. */
export interface SaleRow {
  detail_id: number;
  event_id: string;
  transaction_id: number;
  customer_id: number;
  product_id: number;
  category: string;
  quantity: number;
  unit_price_cents: number;
  revenue_cents: number;
  event_time: string;
}

/** A `dim_product` upsert: the latest name, category and price in the batch. */
export interface ProductRow {
  product_id: number;
  name: string;
  category: string;
  last_unit_price_cents: number;
  price_seen_at: string;
}

/** A `dim_customer` upsert: first and last event time in the batch. */
export interface CustomerRow {
  customer_id: number;
  first_seen: string;
  last_seen: string;
}

interface Seen {
  id: number;
  first: number;
  firstText: string;
  last: number;
  lastText: string;
}

export interface WarehouseRows {
  events: EventRow[];
  sales: SaleRow[];
  products: ProductRow[];
  customers: CustomerRow[];
  /** Event ids of the transactions among `events`. */
  transactionIds: string[];
  /** Event ids among `events` that may arrive twice ({@link READ_TWICE}): what the fast path probes. */
  readTwice: string[];
}

/** Behaviour types produce sends on two topics (`user_behavior` and a subset topic). */
const READ_TWICE: ReadonlySet<string> = new Set<string>(["search", ...CART_TYPES]);

/** Whether `a` may come twice in normal running (see {@link READ_TWICE}); a replay aside. */
function mayArriveTwice(a: Accepted): boolean {
  if (a.topicKey === "transactions") return false;
  return READ_TWICE.has(a instanceof ScannedEvent ? a.type : a.event.event_type);
}

/**
 * The rows a batch of accepted events writes. An event id seen twice (a
 * behaviour event on `user_behavior` and again on `searches`) is one row,
 * taken from `user_behavior` when the batch holds it; only such events are
 * compared (any other repeat, a redelivery's, makes the fast path's COPY fail
 * and the staging path skip it). Sales are sorted by `detail_id`, as the
 * producer numbers them, so that PostgreSQL appends to the right of the
 * primary key; events keep their order, as the raw COPY of the benchmark
 * does (sorting them cost 0.4 µs an event; the staging path orders its own
 * inserts, and two fast-path COPYs that meet fail and fall back).
 *
 * @example
 * ```ts ignore
 * const rows = warehouseRows(accepted);
 * rows.events.length; // distinct event ids in the batch
 * ```
 */
export function warehouseRows(accepted: readonly Accepted[]): WarehouseRows {
  const batch: Batch = {
    events: [],
    sales: [],
    transactionIds: [],
    products: new Map(),
    customers: new Map(),
  };
  const add = (a: Accepted) =>
    a instanceof ScannedEvent ? addScanned(batch, a) : addParsed(batch, a);
  const chosen = new Map<string, Accepted>();
  for (const a of accepted) {
    if (!mayArriveTwice(a)) {
      add(a);
      continue;
    }
    const seen = chosen.get(a.id);
    if (!seen || (seen.topicKey !== "userBehavior" && a.topicKey === "userBehavior")) {
      chosen.set(a.id, a);
    }
  }
  for (const a of chosen.values()) add(a);
  // Plain comparators: the key-function form called its key up to four times per comparison.
  const { events, sales, products, customers, transactionIds } = batch;
  return {
    events,
    sales: sales.sort((a, b) => a.detail_id - b.detail_id),
    products: [...products.values()].sort((a, b) => a.id - b.id).map(productRow),
    customers: [...customers.values()].sort((a, b) => a.id - b.id).map((c) => ({
      customer_id: c.id,
      first_seen: c.firstText,
      last_seen: c.lastText,
    })),
    transactionIds,
    readTwice: [...chosen.keys()],
  };
}

/**
 * `rows` as the rows of two stores: every event but those in `later`, then
 * those (behaviour events read twice: no sales, no transaction) with the
 * dimension upserts of the whole batch. The second store runs once the flush
 * sharing `later` is over, so its upserts do not wait on that flush's locks.
 */
export function splitRows(
  rows: WarehouseRows,
  later: ReadonlySet<string>,
): [WarehouseRows, WarehouseRows] {
  const now = (id: string) => !later.has(id);
  return [
    {
      ...rows,
      events: rows.events.filter((r) => now(r.event_id)),
      products: [],
      customers: [],
      readTwice: rows.readTwice.filter(now),
    },
    {
      events: rows.events.filter((r) => !now(r.event_id)),
      sales: [],
      products: rows.products,
      customers: rows.customers,
      transactionIds: [],
      readTwice: rows.readTwice.filter((id) => !now(id)),
    },
  ];
}

/** The batch being turned into rows. */
interface Batch {
  events: EventRow[];
  sales: SaleRow[];
  transactionIds: string[];
  /** Per product, the latest item seen: item `i` of `from` (an index into its items). */
  products: Map<number, { id: number; at: number; from: Accepted; i: number }>;
  customers: Map<number, Seen>;
}

function addParsed(batch: Batch, a: Accepted): void {
  const { event, json, source } = a;
  batch.events.push({
    event_id: event.event_id,
    event_type: event.event_type,
    customer_id: event.customer_id,
    timestamp: event.timestamp,
    source_topic: source.topic,
    source_partition: source.partition,
    source_offset: source.offset,
    payload: json,
  });
  const at = Date.parse(event.timestamp);
  seeCustomer(batch, event.customer_id, at, event.timestamp);
  if (event.event_type !== "transaction") return;
  batch.transactionIds.push(event.event_id);
  for (let i = 0; i < event.items.length; i++) {
    const item = event.items[i]!;
    batch.sales.push({
      detail_id: item.detail_id,
      event_id: `ti-${item.detail_id}`,
      transaction_id: event.transaction_id,
      customer_id: event.customer_id,
      product_id: item.product_id,
      category: item.category,
      quantity: item.quantity,
      unit_price_cents: item.unit_price_cents,
      revenue_cents: item.quantity * item.unit_price_cents,
      event_time: event.timestamp,
    });
    seeProduct(batch, item.product_id, at, a, i);
  }
}

/**
 * Like {@link addParsed}, from the values the fast path read: the event is its
 * own row (the payload is its bytes), and each item a view of it.
 */
function addScanned(batch: Batch, a: ScannedEvent): void {
  batch.events.push(a);
  seeCustomer(batch, a.customerId, a.ms, a.timestamp);
  const items = a.items;
  if (items === null) return;
  batch.transactionIds.push(a.id);
  for (let i = 0; i < items.length; i += Item.Size) {
    batch.sales.push(new ScannedItem(a, i));
    seeProduct(batch, items[i + Item.ProductId]!, a.ms, a, i);
  }
}

function seeCustomer(batch: Batch, id: number, at: number, text: string): void {
  const customer = batch.customers.get(id);
  if (!customer) {
    batch.customers.set(id, { id, first: at, firstText: text, last: at, lastText: text });
  } else if (at < customer.first) {
    customer.first = at;
    customer.firstText = text;
  } else if (at > customer.last) {
    customer.last = at;
    customer.lastText = text;
  }
}

function seeProduct(batch: Batch, id: number, at: number, from: Accepted, i: number): void {
  const product = batch.products.get(id);
  if (!product) batch.products.set(id, { id, at, from, i });
  else if (at > product.at) {
    product.at = at;
    product.from = from;
    product.i = i;
  }
}

function productRow({ id, from, i }: { id: number; from: Accepted; i: number }): ProductRow {
  if (from instanceof ScannedEvent) {
    const items = from.items!;
    return {
      product_id: id,
      name: from.text(items[i + Item.NameStart]!, items[i + Item.NameEnd]!),
      category: from.category(i),
      last_unit_price_cents: items[i + Item.UnitPriceCents]!,
      price_seen_at: from.timestamp,
    };
  }
  const event = from.event as TransactionEvent;
  const item = event.items[i]!;
  return {
    product_id: id,
    name: item.product_name,
    category: item.category,
    last_unit_price_cents: item.unit_price_cents,
    price_seen_at: event.timestamp,
  };
}
