/**
 * One flush: the partition batches of a fetch, taken through the steps whose
 * order makes the stage safe to kill at any point:
 *
 * 1. decode and validate every message;
 * 2. produce the invalid ones to `dead_letters` (acknowledged), unless
 *    `dead_letter_log` shows they were sent before, and log them;
 * 3. write the valid ones to the warehouse in one transaction;
 * 4. produce the `transaction_item` events the outbox says are owed, then
 *    clear those outbox entries;
 * 5. commit the Kafka offsets.
 *
 * A crash before 5 redelivers the batch: the warehouse ignores what it holds,
 * the outbox re-sends items only for transactions whose items were never
 * acknowledged, and dead letters may repeat (same source offset in headers).
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { type Names, TOPICS } from "../../lib/contracts.ts";
import { renewPool, type Sql } from "../../lib/db.ts";
import type { KafkaMessage, Message } from "../../lib/kafka.ts";
import type { Logger } from "../../lib/log.ts";
import { deadLetter } from "./dead_letter.ts";
import { addItemMessages, type ItemMessage, itemNotes } from "./enrich.ts";
import { persist } from "./persist.ts";
import { bySize, type Sender } from "./sender.ts";
import type { BatchReport } from "./report.ts";
import {
  type Accepted,
  type InputTopic,
  isAccepted,
  parseMessage,
  type Rejected,
  type SourceMessage,
} from "./rows.ts";
import { scanMessage } from "./scan.ts";
import { owedEarlier } from "./staged.ts";
import {
  clearOutbox,
  logDeadLetters,
  storeEvents,
  type StoreResult,
  unloggedDeadLetters,
} from "./warehouse.ts";

/** One partition's batch, as handed over by `eachBatch`. */
export interface Part {
  topic: string;
  topicKey: InputTopic;
  partition: number;
  messages: KafkaMessage[];
  /** The offset to commit once the batch is done (last offset + 1). */
  nextOffset: string;
  /** Commits offsets through the consumer that read this batch. */
  commit(offsets: Commit[]): Promise<void>;
  /** Keeps that consumer's group session alive during long retries. */
  heartbeat(): Promise<void>;
}

export interface Commit {
  topic: string;
  partition: number;
  offset: string;
}

export interface FlushDeps {
  sql: Sql;
  /** Sends transaction_items and dead letters; replaces its producer after a failure. */
  producer: Pick<Sender, "send">;
  topics: Names["topics"];
  log: Logger;
  /** Aborts retries when the consumer stops. */
  signal: AbortSignal;
  /** Attempts per step before giving up (Infinity when running as a service). */
  attempts: number;
  /** After the warehouse commit, before anything else: fault injection for tests. */
  afterWrite?: (stored: number) => Promise<void>;
  /** Dead letters produced, by plain topic name. */
  onDeadLetters(counts: Record<string, number>): void;
  onCommitted(commits: readonly Commit[]): void;
}

/** What `prepare` hands to `finish`. */
export interface Prepared {
  parts: readonly Part[];
  accepted: Accepted[];
  stored: StoreResult;
  deadLetters: Rejected[];
  byTopic: Record<string, number>;
  started: number;
  phases: Record<string, number>;
}

/**
 * The two stages of a flush, for the batcher: `prepare` (steps 1 to 3) and
 * `finish` (steps 4 and 5), which returns the batch's report.
 *
 * @example
 * ```ts ignore
 * const flush = createFlush({ sql, producer, topics, log, signal, attempts: Infinity, ... });
 * const report = await flush.finish(await flush.prepare(parts));
 * ```
 */
