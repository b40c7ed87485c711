import assert from "node:assert/strict";
import type { Config } from "../lib/config.ts";
import {
  type BehaviorEvent,
  decodeEvent,
  names,
  REDIS_KEYS,
  type TopicKey,
  type TransactionEvent,
} from "../lib/contracts.ts";
import { connect } from "../lib/db.ts";
import {
  createConsumer,
  createKafka,
  createProducer,
  type KafkaMessage,
  topicMessageCount,
} from "../lib/kafka.ts";
import { createRedis } from "../lib/redis.ts";
import { createBatcher } from "../services/consume/batcher.ts";
import { copyLine } from "../services/consume/copy.ts";
import { deadLetter } from "../services/consume/dead_letter.ts";
import { itemMessage, itemNotes, transactionItems } from "../services/consume/enrich.ts";
import { bySize } from "../services/consume/sender.ts";
import { advance, caughtUp, fetchTracker, lagOf } from "../services/consume/offsets.ts";
import { batchLines } from "../services/consume/report.ts";
import { scanMessage } from "../services/consume/scan.ts";
import {
  type Accepted,
  decodeMessage,
  isAccepted,
  type SourceMessage,
  warehouseRows,
} from "../services/consume/rows.ts";
import { createTestNamespace, runTask, spawnTask } from "./_support.ts";

// ------------------------------------------------------------------ fixtures

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
    category: product_id % 2 === 0 ? "Books" : "Electronics",
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
    buyer_id: null,
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
    product_id: type === "search" || type === "page_view" ? null : 7,
    search_query: type === "search" ? "usb cable" : null,
    device: "mobile",
  };
}

const bytes = (value: unknown) =>
  new TextEncoder().encode(typeof value === "string" ? value : JSON.stringify(value));

function source(value: unknown, offset = 0, topic = "t.transactions"): SourceMessage {
  return { topic, partition: 1, offset: String(offset), key: bytes("28"), value: bytes(value) };
}

// ---------------------------------------------------------------- unit tests

Deno.test("consume: a valid message is accepted with its JSON text", () => {
  const t = transaction(7, 28, [[1, 1, 2, 79900]]);
  const result = decodeMessage("transactions", source(t));
  assert.ok(isAccepted(result));
  assert.equal(result.json, JSON.stringify(t));
  assert.equal(result.event.event_id, "txn-7");
});

Deno.test("consume: poison messages get a reason each", () => {
  const t = transaction(7, 28, [[1, 1, 2, 79900]]);
  const { items: _, ...noItems } = t;
  const cases: [unknown, RegExp][] = [
    ["not json", /^not JSON/],
    [{ ...t, customer_id: "28" }, /customer_id must be an integer/],
    [noItems, /items must be a non-empty array/],
    [{ ...t, payment_method: "pay\u0000pal" }, /NUL character/],
    [{ ...t, timestamp: "0000-01-01T00:00:00Z" }, /year 0000/],
    [transaction(8, 28, [[2, 1, 2 ** 31, 1]]), /quantity 2147483648 is larger/],
  ];
  for (const [value, reason] of cases) {
    const result = decodeMessage("transactions", source(value));
    assert.ok(!isAccepted(result), `accepted ${JSON.stringify(value)}`);
    assert.match(result.reason, reason);
  }
  // An escaped backslash before u0000 is text, not NUL.
  const literal = decodeMessage("transactions", source({ ...t, status: "a\\u0000" }));
  assert.ok(isAccepted(literal));
});

