/**
 * Synthetic events shaped like the pipeline's own (a transaction with its
 * items, or a behaviour row), for the anchors and the client comparison when
 * they run without the stages. Deterministic for a seed, valid against
 * `lib/schemas.ts`, and about the same size as what `produce` publishes.
 *
 * @module
 */

import type { BehaviorEvent, TransactionEvent } from "../../lib/contracts.ts";

/** One Kafka message: key (customer id) and JSON value, both strings. */
export interface SampleMessage {
  key: string;
  value: string;
}

const PRODUCTS = [
  { id: 1, name: "iPhone 15", category: "Electronics", cents: 79900 },
  { id: 9, name: "USB-C Cable", category: "Electronics", cents: 1999 },
  { id: 23, name: "Running Shoes Pro", category: "Sports", cents: 8950 },
  { id: 41, name: "Cotton T-Shirt", category: "Clothing", cents: 1599 },
  { id: 57, name: "Espresso Machine", category: "Home & Kitchen", cents: 24900 },
  { id: 88, name: "The Pragmatic Programmer", category: "Books", cents: 3999 },
  { id: 102, name: "Face Moisturizer", category: "Beauty", cents: 2450 },
  { id: 150, name: "LEGO Classic Box", category: "Toys", cents: 4999 },
] as const;
const BEHAVIORS = [
  "page_view",
  "product_view",
  "search",
  "add_to_cart",
  "remove_from_cart",
] as const;
const DEVICES = ["desktop", "mobile", "tablet"] as const;
const PAYMENTS = ["credit_card", "debit_card", "paypal", "bank_transfer"] as const;
const WORDS = ["iphone", "shoes", "lego", "espresso", "t-shirt", "cable", "book", "cream"];

/** A small deterministic PRNG (mulberry32), so that a seed gives the same messages. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * `count` messages, 70% transactions (1 to 3 items) and 30% behaviour events.
 *
 * @example
 * ```ts
 * import { sampleMessages } from "./payload.ts";
 * const [first] = sampleMessages(1, 7);
 * JSON.parse(first!.value).schema_version; // 1
 * ```
 */
export function sampleMessages(count: number, seed = 1): SampleMessage[] {
  const next = random(seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)]!;
  const start = Date.UTC(2026, 0, 1);
  const messages: SampleMessage[] = [];
  let detail = 1;
  for (let i = 1; i <= count; i++) {
    const customer = 1 + Math.floor(next() * 50);
    const timestamp = new Date(start + i * 37).toISOString();
    let event: TransactionEvent | BehaviorEvent;
    if (next() < 0.7) {
      const items = Array.from({ length: 1 + Math.floor(next() * 3) }, () => {
        const p = pick(PRODUCTS);
        return {
          detail_id: detail++,
          product_id: p.id,
          product_name: p.name,
          category: p.category,
          quantity: 1 + Math.floor(next() * 3),
          unit_price_cents: p.cents,
        };
      });
      event = {
        schema_version: 1,
        event_id: `txn-${i}`,
        event_type: "transaction",
        customer_id: customer,
        timestamp,
        transaction_id: i,
        buyer_id: 1 + Math.floor(next() * 100),
        total_cents: items.reduce((s, it) => s + it.quantity * it.unit_price_cents, 0),
        payment_method: pick(PAYMENTS),
        status: "completed",
        items,
      };
    } else {
      const type = pick(BEHAVIORS);
      event = {
        schema_version: 1,
        event_id: `ub-${i}`,
        event_type: type,
        customer_id: customer,
        timestamp,
        behavior_id: i,
        session_id: `s-${customer}-${Math.floor(i / 20)}`,
        product_id: type === "page_view" || type === "search" ? null : pick(PRODUCTS).id,
        search_query: type === "search" ? `${pick(WORDS)} ${pick(WORDS)}` : null,
        device: pick(DEVICES),
      };
    }
    messages.push({ key: String(customer), value: JSON.stringify(event) });
  }
  return messages;
}

/** Mean value size in bytes (UTF-8). */
export function meanValueBytes(messages: readonly SampleMessage[]): number {
  if (messages.length === 0) return 0;
  const encoder = new TextEncoder();
  let total = 0;
  for (const m of messages) total += encoder.encode(m.value).byteLength;
  return Math.round(total / messages.length);
}
