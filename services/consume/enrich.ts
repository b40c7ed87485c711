/**
 * Enrichment: a transaction becomes one `transaction_item` event per item,
 * keyed by customer id, for the aggregator's per-category metrics.
 *
 * @module
 */

import {
  eventId,
  SCHEMA_VERSION,
  type TransactionEvent,
  type TransactionItemEvent,
} from "../../lib/contracts.ts";
import { ascii } from "../../lib/scan_event.ts";
import { writeDecimal } from "./copy.ts";
import type { Accepted } from "./rows.ts";
import { Item, ScannedEvent, ScannedItem } from "./scanned.ts";

/**
 * The item events of `transaction`, in item order. Each carries the
 * transaction's event time and a deterministic id (`ti-<detail_id>`), so a
 * re-send is recognisable downstream.
 *
 * @example
 * ```ts ignore
 * const [first] = transactionItems(transaction);
 * first.revenue_cents === first.quantity * first.unit_price_cents; // true
 * ```
 */
export function transactionItems(transaction: TransactionEvent): TransactionItemEvent[] {
  return transaction.items.map((item) => ({
    schema_version: SCHEMA_VERSION,
    event_id: eventId.transactionItem(item.detail_id),
    event_type: "transaction_item",
    customer_id: transaction.customer_id,
    timestamp: transaction.timestamp,
    transaction_id: transaction.transaction_id,
    detail_id: item.detail_id,
    product_id: item.product_id,
    product_name: item.product_name,
    category: item.category,
    quantity: item.quantity,
    unit_price_cents: item.unit_price_cents,
    revenue_cents: item.quantity * item.unit_price_cents,
  }));
}

/** A Kafka message for `transaction_items`: key = customer id, value = the event's JSON. */
export function itemMessage(item: TransactionItemEvent): { key: string; value: string } {
  return { key: String(item.customer_id), value: JSON.stringify(item) };
}

/** A `transaction_items` message: key = customer id, value = the event's JSON. */
export interface ItemMessage {
  key: string;
  /** A plain Uint8Array for the fast path (lib/kafkajs_produce.ts writes it as it is). */
  value: string | Uint8Array;
}

/** What the log line of a batch says of an item sent. */
export type ItemNote = Pick<TransactionItemEvent, "product_name" | "category" | "quantity">;

/** Items to log: a count, and the notes, made as they are read. */
export interface ItemNotes extends Iterable<ItemNote> {
  readonly length: number;
  /**
   * Items per category, counted without a note per item (the summary line of a
   * large batch made one per item: 280,000 objects in a 200,000-event drain).
   */
  categories?(): Map<string, number>;
}

/**
 * Appends the `transaction_items` messages of the accepted transaction `a`
 * to `messages`. For a transaction the fast path read, each value is written
 * as bytes: the very bytes of `JSON.stringify` of its
 * {@link transactionItems} event (its strings are printable ASCII without
 * quote or backslash, which JSON writes as they are), with no event object
 * and no string; the tests compare the two.
 */
export function addItemMessages(a: Accepted, messages: ItemMessage[]): void {
  if (!(a instanceof ScannedEvent)) {
    for (const item of transactionItems(a.event as TransactionEvent)) {
      messages.push(itemMessage(item));
    }
    return;
  }
  const items = a.items!;
  const key = String(a.customerId);
  for (let i = 0; i < items.length; i += Item.Size) messages.push({ key, value: itemValue(a, i) });
}

/**
 * The notes of the items of `transactions`, made only when the log reads
 * them (so none is kept while the items are sent).
 */
