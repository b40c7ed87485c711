/**
 * The consumer's fast path for decoding: reads what the warehouse and the
 * `transaction_item` events need straight from the message bytes, without
 * decoding the text, parsing the JSON into objects or validating through
 * them. Same narrow form as the aggregator's (services/aggregate/scan.ts,
 * read by lib/scan_json.ts): printable ASCII JSON with no
 * whitespace, escapes, unknown or repeated keys, integers as plain digits,
 * timestamps as `Date#toISOString` writes them; then every rule
 * `decodeMessage` (./rows.ts) applies to that topic, the storage checks
 * included. Anything else gives `undefined` and goes through `decodeMessage`,
 * which also says why it refuses one. tests/consume_scan_test.ts holds the two
 * side by side on real events and on random mutations of them.
 *
 * Such a message holds no byte COPY text must escape (backslash, tab, newline,
 * carriage return) and is its own JSON text, so its bytes are the `payload`
 * as they are (./lines.ts).
 *
 * @module
 */

import { BEHAVIOR_TYPES, MAX_EVENT_BYTES, SCHEMA_VERSION } from "../../lib/contracts.ts";
import { C, equals, F, has, int, NULL, object, Scan, str } from "../../lib/scan_json.ts";
import {
  ascii,
  BEHAVIOR_FIELDS,
  eventIdIs,
  ID_PREFIX,
  ITEM_FIELDS,
  timestampMs,
  TRANSACTION,
  TRANSACTION_FIELDS,
} from "../../lib/scan_event.ts";
import type { InputTopic, SourceMessage } from "./rows.ts";
import { knownText, ScannedEvent } from "./scanned.ts";

const BEHAVIORS = BEHAVIOR_TYPES.map((type) => ({ type, bytes: ascii(type) }));
const INT4_MAX = 2 ** 31 - 1;

// One scan per kind of message, each learning its producer's key order.
const transactions = new Scan();
const behaviors = new Scan();
const item = new Scan();

// The last timestamp seen and its text: events of one moment share one string.
const lastStamp = new Uint8Array(24);
let lastStampText = "";
/**
 * Event time of a `YYYY-MM-DDTHH:MM:SS.mmmZ` timestamp Date.parse takes, year 0000 excluded
 * (refused by the storage checks, rows.ts, with their reason); else NaN.
 */
function storableTimestampMs(s: Scan): number {
  const start = s.values[F.timestamp]!;
  const b = s.bytes;
  if (
    start !== NULL && b[start] === C.Zero && b[start + 1] === C.Zero &&
    b[start + 2] === C.Zero && b[start + 3] === C.Zero
  ) return NaN;
  return timestampMs(s);
}

/** The timestamp's text (checked by {@link storableTimestampMs}). */
function timestampText(s: Scan): string {
  const b = s.bytes;
  const start = s.values[F.timestamp]!;
  let same = lastStampText !== "";
  for (let i = 23; same && i >= 0; i--) same = b[start + i] === lastStamp[i];
  if (!same) {
    // A loop: a Buffer's subarray makes a Buffer.
    for (let i = 0; i < 24; i++) lastStamp[i] = b[start + i]!;
    lastStampText = stampText(lastStamp);
  }
  return lastStampText;
}

/**
 * The 24 bytes as text. Spelled out: `String.fromCharCode(...bytes)` iterates
 * the array and cost 0.8 µs a call (a backlog's events rarely share a stamp),
 * 24 arguments 0.04 µs.
 */
// deno-fmt-ignore
function stampText(t: Uint8Array): string {
  return String.fromCharCode(
    t[0]!, t[1]!, t[2]!, t[3]!, t[4]!, t[5]!, t[6]!, t[7]!, t[8]!, t[9]!, t[10]!, t[11]!,
    t[12]!, t[13]!, t[14]!, t[15]!, t[16]!, t[17]!, t[18]!, t[19]!, t[20]!, t[21]!, t[22]!, t[23]!,
  );
}

/** The checks of `base()` in lib/schemas.ts; the event time, or NaN. */
function base(s: Scan): number {
  if (s.values[F.schema_version] !== SCHEMA_VERSION) return NaN;
  if (!str(s, F.event_id, 80) || !int(s, F.customer_id, 1)) return NaN;
  return storableTimestampMs(s);
}

// The items of the transaction being scanned, and the sum checkTransaction checks.
let sum = 0;
let items: number[] = [];
let categories: string[] = [];

/** Per item in `ScannedEvent.items`: these numbers, in this order. */
export const ITEM_SLOTS = 8;

