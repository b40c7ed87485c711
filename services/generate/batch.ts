/**
 * Turns a batch of events into the column arrays of two multi-row inserts:
 * one statement writes N transactions and all their items, one writes the
 * behaviour rows. Arrays travel as PostgreSQL array literals (text), which
 * keeps the driver from inspecting every value and lets one prepared
 * statement serve any batch size.
 *
 * @module
 */

import type { NewBehavior, NewTransaction, ShopEvent } from "./session.ts";

/** Events due at the same moment, written together. */
export interface EventBatch {
  /** When they happened (epoch ms; stored as UTC timestamptz). */
  atMs: number;
  events: ShopEvent[];
}

/** Parameters of the transactions statement. */
export interface TransactionColumns {
  count: number;
  customerIds: string;
  buyerIds: string;
  totalCents: string;
  paymentMethods: string;
  statuses: string;
  /** 1-based position of each item's transaction in the batch. */
  itemOrdinals: string;
  productIds: string;
  quantities: string;
  unitPriceCents: string;
  items: number;
  revenueCents: number;
}

/** Parameters of the behaviour statement. */
export interface BehaviorColumns {
  count: number;
  customerIds: string;
  sessionIds: string;
  eventTypes: string;
  productIds: string;
  searchQueries: string;
  devices: string;
}

/**
 * A PostgreSQL array literal of numbers and nulls.
 *
 * @example
 * ```ts
 * import { numberArray } from "./batch.ts";
 * numberArray([1, null, 3]); // "{1,NULL,3}"
 * ```
 */
export function numberArray(values: readonly (number | null)[]): string {
  return `{${values.map((v) => v === null ? "NULL" : String(v)).join(",")}}`;
}

/**
 * A PostgreSQL array literal of strings and nulls, every element quoted.
 *
 * @example
 * ```ts
 * import { textArray } from "./batch.ts";
 * textArray(['say "hi"', null]); // '{"say \\"hi\\"",NULL}'
 * ```
 */
export function textArray(values: readonly (string | null)[]): string {
  return `{${
    values.map((v) => v === null ? "NULL" : `"${v.replace(/[\\"]/g, "\\$&")}"`).join(",")
  }}`;
}

/** Splits events into transactions and behaviour rows, keeping their order. */
export function splitEvents(events: readonly ShopEvent[]): {
  transactions: NewTransaction[];
  behaviors: NewBehavior[];
} {
  const transactions: NewTransaction[] = [];
  const behaviors: NewBehavior[] = [];
  for (const event of events) {
    if (event.kind === "transaction") transactions.push(event);
    else behaviors.push(event);
  }
  return { transactions, behaviors };
}

/** The columns of the transactions statement. */
export function transactionColumns(rows: readonly NewTransaction[]): TransactionColumns {
  const ordinals: number[] = [], products: number[] = [], quantities: number[] = [];
  const prices: number[] = [];
  let revenueCents = 0;
  rows.forEach((row, index) => {
    revenueCents += row.totalCents;
    for (const item of row.items) {
      ordinals.push(index + 1);
      products.push(item.productId);
      quantities.push(item.quantity);
      prices.push(item.unitPriceCents);
    }
  });
  return {
    count: rows.length,
    customerIds: numberArray(rows.map((r) => r.customerId)),
    buyerIds: numberArray(rows.map((r) => r.buyerId)),
    totalCents: numberArray(rows.map((r) => r.totalCents)),
    paymentMethods: textArray(rows.map((r) => r.paymentMethod)),
    statuses: textArray(rows.map((r) => r.status)),
    itemOrdinals: numberArray(ordinals),
    productIds: numberArray(products),
    quantities: numberArray(quantities),
    unitPriceCents: numberArray(prices),
    items: ordinals.length,
    revenueCents,
  };
}

/** The columns of the behaviour statement. */
export function behaviorColumns(rows: readonly NewBehavior[]): BehaviorColumns {
  return {
    count: rows.length,
    customerIds: numberArray(rows.map((r) => r.customerId)),
    sessionIds: textArray(rows.map((r) => r.sessionId)),
    eventTypes: textArray(rows.map((r) => r.eventType)),
    productIds: numberArray(rows.map((r) => r.productId)),
    searchQueries: textArray(rows.map((r) => r.searchQuery)),
    devices: textArray(rows.map((r) => r.device)),
  };
}