export function itemNotes(transactions: readonly Accepted[], length: number): ItemNotes {
  return {
    length,
    categories() {
      const counts = new Map<string, number>();
      const add = (category: string) => counts.set(category, (counts.get(category) ?? 0) + 1);
      for (const a of transactions) {
        if (a instanceof ScannedEvent) { for (const c of a.categories!) add(c); }
        else for (const item of (a.event as TransactionEvent).items) add(item.category);
      }
      return counts;
    },
    *[Symbol.iterator]() {
      for (const a of transactions) {
        if (!(a instanceof ScannedEvent)) yield* (a.event as TransactionEvent).items;
        else for (let i = 0; i < a.items!.length; i += Item.Size) yield new ScannedItem(a, i);
      }
    },
  };
}

// The JSON of a transaction_item event around its values, in transactionItems' key order.
const PART = {
  eventId: ascii(`{"schema_version":${SCHEMA_VERSION},"event_id":"ti-`),
  customer: ascii(`","event_type":"transaction_item","customer_id":`),
  timestamp: ascii(`,"timestamp":"`),
  transaction: ascii(`","transaction_id":`),
  detail: ascii(`,"detail_id":`),
  product: ascii(`,"product_id":`),
  name: ascii(`,"product_name":"`),
  category: ascii(`","category":"`),
  quantity: ascii(`","quantity":`),
  price: ascii(`,"unit_price_cents":`),
  revenue: ascii(`,"revenue_cents":`),
};
const FIXED = Object.values(PART).reduce((n, p) => n + p.length, 0) + 1 + 24;

// Values are written into shared blocks and handed out as views (plain Uint8Arrays: a Buffer
// costs more to make on Deno).
const BLOCK = 256 * 1024;
let block = new Uint8Array(BLOCK);
let used = 0;

function itemValue(a: ScannedEvent, i: number): Uint8Array {
  const items = a.items!;
  const bytes = a.bytes;
  const nameStart = items[i + Item.NameStart]!;
  const nameEnd = items[i + Item.NameEnd]!;
  const categoryStart = items[i + Item.CategoryStart]!;
  const categoryEnd = items[i + Item.CategoryEnd]!;
  // Numbers: at most 16 digits each, seven of them.
  const most = FIXED + 7 * 16 + (nameEnd - nameStart) + (categoryEnd - categoryStart);
  if (used + most > block.length) {
    block = new Uint8Array(Math.max(BLOCK, most));
    used = 0;
  }
  const b = block;
  const start = used;
  const detail = items[i + Item.DetailId]!;
  const quantity = items[i + Item.Quantity]!;
  const price = items[i + Item.UnitPriceCents]!;
  let o = put(b, start, PART.eventId);
  o = writeDecimal(b, o, detail);
  o = put(b, o, PART.customer);
  o = writeDecimal(b, o, a.customerId);
  o = put(b, o, PART.timestamp);
  for (let k = 0; k < 24; k++) b[o++] = a.timestamp.charCodeAt(k);
  o = put(b, o, PART.transaction);
  o = writeDecimal(b, o, a.transactionId);
  o = put(b, o, PART.detail);
  o = writeDecimal(b, o, detail);
  o = put(b, o, PART.product);
  o = writeDecimal(b, o, items[i + Item.ProductId]!);
  o = put(b, o, PART.name);
  // Byte by byte: a Buffer's subarray would make a Buffer.
  for (let k = nameStart; k < nameEnd; k++) b[o++] = bytes[k]!;
  o = put(b, o, PART.category);
  for (let k = categoryStart; k < categoryEnd; k++) b[o++] = bytes[k]!;
  o = put(b, o, PART.quantity);
  o = writeDecimal(b, o, quantity);
  o = put(b, o, PART.price);
  o = writeDecimal(b, o, price);
  o = put(b, o, PART.revenue);
  o = writeDecimal(b, o, quantity * price);
  b[o++] = 0x7d; // }
  used = o;
  return b.subarray(start, o);
}

function put(b: Uint8Array, o: number, part: Uint8Array): number {
  // Byte by byte: parts are short, and a call to set costs more than copying them.
  for (let i = 0; i < part.length; i++) b[o++] = part[i]!;
  return o;
}
