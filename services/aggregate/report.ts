/**
 * What the aggregator tells people: seed-like log lines per flush, running
 * totals, and the heartbeat hash that `deno task status` and the dashboard
 * read. Pure.
 *
 * @module
 */

import type { Config } from "../../lib/config.ts";
import { type Heartbeat, names } from "../../lib/contracts.ts";
import type { FlushReport } from "./flush.ts";
import { INPUT_TOPICS } from "./kafka_io.ts";
import type { LocalWatermark } from "./watermark.ts";

/** Running totals of one instance since start. */
export interface Totals {
  messages: number;
  added: number;
  duplicates: number;
  late: number;
  deadLetters: number;
  flushes: number;
  finalized: number;
  lastFlushAt: string | null;
}

export function emptyTotals(): Totals {
  return {
    messages: 0,
    added: 0,
    duplicates: 0,
    late: 0,
    deadLetters: 0,
    flushes: 0,
    finalized: 0,
    lastFlushAt: null,
  };
}

/** Adds a flush to `totals`. */
export function addFlush(totals: Totals, report: FlushReport, at: Date): void {
  totals.messages += report.messages;
  totals.added += report.added;
  totals.duplicates += report.duplicates;
  totals.late += report.late;
  totals.deadLetters += report.deadLetters.length;
  totals.finalized += report.finalized;
  totals.flushes++;
  totals.lastFlushAt = at.toISOString();
}

// en-US grouping of the integer counts logged; toLocaleString cost ~30 ms of ICU set-up per process.
const fmt = (n: number) => String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");

/** Dead letters logged one by one per flush. */
export const DEAD_LETTER_LINES = 20;

/**
 * The log lines of one flush, like the seed's "🔄 Procesando batch" lines.
 *
 * @example
 * ```ts
 * import { flushLines } from "./report.ts";
 * flushLines({
 *   messages: 5, added: 5, duplicates: 0, late: 0, deadLetters: [], finalized: 1,
 *   groupWatermarkMs: 0, ms: 3, commits: [],
 * }, 1);
 * // ["🔄 Batch 1: 5 events counted in 3 ms; 1 window closed; watermark 1970-01-01T00:00:00.000Z"]
 * ```
 */
export function flushLines(report: FlushReport, batch: number): string[] {
  const lines: string[] = [];
  for (const r of report.deadLetters.slice(0, DEAD_LETTER_LINES)) {
    lines.push(`☠️  Dead letter from ${r.topic}[${r.partition}]@${r.offset}: ${r.reason}`);
  }
  if (report.deadLetters.length > DEAD_LETTER_LINES) {
    lines.push(`☠️  ... and ${fmt(report.deadLetters.length - DEAD_LETTER_LINES)} more`);
  }
  const parts = [`🔄 Batch ${fmt(batch)}: ${fmt(report.added)} events counted`];
  if (report.duplicates > 0) parts[0] += ` (${fmt(report.duplicates)} already counted)`;
  parts[0] += ` in ${Math.round(report.ms)} ms`;
  if (report.late > 0) parts.push(`${fmt(report.late)} late`);
  if (report.finalized > 0) {
    parts.push(`${fmt(report.finalized)} window${report.finalized === 1 ? "" : "s"} closed`);
  }
  if (report.groupWatermarkMs !== undefined) {
    parts.push(`watermark ${new Date(report.groupWatermarkMs).toISOString()}`);
  }
  lines.push(parts.join("; "));
  return lines;
}

/**
 * Logs flushes at most once per `everyMs` (a busy aggregator flushes many
 * times a second): the flushes in between are merged into one line; dead
 * letters are always logged.
 */
export function createFlushLog(
  log: { info(message: string): void },
  { everyMs = 1000, clock = () => performance.now() } = {},
) {
  let merged: FlushReport | undefined;
  let batches = 0;
  let lastAt = -Infinity;
  function emit() {
    if (merged) { for (const line of flushLines(merged, batches)) log.info(line); }
    merged = undefined;
    lastAt = clock();
  }
  return {
    record(report: FlushReport) {
      batches++;
      merged = merged
        ? {
          messages: merged.messages + report.messages,
          added: merged.added + report.added,
          duplicates: merged.duplicates + report.duplicates,
          late: merged.late + report.late,
          deadLetters: [...merged.deadLetters, ...report.deadLetters],
          groupWatermarkMs: report.groupWatermarkMs,
          finalized: merged.finalized + report.finalized,
          ms: merged.ms + report.ms,
          commits: [],
        }
        : report;
      if (clock() - lastAt >= everyMs || report.deadLetters.length > 0) emit();
    },
    /** Logs what is pending now. */
    flush: emit,
  };
}

