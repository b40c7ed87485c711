/**
 * Validators for the message schemas in {@link ./contracts.ts}. Hand-written
 * rather than a schema library because they run on every message of the hot
 * path; each failure says which field and why, for the dead-letter reason.
 *
 * @module
 */

import {
  BEHAVIOR_TYPES,
  type BehaviorEvent,
  MAX_EVENT_BYTES,
  type PipelineEvent,
  SCHEMA_VERSION,
  type TopicKey,
  type TransactionEvent,
  type TransactionItemEvent,
} from "./contracts.ts";

export type Decoded<T> = { ok: true; value: T } | { ok: false; reason: string };

class Invalid extends Error {}

// Invalid UTF-8 always decodes to U+FFFD without `fatal`, which is several times faster on
// Deno; only a text holding U+FFFD is decoded again with `fatal` to tell the two apart.
const utf8 = new TextDecoder("utf-8");
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });
// contracts.ts re-exports this module, so its constants are read at call time, not load time.
const isBehaviorType = (type: string) => (BEHAVIOR_TYPES as readonly string[]).includes(type);
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$/;

/**
 * Decodes a Kafka message value read from `topic` into a validated event.
 *
 * @example
 * ```ts
 * import { decodeEvent } from "./schemas.ts";
 * const bytes = new TextEncoder().encode("not json");
 * decodeEvent("transactions", bytes); // { ok: false, reason: "not JSON: ..." }
 * ```
 */
export function decodeEvent(
  topic: TopicKey,
  bytes: Uint8Array | null | undefined,
): Decoded<PipelineEvent> {
  const text = decodeText(bytes);
  return typeof text === "string" ? parseEvent(topic, text) : text;
}

/**
 * The first half of {@link decodeEvent}: the message's bytes as text, or why
 * not (empty, too large, not UTF-8). A caller that keeps the text (the
 * warehouse stores it as the payload) decodes the bytes once this way.
 */
export function decodeText(
  bytes: Uint8Array | null | undefined,
): string | { ok: false; reason: string } {
  if (!bytes || bytes.byteLength === 0) return { ok: false, reason: "empty message" };
  if (bytes.byteLength > MAX_EVENT_BYTES) {
    return {
      ok: false,
      reason: `too large: ${bytes.byteLength} bytes, limit ${MAX_EVENT_BYTES}`,
    };
  }
  try {
    const text = utf8.decode(bytes);
    if (text.includes("\uFFFD")) strictUtf8.decode(bytes);
    return text;
  } catch {
    return { ok: false, reason: "not valid UTF-8" };
  }
}

/** The second half of {@link decodeEvent}: JSON text to a validated event of `topic`. */
export function parseEvent(topic: TopicKey, text: string): Decoded<PipelineEvent> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return { ok: false, reason: `not JSON: ${(error as Error).message}` };
  }
  return validateEvent(topic, json);
}

/** Validates an already-parsed value against the schema of `topic`. */
export function validateEvent(topic: TopicKey, json: unknown): Decoded<PipelineEvent> {
  try {
    switch (topic) {
      case "transactions":
        return { ok: true, value: checkTransaction(json) };
      case "userBehavior":
      case "searches":
      case "cartEvents":
        return { ok: true, value: checkBehavior(json, topic) };
      case "transactionItems":
        return { ok: true, value: checkTransactionItem(json) };
      default:
        return { ok: false, reason: `no event schema for topic ${topic}` };
    }
  } catch (error) {
    if (error instanceof Invalid) return { ok: false, reason: error.message };
    throw error;
  }
}

/** `where` is a name, or the index of an item (named only when it fails). */
function record(value: unknown, where: string | number): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Invalid(`${typeof where === "number" ? `items[${where}]` : where} must be an object`);
  }
  return value as Record<string, unknown>;
}

function int(o: Record<string, unknown>, field: string, min = 0): number {
  const v = o[field];
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min) {
    throw new Invalid(`${field} must be an integer >= ${min}, got ${show(v)}`);
  }
  return v;
}

