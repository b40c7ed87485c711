/**
 * Helpers of the consumer's fast-path tests: events, messages as kafkajs
 * hands them over, and {@link check}, which holds the fast path
 * (services/consume/scan.ts) beside `parseMessage` on one message.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { BehaviorEvent, TransactionEvent } from "../lib/contracts.ts";
import { copyChunks } from "../services/consume/copy.ts";
import { binaryEventChunks, binarySaleChunks } from "../services/consume/copy_binary.ts";
import { addItemMessages, type ItemMessage, itemNotes } from "../services/consume/enrich.ts";
import { eventLines, saleLines } from "../services/consume/lines.ts";
import {
  type Accepted,
  type InputTopic,
  isAccepted,
  parseMessage,
  warehouseRows,
} from "../services/consume/rows.ts";
import { scanMessage } from "../services/consume/scan.ts";

const encoder = new TextEncoder();
let offset = 0;

/** A message as kafkajs hands it over: Buffers. */
export function message(topicKey: InputTopic, text: string) {
  const topic = `ns.${topicKey}`;
  const value = Buffer.from(encoder.encode(text));
  return { topic, partition: offset % 3, offset: String(offset++), key: Buffer.from("7"), value };
}

export function transaction(
  id: number,
  customer: number,
  items: [detail: number, product: number, quantity: number, cents: number][],
  timestamp = "2026-11-29T10:00:00.123Z",
): TransactionEvent {
  const full = items.map(([detail_id, product_id, quantity, unit_price_cents]) => ({
    detail_id,
    product_id,
    product_name: `Product ${product_id}`,
    category: ["Books", "Electronics", "Home & Kitchen"][product_id % 3]!,
    quantity,
    unit_price_cents,
  }));
  return {
    schema_version: 1,
    event_id: `txn-${id}`,
    event_type: "transaction",
    customer_id: customer,
    timestamp,
    transaction_id: id,
    buyer_id: id % 2 ? null : customer,
    total_cents: full.reduce((s, i) => s + i.quantity * i.unit_price_cents, 0),
    payment_method: "paypal",
    status: "completed",
    items: full,
  };
}

export function behavior(
  id: number,
  customer: number,
  type: BehaviorEvent["event_type"],
  timestamp = "2026-11-29T10:00:01.000Z",
): BehaviorEvent {
  return {
    schema_version: 1,
    event_id: `ub-${id}`,
    event_type: type,
    customer_id: customer,
    timestamp,
    behavior_id: id,
    session_id: `s-${customer}`,
    product_id: type === "search" ? null : 3,
    search_query: type === "search" ? "phone case" : null,
    device: "mobile",
  };
}

export const topicOf = (e: TransactionEvent | BehaviorEvent): InputTopic =>
  e.event_type === "transaction" ? "transactions" : "userBehavior";

/** The rows and COPY text of `accepted`, payloads as text, for comparing. */
export const decoder = new TextDecoder();

export function written(accepted: readonly Accepted[]) {
  const rows = warehouseRows(accepted);
  const copy = (lines: Parameters<typeof copyChunks>[0]) =>
    [...copyChunks(lines)].map((c) => decoder.decode(c)).join("");
  return {
    // Field by field: the fast path's rows are views (getters), not plain objects.
    events: rows.events.map((r) => ({
      event_id: r.event_id,
      event_type: r.event_type,
      customer_id: r.customer_id,
      timestamp: r.timestamp,
      source_topic: r.source_topic,
      source_partition: r.source_partition,
      source_offset: r.source_offset,
      payload: typeof r.payload === "string" ? r.payload : decoder.decode(r.payload),
    })),
    sales: rows.sales.map((r) => ({
      detail_id: r.detail_id,
      event_id: r.event_id,
      transaction_id: r.transaction_id,
      customer_id: r.customer_id,
      product_id: r.product_id,
      category: r.category,
      quantity: r.quantity,
      unit_price_cents: r.unit_price_cents,
      revenue_cents: r.revenue_cents,
      event_time: r.event_time,
    })),
    products: rows.products,
    customers: rows.customers,
    transactionIds: rows.transactionIds,
    eventCopy: copy(eventLines(rows)),
    saleCopy: copy(saleLines(rows)),
    // The direct path's binary COPY, byte for byte (undefined where it goes as text).
    eventBinary: binaryEventChunks(rows)?.flatMap((c) => [...c]),
    saleBinary: binarySaleChunks(rows)?.flatMap((c) => [...c]),
  };
}

