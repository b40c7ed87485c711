/**
 * Bad input (issue 10): poison messages on every input topic end in
 * `dead_letters` with their reason, are counted in `deno task status --json`,
 * and the pipeline goes on (their good neighbours land; verify exact). Bad
 * flags and environment values: bad_flags_test.ts.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { DEAD_LETTER_HEADERS, decodeEvent, names, type TopicKey } from "../lib/contracts.ts";
import { createConsumer, createKafka, type KafkaMessage } from "../lib/kafka.ts";
import { io, runOk, verifyExact, waitFor } from "./_faults.ts";
import { createTestNamespace, runTask, type TestNamespace } from "./_support.ts";

const TIMESTAMP = "2026-01-01T00:00:00.000Z";
const ID = 900_000_001;

/** A valid event per input topic; each poison below changes one thing. */
const VALID: Record<Exclude<TopicKey, "deadLetters">, Record<string, unknown>> = {
  transactions: {
    schema_version: 1,
    event_id: `txn-${ID}`,
    event_type: "transaction",
    customer_id: 1,
    timestamp: TIMESTAMP,
    transaction_id: ID,
    buyer_id: null,
    total_cents: 1000,
    payment_method: "credit_card",
    status: "completed",
    items: [{
      detail_id: ID,
      product_id: 1,
      product_name: "iPhone 15",
      category: "Electronics",
      quantity: 1,
      unit_price_cents: 1000,
    }],
  },
  userBehavior: behavior("page_view", { product_id: null, search_query: null }),
  searches: behavior("search", { product_id: null, search_query: "phone" }),
  cartEvents: behavior("add_to_cart", { product_id: 1, search_query: null }),
  transactionItems: {
    schema_version: 1,
    event_id: `ti-${ID}`,
    event_type: "transaction_item",
    customer_id: 1,
    timestamp: TIMESTAMP,
    transaction_id: ID,
    detail_id: ID,
    product_id: 1,
    product_name: "iPhone 15",
    category: "Electronics",
    quantity: 1,
    unit_price_cents: 1000,
    revenue_cents: 1000,
  },
};

function behavior(type: string, extra: Record<string, unknown>): Record<string, unknown> {
  return {
    schema_version: 1,
    event_id: `ub-${ID}`,
    event_type: type,
    customer_id: 1,
    timestamp: TIMESTAMP,
    behavior_id: ID,
    session_id: "s-poison",
    device: "mobile",
    ...extra,
  };
}

const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

/** Each kind of poison: its bytes from the topic's valid event, and the reason it must get. */
const POISONS: {
  kind: string;
  bytes: (valid: Record<string, unknown>) => Uint8Array | null;
  reason: RegExp;
}[] = [
  {
    kind: "not JSON",
    bytes: () => new TextEncoder().encode('{"event_id": "txn-1",'),
    reason: /^not JSON/,
  },
  {
    kind: "wrong types",
    bytes: (v) => json({ ...v, customer_id: "abc" }),
    reason: /customer_id must be an integer/,
  },
  {
    kind: "missing fields",
    bytes: (v) => json({ ...v, timestamp: undefined }),
    reason: /timestamp must be a non-empty string/,
  },
  {
    kind: "unknown event type",
    bytes: (v) => json({ ...v, event_type: "teleport" }),
    reason: /event_type .*"teleport"/,
  },
  {
    kind: "invalid UTF-8",
    bytes: () => new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]),
    reason: /^not valid UTF-8$/,
  },
  {
    kind: "1 MB payload",
    bytes: (v) => json({ ...v, padding: "x".repeat(1024 * 1024) }),
    reason: /^too large: \d+ bytes, limit \d+$/,
  },
  { kind: "empty (null value)", bytes: () => null, reason: /^empty message$/ },
];

/** Which stages read which input topic (each dead-letters what it cannot read). */
const READERS: Record<keyof typeof VALID, string[]> = {
  transactions: ["consume", "aggregate"],
  userBehavior: ["consume", "aggregate"],
  searches: ["consume"],
  cartEvents: ["consume"],
  transactionItems: ["aggregate"],
};

interface Sent {
  topic: string;
  kind: string;
  key: string;
  value: Uint8Array | null;
  reason: RegExp;
}

async function sendPoisons(ns: TestNamespace): Promise<Sent[]> {
  const n = names(ns.namespace);
  const producer = createKafka(ns.config, { clientId: "faults-poison" }).producer({
    allowAutoTopicCreation: false,
  });
  await producer.connect();
  const sent: Sent[] = [];
  try {
    for (const [topicKey, valid] of Object.entries(VALID)) {
      const topic = n.topics[topicKey as keyof typeof VALID];
      // The template itself is valid: each poison is refused for its one fault.
      assert.equal(decodeEvent(topicKey as TopicKey, json(valid)).ok, true, topicKey);
      for (const [i, poison] of POISONS.entries()) {
        const value = poison.bytes(valid);
        const key = `poison-${topicKey}-${i}`;
        await producer.send({
          topic,
          acks: -1,
          messages: [{ key, value: value === null ? null : Buffer.from(value) }],
        });
        sent.push({ topic, kind: poison.kind, key, value, reason: poison.reason });
      }
    }
  } finally {
    await producer.disconnect();
  }
  return sent;
}