export function createFlush(deps: FlushDeps): {
  prepare(parts: readonly Part[]): Promise<Prepared>;
  finish(prepared: Prepared): Promise<BatchReport>;
} {
  const { sql, producer, topics, log, signal, attempts } = deps;

  function stepper(parts: readonly Part[]) {
    const onWait = () => Promise.allSettled(parts.map((p) => p.heartbeat()));
    return <T>(what: string, fn: () => Promise<T>) => {
      let cuts = 0;
      // A pool whose connection hangs after a cut (CONNECT_TIMEOUT), or that fails twice
      // in a row, is replaced; otherwise every retry would wait on the same dead socket.
      const attempt = () =>
        fn().catch((error) => {
          const code = String((error as { code?: unknown })?.code ?? "");
          if (code === "CONNECT_TIMEOUT" || (code.startsWith("CONNECTION_") && ++cuts >= 2)) {
            renewPool(sql);
          }
          throw error;
        });
      return persist(attempt, { what, log, signal, attempts, onWait });
    };
  }

  async function prepare(parts: readonly Part[]): Promise<Prepared> {
    const started = performance.now();
    const step = stepper(parts);
    const byTopic: Record<string, number> = {};
    const accepted: Accepted[] = [];
    const rejected: Rejected[] = [];
    for (const part of parts) {
      const plain = TOPICS[part.topicKey];
      byTopic[plain] = (byTopic[plain] ?? 0) + part.messages.length;
      // One object for every message the fast path takes (it copies what it keeps);
      // the others get their own.
      const scratch: SourceMessage = {
        topic: part.topic,
        partition: part.partition,
        offset: "",
        key: null,
        value: null,
      };
      for (const m of part.messages) {
        scratch.offset = m.offset;
        scratch.key = m.key;
        scratch.value = m.value;
        const fast = scanMessage(part.topicKey, scratch);
        if (fast) {
          accepted.push(fast);
          continue;
        }
        const result = parseMessage(part.topicKey, { ...scratch });
        if (isAccepted(result)) accepted.push(result);
        else rejected.push(result);
      }
    }
    const t1 = performance.now();
    const sentBefore = await sendDeadLetters(rejected, step);
    const t2 = performance.now();
    const stored = await step("write the warehouse batch", () => storeEvents(sql, accepted));
    const sentAfter = await sendDeadLetters(stored.rejected, step);
    const t3 = performance.now();
    await deps.afterWrite?.(stored.stored);
    return {
      parts,
      accepted,
      stored,
      deadLetters: [...sentBefore, ...sentAfter],
      byTopic,
      started,
      phases: { decode: t1 - started, deadLetters: t2 - t1, warehouse: t3 - t2 },
    };
  }

  async function finish(prepared: Prepared): Promise<BatchReport> {
    const { parts, accepted, stored } = prepared;
    const step = stepper(parts);
    const t3 = performance.now();
    const messages: ItemMessage[] = [];
    const sent: Accepted[] = [];
    if (stored.outbox.earlier.length > 0) {
      // Transactions stored before this flush (a redelivery) that the outbox listed when its
      // warehouse transaction read it: a flush that finished since may have sent their items
      // and cleared them. Finishes run in order, so what the outbox lists now is still owed.
      const listed = new Set(
        await step(
          "read the transaction_items outbox",
          () => owedEarlier(sql, stored.outbox.earlier),
        ),
      );
      for (const id of stored.outbox.earlier) if (!listed.has(id)) stored.publish.delete(id);
    }
    for (const a of accepted) {
      // Only transactions are read from `transactions`, and only there.
      if (a.topicKey !== "transactions" || !stored.publish.has(a.id)) continue;
      stored.publish.delete(a.id);
      addItemMessages(a, messages);
      sent.push(a);
    }
    const items = itemNotes(sent, messages.length);
    if (sent.length > 0) {
      for (const chunk of bySize(messages)) {
        await step(
          "send transaction_items",
          // Uint8Array values: kafkajs' types say Buffer, lib/kafkajs_produce.ts takes both.
          () => producer.send([{ topic: topics.transactionItems, messages: chunk as Message[] }]),
        );
      }
      await step("clear the transaction_items outbox", () => clearOutbox(sql, stored.outbox));
    }
    const t4 = performance.now();
    await commitAll(parts);
    const t5 = performance.now();
    return {
      byTopic: prepared.byTopic,
      stored: stored.stored,
      duplicates: accepted.length - stored.stored - stored.rejected.length,
      items,
      deadLetters: prepared.deadLetters.map((r) => ({
        where: `${r.source.topic}[${r.source.partition}]@${r.source.offset}`,
        reason: r.reason,
      })),
      ms: t5 - prepared.started,
      phases: { ...prepared.phases, items: t4 - t3, commit: t5 - t4 },
    };
  }

  /** Sends the dead letters not sent before (a replay sends none); returns those sent. */
  async function sendDeadLetters(
    all: readonly Rejected[],
    step: <T>(what: string, fn: () => Promise<T>) => Promise<T>,
  ): Promise<Rejected[]> {
    if (all.length === 0) return [];
    const rejected = await step("check the dead letter log", () => unloggedDeadLetters(sql, all));
    if (rejected.length === 0) return [];
    const now = new Date();
    const letters = rejected.map((r) => {
      const letter = deadLetter(r.source, r.reason, now);
      return { key: buffer(letter.key), value: buffer(letter.value), headers: letter.headers };
    });
    for (const messages of bySize(letters)) {
      await step(
        "send dead letters",
        () => producer.send([{ topic: topics.deadLetters, messages }]),
      );
    }
    const counts: Record<string, number> = {};
    for (const r of rejected) {
      const plain = plainTopic(r.source.topic);
      counts[plain] = (counts[plain] ?? 0) + 1;
    }
    deps.onDeadLetters(counts);
    await step("log dead letters", () => logDeadLetters(sql, rejected, now));
    return rejected;
  }

  async function commitAll(parts: readonly Part[]) {
    // Parts of one fetch share a consumer; group by it all the same.
    const byConsumer = new Map<Part["commit"], Commit[]>();
    for (const p of parts) {
      const list = byConsumer.get(p.commit) ?? [];
      list.push({ topic: p.topic, partition: p.partition, offset: p.nextOffset });
      byConsumer.set(p.commit, list);
    }
    for (const [commit, offsets] of byConsumer) {
      await commit(offsets);
      deps.onCommitted(offsets);
    }
  }

  return { prepare, finish };

  function plainTopic(topic: string): string {
    for (const [key, name] of Object.entries(topics)) {
      if (name === topic) return TOPICS[key as keyof typeof TOPICS];
    }
    return topic;
  }
}

function buffer(bytes: Uint8Array | null): Buffer | null {
  if (bytes === null) return null;
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
}