/** Heartbeat hash fields (strings, as Redis stores them). */
export function heartbeatFields(
  beat: Omit<Heartbeat, "detail"> & { detail: Record<string, unknown> },
): Record<string, string> {
  return {
    stage: beat.stage,
    pid: String(beat.pid),
    at: beat.at,
    events: String(beat.events),
    events_per_s: String(beat.events_per_s),
    dead_letters: String(beat.dead_letters),
    detail: JSON.stringify(beat.detail),
  };
}

/** Events per second between two samples of a counter, one decimal. */
export function rate(count: number, previous: number, ms: number): number {
  return ms <= 0 ? 0 : Math.round(((count - previous) / ms) * 10_000) / 10;
}

/** An epoch-ms time as ISO, or null. */
export function isoOrNull(ms: number | undefined | "hold" | "none"): string | null {
  return typeof ms === "number" && Number.isFinite(ms) ? new Date(ms).toISOString() : null;
}

/** The seed-like lines at start. */
export function startLines({ config, group, instance, options }: {
  config: Config;
  group: string;
  instance: string;
  options: { windowMs: number; latenessMs: number; allowedLatenessMs: number; drain: boolean };
}): string[] {
  const n = names(config.namespace);
  const { windowMs, latenessMs, allowedLatenessMs, drain } = options;
  const open = allowedLatenessMs ? `, windows open ${allowedLatenessMs / 1000} s longer` : "";
  return [
    `🚀 Realtime metrics aggregator started${
      config.namespace ? ` (namespace ${config.namespace})` : ""
    }${drain ? ", draining" : ""}`,
    `🆔 Group ID: ${group} (instance ${instance})`,
    `🪟 Windows of ${windowMs / 1000} s, watermark ${
      latenessMs / 1000
    } s behind the newest event${open}`,
    `📥 ${INPUT_TOPICS.map((k) => n.topics[k]).join(", ")} -> Redis metrics`,
  ];
}

/** The `detail` JSON of the aggregator's heartbeat. */
export function heartbeatDetail(d: {
  instance: string;
  group: string;
  drain: boolean;
  windowMs: number;
  totals: Totals;
  localWatermark: LocalWatermark;
  groupWatermarkMs: number | undefined;
  assigned: number;
  idle: number;
  lag: { total: number; byTopic: Record<string, Record<string, number>> };
  plain: (topic: string) => string;
}): Record<string, unknown> {
  return {
    instance: d.instance,
    group: d.group,
    mode: d.drain ? "drain" : "run",
    window_ms: d.windowMs,
    last_flush: d.totals.lastFlushAt,
    watermark: typeof d.localWatermark === "number"
      ? isoOrNull(d.localWatermark)
      : d.localWatermark,
    group_watermark: isoOrNull(d.groupWatermarkMs),
    counted: d.totals.added,
    already_counted: d.totals.duplicates,
    late: d.totals.late,
    windows_closed: d.totals.finalized,
    flushes: d.totals.flushes,
    assigned: d.assigned,
    idle: d.idle,
    lag_total: d.lag.total,
    lag: Object.fromEntries(Object.entries(d.lag.byTopic).map(([t, v]) => [d.plain(t), v])),
  };
}

/** The last line of a run. */
export function summaryLine({ totals, ms, drained, groupWatermarkMs }: {
  totals: Totals;
  ms: number;
  drained: boolean;
  groupWatermarkMs: number | undefined;
}): string {
  return `🏁 ${drained ? "Drained" : "Stopped"} after ${(ms / 1000).toFixed(1)} s: ` +
    `${totals.messages} messages, ${totals.added} events counted ` +
    `(${totals.duplicates} already counted, ${totals.late} late), ` +
    `${totals.deadLetters} dead letters; watermark ${isoOrNull(groupWatermarkMs) ?? "none"}`;
}
