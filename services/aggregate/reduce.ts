/**
 * The batch reducer: what each event adds to the metrics (its contribution),
 * and the compact form in which a batch of contributions travels to the Redis
 * script (./lua.ts). Pure.
 *
 * Events cannot be summed before they reach Redis: whether an event counts
 * depends on the de-duplication bitmap there. So each event travels on its
 * own, as a handful of small integers that point into per-chunk tables of
 * field names, window starts and bitmap keys.
 *
 * @module
 */

import { METRIC_FIELDS, type PipelineEvent } from "../../lib/contracts.ts";
import { windowStart } from "./window.ts";

/** Bits per de-duplication bitmap: 1 MiB each, so sparse ids never allocate much. */
export const BITMAP_SEGMENT_BITS = 2 ** 23;

/** The de-duplication namespace of each event kind (`txn-<n>`, `ub-<n>`, `ti-<n>`). */
export const EVENT_KINDS = { transaction: "txn", behavior: "ub", transactionItem: "ti" } as const;

/** What one event adds: its id, its window, and (field, amount) pairs. */
export interface Contribution {
  kind: string;
  /** The number in the event id. */
  id: number;
  eventMs: number;
  windowStartMs: number;
  fields: [string, number][];
}

/**
 * The contribution of a validated event.
 *
 * @example
 * ```ts ignore
 * contributionOf(transactionEvent, 30_000).fields;
 * // [["events", 1], ["transaction_count", 1], ["revenue_cents", 161799]]
 * ```
 */
export function contributionOf(event: PipelineEvent, windowMs: number): Contribution {
  const eventMs = Date.parse(event.timestamp);
  const base = { eventMs, windowStartMs: windowStart(eventMs, windowMs) };
  switch (event.event_type) {
    case "transaction":
      return {
        ...base,
        kind: EVENT_KINDS.transaction,
        id: event.transaction_id,
        fields: [
          [METRIC_FIELDS.events, 1],
          [METRIC_FIELDS.transactionCount, 1],
          [METRIC_FIELDS.revenueCents, event.total_cents],
        ],
      };
    case "transaction_item":
      return {
        ...base,
        kind: EVENT_KINDS.transactionItem,
        id: event.detail_id,
        fields: [
          [METRIC_FIELDS.itemsSold, event.quantity],
          [METRIC_FIELDS.categoryUnits(event.category), event.quantity],
          [METRIC_FIELDS.categoryRevenueCents(event.category), event.revenue_cents],
        ],
      };
    default:
      return {
        ...base,
        kind: EVENT_KINDS.behavior,
        id: event.behavior_id,
        fields: [[METRIC_FIELDS.events, 1], [METRIC_FIELDS.behavior(event.event_type), 1]],
      };
  }
}

/** One script call's worth of events, in the layout ./lua.ts reads. */
export interface EncodedChunk {
  /** Field names; events refer to them by 1-based index. */
  fields: string[];
  /** Window starts (ms). */
  windows: number[];
  /** Bitmap keys, full (namespaced) names. */
  bitmaps: string[];
  /** Per event: bitmap, bit, window, pair count, then (field, amount) pairs; all as strings. */
  body: string[];
  events: number;
}

/**
 * Splits contributions into chunks of at most `maxEvents`, each with its own
 * index tables. `seenPrefix` is the namespaced `metrics:seen:` prefix.
 *
 * @example
 * ```ts
 * import { encodeChunks } from "./reduce.ts";
 * const [chunk] = encodeChunks([
 *   { kind: "ub", id: 7, eventMs: 5, windowStartMs: 0, fields: [["events", 1]] },
 * ], { seenPrefix: "n:metrics:seen:", maxEvents: 5000 });
 * chunk.body; // ["1", "7", "1", "1", "1", "1"]
 * chunk.bitmaps; // ["n:metrics:seen:ub:0"]
 * ```
 */
export function encodeChunks(
  contributions: readonly Contribution[],
  { seenPrefix, maxEvents }: { seenPrefix: string; maxEvents: number },
): EncodedChunk[] {
  const chunks: EncodedChunk[] = [];
  for (let from = 0; from < contributions.length; from += maxEvents) {
    chunks.push(encodeChunk(contributions.slice(from, from + maxEvents), seenPrefix));
  }
  return chunks;
}

function encodeChunk(contributions: readonly Contribution[], seenPrefix: string): EncodedChunk {
  const fields = new Indexer<string>();
  const windows = new Indexer<number>();
  const bitmaps = new Indexer<string>();
  const body: string[] = [];
  for (const c of contributions) {
    const segment = Math.floor(c.id / BITMAP_SEGMENT_BITS);
    const bit = c.id - segment * BITMAP_SEGMENT_BITS;
    body.push(
      String(bitmaps.of(`${seenPrefix}${c.kind}:${segment}`)),
      String(bit),
      String(windows.of(c.windowStartMs)),
      String(c.fields.length),
    );
    for (const [field, amount] of c.fields) body.push(String(fields.of(field)), String(amount));
  }
  return {
    fields: fields.values,
    windows: windows.values,
    bitmaps: bitmaps.values,
    body,
    events: contributions.length,
  };
}

/** Assigns 1-based indexes (Lua's) to distinct values in order of first use. */
class Indexer<T> {
  readonly values: T[] = [];
  #index = new Map<T, number>();
  of(value: T): number {
    let i = this.#index.get(value);
    if (i === undefined) {
      this.values.push(value);
      i = this.values.length;
      this.#index.set(value, i);
    }
    return i;
  }
}

/** The newest event time per partition key in a batch of contributions. */
export function newestByPartition(
  entries: Iterable<{ key: string; eventMs: number }>,
): Map<string, number> {
  const newest = new Map<string, number>();
  for (const { key, eventMs } of entries) {
    if ((newest.get(key) ?? -Infinity) < eventMs) newest.set(key, eventMs);
  }
  return newest;
}
