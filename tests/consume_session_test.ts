/**
 * The consumer's Kafka session while a batch waits for a flush slot (a slow
 * warehouse), on the real Kafka and PostgreSQL, in process: the fault hook
 * `afterWrite` holds the first flush in its warehouse step, the second
 * starts, and the batches after them wait for room in the queue. Without a heartbeat during that
 * wait the session expires; with another member joining meanwhile, the
 * group rebalances without the consumer and its offset commit fails, which
 * a drain must survive (rejoin, batch found stored, exit 0).
 */

import assert from "node:assert/strict";
import type { Config } from "../lib/config.ts";
import { names, type TransactionEvent } from "../lib/contracts.ts";
import { connect } from "../lib/db.ts";
import { type Consumer, createConsumer, createKafka, createProducer } from "../lib/kafka.ts";
import type { Logger } from "../lib/log.ts";
import { sleep } from "../lib/retry.ts";
import { createWarehouseConsumer } from "../services/consume/consumer.ts";
import { createTestNamespace } from "./_support.ts";

const io = { sanitizeResources: false, sanitizeOps: false };

function transaction(id: number): TransactionEvent {
  return {
    schema_version: 1,
    event_id: `txn-${id}`,
    event_type: "transaction",
    customer_id: 1 + id % 17,
    timestamp: "2026-11-29T10:00:00.000Z",
    transaction_id: id,
    buyer_id: null,
    total_cents: 299,
    payment_method: "paypal",
    status: "completed",
    items: [{
      detail_id: id * 10,
      product_id: 3,
      product_name: "Product 3",
      category: "Books",
      quantity: 1,
      unit_price_cents: 299,
    }],
  };
}

/** Transactions `from` .. `from + count - 1` to the namespace's transactions topic. */
async function produceTransactions(config: Config, from: number, count: number) {
  const producer = createProducer(createKafka(config, { clientId: "test-session-feed" }));
  await producer.connect();
  try {
    const messages = Array.from({ length: count }, (_, k) => {
      const t = transaction(from + k);
      return { key: String(t.customer_id), value: JSON.stringify(t) };
    });
    await producer.send({ topic: names(config.namespace).topics.transactions, acks: -1, messages });
  } finally {
    await producer.disconnect();
  }
}

async function storedTransactions(config: Config): Promise<number> {
  const sql = connect(config.databases.dwh, { max: 1 });
  try {
    const [row] = await sql<{ n: number }[]>`select count(*)::int as n from realtime_events`;
    return row!.n;
  } finally {
    await sql.end();
  }
}

/** The transactions topic's end offset per partition. */
async function endOffsets(config: Config): Promise<Map<number, number>> {
  const admin = createKafka(config, { clientId: "test-session-ends" }).admin();
  await admin.connect();
  try {
    const ends = await admin.fetchTopicOffsets(names(config.namespace).topics.transactions);
    return new Map(ends.map((e) => [e.partition, Number(e.high)]));
  } finally {
    await admin.disconnect();
  }
}

/** Partitions of the transactions topic whose committed offset is short of `targets`. */
async function uncommitted(
  config: Config,
  group: string,
  targets: Map<number, number>,
): Promise<string[]> {
  const admin = createKafka(config, { clientId: "test-session-offsets" }).admin();
  await admin.connect();
  try {
    const topic = names(config.namespace).topics.transactions;
    const [committed] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
    return [...targets].filter(([partition, high]) => {
      const c = committed!.partitions.find((p) => p.partition === partition);
      return Number(c?.offset ?? -1) < high;
    }).map(([partition, high]) => `${partition}: committed short of ${high}`);
  } finally {
    await admin.disconnect();
  }
}

function capture(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    info: (l) => lines.push(l),
    warn: (l) => lines.push(`WARN ${l}`),
    error: (l) => lines.push(`ERROR ${l}`),
  };
}

const SESSION_MS = 10_000;
/** Longer than the consumer's rebalance timeout (./services/consume/loop.ts, 20 s). */
const REBALANCE_MS = 20_000;

