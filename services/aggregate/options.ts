/**
 * The aggregator's options, with the defaults of the seed's Spark job
 * (30 s windows, 10 s watermark).
 *
 * @module
 */

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
  /** Fault injection (tests): runs after each flush's Redis writes, before its commit. */
  afterWrite?: (added: number) => Promise<void>;
  heartbeatMs?: number;
  /** Events per Redis script call (default 5,000). */
  maxEvents?: number;
  /** Kafka fetch size per partition (default 1 MiB). */
  fetchBytes?: number;
}

/** Every option with its default applied. */
export type ResolvedOptions =
  & Required<Omit<AggregatorOptions, "group" | "afterWrite">>
  & Pick<AggregatorOptions, "group" | "afterWrite">;

/**
 * @example
 * ```ts
 * import { resolveOptions } from "./options.ts";
 * resolveOptions({ windowMs: 10_000 }).idleMs; // 20_000: twice the window
 * ```
 */
export function resolveOptions(options: AggregatorOptions): ResolvedOptions {
  const windowMs = options.windowMs ?? 30_000;
  return {
    group: options.group,
    windowMs,
    latenessMs: options.latenessMs ?? 10_000,
    allowedLatenessMs: options.allowedLatenessMs ?? 0,
    retentionMs: options.retentionMs ?? 24 * 3_600_000,
    idleMs: options.idleMs ?? 2 * windowMs,
    drain: options.drain ?? false,
    rebuild: options.rebuild ?? false,
    holdAfterWrite: options.holdAfterWrite ?? false,
    afterWrite: options.afterWrite,
    heartbeatMs: options.heartbeatMs ?? 2000,
    maxEvents: options.maxEvents ?? 5000,
    fetchBytes: options.fetchBytes ?? 1024 * 1024,
  };
}
