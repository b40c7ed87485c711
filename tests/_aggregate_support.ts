/**
 * Helpers of the aggregate tests: events built per the schemas with chosen
 * times and ids, sending them to a namespace's topics, the totals the
 * aggregator must reach, and watching the stage's processes.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  type BehaviorEvent,
  METRIC_FIELDS,
  names,
  type TransactionEvent,
  type TransactionItemEvent,
} from "../lib/contracts.ts";
import { createKafka, createProducer, type Message } from "../lib/kafka.ts";
import type { Redis } from "../lib/redis.ts";
import { contributionOf, fieldsOf } from "../services/aggregate/reduce.ts";
import type { TestNamespace } from "./_support.ts";

export const T0 = Date.parse("2026-01-01T00:00:00.000Z");
export const iso = (ms: number) => new Date(ms).toISOString();
export const services = { sanitizeResources: false, sanitizeOps: false };

// ------------------------------------------------------------------ events

export function transaction(id: number, atMs: number, cents: number[], customer = 1 + id % 40) {
  const items = cents.map((unit, i) => ({
    detail_id: id * 10 + i,
    product_id: 1 + i,
    product_name: `Product ${1 + i}`,
    category: i % 2 === 0 ? "Electronics" : "Home & Garden",
    quantity: 1 + i,
    unit_price_cents: unit,
  }));
  const event: TransactionEvent = {
    schema_version: 1,
    event_id: `txn-${id}`,
    event_type: "transaction",
    customer_id: customer,
    timestamp: iso(atMs),
    transaction_id: id,
    buyer_id: customer,
    total_cents: items.reduce((s, it) => s + it.quantity * it.unit_price_cents, 0),
    payment_method: "credit_card",
    status: "completed",
    items,
  };
  return event;
}

export function behavior(
  id: number,
  atMs: number,
  type: BehaviorEvent["event_type"],
  customer = 1 + id % 40,
) {
  const event: BehaviorEvent = {
    schema_version: 1,
    event_id: `ub-${id}`,
    event_type: type,
    customer_id: customer,
    timestamp: iso(atMs),
    behavior_id: id,
    session_id: `s-${customer}`,
    product_id: type === "search" ? null : 1,
    search_query: type === "search" ? "phone" : null,
    device: "mobile",
  };
  return event;
}

export function itemsOf(txn: TransactionEvent): TransactionItemEvent[] {
  return txn.items.map((it) => ({
    schema_version: 1,
    event_id: `ti-${it.detail_id}`,
    event_type: "transaction_item",
    customer_id: txn.customer_id,
    timestamp: txn.timestamp,
    transaction_id: txn.transaction_id,
    ...it,
    revenue_cents: it.quantity * it.unit_price_cents,
  }));
}

export type AnyEvent = TransactionEvent | BehaviorEvent | TransactionItemEvent;

/** What the aggregator must end up with for `events` (each id once). */
export function expectedTotals(events: AnyEvent[]): Record<string, number> {
  const out: Record<string, number> = {};
  const add = (f: string, v: number) => out[f] = (out[f] ?? 0) + v;
  const seen = new Set<string>();
  for (const e of events) {
    if (seen.has(e.event_id)) continue;
    seen.add(e.event_id);
    for (const [f, v] of fieldsOf(contributionOf(e))) add(f, v);
  }
  return out;
}

/** Sends events to their topics; `partition` picks one, otherwise the customer id key does. */
export async function produce(
  ns: TestNamespace,
  events: AnyEvent[],
  partition?: (e: AnyEvent) => number | undefined,
  raw: { topic: "transactions"; value: string }[] = [],
  sendSize = 2000,
) {
  const n = names(ns.namespace);
  const producer = createProducer(createKafka(ns.config, { clientId: "test-aggregate" }));
  await producer.connect();
  try {
    const byTopic = new Map<string, Message[]>();
    const push = (topic: string, m: Message) =>
      byTopic.set(topic, [...byTopic.get(topic) ?? [], m]);
    for (const e of events) {
      const topic = e.event_type === "transaction"
        ? n.topics.transactions
        : e.event_type === "transaction_item"
        ? n.topics.transactionItems
        : n.topics.userBehavior;
      push(topic, {
        key: String(e.customer_id),
        value: JSON.stringify(e),
        ...(partition?.(e) !== undefined ? { partition: partition(e) } : {}),
      });
    }
    for (const r of raw) push(n.topics[r.topic], { key: "bad", value: r.value });
    for (const [topic, messages] of byTopic) {
      for (let i = 0; i < messages.length; i += sendSize) {
        await producer.send({ topic, acks: -1, messages: messages.slice(i, i + sendSize) });
      }
    }
  } finally {
    await producer.disconnect();
  }
}

export async function totalsOf(redis: Redis, ns: TestNamespace): Promise<Record<string, number>> {
  const hash = await redis.hgetall(names(ns.namespace).redis("metrics:totals"));
  return Object.fromEntries(Object.entries(hash).map(([k, v]) => [k, Number(v)]));
}

