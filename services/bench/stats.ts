/**
 * Pure statistics for the benchmark: percentiles (nearest rank), rates and
 * rounding, so that the same numbers reach the table and the JSON.
 *
 * @module
 */

/** p50, p95, p99 (and count, min, max, mean) of a sample, in its own unit. */
export interface Summary {
  count: number;
  min: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

/**
 * The nearest-rank percentile `p` (0..100) of `sorted` (ascending).
 *
 * @example
 * ```ts
 * import { percentile } from "./stats.ts";
 * percentile([1, 2, 3, 4], 50); // 2
 * ```
 */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/** Summarises `values` (any order); an empty sample gives NaN fields and count 0. */
export function summarize(values: readonly number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  const sum = sorted.reduce((s, v) => s + v, 0);
  return {
    count: sorted.length,
    min: sorted[0] ?? NaN,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: sorted.at(-1) ?? NaN,
    mean: sorted.length ? sum / sorted.length : NaN,
  };
}

/** Events per second, or 0 when nothing was timed. */
export function rate(events: number, ms: number): number {
  return ms > 0 ? (events * 1000) / ms : 0;
}

/** Rounds to `digits` decimals; NaN and infinities become null (JSON has no NaN). */
export function round(value: number, digits = 0): number | null {
  if (!Number.isFinite(value)) return null;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** `ours / theirs`, rounded to 2 decimals; null when either is missing. */
export function ratio(ours: number | null | undefined, theirs: number | null | undefined) {
  if (!ours || !theirs || !Number.isFinite(ours) || !Number.isFinite(theirs)) return null;
  return round(ours / theirs, 2);
}

/** The median of a few repeated measurements (the middle one; lower middle when even). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length ? sorted[Math.floor((sorted.length - 1) / 2)]! : NaN;
}
