/**
 * The metrics aggregator (the seed's Spark Structured Streaming job): reads
 * `transactions`, `user_behavior` and `transaction_items` with a stable
 * consumer group, folds every event once into Redis totals and event-time
 * windows (./lua.ts), and commits offsets only after Redis accepted the
 * events. Instances in one group share the work; see docs/aggregate.md.
 *
 * @module
 */

import { ServiceError } from "../../lib/cli.ts";
import type { Config } from "../../lib/config.ts";
import { names, TOPICS } from "../../lib/contracts.ts";
import { createKafka, DRAIN_FETCH_WAIT_MS } from "../../lib/kafka.ts";
import { createKafkaSender } from "../../lib/kafka_sender.ts";
import { CommitError } from "../../lib/kafka_session.ts";
import type { Logger } from "../../lib/log.ts";
import { createRedis } from "../../lib/redis.ts";
import { sleep } from "../../lib/retry.ts";
import { createBatcher, createSerial } from "./batcher.ts";
import { createFlush, type Part } from "./flush.ts";
import { createKafkaIo, INPUT_TOPICS, withTimeout } from "./kafka_io.ts";
import { advance, caughtUp, type Committed, lagOf, type PartitionEnds } from "./offsets.ts";
import { watchRedis } from "./redis_io.ts";
import {
  addFlush,
  createFlushLog,
  emptyTotals,
  heartbeatDetail,
  heartbeatFields,
  rate,
  startLines,
  summaryLine,
  type Totals,
} from "./report.ts";
import { createMetricsScript } from "./script.ts";
import { startAggregator } from "./start.ts";
import { createWatermarkTracker, type LocalWatermark } from "./watermark.ts";
import { type AggregatorOptions, resolveOptions } from "./options.ts";

export type { AggregatorOptions };

export interface AggregatorDeps {
  config: Config;
  log: Logger;
}

export interface AggregatorSummary extends Totals {
  group: string;
  instance: string;
  groupWatermarkMs: number | undefined;
  ms: number;
}

export interface Aggregator {
  readonly group: string;
  readonly instance: string;
  /** Aggregates until `signal` aborts (or, with `drain`, until caught up). */
  run(signal: AbortSignal): Promise<AggregatorSummary>;
}

const SESSION_TIMEOUT_MS = 10_000;
/** Longer than a session timeout: by then a dead instance's partitions have new owners. */
const STALE_MS = 3 * SESSION_TIMEOUT_MS;

/**
 * @example
 * ```ts ignore
 * const aggregator = createAggregator({ config, log }, { drain: true });
 * const summary = await aggregator.run(AbortSignal.timeout(60_000));
 * ```
 */
