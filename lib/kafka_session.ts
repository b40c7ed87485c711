/**
 * What the two consuming stages need from a kafkajs consumer-group session
 * beyond kafkajs itself: offset commits that are known to have reached
 * Kafka, heartbeats while a batch waits for its flush, and no restart that
 * kafkajs starts behind the stage's back (docs/reliability.md, bugs 9 and 10).
 *
 * @module
 */

import type { Consumer } from "./kafka.ts";

/**
 * kafkajs' `retry` for a stage's consumer: its own default retries (5), and
 * no restart of its own after a crash. kafkajs 2.2.4 restarts a crashed
 * consumer with a timer it keeps to itself; when the stage disconnects that
 * consumer meanwhile (a failed flush, a stop) the timer or a join already
 * under way still brings it back, a second member of the group that holds
 * partitions the stage no longer reads. The stage's loop starts every new
 * session itself instead (it sees each crash as a CRASH event).
 */
export const STAGE_RETRY: { retries: number; restartOnFailure: (e: Error) => Promise<boolean> } = {
  retries: 5,
  restartOnFailure: () => Promise.resolve(false),
};

/**
 * Whether kafkajs would have restarted after `error` (its own test in
 * consumer/index.js): the stages count such crashes as an outage, not as a
 * failed attempt.
 */
export function retriableCrash(error: unknown): boolean {
  if ((error as { name?: unknown })?.name === "KafkaJSNumberOfRetriesExceeded") return true;
  let cause = error as { cause?: unknown; retriable?: unknown } | undefined;
  while (cause?.cause) cause = cause.cause as typeof cause;
  return cause?.retriable === true;
}

/**
 * An offset commit that did not happen: a rebalance, a session kafkajs
 * already stopped, or an earlier batch of the session that failed. The data
 * of the batch is stored; its offsets are not, so it is read again (and
 * found stored). It keeps the kafkajs error's `type` and `retriable`, so
 * that kafkajs, seeing it thrown from `eachBatch`, rejoins on a rebalance.
 */
export class CommitError extends Error {
  readonly type?: string;
  readonly retriable?: boolean;

  constructor(message: string, cause?: unknown) {
    super(message, { cause });
    this.name = "CommitError";
    const c = cause as { type?: unknown; retriable?: unknown } | undefined;
    if (typeof c?.type === "string") this.type = c.type;
    if (typeof c?.retriable === "boolean") this.retriable = c.retriable;
  }
}

export interface OffsetCommit {
  topic: string;
  partition: number;
  offset: string;
}

/**
 * Commits through `consumer` and resolves only when Kafka took the offsets;
 * otherwise throws a {@link CommitError}. kafkajs 2.2.4 resolves
 * `commitOffsets` without sending anything while its runner is stopping
 * (runner.js: `if (!this.running) return`); its COMMIT_OFFSETS event, sent
 * after Kafka answered, tells the two apart. Commits through one consumer
 * must not overlap (each stage finishes its flushes one at a time).
 *
 * @example
 * ```ts ignore
 * const commit = offsetCommitter(consumer);
 * await commit([{ topic, partition: 0, offset: "42" }]);
 * ```
 */
export function offsetCommitter(consumer: Consumer): (offsets: OffsetCommit[]) => Promise<void> {
  let sent = 0;
  consumer.on(consumer.events.COMMIT_OFFSETS, () => {
    sent++;
  });
  return async (offsets) => {
    const before = sent;
    try {
      await consumer.commitOffsets(offsets);
    } catch (error) {
      throw new CommitError(
        `Cannot commit the offsets as Kafka refused them: ${(error as Error).message}`,
        error,
      );
    }
    if (sent === before) {
      throw new CommitError(
        "Cannot commit the offsets as the Kafka consumer is stopping: kafkajs did not send them",
      );
    }
  };
}

/** The heartbeats of the batches waiting now, with how many waits hold each. */
const waiting = new Map<() => Promise<void>, number>();
let beating: ReturnType<typeof setInterval> | undefined;

/** How often a waiting batch heartbeats (kafkajs sends at most one per `heartbeatInterval`). */
const WAIT_BEAT_MS = 1000;

/**
 * Awaits `promise` while calling `heartbeat` every second (its errors are
 * ignored: a rebalance it reports is joined by kafkajs once the batch
 * returns). kafkajs heartbeats only between batches, and an `eachBatch` that
 * waits for its flush longer than the session timeout would cost the
 * session. A promise already settled costs no timer; the waits share one
 * timer, which runs only while one of them waits (a timer per batch was
 * about 6 µs, and steady state sees a few hundred batches a second).
 */
export async function heartbeatWhile<T>(
  promise: Promise<T>,
  heartbeat: () => Promise<void>,
): Promise<T> {
  let settled = false;
  const mark = () => {
    settled = true;
  };
  promise.then(mark, mark);
  // One turn: the mark of a promise that was settled already runs first.
  await undefined;
  if (settled) return await promise;
  waiting.set(heartbeat, (waiting.get(heartbeat) ?? 0) + 1);
  beating ??= setInterval(beatAll, WAIT_BEAT_MS);
  try {
    return await promise;
  } finally {
    const left = waiting.get(heartbeat)! - 1;
    if (left > 0) waiting.set(heartbeat, left);
    else waiting.delete(heartbeat);
    if (waiting.size === 0) {
      clearInterval(beating);
      beating = undefined;
    }
  }
}

function beatAll() {
  for (const heartbeat of waiting.keys()) heartbeat().catch(() => {});
}