function str(o: Record<string, unknown>, field: string, max = 200): string {
  const v = o[field];
  if (typeof v !== "string" || v.length === 0 || v.length > max) {
    throw new Invalid(`${field} must be a non-empty string of at most ${max}, got ${show(v)}`);
  }
  return v;
}

function nullable<T>(o: Record<string, unknown>, field: string, check: () => T): T | null {
  if (!(field in o)) throw new Invalid(`${field} is missing`);
  return o[field] === null ? null : check();
}

function show(v: unknown): string {
  const s = v === undefined ? "nothing" : JSON.stringify(v);
  return s.length > 40 ? `${s.slice(0, 40)}...` : s;
}

function base(o: Record<string, unknown>, eventType: string) {
  const version = int(o, "schema_version", 1);
  if (version !== SCHEMA_VERSION) throw new Invalid(`unknown schema_version ${version}`);
  if (o.event_type !== eventType) {
    throw new Invalid(`event_type must be ${eventType}, got ${show(o.event_type)}`);
  }
  const timestamp = str(o, "timestamp", 40);
  if (!ISO_UTC.test(timestamp) || Number.isNaN(Date.parse(timestamp))) {
    throw new Invalid(`timestamp must be ISO 8601 UTC, got ${show(timestamp)}`);
  }
  return { event_id: str(o, "event_id", 80), customer_id: int(o, "customer_id", 1), timestamp };
}

function checkTransaction(json: unknown): TransactionEvent {
  const o = record(json, "message");
  const common = base(o, "transaction");
  const transactionId = int(o, "transaction_id", 1);
  if (common.event_id !== `txn-${transactionId}`) throw new Invalid("event_id does not match");
  if (!Array.isArray(o.items) || o.items.length === 0) {
    throw new Invalid("items must be a non-empty array");
  }
  let sum = 0;
  const items: unknown[] = o.items;
  for (let i = 0; i < items.length; i++) {
    const item = record(items[i], i);
    int(item, "detail_id", 1);
    int(item, "product_id", 1);
    str(item, "product_name");
    str(item, "category", 80);
    sum += int(item, "quantity", 1) * int(item, "unit_price_cents", 0);
  }
  const total = int(o, "total_cents", 0);
  if (total !== sum) throw new Invalid(`total_cents ${total} is not the sum of items ${sum}`);
  nullable(o, "buyer_id", () => int(o, "buyer_id", 1));
  str(o, "payment_method", 40);
  str(o, "status", 40);
  return o as unknown as TransactionEvent;
}

function checkBehavior(json: unknown, topic: TopicKey): BehaviorEvent {
  const o = record(json, "message");
  const type = o.event_type;
  if (typeof type !== "string" || !isBehaviorType(type)) {
    throw new Invalid(`unknown event_type ${show(type)}`);
  }
  if (topic === "searches" && type !== "search") {
    throw new Invalid(`event_type ${type} does not belong on searches`);
  }
  if (topic === "cartEvents" && type !== "add_to_cart" && type !== "remove_from_cart") {
    throw new Invalid(`event_type ${type} does not belong on cart_events`);
  }
  const common = base(o, type);
  const behaviorId = int(o, "behavior_id", 1);
  if (common.event_id !== `ub-${behaviorId}`) throw new Invalid("event_id does not match");
  str(o, "session_id", 80);
  str(o, "device", 40);
  nullable(o, "product_id", () => int(o, "product_id", 1));
  nullable(o, "search_query", () => str(o, "search_query", 200));
  return o as unknown as BehaviorEvent;
}

function checkTransactionItem(json: unknown): TransactionItemEvent {
  const o = record(json, "message");
  const common = base(o, "transaction_item");
  const detailId = int(o, "detail_id", 1);
  if (common.event_id !== `ti-${detailId}`) throw new Invalid("event_id does not match");
  int(o, "transaction_id", 1);
  int(o, "product_id", 1);
  str(o, "product_name");
  str(o, "category", 80);
  const revenue = int(o, "revenue_cents", 0);
  const expected = int(o, "quantity", 1) * int(o, "unit_price_cents", 0);
  if (revenue !== expected) throw new Invalid(`revenue_cents ${revenue} is not ${expected}`);
  return o as unknown as TransactionItemEvent;
}
