/**
 * One stream's Kafka side: an idempotent producer (acks all) that sends one
 * batch at a time and is replaced after a failure.
 *
 * Why one send at a time: kafkajs serialises an idempotent producer's
 * requests per broker anyway, and when a request fails it rolls its sequence
 * numbers back; a second send in flight could then reuse a sequence that did
 * reach the log, and the broker would acknowledge it as a duplicate without
 * writing it (kafkajs#1005). Each stream has its own producer, and the two
 * streams write disjoint topics, so their sequences never interfere. After a
 * failure the producer is dropped and a new one (new producer id) re-sends
 * from the last acknowledged row: at least once, with the same event ids.
 *
 * @module
 */

import type { TopicKey } from "../../lib/contracts.ts";
import { createProducer, type Kafka, type Message, type Producer } from "../../lib/kafka.ts";
import type { OutMessage } from "./messages.ts";

export interface Sender {
  /** Resolves once the broker acknowledged every message (acks -1). */
  send(messages: readonly OutMessage[]): Promise<void>;
  /** Drops the producer; the next send connects a new one. */
  reset(): Promise<void>;
  close(): Promise<void>;
}

/** A {@link Sender} writing topic keys to the namespaced topic names in `topics`. */
export function createSender(
  kafka: Kafka,
  topics: Readonly<Record<TopicKey, string>>,
  { timeoutMs = 30_000 }: { timeoutMs?: number } = {},
): Sender {
  let producer: Producer | undefined;

  async function connected(): Promise<Producer> {
    if (producer) return producer;
    // kafkajs' own retries keep the producer id and sequence (no duplicate); a few
    // seconds of them, then the pump says Kafka is down and retries with backoff.
    const fresh = createProducer(kafka, { retry: { retries: 4 } });
    try {
      await fresh.connect();
    } catch (error) {
      await fresh.disconnect().catch(() => {});
      throw error;
    }
    producer = fresh;
    return fresh;
  }

  async function send(messages: readonly OutMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const byTopic = new Map<TopicKey, Message[]>();
    for (const m of messages) {
      let list = byTopic.get(m.topic);
      if (!list) byTopic.set(m.topic, list = []);
      list.push({ key: m.key, value: m.value });
    }
    const p = await connected();
    await p.sendBatch({
      acks: -1,
      timeout: timeoutMs,
      topicMessages: [...byTopic].map(([topic, list]) => ({
        topic: topics[topic],
        messages: list,
      })),
    });
  }

  async function reset(): Promise<void> {
    const old = producer;
    producer = undefined;
    await old?.disconnect().catch(() => {});
  }

  return { send, reset, close: reset };
}
