/**
 * Dead letters: the original key and value bytes, untouched, with where they
 * came from and why they were refused in the headers of docs/contracts.md.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { DEAD_LETTER_HEADERS } from "../../lib/contracts.ts";
import type { SourceMessage } from "./rows.ts";

/** The stage name written to `dlq.stage` and used in counter fields. */
export const STAGE = "consume";
/** Longest `dlq.reason` kept; a reason quoting a huge value is cut. */
export const MAX_REASON_LENGTH = 500;

export interface DeadLetterMessage {
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers: Record<string, string>;
}

/**
 * @example
 * ```ts
 * import { deadLetter } from "./dead_letter.ts";
 * const source = { topic: "t.transactions", partition: 2, offset: "15", key: null, value: null };
 * deadLetter(source, "empty message", new Date(0)).headers["dlq.source.offset"]; // "15"
 * ```
 */
export function deadLetter(
  source: SourceMessage,
  reason: string,
  failedAt: Date,
): DeadLetterMessage {
  return {
    key: source.key,
    value: source.value,
    headers: {
      [DEAD_LETTER_HEADERS.sourceTopic]: source.topic,
      [DEAD_LETTER_HEADERS.sourcePartition]: String(source.partition),
      [DEAD_LETTER_HEADERS.sourceOffset]: source.offset,
      [DEAD_LETTER_HEADERS.reason]: reason.length > MAX_REASON_LENGTH
        ? `${reason.slice(0, MAX_REASON_LENGTH - 3)}...`
        : reason,
      [DEAD_LETTER_HEADERS.stage]: STAGE,
      [DEAD_LETTER_HEADERS.failedAt]: failedAt.toISOString(),
    },
  };
}

/** The Redis counter field of dead letters from `topic` (the plain topic name). */
export function deadLetterField(plainTopic: string): string {
  return `${STAGE}:${plainTopic}`;
}

/** SHA-256 of a message value, hex; tells two messages at one offset apart. */
export function valueHash(value: Uint8Array | null): string {
  return createHash("sha256").update(value ?? new Uint8Array(0)).digest("hex");
}
