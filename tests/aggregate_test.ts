/**
 * `deno task aggregate`: the pure parts (windows, watermark, reducer), the
 * Redis script on a real Redis, and the stage on real Kafka and Redis run as
 * a user runs it (exact totals, restart, two instances, late events, a
 * catch-up over several partitions).
 */

import assert from "node:assert/strict";
import {
  type BehaviorEvent,
  METRIC_FIELDS,
  names,
  type TransactionEvent,
  type TransactionItemEvent,
  type TransactionMetrics,
} from "../lib/contracts.ts";
import { createKafka, createProducer, type Message } from "../lib/kafka.ts";
import { createRedis, type Redis } from "../lib/redis.ts";
import { createBatcher, createSerial } from "../services/aggregate/batcher.ts";
import { contributionOf, encodeChunks, fieldsOf } from "../services/aggregate/reduce.ts";
import { createMetricsScript, scriptKeys } from "../services/aggregate/script.ts";
import { createWatermarkTracker } from "../services/aggregate/watermark.ts";
import { isFinal, windowStart } from "../services/aggregate/window.ts";
import { createTestNamespace, runTask, spawnTask, type TestNamespace } from "./_support.ts";

const T0 = Date.parse("2026-01-01T00:00:00.000Z");
const iso = (ms: number) => new Date(ms).toISOString();
const services = { sanitizeResources: false, sanitizeOps: false };

// ------------------------------------------------------------------ events

