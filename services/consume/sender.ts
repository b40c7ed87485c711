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
