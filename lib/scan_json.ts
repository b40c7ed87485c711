/**
 * A byte-level reader of flat JSON objects in one narrow form: ASCII, no
 * whitespace or escapes, each key one of the event fields below and at most
 * once, values plain non-negative integers (at most 15 digits), `null` or
 * strings. It says "no" to anything else; ./scan.ts applies the schema's
 * rules to what it read. No allocation per message.
 *
 * @module
 */

/** Bytes the scan looks for. */
export const enum C {
  Quote = 0x22,
  Comma = 0x2c,
  Minus = 0x2d,
  Dot = 0x2e,
  Zero = 0x30,
  Nine = 0x39,
  Colon = 0x3a,
  Open = 0x7b,
  Close = 0x7d,
  OpenList = 0x5b,
  CloseList = 0x5d,
  Backslash = 0x5c,
  T = 0x54,
  Z = 0x5a,
  LowerN = 0x6e,
}

/** What the scan of one field found: an integer, null, or a string's span. */
const NONE = -1;
/** The value of a field that was `null`. */
export const NULL = -2;

/** Fields of the three messages, by name; the value is the slot in `Scan.values`. */
export const FIELDS = [
  "schema_version",
  "event_id",
  "event_type",
  "customer_id",
  "timestamp",
  "transaction_id",
  "buyer_id",
  "total_cents",
  "payment_method",
  "status",
  "items",
  "behavior_id",
  "session_id",
  "product_id",
  "search_query",
  "device",
  "detail_id",
  "product_name",
  "category",
  "quantity",
  "unit_price_cents",
  "revenue_cents",
] as const;
export type Field = typeof FIELDS[number];
export const F = Object.fromEntries(FIELDS.map((f, i) => [f, i])) as Record<Field, number>;
const ENCODED = FIELDS.map((f) => new TextEncoder().encode(f));
/** Field slots by key length and first byte, so a key is found with one comparison. */
const BY_START = new Map<number, number[]>();
for (const [i, bytes] of ENCODED.entries()) {
  const k = bytes.length * 256 + bytes[0]!;
  BY_START.set(k, [...(BY_START.get(k) ?? []), i]);
}
/** `"name":` of each field: what the predicted next key must be, byte for byte. */
const QUOTED = FIELDS.map((f) => new TextEncoder().encode(`"${f}":`));
/** The `last` of a scan before its first key. */
const START = FIELDS.length;

/** Per field of one object: its integer value, NULL, or the start of its string. */
export class Scan {
  readonly values = new Float64Array(FIELDS.length);
  /** String fields: the end (exclusive) of the value's bytes. */
  readonly ends = new Int32Array(FIELDS.length);
  /** Which slots were seen (a bit each), to refuse repeats and find missing fields. */
  seen = 0;
  pos = 0;
  bytes: Uint8Array = new Uint8Array(0);
  /** The slot of the previous key (START before the first). */
  last: number = START;
  /** Per slot (and START): the key that followed it last time, or NONE. Messages of one
   * producer write their keys in one order, so the next key is mostly known. */
  readonly next = new Int8Array(FIELDS.length + 1).fill(NONE);
  reset(bytes: Uint8Array, pos: number) {
    this.bytes = bytes;
    this.pos = pos;
    this.seen = 0;
    this.last = START;
  }
}

/** The predicted key, if it is the one at the scan position and not seen yet; else NONE. */
function predicted(s: Scan): number {
  const slot = s.next[s.last]!;
  if (slot === NONE || (s.seen >> slot) & 1) return NONE;
  const name = QUOTED[slot]!;
  const b = s.bytes;
  const p = s.pos;
  for (let i = 0; i < name.length; i++) if (b[p + i] !== name[i]) return NONE;
  s.seen |= 1 << slot;
  s.pos = p + name.length;
  s.last = slot;
  return slot;
}

