/**
 * Where the group stands on each partition: lag for the heartbeat, and
 * whether a `--drain` run has reached the end offsets it captured at start.
 * Offsets are plain numbers (exact far beyond any real topic).
 *
 * @module
 */

/** A partition's offsets: `low` is the first held, `high` the next to be written. */
export interface PartitionEnds {
  topic: string;
  partition: number;
  low: number;
  high: number;
}

/** `topic:partition` -> next offset the group will read (its committed offset); -1 when none. */
export type Committed = Map<string, number>;

export const partitionKey = (topic: string, partition: number) => `${topic}:${partition}`;

/** Where the group resumes on a partition: its commit, or the first offset held. */
export function position(ends: PartitionEnds, committed: Committed): number {
  const offset = committed.get(partitionKey(ends.topic, ends.partition)) ?? -1;
  return Math.max(offset, ends.low);
}

/**
 * Messages not yet committed, by topic and partition, and their sum.
 *
 * @example
 * ```ts
 * import { lagOf } from "./offsets.ts";
 * const ends = [{ topic: "t", partition: 0, low: 0, high: 10 }];
 * lagOf(ends, new Map([["t:0", 4]])); // { total: 6, byTopic: { t: { "0": 6 } } }
 * ```
 */
export function lagOf(
  ends: readonly PartitionEnds[],
  committed: Committed,
): { total: number; byTopic: Record<string, Record<string, number>> } {
  let total = 0;
  const byTopic: Record<string, Record<string, number>> = {};
  for (const e of ends) {
    const lag = Math.max(0, e.high - position(e, committed));
    total += lag;
    (byTopic[e.topic] ??= {})[String(e.partition)] = lag;
  }
  return { total, byTopic };
}

/** True when the group's position has reached `high` on every target partition. */
export function caughtUp(targets: readonly PartitionEnds[], committed: Committed): boolean {
  return targets.every((t) => position(t, committed) >= t.high);
}

/** Folds newer commits into `committed`, never moving a partition backwards. */
export function advance(
  committed: Committed,
  commits: Iterable<{ topic: string; partition: number; offset: number }>,
): void {
  for (const c of commits) {
    const key = partitionKey(c.topic, c.partition);
    if ((committed.get(key) ?? -1) < c.offset) committed.set(key, c.offset);
  }
}

/**
 * Follows what a drain has fetched: `add` takes each batch handed over (its
 * next offset) and says whether, with it, every target partition is fetched
 * to its end offset (a partition whose commit is there already counts).
 *
 * @example
 * ```ts
 * import { fetchTracker } from "./offsets.ts";
 * const fetched = fetchTracker([{ topic: "t", partition: 0, low: 0, high: 10 }], new Map());
 * fetched.add("t", 0, 6); // false
 * fetched.add("t", 0, 10); // true
 * ```
 */
export function fetchTracker(
  targets: readonly PartitionEnds[],
  committed: Committed,
): { add(topic: string, partition: number, next: number): boolean } {
  const reached: Committed = new Map(committed);
  return {
    add(topic, partition, next) {
      advance(reached, [{ topic, partition, offset: next }]);
      return caughtUp(targets, reached);
    },
  };
}
