/**
 * One stream's Kafka side: an idempotent producer (acks all) that sends one
 * batch at a time, checks that every partition it wrote to was acknowledged,
 * and is replaced after a failure.
 *
 * Why the check: kafkajs 2.2.4 `sendBatch` can resolve without having sent
 * some messages. When a request to one broker fails, its retry sends only to
 * brokers that have not answered yet; a partition whose leadership moved to a
 * broker that already answered is never sent again (kafkajs#1303). So we set
 * each message's partition ourselves (kafkajs' own partitioner, so nothing
 * moves), and a batch counts as acknowledged only if the answer lists every
 * one of those partitions without error. If one is missing the send fails
 * like any other, and the stream re-sends from its last acknowledged row.
 *
 * Why one send at a time: kafkajs serialises an idempotent producer's
 * requests per broker anyway, and when a request fails it rolls its sequence
 * numbers back; a second send in flight could then reuse a sequence that did
 * reach the log, and the broker would acknowledge it as a duplicate without
 * writing it (kafkajs#1005). Each stream has its own producer, and the two
 * streams write disjoint topics, so their sequences never interfere. After a
 * failure the producer is dropped and a new one (new producer id, fresh
 * sequences) re-sends from the last acknowledged row: at least once, with the
 * same event ids.
 *
 * @module
 */

import type { TopicKey } from "../../lib/contracts.ts";
import {
  createProducer,
  type Kafka,
  keyPartition,
  type Message,
  type Producer,
} from "../../lib/kafka.ts";
import type { OutMessage } from "./messages.ts";

export interface Sender {
  /** Resolves once the broker acknowledged every message (acks -1, every partition). */
  send(messages: readonly OutMessage[]): Promise<void>;
  /** Drops the producer; the next send connects a new one. */
  reset(): Promise<void>;
  close(): Promise<void>;
}

/** A send whose answer leaves out partitions it wrote to (kafkajs#1303). */
export class UnacknowledgedError extends Error {
  override name = "UnacknowledgedError";
}

/** A {@link Sender} writing topic keys to the namespaced topic names in `topics`. */
export function createSender(
  kafka: Kafka,
  topics: Readonly<Record<TopicKey, string>>,
  { timeoutMs = 30_000 }: { timeoutMs?: number } = {},
): Sender {
  let producer: Producer | undefined;
  /** Partitions per topic name, read on first use: our topics never change their count. */
  const partitions = new Map<string, number>();

  async function connected(): Promise<Producer> {
    if (producer) return producer;
    // kafkajs' own retries keep the producer id and sequence (no duplicate); a few
    // seconds of them, then the pump says Kafka is down and retries with backoff.
    const fresh = createProducer(kafka, { retry: { retries: 4 } });
    try {
      await fresh.connect();
    } catch (error) {
      await fresh.disconnect().catch(() => {});
      throw error;
    }
    producer = fresh;
    return fresh;
  }

  async function send(messages: readonly OutMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const p = await connected();
    const unknown = [...new Set(messages.map((m) => topics[m.topic]))]
      .filter((t) => !partitions.has(t));
    if (unknown.length > 0) {
      for (const [t, n] of await partitionCounts(kafka, unknown)) partitions.set(t, n);
    }
    const batch = byTopic(messages, topics, partitions);
    const answer = await p.sendBatch({
      acks: -1,
      timeout: timeoutMs,
      topicMessages: [...batch].map(([topic, { list }]) => ({ topic, messages: list })),
    });
    const missing = unacknowledged(batch, answer);
    if (missing.length > 0) {
      throw new UnacknowledgedError(
        `Cannot count the batch as written as Kafka's answer leaves out ${missing.length} ` +
          `partition(s) it was sent to: current value is ${missing.slice(0, 5).join(", ")}` +
          `${missing.length > 5 ? ", ..." : ""} (kafkajs#1303)`,
      );
    }
  }

  async function reset(): Promise<void> {
    const old = producer;
    producer = undefined;
    await old?.disconnect().catch(() => {});
  }

  return { send, reset, close: reset };
}

interface TopicBatch {
  list: Message[];
  partitions: Set<number>;
}

/** Groups messages by topic name, each with its partition set explicitly. */
function byTopic(
  messages: readonly OutMessage[],
  topics: Readonly<Record<TopicKey, string>>,
  counts: Map<string, number>,
): Map<string, TopicBatch> {
  const out = new Map<string, TopicBatch>();
  for (const m of messages) {
    const topic = topics[m.topic];
    let entry = out.get(topic);
    if (!entry) out.set(topic, entry = { list: [], partitions: new Set() });
    const partition = keyPartition(m.key, counts.get(topic)!);
    entry.partitions.add(partition);
    entry.list.push({ key: m.key, value: m.value, partition });
  }
  return out;
}

/** `topic[partition]` of every partition sent to that the answer does not acknowledge. */
export function unacknowledged(
  batch: ReadonlyMap<string, { partitions: ReadonlySet<number> }>,
  answer: readonly { topicName: string; partition: number; errorCode: number }[],
): string[] {
  const acked = new Set(
    answer.filter((r) => r.errorCode === 0).map((r) => `${r.topicName}[${r.partition}]`),
  );
  const missing: string[] = [];
  for (const [topic, { partitions }] of batch) {
    for (const p of partitions) if (!acked.has(`${topic}[${p}]`)) missing.push(`${topic}[${p}]`);
  }
  return missing;
}

/** Partition count of each topic, from the cluster's metadata. */
async function partitionCounts(kafka: Kafka, names: string[]): Promise<Map<string, number>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const { topics } = await admin.fetchTopicMetadata({ topics: names });
    const counts = new Map(topics.map((t) => [t.name, t.partitions.length]));
    for (const name of names) {
      if (!counts.get(name)) {
        throw new Error(
          `Cannot publish to topic ${name} as it has no partitions: current value is 0`,
        );
      }
    }
    return counts;
  } finally {
    await admin.disconnect().catch(() => {});
  }
}
