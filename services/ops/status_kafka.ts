/**
 * Kafka as `deno task status` shows it: the namespace's topics with their
 * partitions and end offsets, and the lag of both consumer groups.
 *
 * @module
 */

import type { Config } from "../../lib/config.ts";
import { GROUPS, names, type TopicKey, TOPICS } from "../../lib/contracts.ts";
import { createKafka } from "../../lib/kafka.ts";
import { errorText, withDeadline } from "./deadline.ts";

/** Topics each consumer group reads (its lag is measured on these). */
export const GROUP_TOPICS: Record<keyof typeof GROUPS, readonly TopicKey[]> = {
  consume: ["transactions", "userBehavior", "searches", "cartEvents"],
  aggregate: ["transactions", "userBehavior", "transactionItems"],
};

export interface TopicStatus {
  topic: string;
  exists: boolean;
  partitions: number;
  /** High watermark per partition, in partition order. */
  end_offsets: number[];
  /** Messages held now: sum of (end - start) over the partitions. */
  messages: number;
}

export interface PartitionLag {
  topic: string;
  partition: number;
  /** Committed offset, or null when the group has committed none there. */
  committed: number | null;
  end: number;
  lag: number;
}

export interface GroupStatus {
  group: string;
  stage: keyof typeof GROUPS;
  state: string;
  members: number;
  lag: number;
  partitions: PartitionLag[];
}

export interface KafkaStatus {
  ok: boolean;
  error?: string;
  topics: TopicStatus[];
  groups: GroupStatus[];
}

const DEADLINE_MS = 10_000;

/** Topics with their end offsets, and the lag of both consumer groups. */
export async function kafkaStatus(config: Config): Promise<KafkaStatus> {
  const n = names(config.namespace);
  const admin = createKafka(config, { clientId: "instashop-status", level: "nothing" }).admin();
  const result: KafkaStatus = { ok: true, topics: [], groups: [] };
  try {
    await withDeadline(admin.connect(), DEADLINE_MS, `reach Kafka at ${config.kafka.brokers}`);
    await withDeadline(
      (async () => {
        const existing = new Set(await admin.listTopics());
        const ends = new Map<string, { partition: number; high: number; low: number }[]>();
        for (const key of Object.keys(TOPICS) as TopicKey[]) {
          const topic = n.topics[key];
          if (!existing.has(topic)) {
            result.topics.push({
              topic,
              exists: false,
              partitions: 0,
              end_offsets: [],
              messages: 0,
            });
            continue;
          }
          const offsets = (await admin.fetchTopicOffsets(topic))
            .map((p) => ({ partition: p.partition, high: Number(p.high), low: Number(p.low) }))
            .sort((a, b) => a.partition - b.partition);
          ends.set(topic, offsets);
          result.topics.push({
            topic,
            exists: true,
            partitions: offsets.length,
            end_offsets: offsets.map((p) => p.high),
            messages: offsets.reduce((sum, p) => sum + p.high - p.low, 0),
          });
        }
        for (const stage of Object.keys(GROUPS) as (keyof typeof GROUPS)[]) {
          const group = n.group(stage);
          const topics = GROUP_TOPICS[stage].map((k) => n.topics[k]).filter((t) => ends.has(t));
          const [description] = (await admin.describeGroups([group])).groups;
          const committed = topics.length > 0
            ? await admin.fetchOffsets({ groupId: group, topics })
            : [];
          const partitions: PartitionLag[] = [];
          for (const { topic, partitions: parts } of committed) {
            for (const p of parts) {
              const end = ends.get(topic)?.find((e) => e.partition === p.partition);
              if (!end) continue;
              const offset = Number(p.offset);
              const at = offset >= 0 ? offset : null;
              partitions.push({
                topic,
                partition: p.partition,
                committed: at,
                end: end.high,
                lag: Math.max(0, end.high - (at ?? end.low)),
              });
            }
          }
          partitions.sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition);
          result.groups.push({
            group,
            stage,
            state: description?.state ?? "Unknown",
            members: description?.members.length ?? 0,
            lag: partitions.reduce((sum, p) => sum + p.lag, 0),
            partitions,
          });
        }
      })(),
      DEADLINE_MS,
      "read topic and group offsets",
    );
  } catch (error) {
    result.ok = false;
    result.error = errorText(error);
  } finally {
    await admin.disconnect().catch(() => {});
  }
  return result;
}
