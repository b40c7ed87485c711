/**
 * A fast path for the aggregator's decoding: reads the few fields a
 * contribution needs straight from the message bytes, without decoding the
 * text, parsing the JSON into objects or validating through them.
 *
 * It vouches only for what it fully checks: plain ASCII JSON with no
 * whitespace, escapes, unknown or repeated keys, integers written as plain
 * digits, timestamps as `Date#toISOString` writes them; and then every rule
 * `decodeEvent` (lib/schemas.ts) applies to that topic. Anything else returns
 * `undefined`, and the caller decodes the message with `decodeEvent`, which
 * also gives the reason when it is refused. So a message is accepted or
 * refused exactly as `decodeEvent` decides; tests/aggregate_scan_test.ts holds
 * the two side by side on real events and on mutations of them.
 *
 * @module
 */

import {
  BEHAVIOR_TYPES,
  MAX_EVENT_BYTES,
  SCHEMA_VERSION,
  type TopicKey,
} from "../../lib/contracts.ts";
import {
  behaviorShape,
  type Contribution,
  itemShape,
  type Shape,
  TRANSACTION_SHAPE,
} from "./reduce.ts";
import { C, equals, F, has, int, mask, NULL, object, Scan, str } from "../../lib/scan_json.ts";
import {
  ascii,
  BASE,
  BEHAVIOR_FIELDS,
  eventIdIs,
  ID_PREFIX,
  ITEM_FIELDS,
  timestampMs,
  TRANSACTION,
  TRANSACTION_FIELDS,
} from "../../lib/scan_event.ts";

const TRANSACTION_ITEM = ascii("transaction_item");
const BEHAVIORS = BEHAVIOR_TYPES.map((t) => ({ bytes: ascii(t), shape: behaviorShape(t) }));

// One scan per topic (and one for items), each learning its producer's key order.
const tops = { transactions: new Scan(), userBehavior: new Scan(), transactionItems: new Scan() };
let top = tops.transactions;
const item = new Scan();

const TRANSACTION_ITEM_FIELDS = mask(
  ...BASE,
  "transaction_id",
  "detail_id",
  "product_id",
  "product_name",
  "category",
  "quantity",
  "unit_price_cents",
  "revenue_cents",
);

/** The checks of `base()` in lib/schemas.ts; the event time, or NaN. */
function base(s: Scan): number {
  if (s.values[F.schema_version] !== SCHEMA_VERSION) return NaN;
  if (!str(s, F.event_id, 80) || !int(s, F.customer_id, 1)) return NaN;
  return timestampMs(s);
}

// The items of the transaction being scanned: how many, and the sum checkTransaction checks.
let sum = 0;
let items = 0;

function scanItems(): boolean {
  const b = top.bytes;
  if (b[top.pos++] !== C.OpenList) return false;
  for (;;) {
    item.reset(b, top.pos);
    if (!object(item) || !has(item, ITEM_FIELDS)) return false;
    if (!int(item, F.detail_id, 1) || !int(item, F.product_id, 1)) return false;
    if (!str(item, F.product_name, 200) || !str(item, F.category, 80)) return false;
    if (!int(item, F.quantity, 1) || !int(item, F.unit_price_cents, 0)) return false;
    // The same arithmetic, in the same order, as checkTransaction.
    sum += item.values[F.quantity]! * item.values[F.unit_price_cents]!;
    items++;
    top.pos = item.pos;
    const c = b[top.pos++];
    if (c === C.CloseList) return true;
    if (c !== C.Comma) return false;
  }
}

function transaction(s: Scan): Contribution | undefined {
  sum = 0;
  items = 0;
  if (!object(s, scanItems) || !has(s, TRANSACTION_FIELDS) || items === 0) return undefined;
  if (!equals(s, F.event_type, TRANSACTION)) return undefined;
  const eventMs = base(s);
  if (Number.isNaN(eventMs)) return undefined;
  const id = s.values[F.transaction_id]!;
  if (!int(s, F.transaction_id, 1) || !eventIdIs(s, ID_PREFIX.txn, id)) return undefined;
  const total = s.values[F.total_cents]!;
  if (!int(s, F.total_cents, 0) || total !== sum) return undefined;
  const buyer = s.values[F.buyer_id]!;
  if (buyer !== NULL && buyer < 1) return undefined;
  if (!str(s, F.payment_method, 40) || !str(s, F.status, 40)) return undefined;
  return { shape: TRANSACTION_SHAPE, id, eventMs, amount: total };
}

