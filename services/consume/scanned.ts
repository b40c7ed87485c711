/**
 * An event accepted by the fast path (./scan.ts): the few values the
 * warehouse and the `transaction_item` events need, read from the message
 * bytes, which stay the payload. The parsed event and its text, which the hot
 * path never needs, are made on first use, and equal what `decodeMessage`
 * gives for the same message.
 *
 * @module
 */

import type { BehaviorEvent, TransactionEvent } from "../../lib/contracts.ts";
import type { Accepted, EventRow, InputTopic, SaleRow, SourceMessage } from "./rows.ts";

const utf8 = new TextDecoder();

/** Per item in {@link ScannedEvent.items}, in this order. */
export const enum Item {
  DetailId = 0,
  ProductId = 1,
  Quantity = 2,
  UnitPriceCents = 3,
  /** Start and end (exclusive) of `product_name`'s bytes in the message. */
  NameStart = 4,
  NameEnd = 5,
  /** Start and end (exclusive) of `category`'s bytes in the message. */
  CategoryStart = 6,
  CategoryEnd = 7,
  /** Numbers per item. */
  Size = 8,
}

/**
 * A message the fast path vouched for; its `value` is printable ASCII JSON.
 * It is its own `realtime_events` row too (no row object per event).
 */
export class ScannedEvent implements Accepted, EventRow {
  #event: TransactionEvent | BehaviorEvent | undefined;
  #json: string | undefined;
  #source: SourceMessage | undefined;
  // The message's place and bytes, copied: the caller's object may be reused for the next.
  readonly source_topic: string;
  readonly source_partition: number;
  readonly source_offset: string;
  readonly key: Uint8Array | null;
  /** The message's bytes: its JSON text, and the `payload` column as it is. */
  readonly bytes: Uint8Array;

  constructor(
    from: SourceMessage,
    readonly topicKey: InputTopic,
    /** `event_id`. */
    readonly id: string,
    /** `event_type`. */
    readonly type: string,
    readonly customerId: number,
    /** `timestamp`, as written. */
    readonly timestamp: string,
    /** `Date.parse(timestamp)`. */
    readonly ms: number,
    /** `transaction_id` of a transaction; 0 for a behaviour event. */
    readonly transactionId: number,
    /** A transaction's items, {@link Item.Size} numbers each; null for a behaviour event. */
    readonly items: number[] | null,
    /** A transaction's items' categories, one string per name ({@link knownText}). */
    readonly categories: string[] | null,
  ) {
    this.source_topic = from.topic;
    this.source_partition = from.partition;
    this.source_offset = from.offset;
    this.key = from.key;
    this.bytes = from.value!;
  }

  /** Where the message came from (made when asked: a dead letter, a refused value). */
  get source(): SourceMessage {
    return this.#source ??= {
      topic: this.source_topic,
      partition: this.source_partition,
      offset: this.source_offset,
      key: this.key,
      value: this.bytes,
    };
  }

  get json(): string {
    return this.#json ??= utf8.decode(this.bytes);
  }

  get event(): TransactionEvent | BehaviorEvent {
    return this.#event ??= JSON.parse(this.json);
  }

  get event_id(): string {
    return this.id;
  }
  get event_type(): string {
    return this.type;
  }
  get customer_id(): number {
    return this.customerId;
  }
  /** The bytes, which need no COPY escaping (EventRow). */
  get payload(): Uint8Array {
    return this.bytes;
  }

  /** The ASCII text of `bytes[start, end)`. */
  text(start: number, end: number): string {
    return ascii(this.bytes, start, end);
  }

  /** `category` of item `i` (its first number's index), one string per category name. */
  category(i: number): string {
    return this.categories![i / Item.Size]!;
  }
}

/**
 * Item `i` (its first number's index) of a transaction the fast path read, as
 * its `fact_sales` row and as the log's note of its `transaction_item`.
 */
export class ScannedItem implements SaleRow {
  /** A field, not a getter: the rows are sorted by it. */
  readonly detail_id: number;
  constructor(readonly from: ScannedEvent, readonly i: number) {
    this.detail_id = from.items![i + Item.DetailId]!;
  }
  get event_id(): string {
    return `ti-${this.detail_id}`;
  }
  get transaction_id(): number {
    return this.from.transactionId;
  }
  get customer_id(): number {
    return this.from.customerId;
  }
  get product_id(): number {
    return this.from.items![this.i + Item.ProductId]!;
  }
  get product_name(): string {
    const items = this.from.items!;
    return this.from.text(items[this.i + Item.NameStart]!, items[this.i + Item.NameEnd]!);
  }
  get category(): string {
    return this.from.category(this.i);
  }
  get quantity(): number {
    return this.from.items![this.i + Item.Quantity]!;
  }
  get unit_price_cents(): number {
    return this.from.items![this.i + Item.UnitPriceCents]!;
  }
  get revenue_cents(): number {
    return this.quantity * this.unit_price_cents;
  }
  get event_time(): string {
    return this.from.timestamp;
  }
}

const codes: number[] = [];

/**
 * The text of ASCII bytes. A Buffer's `subarray` makes a Buffer (costly on
 * Deno), so the codes are copied out instead.
 */
export function ascii(b: Uint8Array, start: number, end: number): string {
  codes.length = 0;
  for (let i = start; i < end; i++) codes.push(b[i]!);
  return String.fromCharCode.apply(null, codes);
}

// Names seen (categories), by length and first and last byte: not a new string per item.
const names = new Map<number, string>();

/** The ASCII text of `b[start, end)` (not empty), the same string each time for a name seen before. */
export function knownText(b: Uint8Array, start: number, end: number): string {
  const length = end - start;
  const h = length * 65536 + b[start]! * 256 + b[end - 1]!;
  const name = names.get(h);
  if (name !== undefined && name.length === length) {
    let same = true;
    for (let i = 0; same && i < length; i++) same = b[start + i] === name.charCodeAt(i);
    if (same) return name;
  }
  const text = ascii(b, start, end);
  if (names.size < 1024) names.set(h, text);
  return text;
}
