/**
 * lib/kafka_session.ts on the real Kafka: why the stages start every
 * consumer session themselves. kafkajs 2.2.4 restarts a consumer after a
 * retriable crash with a timer of its own; a consumer the stage disconnects
 * meanwhile comes back as a second member of the group, holding partitions
 * nobody reads. With `STAGE_RETRY` it stays gone.
 */

import assert from "node:assert/strict";
import { names } from "../lib/contracts.ts";
import { createConsumer, createKafka, type Kafka } from "../lib/kafka.ts";
import { heartbeatWhile, retriableCrash, STAGE_RETRY } from "../lib/kafka_session.ts";
import { sleep } from "../lib/retry.ts";
import { createTestNamespace } from "./_support.ts";

const io = { sanitizeResources: false, sanitizeOps: false };

/**
 * Runs a consumer whose every batch fails until kafkajs gives up (a retriable
 * crash); the CRASH listener disconnects it, as a stage's loop does. Then
 * reads the group's members every half second until `until` says enough
 * (with the members and the ms since the crash), and returns the last count.
 */
async function membersAfterCrash(
  kafka: Kafka,
  groupId: string,
  topic: string,
  { retry, until }: {
    retry?: typeof STAGE_RETRY;
    until: (members: number, ms: number) => boolean;
  },
): Promise<{ members: number; restart: boolean; retriable: boolean; ms: number }> {
  const consumer = createConsumer(kafka, { groupId, ...(retry ? { retry } : {}) });
  const crashed = Promise.withResolvers<{ restart: boolean; retriable: boolean }>();
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    crashed.resolve({ restart: payload.restart, retriable: retriableCrash(payload.error) });
    void consumer.disconnect();
  });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    eachBatch: () => Promise.reject(new Error("this batch always fails")),
  });
  const crash = await crashed.promise;
  const since = performance.now();
  const admin = kafka.admin();
  await admin.connect();
  try {
    for (;;) {
      await sleep(500);
      const [group] = (await admin.describeGroups([groupId])).groups;
      const members = group?.members.length ?? 0;
      const ms = performance.now() - since;
      if (until(members, ms)) return { members, ...crash, ms: Math.round(ms) };
    }
  } finally {
    await admin.disconnect();
    await consumer.disconnect().catch(() => {});
  }
}

Deno.test(
  "kafka session: a consumer disconnected on a retriable crash stays gone with STAGE_RETRY (kafkajs' own restart brings it back)",
  io,
  async () => {
    const ns = await createTestNamespace("kses", { topics: true });
    const kafka = createKafka(ns.config, { clientId: "test-kafka-session", level: "nothing" });
    const topic = names(ns.namespace).topics.transactions;
    const producer = kafka.producer();
    try {
      await producer.connect();
      await producer.send({ topic, messages: [{ key: "1", value: "x" }] });
      await producer.disconnect();

      // kafkajs' own restart comes after its last retry time (at most 5 s here) plus a join;
      // on a loaded machine later, so it is waited for (30 s at most), and timed.
      const own = await membersAfterCrash(kafka, `${ns.namespace}.kafkajs`, topic, {
        until: (members, ms) => members > 0 || ms > 30_000,
      });
      const { ms: ownMs, ...ownOutcome } = own;
      assert.deepEqual(ownOutcome, { members: 1, restart: true, retriable: true });

      // With STAGE_RETRY, nobody comes back: watched for longer than kafkajs took to come back.
      const deadline = Math.max(9000, ownMs + 5000);
      const stage = await membersAfterCrash(kafka, `${ns.namespace}.stage`, topic, {
        retry: STAGE_RETRY,
        until: (members, ms) => members > 0 || ms > deadline,
      });
      const { ms: stageMs, ...stageOutcome } = stage;
      assert.deepEqual(
        stageOutcome,
        { members: 0, restart: false, retriable: true },
        `a member came back ${stageMs} ms after the crash`,
      );
    } finally {
      await ns.cleanup();
    }
  },
);

Deno.test("kafka session: retriableCrash follows kafkajs' own test", () => {
  assert.equal(retriableCrash({ name: "KafkaJSNumberOfRetriesExceeded" }), true);
  assert.equal(retriableCrash({ name: "KafkaJSError", retriable: true }), true);
  assert.equal(retriableCrash({ retriable: false, cause: { retriable: true } }), true);
  assert.equal(retriableCrash({ retriable: true, cause: { retriable: false } }), false);
  assert.equal(retriableCrash(new Error("plain")), false);
  assert.equal(retriableCrash(undefined), false);
});

Deno.test("kafka session: heartbeatWhile beats while a batch waits, never for one that does not", async () => {
  let beats = 0;
  const count = () => {
    beats++;
    return Promise.resolve();
  };
  assert.equal(await heartbeatWhile(Promise.resolve(7), count), 7);
  assert.equal(beats, 0);
  // The wait ends at its second heartbeat: it beats for as long as it waits.
  const wait = Promise.withResolvers<string>();
  const second = () => {
    if (++beats === 2) wait.resolve("flushed");
    return Promise.reject(new Error("The group is rebalancing"));
  };
  assert.equal(await heartbeatWhile(wait.promise, second), "flushed");
  await assert.rejects(heartbeatWhile(Promise.reject(new Error("failed")), count), /failed/);
  assert.equal(beats, 2);
});
