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

/**
 * What every event of one kind of thing adds ("a search", "2 units of Books"),
 * apart from its one variable amount. Interned: events of one shape share the
 * object, so a chunk groups them by identity.
 */
export interface Shape {
  /** The de-duplication namespace of the event id. */
  kind: string;
  /** Pairs every event of this shape adds alike. */
  fixed: readonly (readonly [string, number])[];
  /** The field the event's `amount` goes to (money), if any. */
  variable: string | undefined;
}

/** What one event adds: its shape, its id, its event time and its variable amount. */
export interface Contribution {
  shape: Shape;
  /** The number in the event id. */
  id: number;
  eventMs: number;
  /** Added to `shape.variable` (0 when the shape has none). */
  amount: number;
}

/** The one shape of every transaction. */
export const TRANSACTION_SHAPE: Shape = {
  kind: EVENT_KINDS.transaction,
  fixed: [[METRIC_FIELDS.events, 1], [METRIC_FIELDS.transactionCount, 1]],
  variable: METRIC_FIELDS.revenueCents,
};

/** Interned shapes beyond this many are made afresh per event (hostile data stays bounded). */
const MAX_SHAPES = 10_000;
let shapeCount = 0;
const behaviorShapes = new Map<string, Shape>();
const itemShapes = new Map<string, Map<number, Shape>>();

/** The shape of a behaviour event of `type` (interned). */
export function behaviorShape(type: string): Shape {
  let shape = behaviorShapes.get(type);
  if (shape === undefined) {
    shape = {
      kind: EVENT_KINDS.behavior,
      fixed: [[METRIC_FIELDS.events, 1], [METRIC_FIELDS.behavior(type), 1]],
      variable: undefined,
    };
    if (shapeCount < MAX_SHAPES) {
      shapeCount++;
      behaviorShapes.set(type, shape);
    }
  }
  return shape;
}

/** The shape of a transaction item: `quantity` units of `category` (interned). */
export function itemShape(category: string, quantity: number): Shape {
  let byQuantity = itemShapes.get(category);
  let shape = byQuantity?.get(quantity);
  if (shape === undefined) {
    shape = {
      kind: EVENT_KINDS.transactionItem,
      fixed: [
        [METRIC_FIELDS.itemsSold, quantity],
        [METRIC_FIELDS.categoryUnits(category), quantity],
      ],
      variable: METRIC_FIELDS.categoryRevenueCents(category),
    };
    if (shapeCount < MAX_SHAPES) {
      shapeCount++;
      if (byQuantity === undefined) itemShapes.set(category, byQuantity = new Map());
      byQuantity.set(quantity, shape);
    }
  }
  return shape;
}

/**
 * The contribution of a validated event.
 *
 * @example
 * ```ts ignore
 * fieldsOf(contributionOf(transactionEvent));
 * // [["events", 1], ["transaction_count", 1], ["revenue_cents", 161799]]
 * ```
 */
export function contributionOf(event: PipelineEvent): Contribution {
  const eventMs = Date.parse(event.timestamp);
  switch (event.event_type) {
    case "transaction":
      return {
        shape: TRANSACTION_SHAPE,
        id: event.transaction_id,
        eventMs,
        amount: event.total_cents,
      };
    case "transaction_item":
      return {
        shape: itemShape(event.category, event.quantity),
        id: event.detail_id,
        eventMs,
        amount: event.revenue_cents,
      };
    default:
      return { shape: behaviorShape(event.event_type), id: event.behavior_id, eventMs, amount: 0 };
  }
}

/** Every (field, amount) pair of a contribution. */
export function fieldsOf(c: Contribution): [string, number][] {
  const pairs = c.shape.fixed.map(([f, a]) => [f, a] as [string, number]);
  if (c.shape.variable !== undefined) pairs.push([c.shape.variable, c.amount]);
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
  /** Per bitmap: its key and its events. */
  sections: Section[];
  events: number;
}

