import assert from "node:assert/strict";
import {
  type BehaviorEvent,
  decodeEvent,
  names,
  type TopicKey,
  type TransactionEvent,
} from "../lib/contracts.ts";
import type { Config } from "../lib/config.ts";
import { openDatabase, type Sql } from "../lib/db.ts";
import { createConsumer, createKafka, keyPartition, topicMessageCount } from "../lib/kafka.ts";
import { createRedis } from "../lib/redis.ts";
import { compareCursor, cursorOf, formatCursor } from "../services/produce/cursor.ts";
import {
  behaviorMessages,
  behaviorTopics,
  InvalidRowError,
  transactionMessages,
} from "../services/produce/messages.ts";
import { pageSql, TRANSACTIONS } from "../services/produce/queries.ts";
import { createSaver } from "../services/produce/saver.ts";
import { parseSince } from "../services/produce/cli.ts";
import { createTestNamespace, runTask, spawnTask, type TestNamespace } from "./_support.ts";

const io = { sanitizeResources: false, sanitizeOps: false };

// ------------------------------------------------------------------ pure parts

Deno.test("produce: a transaction row maps to exact bytes, keyed by customer", () => {
  const [message] = transactionMessages([{
    id: 7n,
    customer_id: 28n,
    buyer_id: null,
    total_cents: 161799n,
    payment_method: "credit_card",
    status: "completed",
    ts: "2026-11-29T10:00:00.123Z",
    items: [[9001, 1, "iPhone 15", "Electronics", 2, 79900], [
      9002,
      9,
      "USB-C Cable",
      "Electronics",
      1,
      1999,
    ]],
  }]);
  assert.deepEqual(message, {
    topic: "transactions",
    key: "28",
    value: '{"schema_version":1,"event_id":"txn-7","event_type":"transaction","customer_id":28,' +
      '"timestamp":"2026-11-29T10:00:00.123Z","transaction_id":7,"buyer_id":null,' +
      '"total_cents":161799,"payment_method":"credit_card","status":"completed","items":[' +
      '{"detail_id":9001,"product_id":1,"product_name":"iPhone 15","category":"Electronics",' +
      '"quantity":2,"unit_price_cents":79900},{"detail_id":9002,"product_id":9,' +
      '"product_name":"USB-C Cable","category":"Electronics","quantity":1,"unit_price_cents":1999}]}',
  });
});

Deno.test("produce: behaviour rows go to user_behavior and their subset topic, same bytes", () => {
  const row = (id: number, event_type: string) => ({
    id,
    customer_id: 3,
    session_id: "s-1",
    event_type,
    product_id: event_type === "search" || event_type === "page_view" ? null : 5,
    search_query: event_type === "search" ? "iphone" : null,
    device: "mobile",
    ts: "2026-11-29T10:00:00.000Z",
  });
  const out = behaviorMessages([row(1, "search"), row(2, "add_to_cart"), row(3, "page_view")]);
  assert.deepEqual(out.map((m) => `${m.topic}:${JSON.parse(m.value).event_id}`), [
    "userBehavior:ub-1",
    "searches:ub-1",
    "userBehavior:ub-2",
    "cartEvents:ub-2",
    "userBehavior:ub-3",
  ]);
  assert.equal(out[0]!.value, out[1]!.value);
  assert.deepEqual(behaviorTopics("remove_from_cart"), ["userBehavior", "cartEvents"]);
  assert.deepEqual(behaviorTopics("product_view"), ["userBehavior"]);
});

Deno.test("produce: a row that cannot form a valid event is refused, never skipped", () => {
  const bad = {
    id: 5,
    customer_id: 1,
    buyer_id: 1,
    total_cents: 100,
    payment_method: "paypal",
    status: "completed",
    ts: "2026-11-29T10:00:00.000Z",
    items: null,
  };
  assert.throws(() => transactionMessages([bad]), (e: unknown) => {
    assert.ok(e instanceof InvalidRowError);
    assert.match(e.message, /transactions row 5 .*items must be a non-empty array/);
    return true;
  });
});

