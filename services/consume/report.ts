/**
 * What the consumer tells people: seed-like log lines per batch (one line per
 * item when the batch is small, a summary when it is not), running totals,
 * and the heartbeat hash that `deno task status` and the dashboard read.
 *
 * @module
 */

import type { Heartbeat } from "../../lib/contracts.ts";
import type { ItemNotes } from "./enrich.ts";
import type { Logger } from "../../lib/log.ts";

/** What one flush did. */
export interface BatchReport {
  /** Messages read, by plain topic name. */
  byTopic: Record<string, number>;
  stored: number;
  /** Valid messages that added no row: repeats within the batch or already stored. */
  duplicates: number;
  /** The items sent (`transaction_item` events, or notes of them). */
  items: ItemNotes;
  deadLetters: readonly { where: string; reason: string }[];
  ms: number;
  /** Milliseconds per step, for the summary line of large batches. */
  phases?: Record<string, number>;
}

/** Running totals since start. */
export interface Totals {
  messages: number;
  stored: number;
  duplicates: number;
  items: number;
  deadLetters: number;
  batches: number;
}

/** Batches up to this many messages log their items one by one, as the seed did. */
export const DETAIL_LIMIT = 10;
/** Dead letters logged one by one per batch; the rest are counted in one line. */
export const DEAD_LETTER_LINES = 20;

const fmt = (n: number) => n.toLocaleString("en-US");

/**
 * The log lines of one batch.
 *
 * @example
 * ```ts
 * import { batchLines } from "./report.ts";
 * batchLines({ byTopic: { transactions: 1 }, stored: 1, duplicates: 0, items: [], deadLetters: [], ms: 3 });
 * // ["📨 1 message (transactions 1)", "✅ 1 event stored in 3 ms"]
 * ```
 */
export function batchLines(report: BatchReport): string[] {
  const messages = Object.values(report.byTopic).reduce((a, b) => a + b, 0);
  const topics = Object.entries(report.byTopic).map(([t, n]) => `${t} ${fmt(n)}`).join(", ");
  const lines = [`📨 ${fmt(messages)} message${messages === 1 ? "" : "s"} (${topics})`];
  for (const dl of report.deadLetters.slice(0, DEAD_LETTER_LINES)) {
    lines.push(`☠️  Dead letter from ${dl.where}: ${dl.reason}`);
  }
  if (report.deadLetters.length > DEAD_LETTER_LINES) {
    lines.push(
      `☠️  ... and ${fmt(report.deadLetters.length - DEAD_LETTER_LINES)} more dead letters`,
    );
  }
  const present = report.duplicates > 0 ? ` (${fmt(report.duplicates)} duplicates skipped)` : "";
  const phases = messages > DETAIL_LIMIT && report.phases
    ? ` (${Object.entries(report.phases).map(([k, v]) => `${k} ${Math.round(v)}`).join(", ")})`
    : "";
  lines.push(
    `✅ ${fmt(report.stored)} event${report.stored === 1 ? "" : "s"} stored${present} in ${
      Math.round(report.ms)
    } ms${phases}`,
  );
  if (report.items.length === 0) return lines;
  if (messages <= DETAIL_LIMIT) {
    for (const item of report.items) {
      lines.push(
        `📤 transaction_item sent: ${item.product_name} (${item.category}) x${item.quantity}`,
      );
    }
  } else {
    const categories = [...categoryCounts(report.items)].sort((a, b) => b[1] - a[1])
      .map(([c, n]) => `${c} ${fmt(n)}`).join(", ");
    lines.push(`📤 ${fmt(report.items.length)} transaction_item events sent (${categories})`);
  }
  return lines;
}

function categoryCounts(items: ItemNotes): Map<string, number> {
  if (items.categories) return items.categories();
  const counts = new Map<string, number>();
  for (const item of items) counts.set(item.category, (counts.get(item.category) ?? 0) + 1);
  return counts;
}

/** Logs a batch and adds it to `totals`. */
export function recordBatch(log: Logger, totals: Totals, report: BatchReport): void {
  for (const line of batchLines(report)) log.info(line);
  totals.messages += Object.values(report.byTopic).reduce((a, b) => a + b, 0);
  totals.stored += report.stored;
  totals.duplicates += report.duplicates;
  totals.items += report.items.length;
  totals.deadLetters += report.deadLetters.length;
  totals.batches++;
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
