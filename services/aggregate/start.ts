/**
 * The aggregator's start-up, before it consumes: every service reached once
 * (each failure one clear `ServiceError`), a `--rebuild` prepared, the window
 * length claimed, and where the group and the topics stand.
 *
 * @module
 */

import { type Config, redact } from "../../lib/config.ts";
import type { Names } from "../../lib/contracts.ts";
import { ensureTopics } from "../../lib/kafka.ts";
import type { KafkaSender } from "../../lib/kafka_sender.ts";
import type { Logger } from "../../lib/log.ts";
import type { Redis } from "../../lib/redis.ts";
import { type createKafkaIo, INPUT_TOPICS } from "./kafka_io.ts";
import type { PartitionEnds } from "./offsets.ts";
import { prepareRebuild } from "./rebuild.ts";
import { claimWindowLength } from "./redis_io.ts";

export interface StartDeps {
  config: Config;
  n: Names;
  group: string;
  io: ReturnType<typeof createKafkaIo>;
  redis: Redis;
  producer: KafkaSender;
  log: Logger;
}

export interface Started {
  /** The input partitions' offsets now: a drain's targets. */
  ends: PartitionEnds[];
  /** The group's committed offsets (after a rebuild's reset: none). */
  offsets: { topic: string; partition: number; offset: number }[];
  /** With `rebuild`: the dead letters sent before, by source (see ./rebuild.ts). */
  sentBefore?: Map<string, number>;
}

/**
 * @example
 * ```ts ignore
 * const { ends, offsets } = await startAggregator(deps, { rebuild: false, windowMs: 30_000 });
 * ```
 */
export async function startAggregator(
  { config, n, group, io, redis, producer, log }: StartDeps,
  { rebuild, windowMs }: { rebuild: boolean; windowMs: number },
): Promise<Started> {
  await io.reach(`connect to Kafka at ${config.kafka.brokers.join(",")}`, () => io.admin.connect());
  await io.reach(
    "create the topics",
    () => ensureTopics(io.admin, config.namespace, { partitions: config.kafka.partitions }),
  );
  await io.reach(`reach Redis at ${redact(config.redisUrl)}`, () => redis.ping(), 10_000);
  let sentBefore: Map<string, number> | undefined;
  if (rebuild) {
    const topics = INPUT_TOPICS.map((k) => n.topics[k]);
    const result = await prepareRebuild({ admin: io.admin, redis, n, group, topics });
    sentBefore = result.sentBefore;
    log.info(
      `♻️  Rebuild: deleted ${result.deletedKeys} metrics keys; group ${group} reset to the earliest offsets`,
    );
  }
  await claimWindowLength(redis, n, windowMs);
  const ends = await io.reach("read the end offsets", () => io.endOffsets());
  const offsets = await io.reach("read the group offsets", () => io.groupOffsets());
  await io.reach("connect a producer to Kafka", () => producer.connect());
  return { ends, offsets, sentBefore };
}
