/**
 * The Kafka side of the consumer: a consumer-group session that hands each
 * partition batch to the batcher, and starts a new session when Kafka drops
 * the consumer or a flush fails (so that the group resumes from its committed
 * offsets), with backoff and one line per failure. Only this loop starts
 * sessions: kafkajs does not restart a crashed consumer by itself
 * (lib/kafka_session.ts).
 *
 * @module
 */

import { createConsumer, type Kafka } from "../../lib/kafka.ts";
import {
  CommitError,
  heartbeatWhile,
  offsetCommitter,
  retriableCrash,
  STAGE_RETRY,
} from "../../lib/kafka_session.ts";
import type { Logger } from "../../lib/log.ts";
import { sleep } from "../../lib/retry.ts";
import type { Batcher } from "./batcher.ts";
import type { Commit, Part } from "./flush.ts";
import { errorText, StoppedError } from "./persist.ts";
import type { InputTopic } from "./rows.ts";

export interface LoopDeps {
  kafka: Kafka;
  group: string;
  /** Namespaced topic -> its contract key. */
  topicKey: ReadonlyMap<string, InputTopic>;
  partitionCount: number;
  batcher: Pick<Batcher<Part>, "submit" | "idle">;
  log: Logger;
  /** Ends the loop (stop, or drain done); in-flight flushes still finish. */
  signal: AbortSignal;
  /** Failed sessions in a row before giving up (Infinity as a service). */
  attempts: number;
  brokers: string;
  sessionTimeoutMs?: number;
  /** kafkajs' `maxWaitTimeInMs`: `DRAIN_FETCH_WAIT_MS` for a drain, else the default. */
  fetchWaitMs?: number;
}

/**
 * The least a fetch waits for (up to the consumer's 100 ms maxWait): more than
 * 100 ms of a steady 2,000 events/s (about 100 KB at ~450 bytes a message), so
 * caught up the stage flushes about ten times a second; a backlog fills it at
 * once. Steady 2,000/s, 30 s: the stage 3.58 -> 2.40 s of CPU, the broker
 * 4.12 -> 3.36 s (medians of 3 alternating bench runs); freshness is the
 * aggregator's (it reads the producer's topics itself) and stayed p99 77-96 ms.
 */
export const FETCH_MIN_BYTES = 256 * 1024;

/**
 * Consumes until `signal` aborts; throws once `attempts` sessions in a row
 * have failed (a crash kafkajs calls retriable, such as a broker outage, is
 * not counted: kafkajs itself would have restarted after it).
 *
 * @example
 * ```ts ignore
 * await consumeLoop({ kafka, group, topicKey, partitionCount: 24, batcher, log, signal, ... });
 * ```
 */
export async function consumeLoop(deps: LoopDeps): Promise<void> {
  const { kafka, group, topicKey, batcher, log, signal, attempts, brokers } = deps;
  let failures = 0;
  while (!signal.aborted) {
    const consumer = createConsumer(kafka, {
      groupId: group,
      sessionTimeout: deps.sessionTimeoutMs ?? 10_000,
      rebalanceTimeout: 20_000,
      retry: STAGE_RETRY,
      // The broker answers a fetch once this much is there or maxWaitTimeInMs (100 ms)
      // passed: when caught up, a fetch every 100 ms instead of one per few messages, and
      // each fetch is a flush (a warehouse transaction, a Produce, an OffsetCommit).
      minBytes: FETCH_MIN_BYTES,
      maxWaitTimeInMs: deps.fetchWaitMs,
    });
    const commit = offsetCommitter(consumer);
    const ended = Promise.withResolvers<unknown>();
    // Once a flush failed, no later flush of this session may commit: that would skip it.
    let broken = false;
    let outage = false;
    const fail = (error: unknown) => {
      if (broken || error instanceof StoppedError) return;
      broken = true;
      ended.resolve(error);
    };
    // One function per session: the flush groups its parts' offsets by this
    // function, so a flush of many partitions is one OffsetCommit request (a
    // closure per batch made it one request per partition, each a write to
    // __consumer_offsets: most of the broker's requests in steady state).
    const commitSession = async (offsets: Commit[]) => {
      if (broken) throw new CommitError("Cannot commit as an earlier batch of the session failed");
      await commit(offsets);
    };
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      outage = retriableCrash(payload.error);
      fail(payload.error);
    });
    const onAbort = () => ended.resolve(undefined);
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: [...topicKey.keys()], fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: Math.max(1, deps.partitionCount),
        // Returns once the batch's flush has started, so Kafka fetches the next
        // meanwhile; the offset is committed by the flush, after its writes.
        eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
          if (broken || signal.aborted || batch.messages.length === 0) return;
          // Waiting for a flush slot can outlast the session timeout under a slow warehouse.
          const { done } = await heartbeatWhile(
            batcher.submit({
              topic: batch.topic,
              topicKey: topicKey.get(batch.topic)!,
              partition: batch.partition,
              messages: batch.messages,
              nextOffset: (BigInt(batch.lastOffset()) + 1n).toString(),
              commit: commitSession,
              heartbeat,
            }, batch.messages.length),
            heartbeat,
          );
          done.then(() => failures = 0, fail);
          resolveOffset(batch.lastOffset());
        },
      });
      const error = await ended.promise;
      if (error !== undefined) throw error;
    } catch (error) {
      if (signal.aborted) break;
      if (!outage && ++failures >= attempts) {
        throw new Error(`Cannot consume from Kafka at ${brokers}: ${errorText(error)}`);
      }
      const delay = Math.min(250 * 2 ** Math.max(1, failures), 5000);
      log.warn(`Consumer session ended: ${errorText(error)}; rejoining in ${delay} ms`);
      await sleep(delay, signal);
    } finally {
      signal.removeEventListener("abort", onAbort);
      await batcher.idle();
      await consumer.disconnect().catch(() => {});
    }
  }
}
