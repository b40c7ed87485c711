/**
 * Both consumers (consume's loop, the aggregator's Kafka side) hand every
 * partition batch of one session the same `commit` function: the flushes
 * group offsets by that function, so a flush over many partitions is one
 * OffsetCommit request. A function per batch made it one request per
 * partition, most of the broker's requests in steady state. Real Kafka.
 */

import assert from "node:assert/strict";
import { names } from "../lib/contracts.ts";
import { createKafka, createProducer } from "../lib/kafka.ts";
import { createLogger } from "../lib/log.ts";
import { createKafkaIo } from "../services/aggregate/kafka_io.ts";
import type { Part as AggregatePart } from "../services/aggregate/flush.ts";
import type { Batcher } from "../services/consume/batcher.ts";
import type { Part as ConsumePart } from "../services/consume/flush.ts";
import { consumeLoop } from "../services/consume/loop.ts";
import { createTestNamespace, type TestNamespace } from "./_support.ts";

const services = { sanitizeResources: false, sanitizeOps: false };

/** One message in each partition of `transactions`. */
async function fillPartitions(ns: TestNamespace): Promise<number> {
  const n = names(ns.namespace);
  const partitions = ns.config.kafka.partitions;
  const producer = createProducer(createKafka(ns.config, { clientId: "test-commit" }));
  await producer.connect();
  try {
    await producer.send({
      topic: n.topics.transactions,
      acks: -1,
      messages: Array.from({ length: partitions }, (_, p) => ({
        partition: p,
        key: String(p),
        value: "{}",
      })),
    });
  } finally {
    await producer.disconnect();
  }
  return partitions;
}

/** Committed offsets of `group` on `transactions`, by partition. */
async function committed(ns: TestNamespace, group: string): Promise<Map<number, number>> {
  const admin = createKafka(ns.config, { clientId: "test-commit" }).admin();
  await admin.connect();
  try {
    const topic = names(ns.namespace).topics.transactions;
    const [offsets] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
    return new Map(offsets!.partitions.map((p) => [p.partition, Number(p.offset)]));
  } finally {
    await admin.disconnect();
  }
}

Deno.test({
  name: "consume: every batch of a session commits through one function, so one request per flush",
  ...services,
  async fn() {
    const ns = await createTestNamespace("commitc", { topics: true });
    try {
      const partitions = await fillPartitions(ns);
      const n = names(ns.namespace);
      const group = `${ns.namespace}.commit-test`;
      const parts: ConsumePart[] = [];
      const stop = new AbortController();
      const all = Promise.withResolvers<void>();
      const batcher: Pick<Batcher<ConsumePart>, "submit" | "idle"> = {
        submit(part) {
          parts.push(part);
          if (new Set(parts.map((p) => p.partition)).size === partitions) all.resolve();
          return Promise.resolve({ done: Promise.resolve() });
        },
        idle: () => Promise.resolve(),
      };
      const loop = consumeLoop({
        kafka: createKafka(ns.config, { clientId: "test-commit" }),
        group,
        topicKey: new Map([[n.topics.transactions, "transactions"]]),
        partitionCount: partitions,
        batcher,
        log: createLogger({ quiet: true }),
        signal: stop.signal,
        attempts: 3,
        brokers: ns.config.kafka.brokers.join(","),
      });
      loop.catch((error) => all.reject(error));
      await all.promise;
      // Commit from inside the session, as a flush does.
      await parts[0]!.commit(
        parts.map((p) => ({ topic: p.topic, partition: p.partition, offset: p.nextOffset })),
      );
      stop.abort();
      await loop;
      assert.equal(new Set(parts.map((p) => p.commit)).size, 1);
      const offsets = await committed(ns, group);
      for (let p = 0; p < partitions; p++) assert.equal(offsets.get(p), 1);
    } finally {
      await ns.cleanup();
    }
  },
});

Deno.test({
  name:
    "aggregate: every batch of a consumer commits through one function, so one request per flush",
  ...services,
  async fn() {
    const ns = await createTestNamespace("commita", { topics: true });
    try {
      const partitions = await fillPartitions(ns);
      const group = `${ns.namespace}.commit-test`;
      const parts: AggregatePart[] = [];
      const stop = new AbortController();
      const io = createKafkaIo({
        kafka: createKafka(ns.config, { clientId: "test-commit" }),
        n: names(ns.namespace),
        group,
        log: createLogger({ quiet: true }),
        signal: stop.signal,
        attempts: 3,
      });
      const all = Promise.withResolvers<void>();
      const consuming = io.consume({
        fetchBytes: 1024 * 1024,
        concurrency: 3 * partitions,
        sessionTimeoutMs: 10_000,
        submit(part) {
          parts.push(part);
          if (new Set(parts.map((p) => p.partition)).size === partitions) all.resolve();
          return Promise.resolve();
        },
        onAssign() {},
        onFatal: (error) => all.reject(error),
      });
      await all.promise;
      await parts[0]!.commit(
        parts.map((p) => ({ topic: p.topic, partition: p.partition, offset: p.nextOffset })),
      );
      stop.abort();
      await consuming;
      await io.admin.disconnect().catch(() => {});
      assert.equal(new Set(parts.map((p) => p.commit)).size, 1);
      const offsets = await committed(ns, group);
      for (let p = 0; p < partitions; p++) assert.equal(offsets.get(p), 1);
    } finally {
      await ns.cleanup();
    }
  },
});
