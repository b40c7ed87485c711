/**
 * Dead letters of the aggregator: the original key and value bytes with the
 * headers of docs/contracts.md, and the counter field and de-duplication
 * member the Redis script uses so that a redelivered poison message is
 * counted once.
 *
 * @module
 */

import { DEAD_LETTER_HEADERS } from "../../lib/contracts.ts";

/** The stage name written to `dlq.stage` and used in counter fields. */
export const STAGE = "aggregate";
/** Longest `dlq.reason` kept. */
export const MAX_REASON_LENGTH = 500;

/** A message the aggregator refused, and where it came from. */
export interface Refused {
  topic: string;
  /** The plain topic name (`transactions`), for the counter field. */
  plainTopic: string;
  partition: number;
  offset: string;
  key: Uint8Array | Buffer | null;
  value: Uint8Array | Buffer | null;
  reason: string;
}

/**
 * The dead-letter message of `refused`.
 *
 * @example
 * ```ts
 * import { deadLetter } from "./dead_letter.ts";
 * const refused = {
 *   topic: "n.transactions", plainTopic: "transactions", partition: 2, offset: "15",
 *   key: null, value: null, reason: "empty message",
 * };
 * deadLetter(refused, new Date(0)).headers["dlq.stage"]; // "aggregate"
 * ```
 */
export function deadLetter(refused: Refused, failedAt: Date) {
  const reason = refused.reason.length > MAX_REASON_LENGTH
    ? `${refused.reason.slice(0, MAX_REASON_LENGTH - 3)}...`
    : refused.reason;
  return {
    key: refused.key,
    value: refused.value,
    headers: {
      [DEAD_LETTER_HEADERS.sourceTopic]: refused.topic,
      [DEAD_LETTER_HEADERS.sourcePartition]: String(refused.partition),
      [DEAD_LETTER_HEADERS.sourceOffset]: refused.offset,
      [DEAD_LETTER_HEADERS.reason]: reason,
      [DEAD_LETTER_HEADERS.stage]: STAGE,
      [DEAD_LETTER_HEADERS.failedAt]: failedAt.toISOString(),
    },
  };
}

/** `[counter field, de-duplication member]` for the script. */
export function deadLetterCount(refused: Refused): [string, string] {
  return [
    `${STAGE}:${refused.plainTopic}`,
    `${refused.topic}:${refused.partition}:${refused.offset}`,
  ];
}
