/**
 * From Kafka messages to warehouse rows, without I/O: each message is decoded
 * and validated ({@link decodeMessage}), and a batch of accepted events
 * becomes the rows of `realtime_events`, `fact_sales`, `dim_product` and
 * `dim_customer` ({@link warehouseRows}).
 *
 * @module
 */

import { type BehaviorEvent, type TopicKey, type TransactionEvent } from "../../lib/contracts.ts";
import { decodeText, parseEvent } from "../../lib/schemas.ts";

/** A message as read from Kafka: where it came from and its raw bytes. */
export interface SourceMessage {
  /** The topic as read (namespaced). */
  topic: string;
  partition: number;
  offset: string;
  key: Uint8Array | null;
  value: Uint8Array | null;
}

/** A message that passed validation, with its JSON text for `payload`. */
export interface Accepted {
  source: SourceMessage;
  topicKey: TopicKey;
  event: TransactionEvent | BehaviorEvent;
  json: string;
}

/** A message bound for `dead_letters`, and why. */
export interface Rejected {
  source: SourceMessage;
  reason: string;
}

/** Topics the warehouse reads. */
export const INPUT_TOPICS = ["transactions", "userBehavior", "searches", "cartEvents"] as const;
export type InputTopic = typeof INPUT_TOPICS[number];

const INT4_MAX = 2 ** 31 - 1;
// An odd run of backslashes before u0000 is the escape of NUL, which jsonb and text reject.
const NUL_ESCAPE = /(?:^|[^\\])(?:\\\\)*\\u0000/;

/**
 * Validates one message read from `topicKey` with the contract's decoder, then
 * checks what the schema allows but the warehouse columns cannot hold.
 *
 * @example
 * ```ts
 * import { decodeMessage } from "./rows.ts";
 * const source = {
 *   topic: "transactions",
 *   partition: 0,
 *   offset: "7",
 *   key: null,
 *   value: new TextEncoder().encode("oops"),
 * };
 * decodeMessage("transactions", source); // { source, reason: "not JSON: ..." }
 * ```
 */
export function decodeMessage(topicKey: InputTopic, source: SourceMessage): Accepted | Rejected {
  // decodeEvent in two halves, so that the bytes are decoded once: the text is the payload.
  const json = decodeText(source.value);
  if (typeof json !== "string") return { source, reason: json.reason };
  const decoded = parseEvent(topicKey, json);
  if (!decoded.ok) return { source, reason: decoded.reason };
  const event = decoded.value as TransactionEvent | BehaviorEvent;
  const problem = storageProblem(event, json);
  if (problem) return { source, reason: problem };
  return { source, topicKey, event, json };
}

/** True when `result` is an accepted event rather than a dead letter. */
export function isAccepted(result: Accepted | Rejected): result is Accepted {
  return "event" in result;
}

function storageProblem(event: TransactionEvent | BehaviorEvent, json: string): string | undefined {
  if (json.includes("\\u0000") && NUL_ESCAPE.test(json)) {
    return "contains a NUL character (\\u0000), which PostgreSQL cannot store";
  }
  if (event.timestamp.startsWith("0000")) return "timestamp year 0000 does not exist";
  if (event.event_type !== "transaction") return undefined;
  for (const item of event.items) {
    if (item.quantity > INT4_MAX) return `quantity ${item.quantity} is larger than ${INT4_MAX}`;
    if (!Number.isSafeInteger(item.quantity * item.unit_price_cents)) {
      return `revenue of detail ${item.detail_id} is not an exact integer`;
    }
  }
  return undefined;
}

/** A `realtime_events` row; `processed_at` is the database's `now()`. */
export interface EventRow {
  event_id: string;
  event_type: string;
  customer_id: number;
  timestamp: string;
  source_topic: string;
  source_partition: number;
  source_offset: string;
  payload: string;
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
}

/**
 * The rows a batch of accepted events writes. An event id seen twice (a
 * behaviour event on `user_behavior` and again on `searches`) is one row,
 * taken from `user_behavior` when the batch holds it. Rows are sorted by key
 * so that concurrent writers lock them in the same order.
 *
 * @example
 * ```ts ignore
 * const rows = warehouseRows(accepted);
 * rows.events.length; // distinct event ids in the batch
 * ```
 */
export function warehouseRows(accepted: readonly Accepted[]): WarehouseRows {
  const chosen = new Map<string, Accepted>();
  for (const a of accepted) {
    const seen = chosen.get(a.event.event_id);
    if (!seen || (seen.topicKey !== "userBehavior" && a.topicKey === "userBehavior")) {
      chosen.set(a.event.event_id, a);
    }
  }
  const events: EventRow[] = [];
  const sales: SaleRow[] = [];
  const products = new Map<number, ProductRow & { at: number }>();
  const customers = new Map<number, Seen>();
  const transactionIds: string[] = [];
  for (const { event, json, source } of chosen.values()) {
    events.push({
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
    const customer = customers.get(event.customer_id);
    if (!customer) {
      customers.set(event.customer_id, {
        id: event.customer_id,
        first: at,
        firstText: event.timestamp,
        last: at,
        lastText: event.timestamp,
      });
    } else if (at < customer.first) {
      customer.first = at;
      customer.firstText = event.timestamp;
    } else if (at > customer.last) {
      customer.last = at;
      customer.lastText = event.timestamp;
    }
    if (event.event_type !== "transaction") continue;
    transactionIds.push(event.event_id);
    for (const item of event.items) {
      sales.push({
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
      const product = products.get(item.product_id);
      if (!product || at > product.at) {
        products.set(item.product_id, {
          product_id: item.product_id,
          name: item.product_name,
          category: item.category,
          last_unit_price_cents: item.unit_price_cents,
          price_seen_at: event.timestamp,
          at,
        });
      }
    }
  }
  // Plain comparators: the key-function form called its key up to four times per comparison.
  return {
    events: events.sort((a, b) => a.event_id < b.event_id ? -1 : a.event_id > b.event_id ? 1 : 0),
    sales: sales.sort((a, b) => a.detail_id - b.detail_id),
    products: [...products.values()].sort((a, b) => a.product_id - b.product_id).map((
      { at: _, ...p },
    ) => p),
    customers: [...customers.values()].sort((a, b) => a.id - b.id).map((c) => ({
      customer_id: c.id,
      first_seen: c.firstText,
      last_seen: c.lastText,
    })),
    transactionIds: transactionIds.sort(),
  };
}
