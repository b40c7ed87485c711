/**
 * The aggregator's Kafka side: the admin calls it needs (end offsets, group
 * offsets), and the consumer loop that decodes each partition batch and hands
 * it to the flush, reconnecting when the consumer crashes.
 *
 * @module
 */

import { ServiceError } from "../../lib/cli.ts";
import { decodeEvent, type Names, type TopicKey, TOPICS } from "../../lib/contracts.ts";
import { type Admin, createConsumer, type EachBatchPayload, type Kafka } from "../../lib/kafka.ts";
import { heartbeatWhile, offsetCommitter, STAGE_RETRY } from "../../lib/kafka_session.ts";
import type { Logger } from "../../lib/log.ts";
import { sleep } from "../../lib/retry.ts";
import type { Refused } from "./dead_letter.ts";
import type { Part } from "./flush.ts";
import type { PartitionEnds } from "./offsets.ts";
import { type Contribution, contributionOf } from "./reduce.ts";
import { scanContribution } from "./scan.ts";

/**
 * The most a fetch response holds (unless one partition's limit is higher).
 * Each response is one fresh buffer the size of the whole response, and the
 * process's pages grew with it: a 2 MiB cap took 0.3 s of CPU (10%) off a
 * drain of 220,538 messages, against 8 MiB (median of 6 runs each).
 */
export const FETCH_MAX_BYTES = 2 * 1024 * 1024;

/** The topics the aggregator reads (the seed's Spark job read these three). */
export const INPUT_TOPICS = ["transactions", "userBehavior", "transactionItems"] as const;

export interface KafkaIoOptions {
  kafka: Kafka;
  n: Names;
  group: string;
  log: Logger;
  signal: AbortSignal;
  /** Attempts before giving up on Kafka (Infinity: keep trying). */
  attempts: number;
}

export interface ConsumeOptions {
  fetchBytes: number;
  /** kafkajs' `maxWaitTimeInMs`: `DRAIN_FETCH_WAIT_MS` for a drain, else the default. */
  fetchWaitMs?: number;
  /** Partitions handled at once: every input partition, so one fetch becomes one flush. */
  concurrency: number;
  sessionTimeoutMs: number;
  submit(part: Part, size: number): Promise<void>;
  /** The partitions (`topic:partition`) this instance owns after a rebalance. */
  onAssign(keys: string[]): void;
  onFatal(error: unknown): void;
}

/**
 * Decodes one partition batch: a contribution per valid event, a refusal per
 * invalid one. The fast path (./scan.ts) reads the events it can vouch for;
 * `decodeEvent` decides every other message.
 */
export function decodeBatch(
  topicKey: TopicKey,
  batch: EachBatchPayload["batch"],
): { contributions: Contribution[]; refused: Refused[] } {
  const contributions: Contribution[] = [];
  const refused: Refused[] = [];
  for (const m of batch.messages) {
    const scanned = scanContribution(topicKey, m.value);
    if (scanned !== undefined) {
      contributions.push(scanned);
      continue;
    }
    const decoded = decodeEvent(topicKey, m.value);
    if (decoded.ok) contributions.push(contributionOf(decoded.value));
    else {
      refused.push({
        topic: batch.topic,
        plainTopic: TOPICS[topicKey],
        partition: batch.partition,
        offset: m.offset,
        key: m.key,
        value: m.value,
        reason: decoded.reason,
      });
    }
  }
  return { contributions, refused };
}