Deno.test("consume: a batch maps to one row per event, item, product and customer", () => {
  const accepted = [
    source(behavior(5, 3, "search"), 0, "t.searches"),
    source(behavior(5, 3, "search"), 9, "t.user_behavior"),
    source(transaction(2, 3, [[11, 4, 1, 500], [10, 3, 3, 250]], "2026-11-29T09:00:00Z")),
    source(transaction(1, 9, [[9, 4, 2, 450]], "2026-11-29T08:00:00Z")),
  ].map((s) =>
    decodeMessage(
      s.topic === "t.searches"
        ? "searches"
        : s.topic === "t.user_behavior"
        ? "userBehavior"
        : "transactions",
      s,
    )
  ).filter(isAccepted) as Accepted[];
  const rows = warehouseRows(accepted);
  // Events in the batch's order (the search read twice, from user_behavior, after the others).
  assert.deepEqual(rows.events.map((e) => [e.event_id, e.source_topic]), [
    ["txn-2", "t.transactions"],
    ["txn-1", "t.transactions"],
    ["ub-5", "t.user_behavior"],
  ]);
  assert.deepEqual(rows.transactionIds, ["txn-2", "txn-1"]);
  assert.deepEqual(
    rows.sales.map((s) => [s.detail_id, s.event_id, s.transaction_id, s.revenue_cents]),
    [[9, "ti-9", 1, 900], [10, "ti-10", 2, 750], [11, "ti-11", 2, 500]],
  );
  // Product 4 was seen at 08:00 (450) and 09:00 (500): the later price wins.
  assert.deepEqual(rows.products.map((p) => [p.product_id, p.last_unit_price_cents]), [
    [3, 250],
    [4, 500],
  ]);
  assert.deepEqual(rows.customers, [
    { customer_id: 3, first_seen: "2026-11-29T09:00:00Z", last_seen: "2026-11-29T10:00:01.000Z" },
    { customer_id: 9, first_seen: "2026-11-29T08:00:00Z", last_seen: "2026-11-29T08:00:00Z" },
  ]);
});

Deno.test("consume: a transaction becomes one transaction_item per item, exact bytes", () => {
  const items = transactionItems(transaction(7, 28, [[1, 1, 2, 79900], [2, 9, 1, 1999]]));
  assert.equal(items.length, 2);
  assert.deepEqual(itemMessage(items[0]!), {
    key: "28",
    value: '{"schema_version":1,"event_id":"ti-1","event_type":"transaction_item",' +
      '"customer_id":28,"timestamp":"2026-11-29T10:00:00.123Z","transaction_id":7,' +
      '"detail_id":1,"product_id":1,"product_name":"Product 1","category":"Electronics",' +
      '"quantity":2,"unit_price_cents":79900,"revenue_cents":159800}',
  });
  assert.equal(items[1]!.revenue_cents, 1999);
});

Deno.test("consume: item notes count categories as their notes do, fast path or not", () => {
  const events = [
    transaction(1, 28, [[1, 1, 2, 79900], [2, 2, 1, 1999], [3, 4, 1, 500]]),
    transaction(2, 29, [[4, 3, 1, 100]]),
  ];
  const scanned = events.map((e, i) => scanMessage("transactions", source(e, i))!);
  assert.ok(scanned.every((a) => a !== undefined), "the fast path reads them");
  const parsed = events.map((e, i) => decodeMessage("transactions", source(e, i)) as Accepted);
  for (const accepted of [scanned, parsed, [scanned[0]!, parsed[1]!]]) {
    const notes = itemNotes(accepted, 4);
    const byNote = new Map<string, number>();
    for (const n of notes) byNote.set(n.category, (byNote.get(n.category) ?? 0) + 1);
    assert.deepEqual(notes.categories!(), byNote);
    assert.deepEqual(Object.fromEntries(byNote), { Electronics: 2, Books: 2 });
  }
});

Deno.test("consume: a dead letter keeps the original bytes and says where and why", () => {
  const s = source("not json", 15);
  const letter = deadLetter(s, "x".repeat(600), new Date(0));
  assert.equal(letter.value, s.value);
  assert.equal(letter.key, s.key);
  assert.deepEqual({ ...letter.headers, "dlq.reason": letter.headers["dlq.reason"]!.length }, {
    "dlq.source.topic": "t.transactions",
    "dlq.source.partition": "1",
    "dlq.source.offset": "15",
    "dlq.reason": 500,
    "dlq.stage": "consume",
    "dlq.failed_at": "1970-01-01T00:00:00.000Z",
  });
});

