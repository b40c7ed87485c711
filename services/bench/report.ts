/**
 * The report: raw measurements in, the JSON of issue 9 out (rates rounded,
 * ratios computed, targets checked). Pure, so the shape is unit-tested.
 *
 * @module
 */

import type { FreshnessSample } from "./freshness.ts";
import type { Machine, Measurements, Reconcile, StageRun } from "./measurements.ts";
import type { ClientComparison } from "./clients.ts";
import { targets } from "./targets.ts";

import { rate, ratio, round, summarize } from "./stats.ts";

export interface StageReport {
  events_per_s: number;
  peak_rss_mb: number;
  events: number;
  seconds: number;
  /** Rate over the whole process life, start-up included. */
  wall_events_per_s: number;
  startup_seconds: number | null;
  /** CPU of the stage's own process per event (its start-up included), in microseconds. */
  cpu_us_per_event: number | null;
  /** PostgreSQL's CPU for the namespace during the run, per event, in microseconds. */
  pg_cpu_us_per_event: number | null;
}

export interface FreshnessReport {
  p50: number | null;
  p95: number | null;
  p99: number | null;
  max: number | null;
  samples: number;
  unseen: number;
}

export interface Target {
  name: string;
  value: number | null;
  target: number;
  /** "min": value must be >= target; "max": value must be < target. */
  kind: "min" | "max";
  met: boolean;
}

export interface BenchReport {
  stages: {
    generate: StageReport;
    produce: StageReport & {
      messages: number;
      messages_per_s: number;
      ratio_vs_kafka_perf: number | null;
    };
    consume: StageReport & {
      messages: number;
      messages_per_s: number;
      ratio_vs_copy: number | null;
    };
    aggregate: StageReport & { messages: number; messages_per_s: number };
  };
  end_to_end: {
    events_per_s: number;
    events: number;
    seconds: number;
    /** CPU per event by process while the chain ran, in microseconds (2 cores = 2 s/s). */
    cpu_us_per_event: Record<string, number> | null;
    /** The whole machine's busy CPU per event (every process), microseconds. */
    machine_cpu_us_per_event: number | null;
  };
  freshness_ms: FreshnessReport;
  freshness_sse_ms: FreshnessReport | null;
  /** Where the Redis freshness goes: the producer's part and the aggregator's. */
  freshness_split_ms: { commit_to_kafka: FreshnessReport; kafka_to_redis: FreshnessReport } | null;
  steady: {
    target_rate: number;
    achieved_rate: number;
    seconds: number;
    events: number;
    updates: number;
    sse_frames: number;
    peak_rss_mb: Record<string, number>;
  } | null;
  anchors: {
    kafka_producer_perf: { events_per_s: number; message_bytes: number; p99_ms: number } | null;
    kafka_consumer_perf: { events_per_s: number; fetch_events_per_s: number } | null;
    copy: {
      events_per_s: number;
      rows: number;
      sale_rows: number;
      events_table_per_s: number;
      format: string;
      by_format: Record<string, number>;
    } | null;
  };
  reconcile: Reconcile;
  targets: Target[];
  /** Untimed work before the timed phases: rounds of Kafka's tools until the broker is warm. */
  warm_up?: Measurements["warmUp"];
  machine: Machine;
  namespace: string;
  options: Measurements["options"];
  clients?: ClientComparison;
}

/**
 * The time a run spent on its events: wall time minus the fixed cost of the
 * idle run, but never less than a fifth of the wall time, so that a tiny
 * smoke run cannot claim an absurd rate from a difference of two noises.
 */
export function workMs(run: StageRun): number {
  if (run.idleMs === undefined) return run.wallMs;
  return Math.max(run.wallMs - run.idleMs, run.wallMs / 5);
}

function stage(run: StageRun): StageReport {
  const ms = workMs(run);
  return {
    events_per_s: round(rate(run.events, ms)) ?? 0,
    peak_rss_mb: round(run.peakRssMb, 1) ?? 0,
    events: run.events,
    seconds: round(ms / 1000, 2) ?? 0,
    wall_events_per_s: round(rate(run.events, run.wallMs)) ?? 0,
    startup_seconds: run.idleMs === undefined ? null : round(run.idleMs / 1000, 2),
    cpu_us_per_event: run.cpuSeconds ? round((run.cpuSeconds * 1e6) / run.events) : null,
    pg_cpu_us_per_event: run.pgCpuSeconds !== undefined
      ? round((run.pgCpuSeconds * 1e6) / run.events)
      : null,
  };
}

function freshness(sample: FreshnessSample): FreshnessReport {
  const s = summarize(sample.latencies);
  return {
    p50: round(s.p50),
    p95: round(s.p95),
    p99: round(s.p99),
    max: round(s.max),
    samples: s.count,
    unseen: sample.unseen,
  };
}

