/**
 * Freshness from commit to visibility, by counting. The bench knows when
 * each source row committed (in commit order) and, for each Redis flush or
 * SSE frame, how many events the metrics then counted. The k-th committed
 * event (after the `base` already counted) is taken as visible at the first
 * observation whose count reaches `base + k`. Stages keep commit order per
 * partition, not across partitions, so an individual event may be attributed
 * a neighbour's time; percentiles over thousands of events are unaffected
 * beyond the spread of one flush.
 *
 * @module
 */

/** A moment at which `count` events were visible (epoch ms). */
export interface Observation {
  at: number;
  count: number;
}

export interface FreshnessSample {
  /** Milliseconds from commit to first visibility, one per event seen. */
  latencies: number[];
  /** Committed events never seen before the observations ended. */
  unseen: number;
}

/**
 * @example
 * ```ts
 * import { freshnessByCount } from "./freshness.ts";
 * const r = freshnessByCount([1000, 1010, 1020], [{ at: 1100, count: 12 }, { at: 1300, count: 13 }], 10);
 * r.latencies; // [100, 90, 280]
 * ```
 */
export function freshnessByCount(
  commits: readonly number[],
  observations: readonly Observation[],
  base: number,
): FreshnessSample {
  const seen = [...observations].sort((a, b) => a.at - b.at);
  const latencies: number[] = [];
  let j = 0;
  let highest = -Infinity;
  for (let k = 0; k < commits.length; k++) {
    const needed = base + k + 1;
    while (j < seen.length && Math.max(highest, seen[j]!.count) < needed) {
      highest = Math.max(highest, seen[j]!.count);
      j++;
    }
    if (j >= seen.length) return { latencies, unseen: commits.length - k };
    // A flush cannot reveal an event before its commit; clamp the counting approximation.
    latencies.push(Math.max(0, seen[j]!.at - commits[k]!));
  }
  return { latencies, unseen: 0 };
}