Deno.test("consume: the batcher gathers, overlaps the two stages and keeps their order", async () => {
  const log: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((resolve) => release = resolve);
  const batcher = createBatcher<string, string[]>({
    prepare: (items) => {
      log.push(`prepare ${items.join("+")}`);
      return Promise.resolve(items);
    },
    finish: async (items) => {
      if (items.includes("a")) await gate;
      log.push(`finish ${items.join("+")}`);
    },
  }, { lingerMs: 5, maxSize: 10, overlapSize: 1 });
  const first = await Promise.all([batcher.submit("a", 1), batcher.submit("b", 1)]);
  // Admitted at once; past the linger, a+b is one flush and c comes too late for it.
  await new Promise((resolve) => setTimeout(resolve, 20));
  const third = await batcher.submit("c", 1);
  await new Promise((resolve) => setTimeout(resolve, 20));
  // c prepared while a+b is still finishing; it finishes only after a+b.
  assert.deepEqual(log, ["prepare a+b", "prepare c"]);
  release();
  await Promise.all([...first.map((f) => f.done), third.done]);
  assert.deepEqual(log, ["prepare a+b", "prepare c", "finish a+b", "finish c"]);
  await batcher.idle();
});

/** A batcher whose flushes log their steps; a flush holding "a" prepares until `open()`. */
function gatedBatcher() {
  const log: string[] = [];
  let open!: () => void;
  const gate = new Promise<void>((resolve) => open = resolve);
  const batcher = createBatcher<string, string[]>({
    prepare: async (items) => {
      log.push(`prepare ${items.join("+")}`);
      if (items.includes("a")) await gate;
      return items;
    },
    finish: (items) => {
      log.push(`finish ${items.join("+")}`);
      return Promise.resolve();
    },
  }, { lingerMs: 1, maxSize: 10, overlapSize: 5, queueLimit: 10 });
  return { batcher, log, open };
}

Deno.test("consume: beside a flush in flight, small batches wait and go together, large ones at once", async () => {
  const { batcher, log, open: release } = gatedBatcher();
  const a = await batcher.submit("a", 4);
  await new Promise((resolve) => setTimeout(resolve, 10));
  // b and c are admitted (the queue has room) but wait: 2 + 2 messages are below overlapSize.
  const [b, c] = await Promise.all([batcher.submit("b", 2), batcher.submit("c", 2)]);
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert.deepEqual(log, ["prepare a"]);
  // d brings the queue to 5: a second flush starts beside a.
  const d = await batcher.submit("d", 1);
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert.deepEqual(log, ["prepare a", "prepare b+c+d"]);
  const e = await batcher.submit("e", 1);
  release();
  await Promise.all([a.done, b.done, c.done, d.done, e.done]);
  assert.deepEqual(log, [
    "prepare a",
    "prepare b+c+d",
    "finish a",
    "finish b+c+d",
    "prepare e",
    "finish e",
  ]);
  await batcher.idle();
});

Deno.test("consume: once released, a small remainder starts beside a flush in flight", async () => {
  const { batcher, log, open } = gatedBatcher();
  const a = await batcher.submit("a", 4);
  await new Promise((resolve) => setTimeout(resolve, 10));
  const b = await batcher.submit("b", 2);
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert.deepEqual(log, ["prepare a"], "b is below overlapSize: it waits for a");
  batcher.release();
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert.deepEqual(log, ["prepare a", "prepare b"], "released, b starts while a prepares");
  open();
  await Promise.all([a.done, b.done]);
  assert.deepEqual(log, ["prepare a", "prepare b", "finish a", "finish b"]);
  await batcher.idle();
});

Deno.test("consume: a batch that does not fit the queue waits for a flush to start", async () => {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => release = resolve);
  const batcher = createBatcher<string, string[]>({
    prepare: async (items) => {
      if (items.includes("a")) await gate;
      return items;
    },
    finish: () => Promise.resolve(),
  }, { lingerMs: 1, maxSize: 4, overlapSize: 100, queueLimit: 4, concurrency: 1 });
  await batcher.submit("a", 4);
  await batcher.submit("b", 3);
  let admitted = false;
  const c = batcher.submit("c", 3).then((r) => {
    admitted = true;
    return r;
  });
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(admitted, false, "b and c are 6 messages, over the queue's 4");
  release();
  await (await c).done;
  assert.equal(admitted, true);
  await batcher.idle();
});