export function createAggregator(
  { config, log }: AggregatorDeps,
  options: AggregatorOptions = {},
): Aggregator {
  const resolved = resolveOptions(options);
  const {
    windowMs,
    latenessMs,
    allowedLatenessMs,
    retentionMs,
    idleMs,
    drain,
    rebuild,
    holdAfterWrite,
    heartbeatMs,
    maxEvents,
    fetchBytes,
  } = resolved;
  const n = names(config.namespace);
  const group = n.group("aggregate", options.group);
  const instance = `${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  const attempts = drain ? 6 : Infinity;
  const plainNames = new Map<string, string>(INPUT_TOPICS.map((k) => [n.topics[k], TOPICS[k]]));

  async function run(signal: AbortSignal): Promise<AggregatorSummary> {
    const started = performance.now();
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    signal.addEventListener("abort", onAbort, { once: true });
    const totals = emptyTotals();
    const committed: Committed = new Map();
    const tracker = createWatermarkTracker({ latenessMs, idleMs });
    const serial = createSerial();
    const flushLog = createFlushLog(log);
    const redis = createRedis(config);
    watchRedis(redis, log);
    // kafkajs logs every retry; the loop below reports outages in one line each instead.
    const kafka = createKafka(config, { clientId: "instashop-aggregate", level: "nothing" });
    const io = createKafkaIo({ kafka, n, group, log, signal: stop.signal, attempts });
    const producer = createKafkaSender(kafka);
    const script = createMetricsScript(redis, n, {
      windowMs,
      allowedLatenessMs,
      retentionMs,
      staleMs: STALE_MS,
    });
    let ends: PartitionEnds[] = [];
    let targets: PartitionEnds[] = [];
    let assigned: string[] = [];
    let groupWatermarkMs: number | undefined;
    let localWatermark: LocalWatermark = "none";
    let fatal: unknown;
    let beating: Promise<void> | undefined;
    let lastBeat = { at: performance.now(), messages: 0 };
    let consuming = false;

    const tick = (endOfInput = false) =>
      serial.run(async () => {
        localWatermark = tracker.watermark(Date.now(), { endOfInput });
        const result = await script.apply({ instance, watermark: localWatermark });
        groupWatermarkMs = result.groupWatermarkMs;
        totals.finalized += result.finalized;
      });
    const checkDrained = () => {
      if (drain && caughtUp(targets, committed)) stop.abort();
    };

    try {
      const start = await startAggregator(
        { config, n, group, io, redis, producer, log },
        { rebuild, windowMs },
      );
      targets = ends = start.ends;
      advance(committed, start.offsets);

      for (const line of startLines({ config, group, instance, options: resolved })) {
        log.info(line);
      }
      if (drain) log.info(`⏳ Draining ${lagOf(targets, committed).total} messages`);
      checkDrained();

      const flush = createFlush({
        script,
        producer,
        deadLetterTopic: n.topics.deadLetters,
        instance,
        tracker,
        log,
        signal: stop.signal,
        seenPrefix: n.redis("metrics:seen:"),
        maxEvents,
        windowMs,
        attempts,
        sentBefore: start.sentBefore,
        holdAfterWrite,
        afterWrite: resolved.afterWrite,
      });
      // Commits that failed in a row: each ends only the session (kafkajs rejoins, the batch
      // comes again and counts nothing twice); a drain gives up after `attempts` of them.
      let commitFailures = 0;
      const batcher = createBatcher<Part>(async (parts) => {
        try {
          const report = await flush(parts);
          commitFailures = 0;
          addFlush(totals, report, new Date());
          groupWatermarkMs = report.groupWatermarkMs ?? groupWatermarkMs;
          flushLog.record(report);
          advance(committed, report.commits);
          checkDrained();
        } catch (error) {
          const sessionOnly = error instanceof CommitError && ++commitFailures < attempts;
          if (sessionOnly) log.warn(`${(error as Error).message}; the batch will come again`);
          else if (!stop.signal.aborted && attempts !== Infinity) {
            fatal ??= error;
            stop.abort();
          }
          throw error;
        }
      }, { maxSize: 4 * maxEvents, serial });

      consuming = true;
      beating = beatLoop();
      await io.consume({
        fetchBytes,
        fetchWaitMs: drain ? DRAIN_FETCH_WAIT_MS : undefined,
        concurrency: INPUT_TOPICS.length * config.kafka.partitions,
        sessionTimeoutMs: SESSION_TIMEOUT_MS,
        submit: batcher.submit,
        onAssign: (keys) => {
          assigned = keys;
          tracker.assign(keys, Date.now());
          // Announce a hold at once, so that no instance moves the group watermark past
          // partitions this one has not read yet.
          tick().catch(() => {});
        },
        onFatal: (error) => fatal ??= error,
      });
    } finally {
      signal.removeEventListener("abort", onAbort);
      stop.abort();
      await beating;
      flushLog.flush();
      if (consuming) {
        await withTimeout(finish(), 10_000).catch((error) =>
          log.warn(`Cannot write the last watermark: ${(error as Error).message}`)
        );
        await withTimeout(beat(), 5000).catch((error) =>
          log.warn(`Cannot write the last heartbeat: ${(error as Error).message}`)
        );
      }
      await producer.close();
      await io.admin.disconnect().catch(() => {});
      redis.disconnect();
    }
    if (fatal) throw new ServiceError(`Cannot aggregate: ${(fatal as Error).message ?? fatal}`);
    const ms = performance.now() - started;
    const lag = lagOf(ends, committed).total;
    log.info(summaryLine({ totals, ms, drained: drain && lag === 0, groupWatermarkMs }));
    return { ...totals, group, instance, groupWatermarkMs, ms };

    /** The last word on the watermark: a finished drain closes what it can, then leaves. */
    async function finish() {
      try {
        if (drain && !fatal && ends.length > 0) {
          await refresh();
          await tick(true);
        }
      } finally {
        await serial.run(() => script.apply({ instance, watermark: "none" }));
      }
    }

    async function refresh() {
      ends = await io.endOffsets();
      advance(committed, await io.groupOffsets());
      for (const e of ends) {
        const key = `${e.topic}:${e.partition}`;
        tracker.progress(key, Math.max(committed.get(key) ?? -1, e.low), e.high);
      }
    }

    async function beatLoop() {
      let failing = false;
      while (!stop.signal.aborted) {
        await sleep(drain ? Math.min(heartbeatMs, 500) : heartbeatMs, stop.signal);
        if (stop.signal.aborted) break;
        try {
          await refresh();
          checkDrained();
          if (!stop.signal.aborted) await tick();
          await beat();
          if (failing) log.info("✅ Heartbeat written again");
          failing = false;
        } catch (error) {
          if (!failing) log.warn(`Cannot write the heartbeat: ${(error as Error).message}`);
          failing = true;
        }
      }
    }

    async function beat() {
      const now = performance.now();
      const fields = heartbeatFields({
        stage: "aggregate",
        pid: Deno.pid,
        at: new Date().toISOString(),
        events: totals.messages,
        events_per_s: rate(totals.messages, lastBeat.messages, now - lastBeat.at),
        dead_letters: totals.deadLetters,
        detail: heartbeatDetail({
          instance,
          group,
          drain,
          windowMs,
          totals,
          localWatermark,
          groupWatermarkMs,
          assigned: assigned.length,
          idle: Object.values(tracker.view(Date.now())).filter((v) => v.idle).length,
          lag: lagOf(ends, committed),
          plain: (topic) => plainNames.get(topic) ?? topic,
        }),
      });
      lastBeat = { at: now, messages: totals.messages };
      await redis.hset(n.heartbeat("aggregate"), fields);
    }
  }

  return { group, instance, run };
}
