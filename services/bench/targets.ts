/**
 * Issue 9's targets, checked against a report, and the JSON paths the issue
 * requires (the smoke test's checklist).
 *
 * @module
 */

import type { BenchReport, Target } from "./report.ts";

/** Issue 9's targets for this 2-core machine. */
export function targets(r: BenchReport): Target[] {
  const min = (name: string, value: number | null, target: number): Target => ({
    name,
    value,
    target,
    kind: "min",
    met: value !== null && value >= target,
  });
  const max = (name: string, value: number | null, target: number): Target => ({
    name,
    value,
    target,
    kind: "max",
    met: value !== null && value < target,
  });
  return [
    min("end-to-end catch-up events/s", r.end_to_end.events_per_s, 20_000),
    min("generate events/s", r.stages.generate.events_per_s, 20_000),
    min("produce messages/s", r.stages.produce.messages_per_s, 30_000),
    min("produce / ProducerPerformance", r.stages.produce.ratio_vs_kafka_perf, 0.5),
    min("consume events/s", r.stages.consume.events_per_s, 20_000),
    min("consume / COPY", r.stages.consume.ratio_vs_copy, 0.5),
    min("aggregate events/s", r.stages.aggregate.events_per_s, 50_000),
    min("aggregate messages/s (items included)", r.stages.aggregate.messages_per_s, 50_000),
    max("freshness p99 ms (Redis)", r.freshness_ms.p99, 1000),
  ];
}

/** The required shape, for the smoke test: every path that must exist. */
export const REQUIRED_PATHS = [
  "stages.generate.events_per_s",
  "stages.generate.peak_rss_mb",
  "stages.produce.events_per_s",
  "stages.produce.peak_rss_mb",
  "stages.produce.ratio_vs_kafka_perf",
  "stages.consume.events_per_s",
  "stages.consume.peak_rss_mb",
  "stages.consume.ratio_vs_copy",
  "stages.aggregate.events_per_s",
  "stages.aggregate.peak_rss_mb",
  "end_to_end.events_per_s",
  "freshness_ms.p50",
  "freshness_ms.p95",
  "freshness_ms.p99",
] as const;
