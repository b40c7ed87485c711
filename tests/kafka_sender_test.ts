/**
 * Unit tests of lib/kafka_sender.ts with fake producers (pure logic: which
 * partition, when a batch counts as written, when the producer is replaced).
 * The real proof is the three-broker fault test (tests/faults_broker_test.ts).
 */

import assert from "node:assert/strict";
import type { Kafka, Producer } from "../lib/kafka.ts";
import { createKafkaSender, unacknowledged } from "../lib/kafka_sender.ts";

type Sent = { topic: string; messages: { partition?: number; key?: unknown }[] }[];

/**
 * Producers whose sends fail while `failing(id)` holds; each answers for the
 * partitions it was sent to, less those `drop` names (kafkajs#1303).
 */
function fakeProducers(failing: (id: number) => boolean, drop = new Set<string>()) {
  const log: string[] = [];
  const batches: Sent[] = [];
  let made = 0;
  let inFlight = 0;
  let overlapped = false;
  const make = () => {
    const id = ++made;
    return {
      connect: () => Promise.resolve(void log.push(`connect ${id}`)),
      disconnect: () => Promise.resolve(void log.push(`disconnect ${id}`)),
      sendBatch: async ({ topicMessages }: { topicMessages: Sent }) => {
        if (++inFlight > 1) overlapped = true;
        await new Promise((r) => setTimeout(r, 5));
        inFlight--;
        const topic = topicMessages.map((t) => t.topic).join(",");
        if (failing(id)) {
          log.push(`fail ${id} ${topic}`);
          throw new Error("OUT_OF_ORDER_SEQUENCE_NUMBER");
        }
        log.push(`sent ${id} ${topic}`);
        batches.push(topicMessages);
        const answer = [];
        for (const t of topicMessages) {
          for (const p of new Set(t.messages.map((m) => m.partition!))) {
            if (!drop.has(`${t.topic}[${p}]`)) {
              answer.push({ topicName: t.topic, partition: p, errorCode: 0 });
            }
          }
        }
        return answer;
      },
    } as unknown as Producer;
  };
  return { make, log, batches, made: () => made, overlapped: () => overlapped };
}

const kafka = {} as Kafka;
const fourPartitions = (topics: string[]) => Promise.resolve(new Map(topics.map((t) => [t, 4])));
const one = (topic: string) => [{ topic, messages: [{ key: "28", value: "{}" }] }];

Deno.test("kafka sender: a failed send replaces the producer; sends never overlap", async () => {
  const fakes = fakeProducers((id) => id === 1);
  const sender = createKafkaSender(kafka, { make: fakes.make, partitionsOf: fourPartitions });
  await sender.connect();
  const results = await Promise.allSettled([
    sender.send(one("a")),
    sender.send(one("b")),
    sender.send(one("c")),
  ]);
  assert.deepEqual(results.map((r) => r.status), ["rejected", "fulfilled", "fulfilled"]);
  assert.deepEqual(fakes.log, [
    "connect 1",
    "fail 1 a",
    "disconnect 1",
    "connect 2",
    "sent 2 b",
    "sent 2 c",
  ]);
  assert.equal(fakes.overlapped(), false);
  await sender.close();
  assert.equal(fakes.log.at(-1), "disconnect 2");
});

Deno.test("kafka sender: a producer that keeps failing is replaced on each failure", async () => {
  const fakes = fakeProducers((id) => id < 4);
  const sender = createKafkaSender(kafka, { make: fakes.make, partitionsOf: fourPartitions });
  for (let i = 0; i < 3; i++) {
    await assert.rejects(sender.send(one("t")), /OUT_OF_ORDER/);
  }
  await sender.send(one("t"));
  assert.equal(fakes.made(), 4);
  assert.equal(fakes.log.at(-1), "sent 4 t");
});

Deno.test("kafka sender: an answer without a partition it was sent to fails the send and replaces the producer", async () => {
  const fakes = fakeProducers(() => false, new Set(["t[1]"]));
  const sender = createKafkaSender(kafka, { make: fakes.make, partitionsOf: fourPartitions });
  // Keys "2" and "4" go to partitions 0 and 1 of 4 under kafkajs' default (murmur2) partitioner.
  const batch = [{ topic: "t", messages: [{ key: "2", value: "a" }, { key: "4", value: "b" }] }];
  await assert.rejects(sender.send(batch), {
    name: "UnacknowledgedError",
    message: /leaves out 1 partition\(s\) it was sent to: current value is t\[1\] \(kafkajs#1303\)/,
  });
  assert.deepEqual(fakes.batches[0]![0]!.messages.map((m) => m.partition), [0, 1]);
  assert.deepEqual(fakes.log.slice(-1), ["disconnect 1"]);
  await sender.close();
});

Deno.test("kafka sender: keyed messages keep kafkajs' partition, keyless ones rotate, set ones stay", async () => {
  const fakes = fakeProducers(() => false);
  const sender = createKafkaSender(kafka, { make: fakes.make, partitionsOf: fourPartitions });
  await sender.send([{
    topic: "t",
    messages: [
      { key: "2", value: "a" },
      { key: null, value: "b" },
      { key: null, value: "c" },
      { key: "x", value: "d", partition: 3 },
      { key: Buffer.from("2"), value: "e" },
    ],
  }]);
  assert.deepEqual(fakes.batches[0]![0]!.messages.map((m) => m.partition), [0, 0, 1, 3, 0]);
  await sender.send([{ topic: "t", messages: [] }]);
  assert.equal(fakes.batches.length, 1, "an empty batch sends nothing");
  await sender.close();
});

Deno.test("kafka sender: connect learns the topics' partitions once; sends do not ask again", async () => {
  const fakes = fakeProducers(() => false);
  const asked: string[][] = [];
  const partitionsOf = (topics: string[]) => {
    asked.push(topics);
    return fourPartitions(topics);
  };
  const sender = createKafkaSender(kafka, { make: fakes.make, partitionsOf });
  await sender.connect(["items", "letters", "items"]);
  assert.deepEqual(fakes.log, ["connect 1"]);
  await sender.send(one("items"));
  await sender.send(one("letters"));
  await sender.send(one("other"));
  assert.deepEqual(asked, [["items", "letters"], ["other"]]);
  await sender.close();
});

Deno.test("kafka sender: unacknowledged names each partition sent to and not acknowledged", () => {
  // kafkajs#1303: partition 3 moved to broker B, which had already answered for 1 and 2.
  const sent = [
    { topic: "t", messages: [1, 2, 3, 3].map((partition) => ({ value: "v", partition })) },
    { topic: "u", messages: [{ value: "v", partition: 0 }] },
  ];
  const answer = (parts: [string, number, number][]) =>
    parts.map(([topicName, partition, errorCode]) => ({ topicName, partition, errorCode }));
  assert.deepEqual(unacknowledged(sent, answer([["t", 1, 0], ["t", 2, 0], ["u", 0, 0]])), [
    "t[3]",
  ]);
  assert.deepEqual(unacknowledged(sent, answer([["t", 1, 0], ["t", 2, 0], ["t", 3, 6]])), [
    "t[3]",
    "u[0]",
  ]);
  assert.deepEqual(
    unacknowledged(sent, answer([["t", 3, 0], ["t", 1, 0], ["u", 0, 0], ["t", 2, 0]])),
    [],
  );
});