function transaction(id: number, atMs: number, cents: number[], customer = 1 + id % 40) {
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

function behavior(
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

function itemsOf(txn: TransactionEvent): TransactionItemEvent[] {
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

type AnyEvent = TransactionEvent | BehaviorEvent | TransactionItemEvent;

/** What the aggregator must end up with for `events` (each id once). */
function expectedTotals(events: AnyEvent[]): Record<string, number> {
  const out: Record<string, number> = {};
  const add = (f: string, v: number) => out[f] = (out[f] ?? 0) + v;
  const seen = new Set<string>();
  for (const e of events) {
    if (seen.has(e.event_id)) continue;
    seen.add(e.event_id);
    for (const [f, v] of fieldsOf(contributionOf(e, 30_000))) add(f, v);
  }
  return out;
}

/** Sends events to their topics; `partition` picks one, otherwise the customer id key does. */
async function produce(
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

async function totalsOf(redis: Redis, ns: TestNamespace): Promise<Record<string, number>> {
  const hash = await redis.hgetall(names(ns.namespace).redis("metrics:totals"));
  return Object.fromEntries(Object.entries(hash).map(([k, v]) => [k, Number(v)]));
}

/** Sum over window hashes + late + expired, per field: must equal the totals. */
async function reconcile(redis: Redis, ns: TestNamespace) {
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

function withoutLate(totals: Record<string, number>) {
  const { late_events: _, ...rest } = totals;
  return rest;
}

// -------------------------------------------------------------- pure parts

Deno.test("windows are epoch-aligned and final once the watermark passes their end", () => {
  assert.equal(windowStart(T0 + 29_999, 30_000), T0);
  assert.equal(windowStart(T0 + 30_000, 30_000), T0 + 30_000);
  const spec = { windowMs: 30_000, allowedLatenessMs: 0 };
  assert.equal(isFinal(T0, spec, T0 + 29_999), false);
  assert.equal(isFinal(T0, spec, T0 + 30_000), true);
  assert.equal(isFinal(T0, { ...spec, allowedLatenessMs: 5000 }, T0 + 30_000), false);
  assert.equal(isFinal(T0, { ...spec, allowedLatenessMs: 5000 }, T0 + 35_000), true);
  assert.equal(isFinal(T0, spec, undefined), false);
});

/** A clock an hour after the events (event times ahead of the clock are clamped). */
const C = T0 + 3_600_000;

Deno.test("watermark: minimum over partitions, held until each has shown an event", () => {
  const t = createWatermarkTracker({ latenessMs: 10_000, idleMs: 60_000 });
  assert.equal(t.watermark(C), "none");
  t.assign(["a:0", "a:1", "b:0"], C);
  t.observe(new Map([["a:0", T0 + 600_000]]), C);
  assert.equal(t.watermark(C), "hold");
  // A flush's events count as if observed, without being kept.
  assert.equal(
    t.watermark(C + 0, { pending: new Map([["a:1", T0 + 20_000], ["b:0", T0 + 50_000]]) }),
    T0 + 10_000,
  );
  assert.equal(t.watermark(C), "hold");
  t.observe(new Map([["a:1", T0 + 20_000], ["b:0", T0 + 50_000]]), C);
  assert.equal(t.watermark(C), T0 + 10_000);
  t.observe(new Map([["a:1", T0 + 15_000]]), C); // older than seen: no change
  assert.equal(t.watermark(C), T0 + 10_000);
});

Deno.test("watermark: a caught-up partition quiet for idleMs stops holding it back", () => {
  const t = createWatermarkTracker({ latenessMs: 0, idleMs: 60_000 });
  t.assign(["a:0", "a:1"], C);
  t.observe(new Map([["a:0", T0 + 100_000], ["a:1", T0 + 10_000]]), C);
  t.progress("a:1", 5, 5);
  t.progress("a:0", 3, 9);
  assert.equal(t.watermark(C + 60_000), T0 + 10_000); // quiet, not yet for long
  assert.equal(t.watermark(C + 60_001), T0 + 100_000); // a:1 idle and caught up
  t.progress("a:1", undefined, 6); // new data on a:1 not read yet: it holds again
  assert.equal(t.watermark(C + 60_001), T0 + 10_000);
  // An empty partition holds until idle; at the end of a drain all caught-up ones are idle.
  t.assign(["a:0", "a:1", "a:2"], C + 60_001);
  t.progress("a:2", 0, 0);
  assert.equal(t.watermark(C + 60_002), "hold");
  t.progress("a:0", 9, 9);
  t.progress("a:1", 6, 6);
  assert.equal(t.watermark(C + 60_002, { endOfInput: true }), T0 + 100_000);
  // Unassigned partitions are forgotten.
  t.assign(["a:1"], C + 70_000);
  assert.deepEqual(Object.keys(t.view(C + 70_000)), ["a:1"]);
  assert.equal(t.watermark(C + 70_000), T0 + 10_000);
});

Deno.test("watermark: event times far ahead of the clock count only up to it", () => {
  const t = createWatermarkTracker({ latenessMs: 0, idleMs: 60_000, maxFutureMs: 1000 });
  t.assign(["a:0"], T0);
  t.observe(new Map([["a:0", T0 + 86_400_000]]), T0);
  assert.equal(t.watermark(T0), T0 + 1000);
});

Deno.test("reducer: contributions per event type, chunks with their own index tables", () => {
  const txn = transaction(7, T0 + 31_000, [1999, 500]);
  const c = contributionOf(txn, 30_000);
  assert.deepEqual([c.kind, c.id, c.eventMs, c.windowStartMs], [
    "txn",
    7,
    T0 + 31_000,
    T0 + 30_000,
  ]);
  assert.deepEqual(fieldsOf(c), [["events", 1], ["transaction_count", 1], ["revenue_cents", 2999]]);
  assert.deepEqual(fieldsOf(contributionOf(itemsOf(txn)[1]!, 30_000)), [
    ["items_sold", 2],
    ["category:Home & Garden:units", 2],
    ["category:Home & Garden:revenue_cents", 1000],
  ]);
  assert.deepEqual(fieldsOf(contributionOf(behavior(3, T0, "search"), 30_000)), [
    ["events", 1],
    ["behavior:search", 1],
  ]);
  const contributions = [
    contributionOf(behavior(1, T0, "search"), 30_000),
    contributionOf(behavior(2 ** 23 + 5, T0 + 40_000, "search"), 30_000),
    contributionOf(behavior(4, T0 + 1, "search"), 30_000),
    contributionOf(txn, 30_000),
  ];
  const chunks = encodeChunks(contributions, { seenPrefix: "n:s:", maxEvents: 3 });
  assert.equal(chunks.length, 2);
  assert.deepEqual(chunks[0], {
    fields: ["events", "behavior:search"],
    windows: [T0, T0 + 30_000],
    // Group 1: window 1, no variable field, 2 pairs; group 2 the same shape in window 2.
    groups: ["1", "0", "2", "1", "1", "2", "1", "2", "0", "2", "1", "1", "2", "1"],
    // Ids 1 and 4 in the first bitmap segment, 2^23 + 5 in the second.
    sections: ["n:s:ub:0", "2", "1", "1", "0", "4", "1", "0", "n:s:ub:1", "1", "5", "2", "0"],
    events: 3,
  });
  assert.deepEqual(chunks[1]!.fields, ["revenue_cents", "events", "transaction_count"]);
  assert.deepEqual(chunks[1]!.sections, ["n:s:txn:0", "1", "7", "1", "2999"]);
});

Deno.test("batcher: concurrent submissions share a flush; flushes and ticks run one at a time", async () => {
  const serial = createSerial();
  const log: string[] = [];
  const batcher = createBatcher<number>(async (items) => {
    log.push(`flush ${items.join(",")}`);
    await new Promise((r) => setTimeout(r, 10));
    log.push("flushed");
  }, { serial, lingerMs: 1 });
  const first = Promise.all([batcher.submit(1, 1), batcher.submit(2, 1)]);
  await new Promise((r) => setTimeout(r, 3));
  const tick = serial.run(() => Promise.resolve(log.push("tick")));
  await Promise.all([first, tick]);
  assert.deepEqual(log, ["flush 1,2", "flushed", "tick"]);
});

// --------------------------------------------------------- the Redis script

const SCRIPT_OPTIONS = {
  windowMs: 30_000,
  allowedLatenessMs: 0,
  retentionMs: 3_600_000,
  staleMs: 30_000,
};

function chunkOf(ns: TestNamespace, events: AnyEvent[]) {
  const seenPrefix = scriptKeys(names(ns.namespace)).seenPrefix;
  return encodeChunks(events.map((e) => contributionOf(e, 30_000)), {
    seenPrefix,
    maxEvents: 10_000,
  })[0];
}

Deno.test({
  name: "script: each event once; late ones beside their final window; seed-shaped JSON",
  ...services,
  async fn() {
    const ns = await createTestNamespace("aggs");
    const redis = createRedis(ns.config);
    const subscriber = createRedis(ns.config);
    const n = names(ns.namespace);
    try {
      const updates: string[] = [];
      await subscriber.subscribe(n.redis("metrics:updates"));
      subscriber.on("message", (_channel: string, message: string) => updates.push(message));
      const script = createMetricsScript(redis, n, SCRIPT_OPTIONS);
      const t1 = transaction(1, T0 + 1000, [1999, 500]);
      const t2 = transaction(2, T0 + 31_000, [10_000]);
      const first = [t1, t1, t2, behavior(1, T0 + 5000, "search"), ...itemsOf(t1)];
      const r1 = await script.apply({
        instance: "a",
        watermark: T0 + 60_000,
        chunk: chunkOf(ns, first),
      });
      assert.deepEqual(r1, {
        added: 5,
        duplicates: 1,
        late: 0,
        groupWatermarkMs: T0 + 60_000,
        finalized: 2,
        trimmed: 0,
      });
      const lateOne = behavior(2, T0 + 10_000, "page_view");
      const t3 = transaction(3, T0 + 70_000, [250]);
      const r2 = await script.apply({ instance: "a", chunk: chunkOf(ns, [lateOne, t1, t3]) });
      assert.deepEqual([r2.added, r2.duplicates, r2.late], [2, 1, 1]);

      const totals = await totalsOf(redis, ns);
      assert.deepEqual(withoutLate(totals), expectedTotals([...first, lateOne, t3]));
      assert.equal(totals.late_events, 1);
      assert.deepEqual(await redis.hgetall(n.redis("metrics:late")), {
        events: "1",
        "behavior:page_view": "1",
        late_events: "1",
      });
      const w0 = await redis.hgetall(n.redis(`metrics:window:${T0}`));
      assert.equal(w0["behavior:page_view"], undefined);
      assert.equal(w0.final, "1");
      assert.equal(w0.revenue_cents, "2999");
      await reconcile(redis, ns);

      const txn = JSON.parse((await redis.get(n.redis("metrics:transactions")))!);
      assert.deepEqual(
        Object.keys(txn),
        [
          "transaction_count",
          "total_revenue",
          "total_revenue_cents",
          "avg_order_value",
          "avg_order_value_cents",
          "window_start",
          "window_end",
          "last_update",
        ] satisfies (keyof TransactionMetrics)[],
      );
      assert.deepEqual({ ...txn, last_update: "" }, {
        transaction_count: 1,
        total_revenue: 2.5,
        total_revenue_cents: 250,
        avg_order_value: 2.5,
        avg_order_value_cents: 250,
        window_start: "2026-01-01T00:01:00.000Z",
        window_end: "2026-01-01T00:01:30.000Z",
        last_update: "",
      });
      assert.ok(Math.abs(Date.parse(txn.last_update) - Date.now()) < 60_000);
      const behaviorJson = JSON.parse((await redis.get(n.redis("metrics:behavior")))!);
      assert.deepEqual(behaviorJson.counts, {
        page_view: 0,
        product_view: 0,
        search: 0,
        add_to_cart: 0,
        remove_from_cart: 0,
      });
      const products = JSON.parse((await redis.get(n.redis("metrics:products:Home & Garden")))!);
      assert.deepEqual({ ...products, last_update: "" }, {
        category: "Home & Garden",
        product_sales: 2,
        category_revenue: 10,
        category_revenue_cents: 1000,
        last_update: "",
      });
      for (let i = 0; i < 50 && updates.length < 2; i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.deepEqual(updates.map((u) => JSON.parse(u).events), [5, 2]);
      assert.equal(JSON.parse(updates[1]!).latest_window_start, "2026-01-01T00:01:00.000Z");
    } finally {
      subscriber.disconnect();
      redis.disconnect();
      await ns.cleanup();
    }
  },
});

Deno.test({
  name: "script: group watermark is the lowest live instance's, waits for holds, never goes back",
  ...services,
  async fn() {
    const ns = await createTestNamespace("aggw");
    const redis = createRedis(ns.config);
    const n = names(ns.namespace);
    try {
      const script = createMetricsScript(redis, n, SCRIPT_OPTIONS);
      const wm = async (instance: string, watermark: number | "hold" | "none") =>
        (await script.apply({ instance, watermark })).groupWatermarkMs;
      assert.equal(await wm("a", "hold"), undefined);
      assert.equal(await wm("a", T0 + 100), T0 + 100);
      assert.equal(await wm("b", "hold"), T0 + 100);
      assert.equal(await wm("a", T0 + 200), T0 + 100);
      assert.equal(await wm("b", T0 + 150), T0 + 150);
      assert.equal(await wm("b", "none"), T0 + 200);
      assert.equal(await wm("a", T0 + 50), T0 + 200);
      // An entry not refreshed for longer than the stale time counts no more (and is dropped).
      await redis.hset(n.redis("metrics:instances"), "dead", `${T0}@1`);
      assert.equal(await wm("a", T0 + 300), T0 + 300);
      assert.deepEqual(Object.keys(await redis.hgetall(n.redis("metrics:instances"))), ["a"]);
    } finally {
      redis.disconnect();
      await ns.cleanup();
    }
  },
});

Deno.test({
  name: "script: ISO times match JavaScript's; retention retires windows into metrics:expired",
  ...services,
  async fn() {
    const ns = await createTestNamespace("aggr");
    const redis = createRedis(ns.config);
    const n = names(ns.namespace);
    try {
      const script = createMetricsScript(redis, n, { ...SCRIPT_OPTIONS, retentionMs: 60_000 });
      const starts = [
        "1970-01-01T00:00:00.000Z",
        "2000-02-29T23:59:30.000Z",
        "2024-02-29T12:00:00.000Z",
        "2026-12-31T23:59:30.000Z",
        "2100-03-01T00:00:00.000Z",
      ].map(Date.parse);
      for (const [i, start] of starts.entries()) {
        await script.apply({
          instance: "a",
          chunk: chunkOf(ns, [transaction(i + 1, start + 999, [100])]),
          deadLetters: [["aggregate:transactions", "x:0:7"]],
        });
        const json = JSON.parse((await redis.get(n.redis("metrics:transactions")))!);
        assert.equal(json.window_start, iso(start));
        assert.equal(json.window_end, iso(start + 30_000));
      }
      assert.equal(
        await redis.hget(n.redis("pipeline:dead_letters"), "aggregate:transactions"),
        "1",
      );
      const result = await script.apply({ instance: "a", watermark: starts[3]! + 90_000 });
      assert.equal(result.trimmed, 4);
      assert.deepEqual(await redis.zrange(n.redis("metrics:windows"), 0, -1), [
        String(starts[4]),
      ]);
      assert.equal(await redis.hget(n.redis("metrics:expired"), "transaction_count"), "4");
      await reconcile(redis, ns);
    } finally {
      redis.disconnect();
      await ns.cleanup();
    }
  },
});

// ------------------------------------------------------------- the stage

/** A mixed stream: transactions with their items, behaviour of every type, times in order. */
function stream(count: number, { startMs = T0, stepMs = 250, firstId = 1 } = {}): AnyEvent[] {
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
function watch(child: Deno.ChildProcess) {
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
function counted(output: string): number {
  const match = output.match(/🏁 .* ([\d,]+) events counted \(([\d,]+) already counted/);
  assert.ok(match, `no summary line in:\n${output}`);
  return Number(match[1]!.replaceAll(",", ""));
}

async function readDeadLetters(ns: TestNamespace, count: number) {
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

Deno.test({
  name: "aggregate --drain: Redis totals equal the input exactly; bad messages are dead letters",
  ...services,
  async fn() {
    const ns = await createTestNamespace("agg", { topics: true });
    const redis = createRedis(ns.config);
    const n = names(ns.namespace);
    try {
      const events = stream(1500);
      const resent = events.slice(100, 160); // a producer re-send: same event ids again
      const bad = transaction(99_999, T0, [100]);
      await produce(ns, [...events, ...resent], undefined, [
        { topic: "transactions", value: "not json" },
        { topic: "transactions", value: JSON.stringify({ ...bad, total_cents: 1 }) },
      ]);
      const result = await runTask("aggregate", ["--drain"], ns.env);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /Drained after/);

      const totals = await totalsOf(redis, ns);
      assert.deepEqual(withoutLate(totals), expectedTotals(events));
      assert.equal(totals.late_events, 0);
      await reconcile(redis, ns);

      const txns = events.filter((e): e is TransactionEvent => e.event_type === "transaction");
      const latest = Math.max(...txns.map((t) => windowStart(Date.parse(t.timestamp), 30_000)));
      const inLatest = txns.filter((t) => windowStart(Date.parse(t.timestamp), 30_000) === latest);
      const json = JSON.parse((await redis.get(n.redis("metrics:transactions")))!);
      const cents = inLatest.reduce((s, t) => s + t.total_cents, 0);
      assert.equal(json.window_start, iso(latest));
      assert.equal(json.transaction_count, inLatest.length);
      assert.equal(json.total_revenue_cents, cents);
      assert.equal(json.total_revenue, cents / 100);

      assert.equal(
        await redis.hget(n.redis("pipeline:dead_letters"), "aggregate:transactions"),
        "2",
      );
      const letters = await readDeadLetters(ns, 2);
      assert.deepEqual(
        letters.map((l) => l.value).sort(),
        [
          JSON.stringify({ ...bad, total_cents: 1 }),
          "not json",
        ].sort(),
      );
      assert.equal(letters[0]!.headers["dlq.stage"], "aggregate");
      assert.equal(letters[0]!.headers["dlq.source.topic"], n.topics.transactions);

      const beat = await redis.hgetall(n.heartbeat("aggregate"));
      assert.equal(beat.stage, "aggregate");
      assert.equal(JSON.parse(beat.detail!).lag_total, 0);
    } finally {
      redis.disconnect();
      await ns.cleanup();
    }
  },
});

Deno.test({
  name:
    "aggregate: killed after writing Redis but before committing, a restart counts nothing twice",
  ...services,
  async fn() {
    const ns = await createTestNamespace("aggk", { topics: true });
    const redis = createRedis(ns.config);
    try {
      const events = stream(3000);
      await produce(ns, events);
      const first = watch(spawnTask("aggregate", ["--hold-after-write"], ns.env));
      await first.waitFor("Fault injection");
      const before = await totalsOf(redis, ns);
      assert.ok(before.events! > 0, "the first run wrote metrics");
      first.kill("SIGKILL");
      assert.equal((await first.end()).signal, "SIGKILL");

      const again = await runTask("aggregate", ["--drain"], ns.env);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, /[1-9][\d,]* already counted/);
      const totals = await totalsOf(redis, ns);
      assert.deepEqual(withoutLate(totals), expectedTotals(events));
      await reconcile(redis, ns);
    } finally {
      redis.disconnect();
      await ns.cleanup();
    }
  },
});

/** Waits until the group's committed offsets reach the end of every input partition. */
async function waitCaughtUp(ns: TestNamespace, ms = 60_000) {
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

Deno.test({
  name: "aggregate: two instances in one group give exactly the totals of one",
  ...services,
  async fn() {
    const ns = await createTestNamespace("agg2", { topics: true });
    const redis = createRedis(ns.config);
    const a = watch(spawnTask("aggregate", [], ns.env));
    const b = watch(spawnTask("aggregate", [], ns.env));
    try {
      await Promise.all([a.waitFor("Group ID"), b.waitFor("Group ID")]);
      const events: AnyEvent[] = [];
      for (let round = 0; round < 6; round++) {
        const batch = stream(500, { startMs: T0 + round * 125_000, firstId: 1 + round * 500 });
        events.push(...batch);
        await produce(ns, round === 3 ? [...batch, ...events.slice(0, 200)] : batch);
        await new Promise((r) => setTimeout(r, 700));
      }
      await waitCaughtUp(ns);
      a.kill("SIGTERM");
      b.kill("SIGTERM");
      const [sa, sb] = await Promise.all([a.end(), b.end()]);
      assert.equal(sa.code, 0, a.text);
      assert.equal(sb.code, 0, b.text);

      const totals = await totalsOf(redis, ns);
      assert.deepEqual(withoutLate(totals), expectedTotals(events));
      await reconcile(redis, ns);
      // Both did part of the work, and between them counted each event once.
      const [ca, cb] = [counted(a.text), counted(b.text)];
      assert.ok(ca > 0 && cb > 0, `counted ${ca} and ${cb}`);
      assert.equal(ca + cb, new Set(events.map((e) => e.event_id)).size);
    } finally {
      a.kill("SIGKILL");
      b.kill("SIGKILL");
      redis.disconnect();
      await ns.cleanup();
    }
  },
});

Deno.test({
  name: "aggregate: a late event is counted in late_events, not folded into its final window",
  ...services,
  async fn() {
    const strict = await createTestNamespace("aggl", { topics: true });
    const lenient = await createTestNamespace("aggl", { topics: true });
    const redis = createRedis(strict.config);
    const flags = ["--drain", "--window", "10s", "--watermark", "0s"];
    const onPartition0 = () => 0;
    try {
      // First run: the watermark reaches T0+100 s, so the window [50 s, 60 s) closes.
      const early = [transaction(1, T0 + 50_000, [1000]), transaction(2, T0 + 100_000, [2000])];
      // Second run: one event for that closed window, one for the open [100 s, 110 s).
      const late = transaction(3, T0 + 55_000, [4000]);
      const onTime = transaction(4, T0 + 105_000, [8000]);
      for (const [ns, extra] of [[strict, []], [lenient, ["--allowed-lateness", "60s"]]] as const) {
        await produce(ns, early, onPartition0);
        const first = await runTask("aggregate", [...flags, ...extra], ns.env);
        assert.equal(first.code, 0, first.stderr);
        await produce(ns, [late, onTime], onPartition0);
        const second = await runTask("aggregate", [...flags, ...extra], ns.env);
        assert.equal(second.code, 0, second.stderr);
      }

      const n = names(strict.namespace);
      const totals = await totalsOf(redis, strict);
      assert.equal(totals.transaction_count, 4);
      assert.equal(totals.revenue_cents, 15_000);
      assert.equal(totals.late_events, 1);
      assert.deepEqual(await redis.hgetall(n.redis(`metrics:window:${T0 + 50_000}`)), {
        events: "1",
        transaction_count: "1",
        revenue_cents: "1000",
        final: "1",
      });
      assert.equal(
        await redis.hget(n.redis(`metrics:window:${T0 + 100_000}`), "revenue_cents"),
        "10000",
      );
      assert.deepEqual(await redis.hgetall(n.redis("metrics:late")), {
        events: "1",
        transaction_count: "1",
        revenue_cents: "4000",
        late_events: "1",
      });
      await reconcile(redis, strict);

      // With --allowed-lateness 60s the window was still open: the event is folded in.
      const m = names(lenient.namespace);
      const lenientTotals = await totalsOf(redis, lenient);
      assert.equal(lenientTotals.late_events ?? 0, 0);
      assert.equal(lenientTotals.revenue_cents, 15_000);
      const window = await redis.hgetall(m.redis(`metrics:window:${T0 + 50_000}`));
      assert.equal(window.revenue_cents, "5000");
      assert.equal(window.final, undefined);
      await reconcile(redis, lenient);
    } finally {
      redis.disconnect();
      await strict.cleanup();
      await lenient.cleanup();
    }
  },
});

Deno.test({
  name: "aggregate: catching up a backlog with one partition far ahead makes no event late",
  ...services,
  async fn() {
    const ns = await createTestNamespace("aggc", { topics: true });
    const redis = createRedis(ns.config);
    try {
      // Partition 0 of every topic runs an hour ahead; partitions 1-5 interleave the first minutes.
      const ahead = stream(300, { startMs: T0 + 3_600_000, stepMs: 1000, firstId: 1 });
      const behind = stream(1500, { startMs: T0, stepMs: 200, firstId: 1001 });
      const partitionOf = new Map<string, number>();
      ahead.forEach((e) => partitionOf.set(e.event_id, 0));
      const perTopic = new Map<string, number>();
      for (const e of behind) {
        const k = perTopic.get(e.event_type === "transaction_item" ? "ti" : e.event_type) ?? 0;
        perTopic.set(e.event_type === "transaction_item" ? "ti" : e.event_type, k + 1);
        partitionOf.set(e.event_id, 1 + k % 5);
      }
      // Small sends make small record batches, so that small fetches take a bit of every
      // partition each time: partition 0's hour arrives with the first minutes of the others.
      await produce(ns, [...ahead, ...behind], (e) => partitionOf.get(e.event_id), [], 60);
      const result = await runTask("aggregate", ["--drain", "--fetch-bytes", "4096"], ns.env);
      assert.equal(result.code, 0, result.stderr);
      const flushes = Number(result.stdout.match(/Batch ([\d,]+)/g)?.at(-1)?.slice(6));
      assert.ok(flushes > 10, `only ${flushes} flushes:\n${result.stdout}`);

      const totals = await totalsOf(redis, ns);
      assert.equal(totals.late_events ?? 0, 0, result.stdout);
      assert.deepEqual(withoutLate(totals), expectedTotals([...ahead, ...behind]));
      await reconcile(redis, ns);
      const n = names(ns.namespace);
      const windows = await redis.zrange(n.redis("metrics:windows"), 0, -1);
      assert.ok(windows.includes(String(T0)) && windows.includes(String(T0 + 3_600_000)));
    } finally {
      redis.disconnect();
      await ns.cleanup();
    }
  },
});

Deno.test({
  name: "aggregate --rebuild: recomputes lost or damaged metrics exactly; refuses while one runs",
  ...services,
  async fn() {
    const ns = await createTestNamespace("aggb", { topics: true });
    const redis = createRedis(ns.config);
    const n = names(ns.namespace);
    const running = watch(spawnTask("aggregate", [], ns.env));
    try {
      const events = stream(600);
      await produce(ns, events, undefined, [{ topic: "transactions", value: "{}" }]);
      // A running instance holds the group: a rebuild must not pull offsets from under it.
      const until = Date.now() + 30_000;
      while (Number(await redis.hget(n.redis("metrics:totals"), "events")) < 400) {
        assert.ok(Date.now() < until, running.text);
        await new Promise((r) => setTimeout(r, 200));
      }
      const refused = await runTask("aggregate", ["--rebuild", "--drain"], ns.env);
      assert.equal(refused.code, 1);
      assert.match(
        refused.stderr,
        /^error: Cannot rebuild the metrics as group .* running member/m,
      );
      running.kill("SIGTERM");
      assert.equal((await running.end()).code, 0, running.text);

      // Damage: a wrong total, a lost window, a lost bitmap (which alone would allow double counts).
      await redis.hset(n.redis("metrics:totals"), "transaction_count", "999999");
      const [someWindow] = await redis.zrange(n.redis("metrics:windows"), 0, 0);
      await redis.del(n.redis(`metrics:window:${someWindow}`), n.redis("metrics:seen:ub:0"));
      const rebuilt = await runTask("aggregate", ["--rebuild", "--drain"], ns.env);
      assert.equal(rebuilt.code, 0, rebuilt.stderr);
      assert.match(rebuilt.stdout, /Rebuild: deleted \d+ metrics keys/);
      assert.deepEqual(withoutLate(await totalsOf(redis, ns)), expectedTotals(events));
      await reconcile(redis, ns);
      // The dead letter was counted again once, and not sent a second time.
      assert.equal(
        await redis.hget(n.redis("pipeline:dead_letters"), "aggregate:transactions"),
        "1",
      );
      const admin = createKafka(ns.config, { clientId: "test-dlq-count" }).admin();
      await admin.connect();
      const [dlq] = await admin.fetchTopicOffsets(n.topics.deadLetters);
      await admin.disconnect();
      assert.equal(dlq!.high, "1");
    } finally {
      running.kill("SIGKILL");
      redis.disconnect();
      await ns.cleanup();
    }
  },
});
