/**
 * The consumer's own Kafka producer, for `transaction_items` and dead
 * letters: idempotent (acks all), one send at a time, and replaced after a
 * failed send.
 *
 * Why replaced: once a send failed, kafkajs cannot bring an idempotent
 * producer's sequence numbers back in line (kafkajs #598): after a broker
 * death every later send on it fails with OUT_OF_ORDER_SEQUENCE_NUMBER, and a
 * retry on the same producer fails forever. A new producer (new producer id)
 * starts clean. Re-sending is safe: the outbox still owes the items of an
 * unacknowledged send, and a dead letter may repeat (same source offset).
 *
 * Why one at a time: when a request fails kafkajs rolls the producer's
 * sequence back, so a second send in flight could reuse a sequence that did
 * reach the log and be acknowledged as a duplicate without being written
 * (kafkajs #1005). The flushes in flight share this producer.
 *
 * @module
 */

import { createProducer, type Kafka, type Producer } from "../../lib/kafka.ts";

/** What a flush sends: one topic's messages, acknowledged by all in-sync replicas. */
export type SendRecord = Parameters<Producer["send"]>[0];

export interface Sender {
  /** Connects a producer now (the start-up check); `send` connects one when needed. */
  connect(): Promise<void>;
  /** Resolves once Kafka acknowledged the record; after a failure the producer is replaced. */
  send(record: SendRecord): Promise<void>;
  /** Disconnects (the consumer has waited for its flushes before). */
  close(): Promise<void>;
}

/**
 * @example
 * ```ts ignore
 * const sender = createSender(() => createProducer(kafka));
 * await sender.send({ topic, acks: -1, messages });
 * ```
 */
export function createSender(make: () => Producer): Sender {
  let producer: Producer | undefined;
  let queue: Promise<unknown> = Promise.resolve();

  async function connected(): Promise<Producer> {
    if (producer) return producer;
    const fresh = make();
    try {
      await fresh.connect();
    } catch (error) {
      await fresh.disconnect().catch(() => {});
      throw error;
    }
    producer = fresh;
    return fresh;
  }

  function serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = queue.then(fn);
    queue = run.catch(() => {});
    return run;
  }

  function send(record: SendRecord): Promise<void> {
    return serial(async () => {
      const p = await connected();
      try {
        await p.send(record);
      } catch (error) {
        producer = undefined;
        await p.disconnect().catch(() => {});
        throw error;
      }
    });
  }

  return {
    connect: () => serial(async () => void await connected()),
    send,
    close: async () => {
      const p = producer;
      producer = undefined;
      await p?.disconnect().catch(() => {});
    },
  };
}

/** The consumer's producer: kafkajs retries a few times, then the flush retries with a new one. */
export function createItemsSender(kafka: Kafka): Sender {
  return createSender(() => createProducer(kafka, { retry: { retries: 4 } }));
}