Deno.test("produce: cursors order by (txid, id); the page query is gated", () => {
  assert.ok(compareCursor(cursorOf("10", 99), cursorOf("11", 1)) < 0);
  assert.ok(compareCursor(cursorOf("11", 2), cursorOf("11", 1)) > 0);
  assert.equal(formatCursor(cursorOf("812", 41n)), "812:41");
  const sql = pageSql(TRANSACTIONS);
  assert.match(sql, /pg_snapshot_xip/);
  assert.match(sql, /t\.txid < \(select upto from gate\) and \(t\.txid, t\.id\) > \(\$2::xid8/);
  assert.match(sql, /order by t\.txid, t\.id/);
  assert.equal(parseSince("2026-01-31T12:00:00Z")?.toISOString(), "2026-01-31T12:00:00.000Z");
  assert.throws(() => parseSince("yesterday"), /--replay-since/);
});

// ------------------------------------------------------------- real services

const PRODUCTS: [string, string, number][] = [
  ["iPhone 15", "Electronics", 79900],
  ["USB-C Cable", "Electronics", 1999],
  ["Running Shoes", "Sports", 8999],
  ["Coffee Maker", "Home", 4999],
];

async function openShop(config: Config): Promise<{ shop: Sql; crm: Sql }> {
  const shop = await openDatabase(config, "instashop");
  const crm = await openDatabase(config, "crm");
  await shop`insert into customers (name, email, city, country)
    select 'C' || g, 'c' || g || '@example.com', 'Madrid', 'ES' from generate_series(1, 5) g`;
  await shop`insert into buyers (customer_id, label, payment_method, shipping_city)
    select g, 'personal', 'paypal', 'Madrid' from generate_series(1, 5) g`;
  for (const [name, category, price] of PRODUCTS) {
    await shop`insert into products (name, category, price_cents) values (${name}, ${category}, ${price})`;
  }
  return { shop, crm };
}

/** Inserts one transaction with `items` ([product id, quantity]) through `q`; returns its id. */
async function buy(q: Sql, customer: number, items: [number, number][]): Promise<number> {
  const total = items.reduce((s, [p, n]) => s + PRODUCTS[p - 1]![2] * n, 0);
  const [row] = await q<{ id: bigint }[]>`insert into transactions
    (customer_id, buyer_id, total_cents, payment_method)
    values (${customer}, ${customer}, ${total}, 'credit_card') returning id`;
  for (const [p, n] of items) {
    await q`insert into transaction_details (transaction_id, product_id, quantity, unit_price_cents)
      values (${String(row!.id)}, ${p}, ${n}, ${PRODUCTS[p - 1]![2]})`;
  }
  return Number(row!.id);
}

const BEHAVIOUR = ["page_view", "product_view", "search", "add_to_cart", "remove_from_cart"];

async function browse(q: Sql, count: number): Promise<void> {
  await q`insert into user_behavior (customer_id, session_id, event_type, product_id, search_query, device)
    select 1 + g % 5, 's-' || g / 4, (${BEHAVIOUR}::text[])[1 + g % 5],
      case when g % 5 in (1, 3, 4) then 1 + g % 4 end,
      case when g % 5 = 2 then 'iphone ' || g end, 'mobile'
    from generate_series(0, ${count - 1}) g`;
}

interface Read {
  key: string;
  partition: number;
  event: TransactionEvent | BehaviorEvent;
}

/** Every message now on the given topics, decoded and validated. */
async function readTopics(ns: TestNamespace, keys: TopicKey[]): Promise<Map<TopicKey, Read[]>> {
  const n = names(ns.namespace);
  const kafka = createKafka(ns.config, { clientId: "produce-test", level: "nothing" });
  const admin = kafka.admin();
  await admin.connect();
  let total = 0;
  for (const k of keys) total += await topicMessageCount(admin, n.topics[k]);
  await admin.disconnect();
  const byTopic = new Map<string, TopicKey>(keys.map((k) => [n.topics[k], k]));
  const out = new Map<TopicKey, Read[]>(keys.map((k) => [k, []]));
  if (total === 0) return out;
  const consumer = createConsumer(kafka, {
    groupId: `${ns.namespace}.test-${crypto.randomUUID()}`,
  });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [...byTopic.keys()], fromBeginning: true });
    let seen = 0;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`read ${seen} of ${total}`)), 60_000);
      consumer.run({
        eachMessage: ({ topic, partition, message }) => {
          const key = byTopic.get(topic)!;
          const decoded = decodeEvent(key, message.value);
          if (!decoded.ok) reject(new Error(`invalid message on ${topic}: ${decoded.reason}`));
          else {
            const event = decoded.value as TransactionEvent | BehaviorEvent;
            out.get(key)!.push({ key: message.key!.toString(), partition, event });
          }
          if (++seen >= total) {
            clearTimeout(timer);
            resolve();
          }
          return Promise.resolve();
        },
      }).catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return out;
}