/** Every message on the namespace's dead_letters topic. */
async function readDeadLetters(ns: TestNamespace, expected: number): Promise<KafkaMessage[]> {
  const n = names(ns.namespace);
  const kafka = createKafka(ns.config, { clientId: "faults-dlq" });
  const consumer = createConsumer(kafka, { groupId: `${ns.namespace}.faults-dlq-reader` });
  const messages: KafkaMessage[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic: n.topics.deadLetters, fromBeginning: true });
    await consumer.run({
      eachMessage: ({ message }) => {
        messages.push(message);
        return Promise.resolve();
      },
    });
    await waitFor(`${expected} dead letters`, 60_000, () => messages.length >= expected);
    // Anything beyond the expected count would be a surprise: give it a moment to show.
    await new Promise((resolve) => setTimeout(resolve, 1000));
  } finally {
    await consumer.disconnect();
  }
  return messages;
}

const header = (m: KafkaMessage, name: string) => m.headers?.[name]?.toString();
const sha = (bytes: Uint8Array | Buffer | null) =>
  createHash("sha256").update(bytes ?? new Uint8Array(0)).digest("hex");

Deno.test(
  "bad input: poison on every input topic ends in dead_letters with its reason; neighbours land",
  io,
  async () => {
    const ns = await createTestNamespace("bad_input", { topics: true });
    try {
      // Good neighbours before and after the poison, on the same topics.
      await runOk("generate", ["--count", "300", "--rate", "0", "--seed", "31"], ns.env);
      await runOk("produce", ["--drain"], ns.env);
      const sent = await sendPoisons(ns);
      await runOk("generate", ["--count", "300", "--rate", "0", "--seed", "32"], ns.env);
      await runOk("produce", ["--drain"], ns.env);
      await runOk("consume", ["--drain"], ns.env);
      await runOk("aggregate", ["--drain"], ns.env);

      const expected = sent.flatMap((s) => {
        const topicKey = Object.entries(names(ns.namespace).topics)
          .find(([, t]) => t === s.topic)![0] as keyof typeof VALID;
        return READERS[topicKey].map((stage) => ({ ...s, stage }));
      });
      assert.equal(expected.length, 7 * 7); // 7 kinds; 4 topics x consume + 3 x aggregate
      const letters = await readDeadLetters(ns, expected.length);
      assert.equal(letters.length, expected.length);
      for (const e of expected) {
        const letter = letters.find((m) =>
          m.key?.toString() === e.key && header(m, DEAD_LETTER_HEADERS.stage) === e.stage
        );
        assert.ok(letter, `no dead letter from ${e.stage} for ${e.kind} on ${e.topic}`);
        assert.equal(header(letter, DEAD_LETTER_HEADERS.sourceTopic), e.topic);
        assert.match(header(letter, DEAD_LETTER_HEADERS.sourcePartition)!, /^\d+$/);
        assert.match(header(letter, DEAD_LETTER_HEADERS.sourceOffset)!, /^\d+$/);
        assert.ok(!Number.isNaN(Date.parse(header(letter, DEAD_LETTER_HEADERS.failedAt)!)));
        assert.match(
          header(letter, DEAD_LETTER_HEADERS.reason)!,
          e.reason,
          `${e.stage}, ${e.kind} on ${e.topic}`,
        );
        // The original bytes, untouched (the 1 MB one included).
        assert.equal(sha(letter.value), sha(e.value), `${e.kind} on ${e.topic}: value differs`);
      }

      const status = await runTask("status", ["--json"], ns.env);
      const report = JSON.parse(status.stdout);
      assert.equal(report.redis.dead_letters.total, expected.length);
      const bySource: Record<string, number> = {};
      for (const e of expected) {
        const plain = e.topic.slice(ns.namespace.length + 1);
        bySource[`${e.stage}:${plain}`] = (bySource[`${e.stage}:${plain}`] ?? 0) + 1;
      }
      assert.deepEqual(report.redis.dead_letters.by_source, bySource);
      const dlqTopic = report.kafka.topics.find((t: { topic: string }) =>
        t.topic === names(ns.namespace).topics.deadLetters
      );
      assert.equal(dlqTopic.messages, expected.length);

      // Every good neighbour landed, counted once; no poison was counted.
      await verifyExact(ns.env);
    } finally {
      await ns.cleanup();
    }
  },
);
