/**
 * The consumer's heartbeat: every couple of seconds, the group's lag per
 * partition (end offsets and committed offsets from Kafka) and the running
 * totals go to the `Heartbeat` hash, together with the dead-letter counters,
 * in one Redis transaction. Counters not yet written are kept and added on a
 * later beat, so a Redis outage delays them but loses none.
 *
 * @module
 */

import { type Names, REDIS_KEYS, TOPICS } from "../../lib/contracts.ts";
import type { Admin } from "../../lib/kafka.ts";
import type { Logger } from "../../lib/log.ts";
import type { Redis } from "../../lib/redis.ts";
import { sleep } from "../../lib/retry.ts";
import { deadLetterField, STAGE } from "./dead_letter.ts";
import { advance, type Committed, lagOf, type PartitionEnds } from "./offsets.ts";
import { errorText } from "./persist.ts";
import { heartbeatFields, rate, type Totals } from "./report.ts";
import type { InputTopic } from "./rows.ts";

/** Where the group stands; shared with the consumer, updated by both. */
export interface Progress {
  ends: PartitionEnds[];
  committed: Committed;
}

export interface HeartbeatDeps {
  redis: Redis;
  admin: Admin;
  names: Names;
  group: string;
  topicKey: ReadonlyMap<string, InputTopic>;
  mode: "run" | "drain";
  totals: Totals;
  /** Dead letters produced and not yet counted in Redis, by plain topic. */
  pendingDeadLetters: Map<string, number>;
  progress: Progress;
  log: Logger;
  /** Called after offsets were refreshed from Kafka (the drain check). */
  onRefresh?: () => void;
}

/**
 * @example
 * ```ts ignore
 * const heartbeat = createHeartbeat({ redis, admin, names: n, group, ... });
 * const beating = heartbeat.loop(signal, 2000);
 * ```
 */
export function createHeartbeat(deps: HeartbeatDeps) {
  const { redis, admin, names, group, topicKey, totals, pendingDeadLetters, progress } = deps;
  let last = { at: performance.now(), messages: 0 };

  /** Reads end offsets of the input topics and the group's committed offsets. */
  async function refresh(): Promise<void> {
    progress.ends = await endOffsets(admin, [...topicKey.keys()]);
    const offsets = await admin.fetchOffsets({ groupId: group, topics: [...topicKey.keys()] });
    advance(
      progress.committed,
      offsets.flatMap(({ topic, partitions }) =>
        partitions.map((p) => ({ topic, partition: p.partition, offset: Number(p.offset) }))
      ),
    );
    deps.onRefresh?.();
  }

  /**
   * Writes one beat; with `fresh`, reads the offsets from Kafka first (best
   * effort). The last beat of a run says `state: "stopped"` in its detail.
   */
  async function beat(fresh = true, state: "running" | "stopped" = "running"): Promise<void> {
    if (fresh) await refresh().catch(() => {/* Kafka down: the last known lag stands */});
    const now = performance.now();
    const lag = lagOf(progress.ends, progress.committed);
    const fields = heartbeatFields({
      stage: STAGE,
      pid: Deno.pid,
      at: new Date().toISOString(),
      events: totals.messages,
      events_per_s: rate(totals.messages, last.messages, now - last.at),
      dead_letters: totals.deadLetters,
      detail: {
        group,
        mode: deps.mode,
        state,
        stored: totals.stored,
        duplicates: totals.duplicates,
        transaction_items_sent: totals.items,
        batches: totals.batches,
        lag_total: lag.total,
        lag: Object.fromEntries(
          Object.entries(lag.byTopic).map(([t, v]) => [TOPICS[topicKey.get(t)!], v]),
        ),
      },
    });
    last = { at: now, messages: totals.messages };
    const counts = [...pendingDeadLetters];
    const tx = redis.multi().hset(names.heartbeat(STAGE), fields);
    for (const [topic, count] of counts) {
      tx.hincrby(names.redis(REDIS_KEYS.deadLetters), deadLetterField(topic), count);
    }
    const results = await withTimeout(tx.exec(), 3000);
    const failed = results?.find(([error]) => error);
    if (!results || failed) throw failed?.[0] ?? new Error("Redis did not answer within 3 s");
    for (const [topic, count] of counts) {
      const left = (pendingDeadLetters.get(topic) ?? 0) - count;
      if (left > 0) pendingDeadLetters.set(topic, left);
      else pendingDeadLetters.delete(topic);
    }
  }

  /** Beats every `intervalMs` until `signal` aborts; one line when Redis fails and recovers. */
  async function loop(signal: AbortSignal, intervalMs: number): Promise<void> {
    let failing = false;
    while (!signal.aborted) {
      await sleep(intervalMs, signal);
      if (signal.aborted) break;
      try {
        await beat();
        if (failing) deps.log.info("✅ Heartbeat written again");
        failing = false;
      } catch (error) {
        if (!failing) deps.log.warn(`Cannot write the heartbeat to Redis: ${errorText(error)}`);
        failing = true;
      }
    }
  }

  return { refresh, beat, loop };
}

/** Low and high watermarks of every partition of `topics`. */
export async function endOffsets(admin: Admin, topics: string[]): Promise<PartitionEnds[]> {
  const all: PartitionEnds[] = [];
  for (const topic of topics) {
    for (const p of await admin.fetchTopicOffsets(topic)) {
      all.push({ topic, partition: p.partition, low: Number(p.low), high: Number(p.high) });
    }
  }
  return all;
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: number | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<undefined>((resolve) => {
        timer = setTimeout(resolve, ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