function behavior(s: Scan): Contribution | undefined {
  if (!object(s) || !has(s, BEHAVIOR_FIELDS)) return undefined;
  let shape: Shape | undefined;
  for (const b of BEHAVIORS) if (equals(s, F.event_type, b.bytes)) shape = b.shape;
  if (shape === undefined) return undefined;
  const eventMs = base(s);
  if (Number.isNaN(eventMs)) return undefined;
  const id = s.values[F.behavior_id]!;
  if (!int(s, F.behavior_id, 1) || !eventIdIs(s, ID_PREFIX.ub, id)) return undefined;
  if (!str(s, F.session_id, 80) || !str(s, F.device, 40)) return undefined;
  const product = s.values[F.product_id]!;
  if (product !== NULL && product < 1) return undefined;
  if (s.values[F.search_query] !== NULL && !str(s, F.search_query, 200)) return undefined;
  return { shape, id, eventMs, amount: 0 };
}

// Recent category names, found by their bytes: an item's category is not a new string each time.
const categories: string[] = [];

function transactionItem(s: Scan): Contribution | undefined {
  if (!object(s) || !has(s, TRANSACTION_ITEM_FIELDS)) return undefined;
  if (!equals(s, F.event_type, TRANSACTION_ITEM)) return undefined;
  const eventMs = base(s);
  if (Number.isNaN(eventMs)) return undefined;
  const id = s.values[F.detail_id]!;
  if (!int(s, F.detail_id, 1) || !eventIdIs(s, ID_PREFIX.ti, id)) return undefined;
  if (!int(s, F.transaction_id, 1) || !int(s, F.product_id, 1)) return undefined;
  if (!str(s, F.product_name, 200) || !str(s, F.category, 80)) return undefined;
  const revenue = s.values[F.revenue_cents]!;
  const quantity = s.values[F.quantity]!;
  if (!int(s, F.revenue_cents, 0) || !int(s, F.quantity, 1)) return undefined;
  if (!int(s, F.unit_price_cents, 0)) return undefined;
  if (revenue !== quantity * s.values[F.unit_price_cents]!) return undefined;
  return { shape: itemShape(category(s), quantity), id, eventMs, amount: revenue };
}

function category(s: Scan): string {
  const b = s.bytes;
  const start = s.values[F.category]!;
  const length = s.ends[F.category]! - start;
  outer: for (const known of categories) {
    if (known.length !== length) continue;
    for (let i = 0; i < length; i++) if (b[start + i] !== known.charCodeAt(i)) continue outer;
    return known;
  }
  const text = String.fromCharCode(...b.subarray(start, start + length));
  if (categories.length < 64) categories.push(text);
  return text;
}

/**
 * The contribution of a message of `topic` when the fast path can vouch that
 * `decodeEvent` accepts it; `undefined` when `decodeEvent` must decide.
 *
 * @example
 * ```ts
 * import { scanContribution } from "./scan.ts";
 * scanContribution("transactions", new TextEncoder().encode("{}")); // undefined
 * ```
 */
export function scanContribution(
  topic: TopicKey,
  bytes: Uint8Array | null | undefined,
): Contribution | undefined {
  if (!bytes || bytes.length === 0 || bytes.length > MAX_EVENT_BYTES) return undefined;
  let c: Contribution | undefined;
  switch (topic) {
    case "transactions":
      top = tops.transactions;
      top.reset(bytes, 0);
      c = transaction(top);
      break;
    case "userBehavior":
      top = tops.userBehavior;
      top.reset(bytes, 0);
      c = behavior(top);
      break;
    case "transactionItems":
      top = tops.transactionItems;
      top.reset(bytes, 0);
      c = transactionItem(top);
      break;
    default:
      return undefined;
  }
  // Nothing may follow the object (JSON.parse would allow whitespace; decodeEvent decides).
  return c !== undefined && top.pos === bytes.length ? c : undefined;
}
