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
import { type Config, redact } from "../../lib/config.ts";
import { names, TOPICS } from "../../lib/contracts.ts";
import { createKafka, createProducer, ensureTopics } from "../../lib/kafka.ts";
import type { Logger } from "../../lib/log.ts";
import { createRedis } from "../../lib/redis.ts";
import { sleep } from "../../lib/retry.ts";
import { createBatcher, createSerial } from "./batcher.ts";
import { createFlush, type Part } from "./flush.ts";
import { createKafkaIo, INPUT_TOPICS, withTimeout } from "./kafka_io.ts";
import { advance, caughtUp, type Committed, lagOf, type PartitionEnds } from "./offsets.ts";
import { prepareRebuild } from "./rebuild.ts";
import {
  addFlush,
  createFlushLog,
  emptyTotals,
  heartbeatFields,
  isoOrNull,
  rate,
  type Totals,
} from "./report.ts";
import { AGGREGATE_KEYS, createMetricsScript } from "./script.ts";
import { createWatermarkTracker, type LocalWatermark } from "./watermark.ts";

export interface AggregatorDeps {
  config: Config;
  log: Logger;
}

export interface AggregatorOptions {
  /** Consumer group below the namespace (default `instashop-metrics`). */
  group?: string;
  /** Tumbling window length (default 30 s). */
  windowMs?: number;
  /** Watermark delay behind the newest event time (default 10 s). */
  latenessMs?: number;
  /** How long a window stays open after the watermark passed its end (default 0). */
  allowedLatenessMs?: number;
  /** How long windows stay in the series, in event time (default 24 h). */
  retentionMs?: number;
  /** Quiet, caught-up partitions stop holding the watermark after this (default 2 windows). */
  idleMs?: number;
  /** Stop once caught up with the end offsets seen at start. */
  drain?: boolean;
  /** Delete the namespace's metrics and recompute them from the earliest offsets. */
  rebuild?: boolean;
  /** Fault injection (tests): after the first Redis write, wait to be killed. */
  holdAfterWrite?: boolean;
  heartbeatMs?: number;
  /** Events per Redis script call (default 5,000). */
  maxEvents?: number;
  /** Kafka fetch size per partition (default 4 MiB). */
  fetchBytes?: number;
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
  const {
    windowMs = 30_000,
    latenessMs = 10_000,
    allowedLatenessMs = 0,
    retentionMs = 24 * 3_600_000,
    idleMs = 2 * windowMs,
    drain = false,
    rebuild = false,
    holdAfterWrite = false,
    heartbeatMs = 2000,
    maxEvents = 5000,
    fetchBytes = 4 * 1024 * 1024,
  } = options;
  const n = names(config.namespace);
  const group = n.group("aggregate", options.group);
  const instance = `${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  const attempts = drain ? 6 : Infinity;

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
    let redisDown = false;
    redis.on("error", (error: Error) => {
      if (!redisDown) log.warn(`Redis: ${error.message} (retrying)`);
      redisDown = true;
    });
    redis.on("ready", () => {
      if (redisDown) log.info("✅ Redis is back");
      redisDown = false;
    });
    // kafkajs logs every retry; the loop below reports outages in one line each instead.
    const kafka = createKafka(config, { clientId: "instashop-aggregate", level: "nothing" });
    const io = createKafkaIo({ kafka, n, group, log, signal: stop.signal, attempts });
    const producer = createProducer(kafka);
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
    let held = false;
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
      await io.reach(
        `connect to Kafka at ${config.kafka.brokers.join(",")}`,
        () => io.admin.connect(),
      );
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
      await checkWindow();
      ends = await io.reach("read the end offsets", () => io.endOffsets());
      advance(committed, await io.reach("read the group offsets", () => io.groupOffsets()));
      targets = ends;
      await io.reach("connect a producer to Kafka", () => producer.connect());

      log.info(
        `🚀 Realtime metrics aggregator started${
          config.namespace ? ` (namespace ${config.namespace})` : ""
        }${drain ? ", draining" : ""}`,
      );
      log.info(`🆔 Group ID: ${group} (instance ${instance})`);
      log.info(
        `🪟 Windows of ${windowMs / 1000} s, watermark ${
          latenessMs / 1000
        } s behind the newest event` +
          `${allowedLatenessMs ? `, windows open ${allowedLatenessMs / 1000} s longer` : ""}`,
      );
      log.info(`📥 ${INPUT_TOPICS.map((k) => n.topics[k]).join(", ")} -> Redis metrics`);
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
        attempts,
        sentBefore,
        afterWrite: holdAfterWrite
          ? async () => {
            if (held) return;
            held = true;
            log.info("🧪 Fault injection: metrics written; holding before the offset commit");
            await new Promise<never>(() => {});
          }
          : undefined,
      });
      const batcher = createBatcher<Part>(async (parts) => {
        try {
          const report = await flush(parts);
          addFlush(totals, report, new Date());
          groupWatermarkMs = report.groupWatermarkMs ?? groupWatermarkMs;
          flushLog.record(report);
          advance(committed, report.commits);
          checkDrained();
        } catch (error) {
          if (!stop.signal.aborted && attempts !== Infinity) {
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
        concurrency: INPUT_TOPICS.length * config.kafka.partitions,
        sessionTimeoutMs: SESSION_TIMEOUT_MS,
        windowMs,
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
      await producer.disconnect().catch(() => {});
      await io.admin.disconnect().catch(() => {});
      redis.disconnect();
    }
    if (fatal) throw new ServiceError(`Cannot aggregate: ${(fatal as Error).message ?? fatal}`);
    const ms = performance.now() - started;
    const lag = lagOf(ends, committed).total;
    log.info(
      `🏁 ${drain && lag === 0 ? "Drained" : "Stopped"} after ${(ms / 1000).toFixed(1)} s: ` +
        `${totals.messages} messages, ${totals.added} events counted ` +
        `(${totals.duplicates} already counted, ${totals.late} late), ` +
        `${totals.deadLetters} dead letters; watermark ${isoOrNull(groupWatermarkMs) ?? "none"}`,
    );
    return { ...totals, group, instance, groupWatermarkMs, ms };

    /** Refuses to mix window lengths in one namespace: windows would overlap. */
    async function checkWindow() {
      const key = n.redis(AGGREGATE_KEYS.watermark);
      await redis.hsetnx(key, "window_ms", String(windowMs));
      const stored = Number(await redis.hget(key, "window_ms"));
      if (stored !== windowMs) {
        throw new ServiceError(
          `Cannot aggregate with --window ${windowMs / 1000}s as this namespace's metrics ` +
            `use ${stored / 1000}s windows: use the same --window, or --rebuild`,
        );
      }
    }

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
      const lag = lagOf(ends, committed);
      const view = tracker.view(Date.now());
      const fields = heartbeatFields({
        stage: "aggregate",
        pid: Deno.pid,
        at: new Date().toISOString(),
        events: totals.messages,
        events_per_s: rate(totals.messages, lastBeat.messages, now - lastBeat.at),
        dead_letters: totals.deadLetters,
        detail: {
          instance,
          group,
          mode: drain ? "drain" : "run",
          window_ms: windowMs,
          last_flush: totals.lastFlushAt,
          watermark: typeof localWatermark === "number"
            ? isoOrNull(localWatermark)
            : localWatermark,
          group_watermark: isoOrNull(groupWatermarkMs),
          counted: totals.added,
          already_counted: totals.duplicates,
          late: totals.late,
          windows_closed: totals.finalized,
          flushes: totals.flushes,
          assigned: assigned.length,
          idle: Object.values(view).filter((v) => v.idle).length,
          lag_total: lag.total,
          lag: Object.fromEntries(
            Object.entries(lag.byTopic).map(([t, v]) => [plain(t), v]),
          ),
        },
      });
      lastBeat = { at: now, messages: totals.messages };
      await redis.hset(n.heartbeat("aggregate"), fields);
    }

    function plain(topic: string): string {
      const key = INPUT_TOPICS.find((k) => n.topics[k] === topic);
      return key ? TOPICS[key] : topic;
    }
  }

  return { group, instance, run };
}