export function createKafkaIo({ kafka, n, group, log, signal, attempts }: KafkaIoOptions) {
  const admin: Admin = kafka.admin();
  const topicKey = new Map<string, TopicKey>(INPUT_TOPICS.map((k) => [n.topics[k], k]));

  /** Runs `fn` with retries; a service that stays away becomes one clear ServiceError. */
  async function reach<T>(what: string, fn: () => Promise<T>, timeoutMs = 60_000): Promise<T> {
    // The clients retry on their own; a drain tries a little more (a new broker
    // answers NOT_COORDINATOR for a moment), a service tries longer.
    const limit = attempts === Infinity ? 5 : 3;
    for (let attempt = 1;; attempt++) {
      try {
        return await withTimeout(fn(), timeoutMs);
      } catch (error) {
        if (error instanceof ServiceError) throw error;
        if (attempt >= limit || signal.aborted) {
          throw new ServiceError(
            `Cannot ${what}: ${(error as Error).message}. ` +
              "Start the stack with `deno task stack up` (or `docker compose up -d`).",
          );
        }
        log.warn(`Cannot ${what} (attempt ${attempt}/${limit}): ${(error as Error).message}`);
        await sleep(Math.min(1000 * 2 ** attempt, 10_000), signal);
      }
    }
  }

  async function endOffsets(): Promise<PartitionEnds[]> {
    const all: PartitionEnds[] = [];
    for (const topic of topicKey.keys()) {
      for (const p of await admin.fetchTopicOffsets(topic)) {
        all.push({ topic, partition: p.partition, low: Number(p.low), high: Number(p.high) });
      }
    }
    return all;
  }

  async function groupOffsets() {
    const response = await admin.fetchOffsets({ groupId: group, topics: [...topicKey.keys()] });
    return response.flatMap(({ topic, partitions }) =>
      partitions.map((p) => ({ topic, partition: p.partition, offset: Number(p.offset) }))
    ).filter((o) => o.offset >= 0);
  }

  async function consume(options: ConsumeOptions): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      const consumer = createConsumer(kafka, {
        groupId: group,
        sessionTimeout: options.sessionTimeoutMs,
        rebalanceTimeout: 20_000,
        maxBytesPerPartition: options.fetchBytes,
        maxBytes: Math.max(options.fetchBytes, FETCH_MAX_BYTES),
        maxWaitTimeInMs: options.fetchWaitMs,
        // kafkajs does not restart a crashed consumer behind this loop (lib/kafka_session.ts).
        retry: STAGE_RETRY,
      });
      // One function per consumer: the flush groups its parts' offsets by it, so
      // a flush of many partitions is one OffsetCommit request, not one each.
      const commit = offsetCommitter(consumer);
      const crashed = Promise.withResolvers<unknown>();
      consumer.on(consumer.events.CRASH, ({ payload }) => crashed.resolve(payload.error));
      consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
        const keys = Object.entries(payload.memberAssignment)
          .flatMap(([topic, partitions]) => partitions.map((p) => `${topic}:${p}`));
        options.onAssign(keys);
      });
      try {
        await consumer.connect();
        await consumer.subscribe({ topics: [...topicKey.keys()], fromBeginning: true });
        await consumer.run({
          autoCommit: false,
          eachBatchAutoResolve: false,
          partitionsConsumedConcurrently: options.concurrency,
          eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
            if (batch.messages.length === 0) return;
            const decoded = decodeBatch(topicKey.get(batch.topic)!, batch);
            // The flush of this batch can outlast the session timeout (slow Redis, retries).
            await heartbeatWhile(
              options.submit({
                topic: batch.topic,
                partition: batch.partition,
                messages: batch.messages.length,
                ...decoded,
                nextOffset: (BigInt(batch.lastOffset()) + 1n).toString(),
                highWatermark: batch.highWatermark,
                commit,
                heartbeat,
              }, batch.messages.length),
              heartbeat,
            );
            resolveOffset(batch.lastOffset());
          },
        });
        failures = 0;
        const error = await Promise.race([crashed.promise, aborted(signal)]);
        if (error !== undefined) throw error;
      } catch (error) {
        if (signal.aborted) break;
        if (++failures >= attempts) {
          options.onFatal(new Error(`Kafka: ${(error as Error).message}`));
          break;
        }
        const delay = Math.min(250 * 2 ** failures, 5000);
        log.warn(
          `Kafka consumer stopped: ${(error as Error).message}; reconnecting in ${delay} ms`,
        );
        await sleep(delay, signal);
      } finally {
        await consumer.disconnect().catch(() => {});
      }
    }
  }

  return { admin, reach, endOffsets, groupOffsets, consume };
}

/** `promise`, or a rejection after `ms`. */
export async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${ms / 1000} s`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function aborted(signal: AbortSignal): Promise<undefined> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(undefined);
    signal.addEventListener("abort", () => resolve(undefined), { once: true });
  });
}