/**
 * Splits contributions into chunks of at most `maxEvents`, each with its own
 * index tables. `seenPrefix` is the namespaced `metrics:seen:` prefix.
 *
 * @example
 * ```ts
 * import { behaviorShape, encodeChunks } from "./reduce.ts";
 * const [chunk] = encodeChunks([{ shape: behaviorShape("search"), id: 7, eventMs: 5, amount: 0 }], {
 *   seenPrefix: "n:metrics:seen:", maxEvents: 5000, windowMs: 30_000,
 * });
 * chunk.groups; // ["1", "0", "2", "1", "1", "2", "1"]
 * chunk.sections; // [{ key: "n:metrics:seen:ub:0", events: [7, 1, 0] }]
 * ```
 */
export function encodeChunks(
  contributions: readonly Contribution[],
  { seenPrefix, maxEvents, windowMs }: { seenPrefix: string; maxEvents: number; windowMs: number },
): EncodedChunk[] {
  const chunks: EncodedChunk[] = [];
  for (let from = 0; from < contributions.length; from += maxEvents) {
    const to = Math.min(contributions.length, from + maxEvents);
    chunks.push(encodeChunk(contributions, from, to, seenPrefix, windowMs));
  }
  return chunks;
}

/** One bitmap's events in a chunk. */
export interface Section {
  key: string;
  /** Per event: its bit, its group (1-based), its variable amount (0: none). */
  events: number[];
}

function encodeChunk(
  contributions: readonly Contribution[],
  from: number,
  to: number,
  seenPrefix: string,
  windowMs: number,
): EncodedChunk {
  const fields = new Indexer<string>();
  const windows = new Indexer<number>();
  // Groups by shape (identity), then window start; the last hit is kept, as neighbours
  // mostly share both.
  const groupsByShape = new Map<Shape, Map<number, number>>();
  const groups: string[] = [];
  let groupCount = 0;
  // Sections by kind, then segment.
  const sectionsByKind = new Map<string, Map<number, Section>>();
  const order: Section[] = [];
  let lastShape: Shape | undefined, lastWindow = NaN, lastGroup = 0;
  let lastKind = "", lastSegment = NaN;
  let lastSection: Section | undefined;
  for (let i = from; i < to; i++) {
    const c = contributions[i]!;
    const shape = c.shape;
    const start = windowStart(c.eventMs, windowMs);
    let group = lastGroup;
    if (shape !== lastShape || start !== lastWindow) {
      let byWindow = groupsByShape.get(shape);
      if (byWindow === undefined) groupsByShape.set(shape, byWindow = new Map());
      const known = byWindow.get(start);
      if (known === undefined) {
        group = ++groupCount;
        byWindow.set(start, group);
        const variable = shape.variable === undefined ? 0 : fields.of(shape.variable);
        groups.push(String(windows.of(start)), String(variable), String(shape.fixed.length));
        for (const [field, amount] of shape.fixed) {
          groups.push(String(fields.of(field)), String(amount));
        }
      } else group = known;
      lastShape = shape;
      lastWindow = start;
      lastGroup = group;
    }
    const segment = Math.floor(c.id / BITMAP_SEGMENT_BITS);
    let section = lastSection;
    if (section === undefined || shape.kind !== lastKind || segment !== lastSegment) {
      let bySegment = sectionsByKind.get(shape.kind);
      if (bySegment === undefined) sectionsByKind.set(shape.kind, bySegment = new Map());
      section = bySegment.get(segment);
      if (section === undefined) {
        section = { key: `${seenPrefix}${shape.kind}:${segment}`, events: [] };
        bySegment.set(segment, section);
        order.push(section);
      }
      lastSection = section;
      lastKind = shape.kind;
      lastSegment = segment;
    }
    section.events.push(c.id - segment * BITMAP_SEGMENT_BITS, group, c.amount);
  }
  return {
    fields: fields.values,
    windows: windows.values,
    groups,
    sections: order,
    events: to - from,
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