/**
 * A drain of 60 transactions in flushes of at most 10 whose first flush is
 * held for `holdMs` once a second one is in flight: the other partition
 * batches of the fetch wait for room in the batcher's queue, and kafkajs
 * fetches nothing meanwhile; `during` runs when the hold starts. Checks that the drain stored every event and
 * committed every offset it set out to; returns the consumer's log lines.
 */
async function drainWithHeldFlush(
  config: Config,
  holdMs: number,
  during: () => Promise<void> = () => Promise.resolve(),
): Promise<string[]> {
  await produceTransactions(config, 1, 60);
  const targets = await endOffsets(config);
  const log = capture();
  let flushes = 0;
  const second = Promise.withResolvers<void>();
  const consumer = createWarehouseConsumer({ config, log }, {
    drain: true,
    // Flushes of at most 10 messages, so a few partition batches fill the batcher's queue.
    maxBatchMessages: 10,
    afterWrite: async (stored) => {
      if (++flushes === 2) return second.resolve();
      if (flushes > 2 || stored === 0) return;
      await Promise.race([second.promise, sleep(30_000)]);
      await during();
      await sleep(holdMs);
    },
  });
  await consumer.run(AbortSignal.timeout(180_000));
  const lines = log.lines.join("\n");
  assert.ok(flushes >= 2, lines);
  assert.equal(await storedTransactions(config), 60, lines);
  const group = names(config.namespace).group("consume");
  assert.deepEqual(await uncommitted(config, group, targets), [], lines);
  return log.lines;
}

Deno.test(
  "consume: a batch that waits for a flush slot longer than the session timeout keeps the session",
  io,
  async () => {
    const ns = await createTestNamespace("conslow", { topics: true });
    try {
      const lines = await drainWithHeldFlush(ns.config, SESSION_MS + 4000);
      const ended = lines.filter((l) => /Consumer session ended/.test(l));
      assert.deepEqual(ended, [], lines.join("\n"));
    } finally {
      await ns.cleanup();
    }
  },
);

Deno.test(
  "consume: a drain whose offset commit fails on a rebalance rejoins and ends 0, every offset committed",
  io,
  async () => {
    const ns = await createTestNamespace("conreb", { topics: true });
    const n = names(ns.namespace);
    const group = n.group("consume");
    const kafka = createKafka(ns.config, { clientId: "test-session" });
    let intruder: Consumer | undefined;
    let gone: Promise<void> | undefined;
    try {
      // A second member joins while the consumer cannot rejoin (its batch waits for a slot):
      // the group rebalances without it, and its held flush then commits on a dead generation.
      const lines = await drainWithHeldFlush(ns.config, REBALANCE_MS + 4000, async () => {
        const member = intruder = createConsumer(kafka, {
          groupId: group,
          sessionTimeout: SESSION_MS,
          rebalanceTimeout: SESSION_MS,
        });
        await member.connect();
        await member.subscribe({ topics: [n.topics.transactions], fromBeginning: true });
        const joined = Promise.withResolvers<void>();
        member.on(member.events.GROUP_JOIN, () => joined.resolve());
        // It reads nothing and leaves once it has joined, so the drain gets every partition.
        // (Not from the GROUP_JOIN listener: a disconnect while kafkajs' run() is still
        // joining leaves its runner running, a member nobody stops.)
        const running = member.run({
          autoCommit: false,
          eachBatchAutoResolve: false,
          eachBatch: noop,
        });
        gone = Promise.all([joined.promise, running]).then(() => member.disconnect());
      });
      const failed = lines.filter((l) => /Consumer session ended: Cannot commit/.test(l));
      assert.ok(failed.length > 0, `no commit failed:\n${lines.join("\n")}`);
    } finally {
      await gone?.catch(() => {});
      await intruder?.disconnect().catch(() => {});
      await ns.cleanup();
    }
  },
);

function noop(): Promise<void> {
  return Promise.resolve();
}
