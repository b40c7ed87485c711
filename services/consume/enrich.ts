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
