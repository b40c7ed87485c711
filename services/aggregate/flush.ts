/**
 * One flush, in the order that keeps the metrics exact: dead letters to
 * Kafka, then the events to Redis (one script call per chunk, each atomic
 * with its de-duplication), then the offsets to Kafka. A crash between any
 * two steps redelivers the batch; the bitmaps and the dead-letter set make
 * the repeat count nothing twice.
 *
 * @module
 */

import type { Message } from "../../lib/kafka.ts";
import type { KafkaSender } from "../../lib/kafka_sender.ts";
import type { Logger } from "../../lib/log.ts";
import { sleep } from "../../lib/retry.ts";
import { deadLetter, deadLetterCount, type Refused } from "./dead_letter.ts";
import { partitionKey } from "./offsets.ts";
import { type Contribution, encodeChunks } from "./reduce.ts";
import type { MetricsScript } from "./script.ts";
import type { WatermarkTracker } from "./watermark.ts";

/** One partition's batch, decoded. */
export interface Part {
  topic: string;
  partition: number;
  messages: number;
  contributions: Contribution[];
  refused: Refused[];
  /** Offset after the batch's last message. */
  nextOffset: string;
  /** The partition's end offset when the batch was fetched. */
  highWatermark: string;
  commit(offsets: { topic: string; partition: number; offset: string }[]): Promise<void>;
  heartbeat(): Promise<void>;
}

/** What one flush did. */
export interface FlushReport {
  messages: number;
  added: number;
  duplicates: number;
  late: number;
  deadLetters: Refused[];
  groupWatermarkMs: number | undefined;
  finalized: number;
  ms: number;
  commits: { topic: string; partition: number; offset: number }[];
}

export interface FlushDeps {
  script: MetricsScript;
  /** Dead letters: the shared acknowledged sender (a new producer after a failure). */
  producer: KafkaSender;
  deadLetterTopic: string;
  instance: string;
  tracker: WatermarkTracker;
  log: Logger;
  signal: AbortSignal;
  /** The namespaced `metrics:seen:` prefix of the de-duplication bitmaps. */
  seenPrefix: string;
  /** Events per script call. */
  maxEvents: number;
  /** Window length: each event's window is found when its chunk is encoded. */
  windowMs: number;
  /** Attempts per step before the flush fails (Infinity: keep trying). */
  attempts: number;
  /** `topic:partition` -> offset below which dead letters were sent before (`--rebuild`). */
  sentBefore?: ReadonlyMap<string, number>;
  /** Fault injection (tests): after the first Redis write that counted events, hang. */
  holdAfterWrite?: boolean;
  /** Fault injection (tests): after the Redis writes, before the commit. */
  afterWrite?: (added: number) => Promise<void>;
}

/**
 * @example
 * ```ts ignore
 * const flush = createFlush({ script, producer, deadLetterTopic, instance, tracker, log, ... });
 * const report = await flush(parts);
 * ```
 */
export function createFlush(deps: FlushDeps): (parts: Part[]) => Promise<FlushReport> {
  const { script, producer, instance, tracker, log, signal, maxEvents, attempts } = deps;
  let held = false;

  return async function flush(parts: Part[]): Promise<FlushReport> {
    const started = performance.now();
    const contributions: Contribution[] = [];
    const refused: Refused[] = [];
    const pending = new Map<string, number>();
    let messages = 0;
    for (const part of parts) {
      messages += part.messages;
      const key = partitionKey(part.topic, part.partition);
      for (const c of part.contributions) {
        contributions.push(c);
        if ((pending.get(key) ?? -Infinity) < c.eventMs) pending.set(key, c.eventMs);
      }
      for (const r of part.refused) refused.push(r);
    }
    const keepAlive = () => Promise.all(parts.map((p) => p.heartbeat().catch(() => {})));

    const toSend = refused.filter((r) =>
      Number(r.offset) >= (deps.sentBefore?.get(partitionKey(r.topic, r.partition)) ?? -1)
    );
    if (toSend.length > 0) {
      const now = new Date();
      const messagesOut: Message[] = toSend.map((r) => deadLetter(r, now) as Message);
      await attempt(
        "send dead letters to Kafka",
        keepAlive,
        () => producer.send([{ topic: deps.deadLetterTopic, messages: messagesOut }]),
      );
    }

    const watermark = tracker.watermark(Date.now(), { pending });
    const chunks = encodeChunks(contributions, {
      seenPrefix: deps.seenPrefix,
      maxEvents,
      windowMs: deps.windowMs,
    });
    const report = { added: 0, duplicates: 0, late: 0, finalized: 0 };
    let groupWatermarkMs: number | undefined;
    const calls = Math.max(1, chunks.length);
    for (let i = 0; i < calls; i++) {
      const result = await attempt("write the metrics to Redis", keepAlive, () =>
        script.apply({
          instance,
          chunk: chunks[i],
          watermark: i === calls - 1 ? watermark : undefined,
          deadLetters: i === 0 ? refused.map(deadLetterCount) : [],
        }));
      report.added += result.added;
      report.duplicates += result.duplicates;
      report.late += result.late;
      report.finalized += result.finalized;
      groupWatermarkMs = result.groupWatermarkMs;
      if (result.added > 0 && deps.holdAfterWrite && !held) {
        held = true;
        log.info("🧪 Fault injection: metrics written; holding before the offset commit");
        await new Promise<never>(() => {});
      }
    }

    await deps.afterWrite?.(report.added);
    const commits = parts.map((p) => ({
      topic: p.topic,
      partition: p.partition,
      offset: p.nextOffset,
    }));
    const byCommit = new Map<Part["commit"], typeof commits>();
    parts.forEach((p, i) => {
      const list = byCommit.get(p.commit) ?? [];
      list.push(commits[i]!);
      byCommit.set(p.commit, list);
    });
    for (const [commit, offsets] of byCommit) await commit(offsets);

    const now = Date.now();
    tracker.observe(pending, now);
    for (const p of parts) {
      tracker.progress(
        partitionKey(p.topic, p.partition),
        Number(p.nextOffset),
        Number(p.highWatermark),
      );
    }
    return {
      messages,
      ...report,
      deadLetters: refused,
      groupWatermarkMs,
      ms: performance.now() - started,
      commits: commits.map((c) => ({ ...c, offset: Number(c.offset) })),
    };
  };

  async function attempt<T>(
    what: string,
    keepAlive: () => Promise<unknown>,
    fn: () => Promise<T>,
  ): Promise<T> {
    for (let n = 1;; n++) {
      try {
        return await fn();
      } catch (error) {
        if (n >= attempts || signal.aborted) throw error;
        const delay = Math.min(250 * 2 ** (n - 1), 5000);
        log.warn(
          `Cannot ${what} (attempt ${n}): ${(error as Error).message}; retrying in ${delay} ms`,
        );
        await keepAlive();
        await sleep(delay, signal);
      }
    }
  }
}