Deno.test("consume: the batcher's first flushes are small, doubling up to the largest", async () => {
  const sizes: number[] = [];
  let release!: () => void;
  const gate = new Promise<void>((resolve) => release = resolve);
  const batcher = createBatcher<number, number[]>({
    prepare: async (items) => {
      sizes.push(items.length);
      if (sizes.length === 1) await gate;
      return items;
    },
    finish: () => Promise.resolve(),
  }, { lingerMs: 1, maxSize: 8, firstSize: 2, overlapSize: 1, queueLimit: 100, concurrency: 1 });
  // One message per item: the first flush takes 2, then 4, then 8 at most.
  const submitted = await Promise.all(Array.from({ length: 20 }, (_, i) => batcher.submit(i, 1)));
  release();
  await Promise.all(submitted.map((s) => s.done));
  assert.deepEqual(sizes, [2, 4, 8, 6]);
  await batcher.idle();
});

Deno.test("consume: a failed flush fails those in flight after it, then flushes run again", async () => {
  const batcher = createBatcher<number, number[]>({
    prepare: (items) => items[0] === 1 ? Promise.reject(new Error("down")) : Promise.resolve(items),
    finish: () => Promise.resolve(),
  }, { lingerMs: 1, maxSize: 1 });
  const one = await batcher.submit(1, 1);
  const two = await batcher.submit(2, 1);
  await assert.rejects(one.done, /down/);
  // 2 was in flight behind 1: committing it would pass over 1.
  await assert.rejects(two.done, /down/);
  await batcher.idle();
  await (await batcher.submit(3, 1)).done;
});

Deno.test("consume: lag and the drain target follow committed offsets", () => {
  const ends = [
    { topic: "a", partition: 0, low: 0, high: 10 },
    { topic: "a", partition: 1, low: 5, high: 5 },
  ];
  const committed = new Map<string, number>();
  assert.deepEqual(lagOf(ends, committed), { total: 10, byTopic: { a: { "0": 10, "1": 0 } } });
  assert.equal(caughtUp(ends, committed), false);
  advance(committed, [{ topic: "a", partition: 0, offset: 10 }]);
  advance(committed, [{ topic: "a", partition: 0, offset: 4 }]);
  assert.equal(committed.get("a:0"), 10);
  assert.equal(caughtUp(ends, committed), true);
});

Deno.test("consume: a drain has fetched all once every target partition reaches its end", () => {
  const ends = [
    { topic: "a", partition: 0, low: 0, high: 10 },
    { topic: "a", partition: 1, low: 0, high: 8 },
    { topic: "b", partition: 0, low: 3, high: 3 },
  ];
  // a:1 was committed to its end before the drain: nothing of it will be fetched.
  const fetched = fetchTracker(ends, new Map([["a:1", 8]]));
  assert.equal(fetched.add("a", 0, 6), false);
  assert.equal(fetched.add("a", 0, 9), false);
  assert.equal(fetched.add("a", 0, 10), true);
  const other = fetchTracker(ends, new Map());
  assert.equal(other.add("a", 0, 10), false, "a:1 is still to fetch");
  assert.equal(other.add("a", 1, 8), true);
});

Deno.test("consume: COPY text escapes what COPY reads as syntax", () => {
  assert.equal(
    copyLine(["a\tb\nc\rd\\e", 7, null, '{"q":"x\\"y"}']),
    'a\\tb\\nc\\rd\\\\e\t7\t\\N\t{"q":"x\\\\"y"}\n',
  );
});

Deno.test("consume: sends are split by size", () => {
  const messages = [3, 3, 3, 9, 1].map((n) => ({ value: "x".repeat(n) }));
  assert.deepEqual([...bySize(messages, 6)].map((c) => c.map((m) => m.value.length)), [
    [3, 3],
    [3],
    [9],
    [1],
  ]);
});

Deno.test("consume: log lines per batch, seed-like", () => {
  const items = transactionItems(transaction(7, 28, [[1, 1, 2, 79900]]));
  assert.deepEqual(
    batchLines({
      byTopic: { transactions: 2 },
      stored: 1,
      duplicates: 0,
      items,
      deadLetters: [{ where: "t.transactions[1]@15", reason: "not JSON" }],
      ms: 12.4,
    }),
    [
      "📨 2 messages (transactions 2)",
      "☠️  Dead letter from t.transactions[1]@15: not JSON",
      "✅ 1 event stored in 12 ms",
      "📤 transaction_item sent: Product 1 (Electronics) x2",
    ],
  );
});

// ------------------------------------------------------- on the real services

const io = { sanitizeResources: false, sanitizeOps: false };

