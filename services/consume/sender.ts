/**
 * The consumer's own Kafka producer, for `transaction_items` and dead
 * letters: the shared acknowledged sender (`lib/kafka_sender.ts`: acks all,
 * every partition checked, one send at a time, replaced after a failed send).
 * Re-sending is safe: the outbox still owes the items of an unacknowledged
 * send, and a dead letter may repeat (same source offset). The flushes in
 * flight share this sender.
 *
 * @module
 */

import type { Kafka } from "../../lib/kafka.ts";
import { createKafkaSender, type KafkaSender } from "../../lib/kafka_sender.ts";

export type Sender = KafkaSender;

/** kafkajs retries a few times, then the flush retries with a new producer. */
export function createItemsSender(kafka: Kafka): Sender {
  return createKafkaSender(kafka);
}

/** Bytes per send: each partition's record batch must stay under the topic's 4 MiB limit. */
const SEND_BYTES = 256 * 1024;

/** Splits messages into sends of about {@link SEND_BYTES} (a larger message goes alone). */
export function* bySize<T extends { value: string | Uint8Array | null }>(
  messages: readonly T[],
  limit = SEND_BYTES,
): Generator<T[]> {
  let chunk: T[] = [];
  let bytes = 0;
  for (const m of messages) {
    const size = m.value === null ? 0 : m.value.length;
    if (chunk.length > 0 && bytes + size > limit) {
      yield chunk;
      chunk = [];
      bytes = 0;
    }
    chunk.push(m);
    bytes += size;
  }
  if (chunk.length > 0) yield chunk;
}
