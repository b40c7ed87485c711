/**
 * Row -> Kafka message mapping, pure. One source row gives one event with a
 * deterministic id (`txn-<id>`, `ub-<id>`), keyed by the customer id so that a
 * customer's events share a partition. Every message is validated against the
 * shared schema before it may be sent: a row that cannot form a valid event is
 * a bug upstream, and publishing past it would lose it silently.
 *
 * @module
 */

import {
  type BehaviorEvent,
  type BehaviorType,
  CART_TYPES,
  eventId,
  SCHEMA_VERSION,
  type TopicKey,
  type TransactionEvent,
  type TransactionItem,
  validateEvent,
} from "../../lib/contracts.ts";

/** An integer column as postgres.js may return it (number, bigint or numeric text). */
export type IntLike = number | bigint | string;

/** A `transactions` row with its items, as the page query returns it. */
export interface TransactionRow {
  id: IntLike;
  customer_id: IntLike;
  buyer_id: IntLike | null;
  total_cents: IntLike;
  payment_method: string;
  status: string;
  /** created_at as ISO 8601 UTC with `Z`, formatted by the query. */
  ts: string;
  /** `[detail_id, product_id, product_name, category, quantity, unit_price_cents]` in detail order. */
  items: ItemTuple[] | null;
}

export type ItemTuple = [IntLike, IntLike, string, string, IntLike, IntLike];

/** A `user_behavior` row, as the page query returns it. */
export interface BehaviorRow {
  id: IntLike;
  customer_id: IntLike;
  session_id: string;
  event_type: string;
  product_id: IntLike | null;
  search_query: string | null;
  device: string;
  ts: string;
}

/** One message ready for the producer: topic key (not yet namespaced), key, JSON value. */
export interface OutMessage {
  topic: TopicKey;
  key: string;
  value: string;
}

/** A row that cannot form a valid event; the producer stops on it rather than skip it. */
export class InvalidRowError extends Error {
  constructor(readonly table: string, readonly rowId: string, readonly reason: string) {
    super(`Cannot publish ${table} row ${rowId} as it does not form a valid event: ${reason}`);
    this.name = "InvalidRowError";
  }
}

/**
 * The `transactions` event of one row.
 *
 * @example
 * ```ts
 * import { transactionEvent } from "./messages.ts";
 * const event = transactionEvent({
 *   id: 7, customer_id: 3, buyer_id: null, total_cents: 1998, payment_method: "paypal",
 *   status: "completed", ts: "2026-01-01T00:00:00.000Z",
 *   items: [[11, 5, "USB-C Cable", "Electronics", 2, 999]],
 * });
 * event.event_id; // "txn-7"
 * ```
 */
export function transactionEvent(row: TransactionRow): TransactionEvent {
  const id = int(row.id, "transactions", row.id);
  const items: TransactionItem[] = (row.items ?? []).map((t) => ({
    detail_id: int(t[0], "transactions", id),
    product_id: int(t[1], "transactions", id),
    product_name: t[2],
    category: t[3],
    quantity: int(t[4], "transactions", id),
    unit_price_cents: int(t[5], "transactions", id),
  }));
  return {
    schema_version: SCHEMA_VERSION,
    event_id: eventId.transaction(id),
    event_type: "transaction",
    customer_id: int(row.customer_id, "transactions", id),
    timestamp: row.ts,
    transaction_id: id,
    buyer_id: row.buyer_id === null ? null : int(row.buyer_id, "transactions", id),
    total_cents: int(row.total_cents, "transactions", id),
    payment_method: row.payment_method,
    status: row.status,
    items,
  };
}

/** The behaviour event of one `user_behavior` row. */
export function behaviorEvent(row: BehaviorRow): BehaviorEvent {
  const id = int(row.id, "user_behavior", row.id);
  return {
    schema_version: SCHEMA_VERSION,
    event_id: eventId.behavior(id),
    event_type: row.event_type as BehaviorType,
    customer_id: int(row.customer_id, "user_behavior", id),
    timestamp: row.ts,
    behavior_id: id,
    session_id: row.session_id,
    product_id: row.product_id === null ? null : int(row.product_id, "user_behavior", id),
    search_query: row.search_query,
    device: row.device,
  };
}

/** Topics a behaviour event goes to: always `user_behavior`, plus its subset topic if any. */
export function behaviorTopics(type: string): TopicKey[] {
  if (type === "search") return ["userBehavior", "searches"];
  if ((CART_TYPES as readonly string[]).includes(type)) return ["userBehavior", "cartEvents"];
  return ["userBehavior"];
}

/** Validated messages of a page of transaction rows (one per row). */
export function transactionMessages(rows: readonly TransactionRow[]): OutMessage[] {
  const out: OutMessage[] = new Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const event = transactionEvent(rows[i]!);
    out[i] = encode("transactions", event, "transactions", event.transaction_id);
  }
  return out;
}

/** Validated messages of a page of behaviour rows (one or two per row, same event id). */
export function behaviorMessages(rows: readonly BehaviorRow[]): OutMessage[] {
  const out: OutMessage[] = [];
  for (const row of rows) {
    const event = behaviorEvent(row);
    const topics = behaviorTopics(event.event_type);
    const first = encode(topics[0]!, event, "user_behavior", event.behavior_id);
    out.push(first);
    for (const topic of topics.slice(1)) {
      check(topic, event, "user_behavior", event.behavior_id);
      out.push({ topic, key: first.key, value: first.value });
    }
  }
  return out;
}

function encode(
  topic: TopicKey,
  event: TransactionEvent | BehaviorEvent,
  table: string,
  id: number,
): OutMessage {
  check(topic, event, table, id);
  return { topic, key: String(event.customer_id), value: JSON.stringify(event) };
}

function check(topic: TopicKey, event: unknown, table: string, id: number): void {
  const result = validateEvent(topic, event);
  if (!result.ok) throw new InvalidRowError(table, String(id), result.reason);
}

function int(value: IntLike, table: string, rowId: IntLike): number {
  const n = typeof value === "number" ? value : Number(value);
  if (!Number.isSafeInteger(n)) {
    throw new InvalidRowError(table, String(rowId), `${String(value)} is not a safe integer`);
  }
  return n;
}