interface Outgoing {
  topic: TopicKey;
  key: string;
  value: string;
  partition?: number;
}

async function produceAll(config: Config, messages: Outgoing[]): Promise<void> {
  const n = names(config.namespace);
  const producer = createProducer(createKafka(config, { clientId: "test-consume-feed" }));
  await producer.connect();
  try {
    for (const m of messages) {
      await producer.send({
        topic: n.topics[m.topic],
        acks: -1,
        messages: [{ key: m.key, value: m.value, partition: m.partition }],
      });
    }
  } finally {
    await producer.disconnect();
  }
}

/** Every message a topic holds now, read by a throwaway group of the namespace. */
async function readTopic(config: Config, topic: TopicKey): Promise<KafkaMessage[]> {
  const kafka = createKafka(config, { clientId: "test-consume-read" });
  const name = names(config.namespace).topics[topic];
  const admin = kafka.admin();
  await admin.connect();
  const expected = await topicMessageCount(admin, name);
  await admin.disconnect();
  if (expected === 0) return [];
  const reader = crypto.randomUUID().slice(0, 8);
  const consumer = createConsumer(kafka, { groupId: `${config.namespace}.test-read-${reader}` });
  const messages: KafkaMessage[] = [];
  const all = Promise.withResolvers<void>();
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [name], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachMessage: ({ message }) => {
        messages.push(message);
        if (messages.length >= expected) all.resolve();
        return Promise.resolve();
      },
    });
    const timer = setTimeout(
      () => all.reject(new Error(`read ${messages.length} of ${expected}`)),
      30_000,
    );
    await all.promise.finally(() => clearTimeout(timer));
  } finally {
    await consumer.disconnect();
  }
  return messages;
}

async function warehouse(config: Config) {
  const sql = connect(config.databases.dwh, { max: 1 });
  try {
    const events = await sql<{ event_type: string; n: number }[]>`
      select event_type, count(*)::int as n from realtime_events group by 1 order by 1`;
    const [sales] = await sql<{ rows: number; revenue: string; ids: string[] }[]>`
      select count(*)::int as rows, coalesce(sum(revenue_cents), 0)::text as revenue,
        coalesce(array_agg(event_id order by detail_id), '{}') as ids from fact_sales`;
    // Transactions still owed their items: the outbox holds one array per warehouse transaction.
    const [outbox] = await sql<{ n: number }[]>`
      select coalesce(sum(cardinality(event_ids)), 0)::int as n from transaction_items_outbox`;
    return {
      events: Object.fromEntries(events.map((r) => [r.event_type, r.n])),
      sales: sales!.rows,
      revenue: Number(sales!.revenue),
      itemIds: sales!.ids,
      outbox: outbox!.n,
    };
  } finally {
    await sql.end();
  }
}

const text = (b: Uint8Array | null | undefined) => b ? new TextDecoder().decode(b) : null;
const header = (m: KafkaMessage, name: string) => text(m.headers?.[name] as Uint8Array);

/** Transactions 1..count over many customers (so many partitions), i % 3 + 1 items each. */
function transactions(from: number, count: number): TransactionEvent[] {
  return Array.from({ length: count }, (_, k) => {
    const id = from + k;
    const items = Array.from(
      { length: id % 3 + 1 },
      (_, j) =>
        [id * 10 + j, 1 + (id + j) % 5, 1 + j, 199 + id] as [number, number, number, number],
    );
    return transaction(
      id,
      1 + id % 17,
      items,
      `2026-11-29T10:${String(id % 60).padStart(2, "0")}:00Z`,
    );
  });
}

const asMessage = (e: TransactionEvent | BehaviorEvent, topic: TopicKey, partition?: number) => ({
  topic,
  key: String(e.customer_id),
  value: JSON.stringify(e),
  partition,
});

