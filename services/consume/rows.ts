/**
 * From Kafka messages to warehouse rows, without I/O: each message is decoded
 * and validated ({@link decodeMessage}), and a batch of accepted events
 * becomes the rows of `realtime_events`, `fact_sales`, `dim_product` and
 * `dim_customer` (`warehouseRows`, ./warehouse_rows.ts, re-exported here).
 *
 * @module
 */

import { type BehaviorEvent, type TopicKey, type TransactionEvent } from "../../lib/contracts.ts";
import { decodeText, parseEvent } from "../../lib/schemas.ts";
import { scanMessage } from "./scan.ts";

export * from "./warehouse_rows.ts";

/** A message as read from Kafka: where it came from and its raw bytes. */
export interface SourceMessage {
  /** The topic as read (namespaced). */
  topic: string;
  partition: number;
  offset: string;
  key: Uint8Array | null;
  value: Uint8Array | null;
}

/**
 * A message that passed validation, with its JSON text for `payload`. The
 * fast path's ({@link ScannedEvent}) makes `event` and `json` only when asked:
 * the hot path reads its bytes.
 */
export interface Accepted {
  source: SourceMessage;
  topicKey: TopicKey;
  /** `event.event_id`. */
  readonly id: string;
  readonly event: TransactionEvent | BehaviorEvent;
  readonly json: string;
}

/** A message bound for `dead_letters`, and why. */
export interface Rejected {
  source: SourceMessage;
  reason: string;
}

/** Topics the warehouse reads. */
export const INPUT_TOPICS = ["transactions", "userBehavior", "searches", "cartEvents"] as const;
export type InputTopic = typeof INPUT_TOPICS[number];

const INT4_MAX = 2 ** 31 - 1;
// An odd run of backslashes before u0000 is the escape of NUL, which jsonb and text reject.
const NUL_ESCAPE = /(?:^|[^\\])(?:\\\\)*\\u0000/;

/**
 * Validates one message read from `topicKey` with the contract's decoder, then
 * checks what the schema allows but the warehouse columns cannot hold. The
 * fast path (./scan.ts) decides first; what it cannot vouch for is parsed
 * ({@link parseMessage}), same verdicts and values.
 *
 * @example
 * ```ts
 * import { decodeMessage } from "./rows.ts";
 * const source = {
 *   topic: "transactions",
 *   partition: 0,
 *   offset: "7",
 *   key: null,
 *   value: new TextEncoder().encode("oops"),
 * };
 * decodeMessage("transactions", source); // { source, reason: "not JSON: ..." }
 * ```
 */
export function decodeMessage(topicKey: InputTopic, source: SourceMessage): Accepted | Rejected {
  return scanMessage(topicKey, source) ?? parseMessage(topicKey, source);
}

/** {@link decodeMessage} without the fast path: JSON.parse and lib/schemas.ts. */
export function parseMessage(topicKey: InputTopic, source: SourceMessage): Accepted | Rejected {
  // decodeEvent in two halves, so that the bytes are decoded once: the text is the payload.
  const json = decodeText(source.value);
  if (typeof json !== "string") return { source, reason: json.reason };
  const decoded = parseEvent(topicKey, json);
  if (!decoded.ok) return { source, reason: decoded.reason };
  const event = decoded.value as TransactionEvent | BehaviorEvent;
  const problem = storageProblem(event, json);
  if (problem) return { source, reason: problem };
  return { source, topicKey, id: event.event_id, event, json };
}

/** True when `result` is an accepted event rather than a dead letter. */
export function isAccepted(result: Accepted | Rejected): result is Accepted {
  return "event" in result;
}

function storageProblem(event: TransactionEvent | BehaviorEvent, json: string): string | undefined {
  if (json.includes("\\u0000") && NUL_ESCAPE.test(json)) {
    return "contains a NUL character (\\u0000), which PostgreSQL cannot store";
  }
  if (event.timestamp.startsWith("0000")) return "timestamp year 0000 does not exist";
  if (event.event_type !== "transaction") return undefined;
  for (const item of event.items) {
    if (item.quantity > INT4_MAX) return `quantity ${item.quantity} is larger than ${INT4_MAX}`;
    if (!Number.isSafeInteger(item.quantity * item.unit_price_cents)) {
      return `revenue of detail ${item.detail_id} is not an exact integer`;
    }
  }
  return undefined;
}
