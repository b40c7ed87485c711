/**
 * One stream's Kafka side: the stage's messages (topic keys) to the
 * namespaced topics, through the shared acknowledged sender
 * (`lib/kafka_sender.ts`: every partition checked, kafkajs#1303; one send at a
 * time; a new producer after a failure). The stream re-sends from its last
 * acknowledged row after a failed send. Each stream has its own sender, and
 * the two streams write disjoint topics, so their sequences never interfere.
 *
 * @module
 */

import type { TopicKey } from "../../lib/contracts.ts";
import type { Kafka, Message } from "../../lib/kafka.ts";
import { createKafkaSender, type KafkaSenderOptions } from "../../lib/kafka_sender.ts";
import type { OutMessage } from "./messages.ts";

export interface Sender {
  /** Resolves once the broker acknowledged every message (acks -1, every partition). */
  send(messages: readonly OutMessage[]): Promise<void>;
  /** Drops the producer; the next send connects a new one. */
  reset(): Promise<void>;
  close(): Promise<void>;
}

/** A {@link Sender} writing topic keys to the namespaced topic names in `topics`. */
export function createSender(
  kafka: Kafka,
  topics: Readonly<Record<TopicKey, string>>,
  options: KafkaSenderOptions = {},
): Sender {
  const sender = createKafkaSender(kafka, options);

  function send(messages: readonly OutMessage[]): Promise<void> {
    const byTopic = new Map<string, Message[]>();
    for (const m of messages) {
      const topic = topics[m.topic];
      let list = byTopic.get(topic);
      if (!list) byTopic.set(topic, list = []);
      // The message itself, no copy: the sender sets its partition, kafkajs reads key and value.
      list.push(m);
    }
    return sender.send([...byTopic].map(([topic, list]) => ({ topic, messages: list })));
  }

  return { send, reset: sender.reset, close: sender.close };
}