Deno.test(
  "consume: poison goes to dead_letters with its reason, neighbours land, items once each, replays add nothing",
  io,
  async () => {
    const ns = await createTestNamespace("cons", { topics: true });
    try {
      const [t1, t2, t3, t4, t5] = transactions(1, 5);
      const badDate = { ...t4!, timestamp: "2026-02-30T10:00:00Z" };
      const { items: _, ...noItems } = t5!;
      const poison: Outgoing[] = [
        { topic: "transactions", key: "41", value: "not json {", partition: 0 },
        {
          topic: "transactions",
          key: "42",
          value: JSON.stringify({ ...t1!, customer_id: "28" }),
          partition: 0,
        },
        {
          topic: "transactions",
          key: "43",
          value: JSON.stringify({ ...noItems, event_id: "txn-99", transaction_id: 99 }),
          partition: 0,
        },
        {
          topic: "transactions",
          key: "44",
          value: JSON.stringify({ ...badDate, event_id: "txn-98", transaction_id: 98 }),
          partition: 0,
        },
      ];
      // Good and bad interleaved on partition 0, then more spread by key.
      const more = transactions(6, 20);
      const behaviours = [
        behavior(1, 3, "search"),
        behavior(2, 4, "add_to_cart"),
        behavior(3, 5, "page_view"),
        behavior(4, 6, "remove_from_cart"),
      ];
      const feed: Outgoing[] = [
        asMessage(t1!, "transactions", 0),
        poison[0]!,
        asMessage(t2!, "transactions", 0),
        poison[1]!,
        asMessage(t3!, "transactions", 0),
        poison[2]!,
        asMessage(t4!, "transactions", 0),
        poison[3]!,
        asMessage(t5!, "transactions", 0),
        ...more.map((t) => asMessage(t, "transactions")),
        ...behaviours.map((b) => asMessage(b, "userBehavior")),
        asMessage(behaviours[0]!, "searches"),
        asMessage(behaviours[1]!, "cartEvents"),
        asMessage(behaviours[3]!, "cartEvents"),
      ];
      await produceAll(ns.config, feed);
      const good = [t1!, t2!, t3!, t4!, t5!, ...more];
      const items = good.flatMap((t) => t.items);
      const revenue = items.reduce((s, i) => s + i.quantity * i.unit_price_cents, 0);

      const run = await runTask("consume", ["--drain"], ns.env);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, new RegExp(`Group ID: ${ns.namespace}\\.instashop-warehouse`));
      assert.match(run.stdout, /📨 .*\n(.|\n)*✅ \d+ events? stored/);
      assert.match(run.stdout, /📤 /);
      assert.match(run.stdout, /☠️ {2}Dead letter from .*transactions\[0\]@1: not JSON/);

      const stored = await warehouse(ns.config);
      assert.deepEqual(stored.events, {
        add_to_cart: 1,
        page_view: 1,
        remove_from_cart: 1,
        search: 1,
        transaction: good.length,
      });
      assert.equal(stored.sales, items.length);
      assert.equal(stored.revenue, revenue);
      assert.equal(stored.outbox, 0);

      // transaction_items: exactly one valid event per fact_sales row.
      const sent = await readTopic(ns.config, "transactionItems");
      assert.equal(sent.length, items.length);
      const decoded = sent.map((m) => decodeEvent("transactionItems", m.value));
      assert.ok(decoded.every((d) => d.ok));
      const ids = decoded.map((d) => d.ok ? d.value.event_id : "").sort();
      assert.deepEqual(ids, [...stored.itemIds].sort());
      for (const m of sent) {
        assert.equal(text(m.key), String(JSON.parse(text(m.value)!).customer_id));
      }

      // dead_letters: the original bytes, where they came from, and why.
      const letters = await readTopic(ns.config, "deadLetters");
      letters.sort((a, b) =>
        Number(header(a, "dlq.source.offset")) - Number(header(b, "dlq.source.offset"))
      );
      assert.deepEqual(
        letters.map((m) => [text(m.key), text(m.value)]),
        poison.map((p) => [p.key, p.value]),
      );
      assert.deepEqual(letters.map((m) => header(m, "dlq.source.offset")), ["1", "3", "5", "7"]);
      const reasons = letters.map((m) => header(m, "dlq.reason") ?? "");
      assert.match(reasons[0]!, /^not JSON/);
      assert.match(reasons[1]!, /customer_id must be an integer/);
      assert.match(reasons[2]!, /items must be a non-empty array/);
      assert.match(reasons[3]!, /warehouse refused it: date\/time field value out of range/);
      for (const m of letters) {
        assert.equal(header(m, "dlq.source.topic"), names(ns.namespace).topics.transactions);
        assert.equal(header(m, "dlq.source.partition"), "0");
        assert.equal(header(m, "dlq.stage"), "consume");
        assert.ok(!Number.isNaN(Date.parse(header(m, "dlq.failed_at") ?? "")));
      }
      const redis = createRedis(ns.config);
      try {
        const n = names(ns.namespace);
        assert.equal(
          await redis.hget(n.redis(REDIS_KEYS.deadLetters), "consume:transactions"),
          "4",
        );
        const beat = await redis.hgetall(n.heartbeat("consume"));
        assert.equal(beat.stage, "consume");
        assert.equal(beat.events, String(feed.length));
        assert.equal(JSON.parse(beat.detail!).lag_total, 0);
      } finally {
        redis.disconnect();
      }

      // A redelivered batch (the producer sends some again) adds no row and no item.
      await produceAll(ns.config, [
        asMessage(t1!, "transactions"),
        asMessage(t2!, "transactions"),
        asMessage(behaviours[0]!, "userBehavior"),
      ]);
      const again = await runTask("consume", ["--drain"], ns.env);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, /✅ 0 events stored \(3 duplicates skipped\)/);
      // A whole replay under a new group adds nothing anywhere.
      const replay = await runTask(
        "consume",
        ["--drain", "--group", "replay", "--from-beginning"],
        ns.env,
      );
      assert.equal(replay.code, 0, replay.stderr);
      assert.match(replay.stdout, new RegExp(`Group ID: ${ns.namespace}\\.replay`));
      assert.deepEqual(await warehouse(ns.config), stored);
      assert.equal((await readTopic(ns.config, "transactionItems")).length, items.length);
      assert.equal((await readTopic(ns.config, "deadLetters")).length, poison.length);
    } finally {
      await ns.cleanup();
    }
  },
);