const EMPTY_FRESHNESS: FreshnessReport = {
  p50: null,
  p95: null,
  p99: null,
  max: null,
  samples: 0,
  unseen: 0,
};

/**
 * Builds the report. Produce's ratio compares messages/s (ours counts every
 * message it published, subset topics included) with ProducerPerformance's
 * records/s; consume's compares warehouse rows/s with COPY rows/s.
 */
export function buildReport(m: Measurements): BenchReport {
  const produce = stage(m.produce);
  const messagesPerS = round(rate(m.produce.messages, workMs(m.produce))) ?? 0;
  const consume = stage(m.consume);
  const kafka = m.anchors.kafka;
  const copy = m.anchors.copy;
  const aggregate = stage(m.aggregate);
  const endToEnd = {
    events_per_s: round(rate(m.endToEnd.events, m.endToEnd.ms)) ?? 0,
    events: m.endToEnd.events,
    seconds: round(m.endToEnd.ms / 1000, 2) ?? 0,
    cpu_us_per_event: m.endToEnd.cpuSeconds
      ? cpuPerEvent(m.endToEnd.cpuSeconds, m.endToEnd.events)
      : null,
    machine_cpu_us_per_event: m.endToEnd.machineCpuSeconds
      ? round((m.endToEnd.machineCpuSeconds * 1e6) / m.endToEnd.events) ?? null
      : null,
  };
  const fresh = m.steady ? freshness(m.steady.redis) : EMPTY_FRESHNESS;
  const report: BenchReport = {
    stages: {
      generate: stage(m.generate),
      produce: {
        ...produce,
        messages: m.produce.messages,
        messages_per_s: messagesPerS,
        ratio_vs_kafka_perf: ratio(messagesPerS, kafka?.producer_perf.records_per_s),
      },
      consume: {
        ...consume,
        messages: m.consume.messages,
        messages_per_s: round(rate(m.consume.messages, workMs(m.consume))) ?? 0,
        ratio_vs_copy: ratio(consume.events_per_s, copy?.events_per_s),
      },
      aggregate: {
        ...aggregate,
        messages: m.aggregate.messages,
        messages_per_s: round(rate(m.aggregate.messages, workMs(m.aggregate))) ?? 0,
      },
    },
    end_to_end: endToEnd,
    freshness_ms: fresh,
    freshness_sse_ms: m.steady?.sse ? freshness(m.steady.sse) : null,
    freshness_split_ms: m.steady?.toKafka && m.steady.kafkaToRedis
      ? {
        commit_to_kafka: freshness(m.steady.toKafka),
        kafka_to_redis: freshness(m.steady.kafkaToRedis),
      }
      : null,
    steady: m.steady
      ? {
        target_rate: m.steady.targetRate,
        achieved_rate: round(rate(m.steady.events, m.steady.generateMs)) ?? 0,
        seconds: m.steady.seconds,
        events: m.steady.events,
        updates: m.steady.updates,
        sse_frames: m.steady.frames,
        peak_rss_mb: Object.fromEntries(
          Object.entries(m.steady.rss).map(([k, v]) => [k, round(v, 1) ?? 0]),
        ),
      }
      : null,
    anchors: {
      kafka_producer_perf: kafka
        ? {
          events_per_s: round(kafka.producer_perf.records_per_s) ?? 0,
          message_bytes: kafka.message_bytes,
          p99_ms: kafka.producer_perf.p99_ms,
        }
        : null,
      kafka_consumer_perf: kafka
        ? {
          events_per_s: round(kafka.consumer_perf.records_per_s) ?? 0,
          fetch_events_per_s: round(kafka.consumer_perf.fetch_records_per_s) ?? 0,
        }
        : null,
      copy: copy
        ? {
          events_per_s: copy.events_per_s,
          rows: copy.rows,
          sale_rows: copy.sale_rows,
          events_table_per_s: copy.events_table_per_s,
          format: copy.format,
          by_format: copy.by_format,
        }
        : null,
    },
    reconcile: m.reconcile,
    targets: [],
    ...(m.warmUp ? { warm_up: m.warmUp } : {}),
    machine: m.machine,
    namespace: m.namespace,
    options: m.options,
    ...(m.clients ? { clients: m.clients } : {}),
  };
  report.targets = targets(report);
  return report;
}

function cpuPerEvent(cpu: Record<string, number>, events: number): Record<string, number> {
  const out: Record<string, number> = {};
  let total = 0;
  for (const [k, v] of Object.entries(cpu)) {
    out[k] = round((v * 1e6) / events) ?? 0;
    // The bench measuring the chain is not part of it (the whole machine's figure has it);
    // the broker's JIT compiler threads are already in `kafka`.
    if (k !== "bench" && k !== "kafka_jit") total += v;
  }
  out.total = round((total * 1e6) / events) ?? 0;
  return out;
}