const ids = (reads: Read[] | undefined) => (reads ?? []).map((r) => r.event.event_id).sort();

async function drain(ns: TestNamespace, ...args: string[]) {
  const result = await runTask("produce", ["--drain", ...args], ns.env);
  assert.equal(result.code, 0, result.stderr);
  return result;
}

Deno.test({
  name: "produce: --drain publishes every row once, to the right topics, valid and intact",
  ...io,
  async fn() {
    const ns = await createTestNamespace("prod", { topics: true });
    const { shop, crm } = await openShop(ns.config);
    try {
      const bought: number[] = [];
      for (let i = 0; i < 12; i++) {
        bought.push(await buy(shop, 1 + i % 5, [[1 + i % 4, 1], [2, 2]]));
      }
      bought.push(await buy(shop, 2, [[1, 1], [2, 1], [3, 3], [4, 1]]));
      await browse(crm, 40);

      const first = await drain(ns);
      assert.match(first.stdout, /📤 Sending 13 transactions \(28 items\)/);
      const read = await readTopics(ns, ["transactions", "userBehavior", "searches", "cartEvents"]);
      assert.deepEqual(ids(read.get("transactions")), bought.map((id) => `txn-${id}`).sort());
      const behaviour = await crm<{ id: bigint; event_type: string }[]>`
        select id, event_type from user_behavior`;
      const expect = (types: string[]) =>
        behaviour.filter((b) => types.includes(b.event_type)).map((b) => `ub-${b.id}`).sort();
      assert.deepEqual(ids(read.get("userBehavior")), expect(BEHAVIOUR));
      assert.deepEqual(ids(read.get("searches")), expect(["search"]));
      assert.deepEqual(ids(read.get("cartEvents")), expect(["add_to_cart", "remove_from_cart"]));
      // Partitions are set by produce itself, as kafkajs' partitioner would choose them.
      for (const { key, partition } of [...read.values()].flat()) {
        assert.equal(partition, keyPartition(key, ns.config.kafka.partitions));
      }
      assert.ok(new Set(read.get("userBehavior")!.map((r) => r.partition)).size > 1);
      for (const { key, event } of read.get("transactions")!) {
        assert.equal(key, String(event.customer_id));
        const tx = event as TransactionEvent;
        const details = await shop<{ id: bigint; quantity: number }[]>`
          select id, quantity from transaction_details where transaction_id = ${tx.transaction_id}
          order by id`;
        assert.deepEqual(
          tx.items.map((i) => [i.detail_id, i.quantity]),
          details.map((d) => [
            Number(d.id),
            d.quantity,
          ]),
        );
      }
      const four = read.get("transactions")!.find((r) => r.event.event_id === `txn-${bought[12]}`);
      assert.deepEqual((four!.event as TransactionEvent).items.map((i) => i.product_name), [
        "iPhone 15",
        "USB-C Cable",
        "Running Shoes",
        "Coffee Maker",
      ]);

      const second = await drain(ns);
      assert.match(second.stdout, /Drained: 0 transactions and 0 behaviour events \(0 messages\)/);

      // A replay re-sends with the same ids and leaves the cursor where it was.
      const [cursor] = await shop`select txid::text, last_id from pipeline_cursor`;
      const replay = await drain(ns, "--replay-since", "2000-01-01T00:00:00Z");
      assert.match(replay.stdout, /replayed 13 transactions/);
      assert.deepEqual((await shop`select txid::text, last_id from pipeline_cursor`)[0], cursor);
      const again = await readTopics(ns, ["transactions"]);
      assert.equal(again.get("transactions")!.length, 26);
      assert.equal(new Set(ids(again.get("transactions"))).size, 13);
      const third = await drain(ns);
      assert.match(third.stdout, /\(0 messages\)/);
    } finally {
      await shop.end();
      await crm.end();
      await ns.cleanup();
    }
  },
});

