/**
 * The two Kafka clients under comparison, on the same two paths: produce `N`
 * messages (acks=all, idempotent, in batches of `batch`, `inflight` batches
 * awaited together) and read `N` messages from the start of a topic under a
 * new group, without committing. The kafkajs side goes through `lib/kafka.ts`
 * exactly as the stages do; the @platformatic/kafka side lives only here,
 * because the pipeline does not use it.
 *
 * @module
 */

import "../../lib/sealed_env.ts";
import type { Config } from "../../lib/config.ts";
import { createConsumer, createKafka, createProducer } from "../../lib/kafka.ts";
import {
  compatibilityPartitioner,
  Consumer as PlatformaticConsumer,
  MessagesStreamModes,
  Producer as PlatformaticProducer,
} from "@platformatic/kafka";
import type { SampleMessage } from "./payload.ts";

export type ClientName = "kafkajs" | "platformatic";

export interface ProduceRun {
  messages: readonly SampleMessage[];
  topic: string;
  batch: number;
  inflight: number;
}

export interface ConsumeRun {
  topic: string;
  count: number;
  group: string;
}

/** Timings of one run; `ms` from the first request to the last ack or message. */
export interface ClientTiming {
  count: number;
  bytes: number;
  ms: number;
  /** Consume only: from the first message received to the last (no group join). */
  fetch_ms?: number;
}

/**
 * One message sent before the clock starts, so that metadata and the
 * idempotent producer id are fetched outside the timing (both clients do it
 * lazily on the first send). Runs therefore leave `N + 1` messages.
 */
export const WARMUP = { key: "0", value: '{"warmup":true}' } as const;

/** Sends `messages` in chunks with at most `inflight` chunks outstanding. */
async function pipelined(
  messages: readonly SampleMessage[],
  { batch, inflight }: { batch: number; inflight: number },
  send: (chunk: readonly SampleMessage[]) => Promise<unknown>,
): Promise<void> {
  const pending = new Set<Promise<unknown>>();
  for (let i = 0; i < messages.length; i += batch) {
    const p = send(messages.slice(i, i + batch)).finally(() => pending.delete(p));
    pending.add(p);
    if (pending.size >= inflight) await Promise.race(pending);
  }
  await Promise.all(pending);
}

function totalBytes(messages: readonly SampleMessage[]): number {
  const encoder = new TextEncoder();
  return messages.reduce((s, m) => s + encoder.encode(m.value).byteLength, 0);
}

/** kafkajs through lib/kafka.ts: `sendBatch` with acks -1 on an idempotent producer. */
export async function produceKafkajs(config: Config, run: ProduceRun): Promise<ClientTiming> {
  const kafka = createKafka(config, { clientId: "bench-kafkajs" });
  const producer = createProducer(kafka);
  await producer.connect();
  try {
    await producer.send({ acks: -1, topic: run.topic, messages: [WARMUP] });
    const started = performance.now();
    await pipelined(run.messages, run, (chunk) =>
      producer.sendBatch({
        acks: -1,
        topicMessages: [{
          topic: run.topic,
          messages: chunk.map((m) => ({ key: m.key, value: m.value })),
        }],
      }));
    return {
      count: run.messages.length,
      bytes: totalBytes(run.messages),
      ms: performance.now() - started,
    };
  } finally {
    await producer.disconnect();
  }
}

/** @platformatic/kafka: idempotent producer (acks all), Java-compatible partitioner. */
export async function producePlatformatic(config: Config, run: ProduceRun): Promise<ClientTiming> {
  const producer = new PlatformaticProducer({
    clientId: "bench-platformatic",
    bootstrapBrokers: [...config.kafka.brokers],
    idempotent: true,
    acks: -1,
    partitioner: compatibilityPartitioner,
    autocreateTopics: false,
  });
  const encoder = new TextEncoder();
  const warmup = { key: Buffer.from(WARMUP.key), value: Buffer.from(WARMUP.value) };
  try {
    await producer.send({ messages: [{ topic: run.topic, key: warmup.key, value: warmup.value }] });
    const started = performance.now();
    await pipelined(run.messages, run, (chunk) =>
      producer.send({
        messages: chunk.map((m) => ({
          topic: run.topic,
          key: Buffer.from(encoder.encode(m.key)),
          value: Buffer.from(encoder.encode(m.value)),
        })),
      }));
    return {
      count: run.messages.length,
      bytes: totalBytes(run.messages),
      ms: performance.now() - started,
    };
  } finally {
    await producer.close();
  }
}

/** kafkajs: `eachBatch`, no commits, from the beginning, lib/kafka.ts' consumer settings. */
export async function consumeKafkajs(config: Config, run: ConsumeRun): Promise<ClientTiming> {
  const kafka = createKafka(config, { clientId: "bench-kafkajs" });
  const consumer = createConsumer(kafka, { groupId: run.group });
  await consumer.connect();
  let count = 0;
  let bytes = 0;
  let first = 0;
  try {
    await consumer.subscribe({ topic: run.topic, fromBeginning: true });
    const started = performance.now();
    const done = Promise.withResolvers<number>();
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: true,
      eachBatch: async ({ batch }) => {
        if (count === 0) first = performance.now();
        for (const m of batch.messages) bytes += m.value?.byteLength ?? 0;
        count += batch.messages.length;
        if (count >= run.count) done.resolve(performance.now());
        await Promise.resolve();
      },
    });
    const ended = await done.promise;
    return { count, bytes, ms: ended - started, fetch_ms: ended - first };
  } finally {
    await consumer.disconnect();
  }
}

/** @platformatic/kafka: a MessagesStream from the earliest offsets, no commits. */
export async function consumePlatformatic(
  config: Config,
  run: ConsumeRun,
): Promise<ClientTiming> {
  const consumer = new PlatformaticConsumer({
    clientId: "bench-platformatic",
    groupId: run.group,
    bootstrapBrokers: [...config.kafka.brokers],
    autocommit: false,
    maxWaitTime: 100,
    maxBytesPerPartition: 4 * 1024 * 1024,
  });
  let count = 0;
  let bytes = 0;
  let first = 0;
  try {
    const started = performance.now();
    const stream = await consumer.consume({
      topics: [run.topic],
      mode: MessagesStreamModes.EARLIEST,
      autocommit: false,
    });
    const ended = await new Promise<number>((resolve, reject) => {
      stream.on("error", reject);
      stream.on("data", (message) => {
        if (count === 0) first = performance.now();
        bytes += message.value?.byteLength ?? 0;
        count++;
        if (count === run.count) resolve(performance.now());
      });
    });
    await stream.close();
    return { count, bytes, ms: ended - started, fetch_ms: ended - first };
  } finally {
    await consumer.close(true);
  }
}