/** Sum over window hashes + late + expired, per field: must equal the totals. */
export async function reconcile(redis: Redis, ns: TestNamespace) {
  const n = names(ns.namespace);
  const sums: Record<string, number> = {};
  const add = (hash: Record<string, string>) => {
    for (const [f, v] of Object.entries(hash)) {
      if (f !== METRIC_FIELDS.final) sums[f] = (sums[f] ?? 0) + Number(v);
    }
  };
  for (const start of await redis.zrange(n.redis("metrics:windows"), 0, -1)) {
    add(await redis.hgetall(n.redis(`metrics:window:${start}`)));
  }
  add(await redis.hgetall(n.redis("metrics:late")));
  add(await redis.hgetall(n.redis("metrics:expired")));
  const totals = await totalsOf(redis, ns);
  for (const field of new Set([...Object.keys(sums), ...Object.keys(totals)])) {
    assert.equal(sums[field] ?? 0, totals[field] ?? 0, field);
  }
}

export function withoutLate(totals: Record<string, number>) {
  const { late_events: _, ...rest } = totals;
  return rest;
}

/** A mixed stream: transactions with their items, behaviour of every type, times in order. */
export function stream(
  count: number,
  { startMs = T0, stepMs = 250, firstId = 1 } = {},
): AnyEvent[] {
  const types = ["page_view", "product_view", "search", "add_to_cart", "remove_from_cart"] as const;
  const events: AnyEvent[] = [];
  for (let i = 0; i < count; i++) {
    const id = firstId + i;
    const at = startMs + i * stepMs;
    if (i % 3 === 0) {
      const txn = transaction(id, at, [1000 + (id % 97) * 37, 250 + (id % 13)]);
      events.push(txn, ...itemsOf(txn));
    } else {
      events.push(behavior(id, at, types[id % types.length]!));
    }
  }
  return events;
}

/** Collects a child's output; `waitFor` resolves once `text` has appeared. */
export function watch(child: Deno.ChildProcess) {
  let out = "";
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) out += decoder.decode(chunk, { stream: true });
  };
  const done = Promise.all([pump(child.stdout), pump(child.stderr)]);
  return {
    get text() {
      return out;
    },
    async waitFor(text: string, ms = 60_000) {
      const until = Date.now() + ms;
      while (!out.includes(text)) {
        if (Date.now() > until) throw new Error(`no "${text}" within ${ms} ms; output:\n${out}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    kill(signal: Deno.Signal) {
      try {
        child.kill(signal);
      } catch {
        // already gone
      }
    },
    async end() {
      const status = await child.status;
      await done;
      return status;
    },
  };
}

/** Counted events in a stage's final line (`N events counted`). */
export function counted(output: string): number {
  const match = output.match(/🏁 .* ([\d,]+) events counted \(([\d,]+) already counted/);
  assert.ok(match, `no summary line in:\n${output}`);
  return Number(match[1]!.replaceAll(",", ""));
}

export async function readDeadLetters(ns: TestNamespace, count: number) {
  const kafka = createKafka(ns.config, { clientId: "test-dlq" });
  const consumer = kafka.consumer({ groupId: `${ns.namespace}.dlq-reader` });
  const seen: { value: string; headers: Record<string, string> }[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({
      topics: [names(ns.namespace).topics.deadLetters],
      fromBeginning: true,
    });
    const done = Promise.withResolvers<void>();
    await consumer.run({
      eachMessage: ({ message }) => {
        const headers = Object.fromEntries(
          Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]),
        );
        seen.push({ value: String(message.value), headers });
        if (seen.length >= count) done.resolve();
        return Promise.resolve();
      },
    });
    await Promise.race([done.promise, new Promise((r) => setTimeout(r, 30_000))]);
  } finally {
    await consumer.disconnect();
  }
  return seen;
}

/** Waits until the group's committed offsets reach the end of every input partition. */
export async function waitCaughtUp(ns: TestNamespace, ms = 60_000) {
  const n = names(ns.namespace);
  const admin = createKafka(ns.config, { clientId: "test-lag" }).admin();
  await admin.connect();
  try {
    const topics = [n.topics.transactions, n.topics.userBehavior, n.topics.transactionItems];
    const until = Date.now() + ms;
    while (Date.now() < until) {
      let lag = 0;
      const committed = await admin.fetchOffsets({ groupId: n.group("aggregate"), topics });
      for (const topic of topics) {
        const ends = await admin.fetchTopicOffsets(topic);
        const mine = committed.find((c) => c.topic === topic)?.partitions ?? [];
        for (const e of ends) {
          const at = Number(mine.find((p) => p.partition === e.partition)?.offset ?? -1);
          lag += Number(e.high) - Math.max(at, Number(e.low));
        }
      }
      if (lag === 0) return;
      await new Promise((r) => setTimeout(r, 300));
    }
    throw new Error("the group did not catch up");
  } finally {
    await admin.disconnect();
  }
}