Deno.test({
  name: "produce: a late commit is published once; other databases' transactions do not block",
  ...io,
  async fn() {
    const ns = await createTestNamespace("prodlate", { topics: true });
    const { shop, crm } = await openShop(ns.config);
    let commitA!: () => void;
    let commitCrm!: () => void;
    try {
      // A inserts first (lower id, lower txid) and stays open; B commits after it.
      let aId = 0;
      const inserted = Promise.withResolvers<void>();
      const a = shop.begin(async (tx) => {
        aId = await buy(tx as unknown as Sql, 1, [[1, 1], [2, 1]]);
        inserted.resolve();
        await new Promise<void>((resolve) => commitA = resolve);
      });
      await inserted.promise;
      const bId = await buy(shop, 2, [[3, 2]]);
      // An open write in crm_db must not hold back instashop rows.
      const crmOpen = Promise.withResolvers<void>();
      const c = crm.begin(async (tx) => {
        await browse(tx as unknown as Sql, 1);
        crmOpen.resolve();
        await new Promise<void>((resolve) => commitCrm = resolve);
      });
      await crmOpen.promise;

      const first = await drain(ns);
      // B is committed but held behind A; A's own row is not visible yet.
      assert.match(first.stdout, /⏳ 1 transactions wait for open transaction/);
      assert.deepEqual(ids((await readTopics(ns, ["transactions"])).get("transactions")), []);

      commitA();
      await a;
      const c3 = await buy(shop, 3, [[4, 1]]);
      const second = await drain(ns);
      assert.match(second.stdout, /Sending 3 transactions/, second.stdout);
      assert.doesNotMatch(second.stdout, /⏳ \d+ transactions/);
      const read = await readTopics(ns, ["transactions", "userBehavior"]);
      assert.deepEqual(ids(read.get("transactions")), [aId, bId, c3].map((i) => `txn-${i}`).sort());
      assert.deepEqual(ids(read.get("userBehavior")), []);

      commitCrm();
      await c;
      await drain(ns);
      const after = await readTopics(ns, ["transactions", "userBehavior"]);
      assert.equal(after.get("transactions")!.length, 3);
      assert.equal(after.get("userBehavior")!.length, 1);
    } finally {
      commitA?.();
      commitCrm?.();
      await shop.end();
      await crm.end();
      await ns.cleanup();
    }
  },
});