function scanItems(): boolean {
  const top = transactions;
  const b = top.bytes;
  if (b[top.pos++] !== C.OpenList) return false;
  for (;;) {
    item.reset(b, top.pos);
    if (!object(item) || !has(item, ITEM_FIELDS)) return false;
    if (!int(item, F.detail_id, 1) || !int(item, F.product_id, 1)) return false;
    if (!str(item, F.product_name, 200) || !str(item, F.category, 80)) return false;
    if (!int(item, F.quantity, 1) || !int(item, F.unit_price_cents, 0)) return false;
    const v = item.values;
    const quantity = v[F.quantity]!;
    const revenue = quantity * v[F.unit_price_cents]!;
    // What the columns cannot hold goes to decodeMessage, which refuses it with its reason.
    if (quantity > INT4_MAX || !Number.isSafeInteger(revenue)) return false;
    // The same arithmetic, in the same order, as checkTransaction.
    sum += revenue;
    items.push(
      v[F.detail_id]!,
      v[F.product_id]!,
      quantity,
      v[F.unit_price_cents]!,
      v[F.product_name]!,
      item.ends[F.product_name]!,
      v[F.category]!,
      item.ends[F.category]!,
    );
    categories.push(knownText(b, v[F.category]!, item.ends[F.category]!));
    top.pos = item.pos;
    const c = b[top.pos++];
    if (c === C.CloseList) return true;
    if (c !== C.Comma) return false;
  }
}

function transaction(source: SourceMessage, topicKey: InputTopic): ScannedEvent | undefined {
  const s = transactions;
  sum = 0;
  items = [];
  categories = [];
  if (!object(s, scanItems) || !has(s, TRANSACTION_FIELDS) || items.length === 0) return undefined;
  if (!equals(s, F.event_type, TRANSACTION)) return undefined;
  const ms = base(s);
  if (Number.isNaN(ms)) return undefined;
  const id = s.values[F.transaction_id]!;
  if (!int(s, F.transaction_id, 1) || !eventIdIs(s, ID_PREFIX.txn, id)) return undefined;
  const total = s.values[F.total_cents]!;
  if (!int(s, F.total_cents, 0) || total !== sum) return undefined;
  const buyer = s.values[F.buyer_id]!;
  if (buyer !== NULL && buyer < 1) return undefined;
  if (!str(s, F.payment_method, 40) || !str(s, F.status, 40)) return undefined;
  if (s.pos !== s.bytes.length) return undefined;
  return new ScannedEvent(
    source,
    topicKey,
    `txn-${id}`,
    "transaction",
    s.values[F.customer_id]!,
    timestampText(s),
    ms,
    id,
    items,
    categories,
  );
}

function behavior(source: SourceMessage, topicKey: InputTopic): ScannedEvent | undefined {
  const s = behaviors;
  if (!object(s) || !has(s, BEHAVIOR_FIELDS)) return undefined;
  let type: string | undefined;
  for (const b of BEHAVIORS) if (equals(s, F.event_type, b.bytes)) type = b.type;
  if (type === undefined) return undefined;
  if (topicKey === "searches" && type !== "search") return undefined;
  if (topicKey === "cartEvents" && type !== "add_to_cart" && type !== "remove_from_cart") {
    return undefined;
  }
  const ms = base(s);
  if (Number.isNaN(ms)) return undefined;
  const id = s.values[F.behavior_id]!;
  if (!int(s, F.behavior_id, 1) || !eventIdIs(s, ID_PREFIX.ub, id)) return undefined;
  if (!str(s, F.session_id, 80) || !str(s, F.device, 40)) return undefined;
  const product = s.values[F.product_id]!;
  if (product !== NULL && product < 1) return undefined;
  if (s.values[F.search_query] !== NULL && !str(s, F.search_query, 200)) return undefined;
  if (s.pos !== s.bytes.length) return undefined;
  return new ScannedEvent(
    source,
    topicKey,
    `ub-${id}`,
    type,
    s.values[F.customer_id]!,
    timestampText(s),
    ms,
    0,
    null,
    null,
  );
}

/**
 * The accepted event of a message read from `topicKey` when the fast path can
 * vouch that `decodeMessage` accepts it, with the same values; `undefined`
 * when `decodeMessage` must decide.
 *
 * @example
 * ```ts
 * import { scanMessage } from "./scan.ts";
 * const value = new TextEncoder().encode("{}");
 * scanMessage("transactions", { topic: "t", partition: 0, offset: "0", key: null, value });
 * // undefined
 * ```
 */
export function scanMessage(topicKey: InputTopic, source: SourceMessage): ScannedEvent | undefined {
  const bytes = source.value;
  if (!bytes || bytes.length === 0 || bytes.length > MAX_EVENT_BYTES) return undefined;
  if (topicKey === "transactions") {
    transactions.reset(bytes, 0);
    return transaction(source, topicKey);
  }
  behaviors.reset(bytes, 0);
  return behavior(source, topicKey);
}
