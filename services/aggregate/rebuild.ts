/**
 * `--rebuild`: recompute this namespace's metrics from the earliest offsets,
 * for a Redis that lost its data (or metrics that must be redone). The group's
 * committed offsets are deleted first (it then reads from the earliest) and
 * the keys second, so
 * that a crash in between leaves a state a plain restart repairs: either the
 * old metrics with their bitmaps (a replay then counts nothing twice), or
 * none at all (a replay recounts everything).
 *
 * @module
 */

import { ServiceError } from "../../lib/cli.ts";
import { type Names, REDIS_KEYS } from "../../lib/contracts.ts";
import type { Admin } from "../../lib/kafka.ts";
import type { Redis } from "../../lib/redis.ts";
import { STAGE } from "./dead_letter.ts";
import { partitionKey } from "./offsets.ts";

export interface RebuildInput {
  admin: Admin;
  redis: Redis;
  n: Names;
  group: string;
  topics: readonly string[];
}

export interface RebuildResult {
  /** `topic:partition` -> the group's offset before the reset (dead letters below it were sent). */
  sentBefore: Map<string, number>;
  deletedKeys: number;
}

/**
 * Resets `group` to the earliest offsets of `topics` (by deleting its
 * committed offsets) and deletes the
 * namespace's `metrics:*` keys and the aggregator's dead-letter counters.
 *
 * @throws {ServiceError} when the group has running members.
 */
export async function prepareRebuild(
  { admin, redis, n, group, topics }: RebuildInput,
): Promise<RebuildResult> {
  const { groups } = await admin.describeGroups([group]);
  const members = groups[0]?.members.length ?? 0;
  if (members > 0) {
    throw new ServiceError(
      `Cannot rebuild the metrics as group ${group} has ${members} running member(s): ` +
        "stop every `deno task aggregate` of this namespace first",
    );
  }
  const sentBefore = new Map<string, number>();
  const offsets = await admin.fetchOffsets({ groupId: group, topics: [...topics] });
  for (const { topic, partitions } of offsets) {
    for (const p of partitions) {
      const offset = Number(p.offset);
      if (offset >= 0) sentBefore.set(partitionKey(topic, p.partition), offset);
    }
  }
  if (sentBefore.size > 0) {
    // Without committed offsets the group starts from the earliest ones. One request, unlike
    // kafkajs' resetOffsets, which joins the group once per topic.
    try {
      await admin.deleteGroups([group]);
    } catch (error) {
      throw new ServiceError(
        `Cannot rebuild the metrics as Kafka refused to reset group ${group} ` +
          `(${(error as Error).message}): stop every \`deno task aggregate\` of this namespace`,
      );
    }
  }
  const deletedKeys = await clearMetrics(redis, n);
  return { sentBefore, deletedKeys };
}

/**
 * Deletes every `metrics:*` key of the namespace (totals, windows, JSON
 * strings, de-duplication bitmaps, watermark) and the `aggregate:*` fields of
 * the dead-letter counters. Returns how many keys went.
 */
export async function clearMetrics(redis: Redis, n: Names): Promise<number> {
  let cursor = "0";
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", n.redis("metrics:*"), "COUNT", 1000);
    cursor = next;
    if (keys.length > 0) deleted += await redis.unlink(...keys);
  } while (cursor !== "0");
  const counters = n.redis(REDIS_KEYS.deadLetters);
  const fields = (await redis.hkeys(counters)).filter((f) => f.startsWith(`${STAGE}:`));
  if (fields.length > 0) await redis.hdel(counters, ...fields);
  return deleted;
}