Deno.test({
  name: "produce: following, LISTEN wakes it, the heartbeat beats, SIGTERM stops it clean",
  ...io,
  async fn() {
    const ns = await createTestNamespace("prodlive", { topics: true });
    const { shop, crm } = await openShop(ns.config);
    const redis = createRedis(ns.config);
    const child = spawnTask("produce", ["--interval", "60s"], ns.env);
    try {
      const id = await buy(shop, 4, [[2, 3]]);
      // The poll is a minute away, so only NOTIFY can bring the row within the deadline.
      let reads: Read[] = [];
      for (let i = 0; i < 100 && reads.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 200));
        reads = (await readTopicsIfAny(ns)).get("transactions") ?? [];
      }
      assert.deepEqual(ids(reads), [`txn-${id}`]);
      let beat: Record<string, string> = {};
      const acked = () => beat.detail && JSON.parse(beat.detail).streams.transactions.acked;
      for (let i = 0; i < 50 && !String(acked()).endsWith(`:${id}`); i++) {
        await new Promise((r) => setTimeout(r, 200));
        beat = await redis.hgetall(names(ns.namespace).heartbeat("produce"));
      }
      assert.equal(beat.stage, "produce");
      assert.ok(Number(beat.pid) > 0 && !Number.isNaN(Date.parse(beat.at!)));
      assert.match(String(acked()), new RegExp(`^\\d+:${id}$`));
      assert.equal(JSON.parse(beat.detail!).streams.transactions.lag, 0);
    } finally {
      child.kill("SIGTERM");
      const status = await child.output();
      redis.disconnect();
      await shop.end();
      await crm.end();
      await ns.cleanup();
      assert.equal(status.code, 0, new TextDecoder().decode(status.stderr));
    }
  },
});

/** Reads `transactions` only once it holds something (keeps consumer joins rare). */
async function readTopicsIfAny(ns: TestNamespace) {
  const admin = createKafka(ns.config, { clientId: "produce-test", level: "nothing" }).admin();
  await admin.connect();
  const count = await topicMessageCount(admin, names(ns.namespace).topics.transactions);
  await admin.disconnect();
  return count === 0 ? new Map<TopicKey, Read[]>() : await readTopics(ns, ["transactions"]);
}

Deno.test({
  name: "produce: an invalid row stops the drain loudly before it; bad flags exit 2",
  ...io,
  async fn() {
    const ns = await createTestNamespace("prodbad", { topics: true });
    const { shop, crm } = await openShop(ns.config);
    try {
      const good = await buy(shop, 1, [[1, 1]]);
      const [bad] = await shop<{ id: bigint }[]>`insert into transactions
        (customer_id, total_cents, payment_method) values (1, 0, 'paypal') returning id`;
      const result = await runTask("produce", ["--drain"], ns.env);
      assert.equal(result.code, 1);
      assert.match(result.stderr, new RegExp(`transactions row ${bad!.id} .*items`));
      assert.equal(result.stderr.includes("    at "), false, "no stack trace");
      assert.deepEqual((await shop`select last_id from pipeline_cursor`).map((r) => r.last_id), []);
      assert.equal((await readTopics(ns, ["transactions"])).get("transactions")!.length, 0);
      assert.ok(good > 0);

      for (const args of [["--bogus"], ["--replay-since", "soon"], ["--batch", "0"]]) {
        const r = await runTask("produce", args, ns.env);
        assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
        assert.match(r.stderr, /error: /);
      }
    } finally {
      await shop.end();
      await crm.end();
      await ns.cleanup();
    }
  },
});

Deno.test("produce: a cursor write that failed is reported once, then saving goes on", async () => {
  const stored: string[] = [];
  let fail = true;
  const saver = createSaver((cursor) => {
    if (fail) return Promise.reject(new Error("write CONNECTION_CLOSED"));
    stored.push(formatCursor(cursor));
    return Promise.resolve();
  });
  saver.save(cursorOf(1n, 1));
  await new Promise((resolve) => setTimeout(resolve, 10));
  // A save while the failure is still unreported (the pump acknowledges pages meanwhile).
  saver.save(cursorOf(1n, 2));
  fail = false;
  await assert.rejects(saver.flush(), /CONNECTION_CLOSED/);
  saver.save(cursorOf(1n, 3));
  await saver.flush();
  assert.deepEqual(stored, ["1:3"]);
});