/** Reads `"key":` at the scan position: the field's slot, or NONE. */
function key(s: Scan): number {
  const guess = predicted(s);
  if (guess !== NONE) return guess;
  const b = s.bytes;
  let p = s.pos;
  if (b[p] !== C.Quote) return NONE;
  const start = ++p;
  while (p < b.length && b[p] !== C.Quote) p++;
  const length = p - start;
  if (b[p + 1] !== C.Colon) return NONE;
  const candidates = BY_START.get(length * 256 + b[start]!);
  if (candidates === undefined) return NONE;
  outer: for (const slot of candidates) {
    const name = ENCODED[slot]!;
    for (let i = 1; i < length; i++) if (b[start + i] !== name[i]) continue outer;
    if ((s.seen >> slot) & 1) return NONE; // repeated: JSON.parse would keep the last
    s.seen |= 1 << slot;
    s.pos = p + 2;
    s.next[s.last] = slot;
    s.last = slot;
    return slot;
  }
  return NONE;
}

/** Reads a non-negative integer in plain digits (at most 15: always safe), or `null`. */
function intOrNull(s: Scan, slot: number): boolean {
  const b = s.bytes;
  let p = s.pos;
  if (b[p] === C.LowerN) {
    if (b[p + 1] !== 0x75 || b[p + 2] !== 0x6c || b[p + 3] !== 0x6c) return false;
    s.values[slot] = NULL;
    s.pos = p + 4;
    return true;
  }
  const start = p;
  let v = 0;
  while (p < b.length && b[p]! >= C.Zero && b[p]! <= C.Nine) v = v * 10 + (b[p++]! - C.Zero);
  const digits = p - start;
  if (digits === 0 || digits > 15 || (digits > 1 && b[start] === C.Zero)) return false;
  s.values[slot] = v;
  s.pos = p;
  return true;
}

/** Reads a string of printable ASCII without escapes; `values` holds its start, `ends` its end. */
function string(s: Scan, slot: number): boolean {
  const b = s.bytes;
  let p = s.pos;
  if (b[p] === C.LowerN) return intOrNull(s, slot);
  if (b[p] !== C.Quote) return false;
  const start = ++p;
  for (;;) {
    const c = b[p];
    if (c === C.Quote) break;
    if (c === undefined || c < 0x20 || c >= 0x7f || c === C.Backslash) return false;
    p++;
  }
  s.values[slot] = start;
  s.ends[slot] = p;
  s.pos = p + 1;
  return true;
}

/** Scans one flat object of known fields into `s`; false on anything else. */
export function object(s: Scan, onItems?: () => boolean): boolean {
  const b = s.bytes;
  if (b[s.pos++] !== C.Open) return false;
  for (;;) {
    const slot = key(s);
    if (slot === NONE) return false;
    let ok: boolean;
    if (slot === F.items) ok = onItems !== undefined && onItems();
    else if (STRINGS[slot]) ok = string(s, slot);
    else ok = intOrNull(s, slot);
    if (!ok) return false;
    const c = b[s.pos++];
    if (c === C.Close) return true;
    if (c !== C.Comma) return false;
  }
}

const STRINGS = FIELDS.map((f) =>
  [
    "event_id",
    "event_type",
    "timestamp",
    "payment_method",
    "status",
    "session_id",
    "search_query",
    "device",
    "product_name",
    "category",
  ].includes(f)
);

/** Exactly the fields of `fields` (a mask) were read, each once. */
export const has = (s: Scan, fields: number) => s.seen === fields;
/** The mask of `fields`, for `has`. */
export const mask = (...fields: Field[]) => fields.reduce((m, f) => m | (1 << F[f]), 0);
/** An integer field (not null) of at least `min`. */
export function int(s: Scan, slot: number, min: number): boolean {
  const v = s.values[slot]!;
  return v !== NULL && v >= min;
}

/** A string field (not null) of 1 to `max` characters (ASCII: bytes are characters). */
export function str(s: Scan, slot: number, max: number): boolean {
  const start = s.values[slot]!;
  if (start === NULL) return false;
  const length = s.ends[slot]! - start;
  return length >= 1 && length <= max;
}

/** A string field whose bytes are `expected`. */
export function equals(s: Scan, slot: number, expected: Uint8Array): boolean {
  const start = s.values[slot]!;
  if (start === NULL || s.ends[slot]! - start !== expected.length) return false;
  for (let i = 0; i < expected.length; i++) if (s.bytes[start + i] !== expected[i]) return false;
  return true;
}
