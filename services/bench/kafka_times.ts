/**
 * When did each event reach Kafka? Read after the steady-state phase (so it
 * costs nothing while latency is measured): the producer's record timestamps
 * (CreateTime, set by the client when it builds the batch) of the events on
 * `transactions` and `user_behavior` from the phase's start, by event id. This
 * splits freshness into commit-to-Kafka (the producer) and Kafka-to-Redis (the
 * aggregator).
 *
 * @module
 */

import type { Config } from "../../lib/config.ts";
import { names } from "../../lib/contracts.ts";
import { createConsumer, createKafka } from "../../lib/kafka.ts";

/**
 * Event id -> record timestamp (epoch ms) of the `expected` events written to
 * the two source topics since `sinceMs`; stops when all are read or after
 * `timeoutMs`.
 */
export async function kafkaTimestamps(
  config: Config,
  { sinceMs, expected, timeoutMs = 60_000 }: {
    sinceMs: number;
    expected: number;
    timeoutMs?: number;
  },
): Promise<Map<string, number>> {
  const n = names(config.namespace);
  const topics = [n.topics.transactions, n.topics.userBehavior];
  const kafka = createKafka(config, { clientId: "bench-kafka-times" });
  const admin = kafka.admin();
  await admin.connect();
  const starts = new Map<string, { partition: number; offset: string }[]>();
  try {
    for (const topic of topics) {
      starts.set(topic, await admin.fetchTopicOffsetsByTimestamp(topic, sinceMs - 1000));
    }
  } finally {
    await admin.disconnect();
  }
  const times = new Map<string, number>();
  const consumer = createConsumer(kafka, { groupId: `${config.namespace}.bench-kafka-times` });
  await consumer.connect();
  const done = Promise.withResolvers<void>();
  const timer = setTimeout(done.resolve, timeoutMs);
  const decoder = new TextDecoder();
  try {
    for (const topic of topics) await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          const at = Number(m.timestamp);
          if (!m.value || at < sinceMs - 1000) continue;
          const match = decoder.decode(m.value).match(/"event_id":"([^"]+)"/);
          if (match) times.set(match[1]!, at);
        }
        if (times.size >= expected) done.resolve();
        await Promise.resolve();
      },
    });
    for (const [topic, entries] of starts) {
      for (const { partition, offset } of entries) {
        // -1: nothing written to that partition since then.
        if (offset !== "-1") consumer.seek({ topic, partition, offset });
      }
    }
    await done.promise;
    return times;
  } finally {
    clearTimeout(timer);
    await consumer.disconnect();
  }
}