/** The transaction_item messages of `accepted` (as text) and their notes. */
export function itemsOf(accepted: readonly Accepted[]) {
  const messages: ItemMessage[] = [];
  const sent = accepted.filter((a) => a.topicKey === "transactions");
  for (const a of sent) addItemMessages(a, messages);
  const notes = [...itemNotes(sent, messages.length)];
  return {
    messages: messages.map((
      m,
    ) => [m.key, typeof m.value === "string" ? m.value : decoder.decode(m.value)]),
    notes: notes.map((n) => [n.product_name, n.category, n.quantity]),
  };
}

/** The scan's verdict matches parseMessage's whenever it gives one, values and all. */
export function check(topicKey: InputTopic, text: string): boolean {
  const source = message(topicKey, text);
  const fast = scanMessage(topicKey, source);
  if (fast === undefined) return false;
  const slow = parseMessage(topicKey, source);
  assert.ok(isAccepted(slow), `scan accepted what parseMessage refuses: ${text}`);
  assert.equal(fast.id, slow.id, text);
  assert.equal(fast.json, slow.json, text);
  assert.deepEqual(fast.event, slow.event, text);
  assert.deepEqual(written([fast]), written([slow]), text);
  assert.deepEqual(itemsOf([fast]), itemsOf([slow]), text);
  return true;
}

/** Transactions of one to three items and behaviour events of every type. */
export const EVENTS: (TransactionEvent | BehaviorEvent)[] = [];
export const TYPES = [
  "page_view",
  "product_view",
  "search",
  "add_to_cart",
  "remove_from_cart",
] as const;
for (let i = 1; i <= 40; i++) {
  const at = new Date(Date.UTC(2026, 0, 1) + i * 1_234_567).toISOString();
  const items: [number, number, number, number][] = [[i * 10, i, 1 + i % 3, 999 * i]];
  if (i % 2) items.push([i * 10 + 1, i + 1, 2, 0]);
  if (i % 3 === 0) items.push([i * 10 + 2, i % 4 + 1, 7, 123_456]);
  EVENTS.push(transaction(i * 7919, 1 + i % 9, items, at));
  EVENTS.push(behavior(i * 104_729, 1 + i % 7, TYPES[i % 5]!, at));
}

const VALUES = [
  ...["0", "1", "-1", "2", "1.0", "1e2", "01", "9007199254740993", "999999999999999"],
  ...["1000000000000000", "null", "true", '"1"', '""', '"x"', '"txn-1"', '"ub-1"'],
  ...['"transaction"', '"search"', '"add_to_cart"', "[]", "{}", '"2026-01-01T00:00:00.000Z"'],
];
const BYTES = [...'{}[],:"\\ \t0123456789-.enul\u0000\u007f', "\u00e9"];

/** One random edit of `text`: a byte, a value, a key, or a whole field. */
export function mutate(text: string, rnd: () => number): string {
  const at = Math.floor(rnd() * text.length);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!;
  const keys = () => [...text.matchAll(/"([a-z_]+)":/g)];
  switch (Math.floor(rnd() * 6)) {
    case 0:
      return text.slice(0, at) + text.slice(at + 1);
    case 1:
      return text.slice(0, at) + pick(BYTES) + text.slice(at);
    case 2:
      return text.slice(0, at) + pick(BYTES) + text.slice(at + 1);
    case 3: {
      // Replace the value after a random key.
      const key = pick(keys());
      const start = key.index! + key[0].length;
      let end = start;
      if (text[start] === '"') end = text.indexOf('"', start + 1) + 1;
      else while (end < text.length && !",}]".includes(text[end]!)) end++;
      if (text[start] === "[") end = text.indexOf("]", start) + 1;
      return text.slice(0, start) + pick(VALUES) + text.slice(end);
    }
    case 4: {
      // Rename or repeat a key.
      const [a, b] = [pick(keys()), pick(keys())];
      return rnd() < 0.5
        ? text.slice(0, a.index!) + b[0] + text.slice(a.index! + a[0].length)
        : text.slice(0, a.index!) + `${b[0]}1,` + text.slice(a.index!);
    }
    default: {
      // Drop a field.
      const fields = [...text.matchAll(/,"[a-z_]+":("[^"]*"|[^,{}[\]]*)/g)];
      const f = pick(fields);
      return f ? text.slice(0, f.index!) + text.slice(f.index! + f[0].length) : text;
    }
  }
}
