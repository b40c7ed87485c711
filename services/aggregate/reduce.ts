/**
 * The batch reducer: what each event adds to the metrics (its contribution),
 * and the compact form in which a batch of contributions travels to the Redis
 * script (./lua.ts). Pure.
 *
 * Events cannot be summed before they reach Redis: whether an event counts
 * depends on the de-duplication bitmap there. So each event travels on its
 * own, but as three small numbers: its bit, its group (window and shape, e.g.
 * "a search in the window at 10:00:30") and its one variable amount (money).
 * The script counts new events per group and multiplies out the fixed
 * amounts once per group.
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
  /** Pairs every event of the same `shape` adds alike. */
  fixed: readonly (readonly [string, number])[];
  /** The one amount that differs between events of a shape (money), if any. */
  variable?: readonly [string, number];
  /** Names `fixed` and the variable field: events of one shape and window form one group. */
  shape: string;
}

/**
 * The contribution of a validated event.
 *
 * @example
 * ```ts ignore
 * fieldsOf(contributionOf(transactionEvent, 30_000));
 * // [["events", 1], ["transaction_count", 1], ["revenue_cents", 161799]]
 * ```
 */
export function contributionOf(event: PipelineEvent, windowMs: number): Contribution {
  // Plain literals, no spread of a shared base: this runs once per message read.
  const eventMs = Date.parse(event.timestamp);
  const windowStartMs = windowStart(eventMs, windowMs);
  switch (event.event_type) {
    case "transaction":
      return {
        eventMs,
        windowStartMs,
        kind: EVENT_KINDS.transaction,
        id: event.transaction_id,
        fixed: TRANSACTION_FIXED,
        variable: [METRIC_FIELDS.revenueCents, event.total_cents],
        shape: "txn",
      };
    case "transaction_item":
      return {
        eventMs,
        windowStartMs,
        kind: EVENT_KINDS.transactionItem,
        id: event.detail_id,
        fixed: [
          [METRIC_FIELDS.itemsSold, event.quantity],
          [METRIC_FIELDS.categoryUnits(event.category), event.quantity],
        ],
        variable: [METRIC_FIELDS.categoryRevenueCents(event.category), event.revenue_cents],
        shape: `ti\u0000${event.category}\u0000${event.quantity}`,
      };
    default:
      return {
        eventMs,
        windowStartMs,
        kind: EVENT_KINDS.behavior,
        id: event.behavior_id,
        fixed: behaviorFixed(event.event_type),
        shape: `ub\u0000${event.event_type}`,
      };
  }
}

const TRANSACTION_FIXED = [
  [METRIC_FIELDS.events, 1],
  [METRIC_FIELDS.transactionCount, 1],
] as const;
const BEHAVIOR_FIXED = new Map<string, readonly (readonly [string, number])[]>();
function behaviorFixed(type: string) {
  let fixed = BEHAVIOR_FIXED.get(type);
  if (!fixed) {
    fixed = [[METRIC_FIELDS.events, 1], [METRIC_FIELDS.behavior(type), 1]];
    BEHAVIOR_FIXED.set(type, fixed);
  }
  return fixed;
}

/** Every (field, amount) pair of a contribution. */
export function fieldsOf(c: Contribution): [string, number][] {
  const pairs = c.fixed.map(([f, a]) => [f, a] as [string, number]);
  if (c.variable) pairs.push([c.variable[0], c.variable[1]]);
  return pairs;
}

/** One script call's worth of events, in the layout ./lua.ts reads. */
export interface EncodedChunk {
  /** Field names; groups refer to them by 1-based index. */
  fields: string[];
  /** Window starts (ms). */
  windows: number[];
  /** Per group: window, variable field (0: none), pair count, then (field, amount) pairs. */
  groups: string[];
  /** Per bitmap: its key, its event count, then per event: bit, group, variable amount. */
  sections: string[];
  events: number;
}

/**
 * Splits contributions into chunks of at most `maxEvents`, each with its own
 * index tables. `seenPrefix` is the namespaced `metrics:seen:` prefix.
 *
 * @example
 * ```ts
 * import { encodeChunks } from "./reduce.ts";
 * const [chunk] = encodeChunks([{
 *   kind: "ub", id: 7, eventMs: 5, windowStartMs: 0, fixed: [["events", 1]], shape: "e",
 * }], { seenPrefix: "n:metrics:seen:", maxEvents: 5000 });
 * chunk.groups; // ["1", "0", "1", "1", "1"]
 * chunk.sections; // ["n:metrics:seen:ub:0", "1", "7", "1", "0"]
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
  const groupIndex = new Map<string, number>();
  const groups: string[] = [];
  const bitmaps = new Map<string, string[]>();
  for (const c of contributions) {
    const groupKey = `${c.windowStartMs}\u0001${c.shape}`;
    let group = groupIndex.get(groupKey);
    if (group === undefined) {
      group = groupIndex.size + 1;
      groupIndex.set(groupKey, group);
      groups.push(
        String(windows.of(c.windowStartMs)),
        String(c.variable ? fields.of(c.variable[0]) : 0),
        String(c.fixed.length),
      );
      for (const [field, amount] of c.fixed) groups.push(String(fields.of(field)), String(amount));
    }
    const segment = Math.floor(c.id / BITMAP_SEGMENT_BITS);
    const key = `${seenPrefix}${c.kind}:${segment}`;
    let section = bitmaps.get(key);
    if (!section) bitmaps.set(key, section = []);
    section.push(
      String(c.id - segment * BITMAP_SEGMENT_BITS),
      String(group),
      String(c.variable ? c.variable[1] : 0),
    );
  }
  const sections: string[] = [];
  for (const [key, events] of bitmaps) {
    sections.push(key, String(events.length / 3));
    for (const value of events) sections.push(value);
  }
  return {
    fields: fields.values,
    windows: windows.values,
    groups,
    sections,
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
