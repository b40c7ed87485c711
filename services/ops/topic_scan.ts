/**
 * Reads topics of a namespace from their first offset to the end offsets of
 * the moment the scan starts, and counts distinct valid event ids: what
 * `verify` compares with the source rows. Messages that fail the schema are
 * counted apart (their copies are in dead letters, which verify leaves out).
 *
 * A throwaway consumer group reads the topics and is deleted afterwards;
 * it commits nothing, so it never moves the pipeline's own groups.
 *
 * @module
 */

import type { Config } from "../../lib/config.ts";
import { decodeEvent, names, type TopicKey } from "../../lib/contracts.ts";
import { createConsumer, createKafka } from "../../lib/kafka.ts";
import { withDeadline } from "./deadline.ts";

export interface TopicScan {
  topic: string;
  exists: boolean;
  /** Messages read (below the end offsets taken at the start). */
  messages: number;
  /** Messages that do not decode against the topic's schema. */
  invalid: number;
  /** Distinct `event_id`s among the valid messages. */
  distinct: number;
}

/**
 * Scans `keys` of `config.namespace` in one pass.
 *
 * @example
 * ```ts ignore
 * const scans = await scanTopics(config, ["transactions", "user_behavior"]);
 * scans.transactions.distinct; // 3000
 * ```
 */
export async function scanTopics(
  config: Config,
  keys: readonly TopicKey[],
  { timeoutMs = 120_000 }: { timeoutMs?: number } = {},
): Promise<Record<TopicKey, TopicScan>> {
  const n = names(config.namespace);
  const kafka = createKafka(config, { clientId: "instashop-verify", level: "nothing" });
  const admin = kafka.admin();
  const scans = {} as Record<TopicKey, TopicScan>;
  const ids = new Map<string, Set<string>>();
  const keyOf = new Map<string, TopicKey>();
  /** "topic/partition" -> end offset still to reach. */
  const pending = new Map<string, number>();
  const ends = new Map<string, number>();

  await withDeadline(admin.connect(), 15_000, `reach Kafka at ${config.kafka.brokers}`);
  const groupId = `${n.namespace ? `${n.namespace}.` : ""}instashop-verify-${
    crypto.randomUUID().slice(0, 8)
  }`;
  try {
    const existing = new Set(await admin.listTopics());
    for (const key of keys) {
      const topic = n.topics[key];
      scans[key] = { topic, exists: existing.has(topic), messages: 0, invalid: 0, distinct: 0 };
      if (!existing.has(topic)) continue;
      ids.set(topic, new Set());
      keyOf.set(topic, key);
      for (const p of await admin.fetchTopicOffsets(topic)) {
        ends.set(`${topic}/${p.partition}`, Number(p.high));
        if (Number(p.high) > Number(p.low)) pending.set(`${topic}/${p.partition}`, Number(p.high));
      }
    }
    if (pending.size > 0) await readAll();
    for (const [topic, set] of ids) scans[keyOf.get(topic)!].distinct = set.size;
    return scans;
  } finally {
    await admin.deleteGroups([groupId]).catch(() => {});
    await admin.disconnect().catch(() => {});
  }

  async function readAll(): Promise<void> {
    const consumer = createConsumer(kafka, { groupId, maxWaitTimeInMs: 500 });
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: [...ids.keys()], fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachBatch: ({ batch }) => {
          const key = `${batch.topic}/${batch.partition}`;
          const end = ends.get(key) ?? 0;
          const scan = scans[keyOf.get(batch.topic)!];
          const seen = ids.get(batch.topic)!;
          for (const message of batch.messages) {
            if (Number(message.offset) >= end) break;
            scan.messages++;
            const decoded = decodeEvent(keyOf.get(batch.topic)!, message.value);
            if (decoded.ok) seen.add(decoded.value.event_id);
            else scan.invalid++;
          }
          if (Number(batch.lastOffset()) >= end - 1) {
            pending.delete(key);
            if (pending.size === 0) finish();
          }
          return Promise.resolve();
        },
      });
      await withDeadline(
        finished,
        timeoutMs,
        `read ${[...ids.keys()].join(", ")} to their end offsets`,
      );
    } finally {
      await consumer.disconnect().catch(() => {});
    }
  }
}
