/**
 * The one way the stages write to Kafka: an idempotent producer (acks all)
 * that sends one batch at a time, checks that every partition it wrote to was
 * acknowledged, and is replaced after a failed send. `produce` (its two
 * streams) and `consume` (`transaction_items`, dead letters) both use it.
 *
 * Why the check: kafkajs 2.2.4 `send`/`sendBatch` can resolve without having
 * sent some messages. When a request to one broker fails, its retry sends only
 * to brokers that have not answered yet; a partition whose leadership moved to
 * a broker that already answered is never sent again (kafkajs#1303). So each
 * message's partition is set here (kafkajs' own partitioner for a key, so
 * nothing moves), and a batch counts as written only if the answer lists every
 * one of those partitions without error. If one is missing the send fails like
 * any other, and the caller re-sends (produce from its cursor, consume from its
 * outbox): at least once, with the same event ids.
 *
 * Why replaced: once a send failed, kafkajs cannot bring an idempotent
 * producer's sequence numbers back in line (kafkajs#598): after a broker death
 * every later send on it may fail with OUT_OF_ORDER_SEQUENCE_NUMBER, forever.
 * A new producer (new producer id, fresh sequences) starts clean.
 *
 * Why one send at a time: when a request fails kafkajs rolls the sequence
 * back, so a second send in flight could reuse a sequence that did reach the
 * log, and the broker would acknowledge it as a duplicate without writing it
 * (kafkajs#1005).
 *
 * @module
 */

import { createProducer, type Kafka, keyPartition, type Message, type Producer } from "./kafka.ts";

/**
 * One topic's messages; a message without a partition is given its key's (or
 * the next, if keyless), set on the message itself.
 */
export interface TopicMessages {
  topic: string;
  messages: Message[];
}

export interface KafkaSender {
  /**
   * Connects a producer now (a start-up check), and learns the partition
   * counts of `topics` (an admin client's round trips, which the first send
   * to each would otherwise wait for); `send` connects one when needed.
   */
  connect(topics?: readonly string[]): Promise<void>;
  /** Resolves once every partition written to was acknowledged by all in-sync replicas. */
  send(batch: readonly TopicMessages[]): Promise<void>;
  /** Drops the producer; the next send connects a new one. */
  reset(): Promise<void>;
  close(): Promise<void>;
}

export interface KafkaSenderOptions {
  /** Makes a producer; kafkajs' own retries keep the producer id (no duplicate). */
  make?: () => Producer;
  /** The broker's wait for the in-sync replicas, per request. */
  timeoutMs?: number;
  /** Partitions of a topic; by default read once per topic from the cluster. */
  partitionsOf?: (topics: string[]) => Promise<Map<string, number>>;
}

/** A send whose answer leaves out partitions it was sent to (kafkajs#1303). */
export class UnacknowledgedError extends Error {
  override name = "UnacknowledgedError";
}

/**
 * @example
 * ```ts ignore
 * const sender = createKafkaSender(kafka);
 * await sender.send([{ topic: "demo.transactions", messages: [{ key: "28", value: "{}" }] }]);
 * ```
 */
export function createKafkaSender(
  kafka: Kafka,
  {
    make = () => createProducer(kafka, { retry: { retries: 4 } }),
    timeoutMs = 30_000,
    partitionsOf = (topics) => partitionCounts(kafka, topics),
  }: KafkaSenderOptions = {},
): KafkaSender {
  let producer: Producer | undefined;
  let queue: Promise<unknown> = Promise.resolve();
  /** Our topics never change their partition count while a stage runs. */
  const partitions = new Map<string, number>();
  let roundRobin = 0;

  async function connected(): Promise<Producer> {
    if (producer) return producer;
    const fresh = make();
    try {
      await fresh.connect();
    } catch (error) {
      await fresh.disconnect().catch(() => {});
      throw error;
    }
    producer = fresh;
    return fresh;
  }

  function serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = queue.then(fn);
    queue = run.catch(() => {});
    return run;
  }

  /**
   * Sets each message's partition in place: the messages are built for this
   * send, and a copy per message would be a second allocation on the hot path.
   * A re-send of the same objects keeps the partitions they got.
   */
  async function place(batch: readonly TopicMessages[]): Promise<void> {
    await learn(batch.map((b) => b.topic));
    for (const { topic, messages } of batch) {
      const count = partitions.get(topic)!;
      for (const m of messages) m.partition ??= partitionOf(m.key, count);
    }
  }

  async function learn(topics: readonly string[]): Promise<void> {
    const unknown = [...new Set(topics)].filter((t) => !partitions.has(t));
    if (unknown.length === 0) return;
    for (const [t, n] of await partitionsOf(unknown)) partitions.set(t, n);
  }

  function partitionOf(key: Message["key"], count: number): number {
    if (key === null || key === undefined) return roundRobin++ % count;
    return keyPartition(typeof key === "string" ? key : key.toString("latin1"), count);
  }

  async function sendNow(batch: readonly TopicMessages[]): Promise<void> {
    const nonEmpty = batch.filter((b) => b.messages.length > 0);
    if (nonEmpty.length === 0) return;
    const p = await connected();
    try {
      await place(nonEmpty);
      const answer = await p.sendBatch({ acks: -1, timeout: timeoutMs, topicMessages: nonEmpty });
      const missing = unacknowledged(nonEmpty, answer);
      if (missing.length > 0) {
        throw new UnacknowledgedError(
          `Cannot count the batch as written as Kafka's answer leaves out ${missing.length} ` +
            `partition(s) it was sent to: current value is ${missing.slice(0, 5).join(", ")}` +
            `${missing.length > 5 ? ", ..." : ""} (kafkajs#1303)`,
        );
      }
    } catch (error) {
      if (producer === p) producer = undefined;
      await p.disconnect().catch(() => {});
      throw error;
    }
  }

  async function reset(): Promise<void> {
    const old = producer;
    producer = undefined;
    await old?.disconnect().catch(() => {});
  }

  return {
    connect: (topics = []) =>
      serial(async () => {
        await connected();
        await learn(topics);
      }),
    send: (batch) => serial(() => sendNow(batch)),
    reset: () => serial(reset),
    close: () => serial(reset),
  };
}

/**
 * `topic[partition]` of every partition sent to that the answer does not acknowledge.
 *
 * @example
 * ```ts
 * import { unacknowledged } from "./kafka_sender.ts";
 * const sent = [{ topic: "t", messages: [{ value: "a", partition: 1 }, { value: "b", partition: 2 }] }];
 * unacknowledged(sent, [{ topicName: "t", partition: 1, errorCode: 0 }]); // ["t[2]"]
 * ```
 */
export function unacknowledged(
  sent: readonly TopicMessages[],
  answer: readonly { topicName: string; partition: number; errorCode: number }[],
): string[] {
  const acked = new Set(
    answer.filter((r) => r.errorCode === 0).map((r) => `${r.topicName}[${r.partition}]`),
  );
  const missing: string[] = [];
  for (const { topic, messages } of sent) {
    for (const p of new Set(messages.map((m) => m.partition))) {
      if (!acked.has(`${topic}[${p}]`)) missing.push(`${topic}[${p}]`);
    }
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