Deno.test(
  "consume: kill -9 between the warehouse commit and the offset commit loses and duplicates nothing",
  io,
  async () => {
    const ns = await createTestNamespace("conskill", { topics: true });
    try {
      const good = transactions(1, 40);
      const items = good.flatMap((t) => t.items);
      await produceAll(ns.config, good.map((t) => asMessage(t, "transactions")));

      const child = spawnTask("consume", ["--hold-after-write"], ns.env);
      const stderr = new Response(child.stderr).text();
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let out = "";
      // Should the marker never come, the kill ends the read instead of a hung test.
      const guard = setTimeout(() => child.kill("SIGKILL"), 90_000);
      while (!out.includes("Fault injection")) {
        const { value, done } = await reader.read();
        if (done) break;
        out += value;
      }
      clearTimeout(guard);
      child.kill("SIGKILL");
      assert.match(out, /Fault injection/, `${out}\n${await stderr}`);
      const status = await child.status;
      assert.equal(status.signal, "SIGKILL");
      await reader.cancel().catch(() => {});

      // Rows are in; no item was sent and no offset committed.
      const crashed = await warehouse(ns.config);
      assert.ok((crashed.events.transaction ?? 0) > 0);
      assert.equal(crashed.outbox, crashed.events.transaction);
      assert.equal((await readTopic(ns.config, "transactionItems")).length, 0);
      const admin = createKafka(ns.config, { clientId: "test-consume-offsets" }).admin();
      await admin.connect();
      try {
        const offsets = await admin.fetchOffsets({
          groupId: names(ns.namespace).group("consume"),
          topics: [names(ns.namespace).topics.transactions],
        });
        assert.ok(offsets.every((t) => t.partitions.every((p) => p.offset === "-1")));
      } finally {
        await admin.disconnect();
      }

      const restart = await runTask("consume", ["--drain"], ns.env);
      assert.equal(restart.code, 0, restart.stderr);
      const after = await warehouse(ns.config);
      assert.deepEqual(after.events, { transaction: good.length });
      assert.equal(after.sales, items.length);
      assert.equal(after.outbox, 0);
      const sent = await readTopic(ns.config, "transactionItems");
      const ids = sent.map((m) => JSON.parse(text(m.value)!).event_id as string);
      assert.equal(new Set(ids).size, ids.length, "an item was sent twice");
      assert.deepEqual(ids.sort(), [...after.itemIds].sort());
    } finally {
      await ns.cleanup();
    }
  },
);
