/**
 * services/consume/flush.ts with flushes in flight, on the real PostgreSQL
 * and Kafka: a transaction stored before a crash, redelivered in two of
 * three flushes that all prepared before any finished, has its items sent
 * once. The first finish sends them; the third finish's own outbox read
 * (taken before that) still lists it, so it must ask the outbox again.
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { names, type TransactionEvent } from "../lib/contracts.ts";
import { openDatabase } from "../lib/db.ts";
import { createKafka, type KafkaMessage, topicMessageCount } from "../lib/kafka.ts";
import { silentLogger } from "../lib/log.ts";
import { createFlush, type Part } from "../services/consume/flush.ts";
import { createItemsSender } from "../services/consume/sender.ts";
import { type Accepted, decodeMessage, isAccepted } from "../services/consume/rows.ts";
import { storeEvents } from "../services/consume/warehouse.ts";
import { createTestNamespace } from "./_support.ts";

const io = { sanitizeResources: false, sanitizeOps: false };
const encoder = new TextEncoder();

/** Transaction `id`: two items, details `10 * id` and `10 * id + 1`. */
function transaction(id: number): TransactionEvent {
  const items = [[7, 1, 999], [8, 2, 1999]].map(([product_id, quantity, unit_price_cents], k) => ({
    detail_id: 10 * id + k,
    product_id: product_id!,
    product_name: `Product ${product_id}`,
    category: "Books",
    quantity: quantity!,
    unit_price_cents: unit_price_cents!,
  }));
  return {
    schema_version: 1,
    event_id: `txn-${id}`,
    event_type: "transaction",
    customer_id: 10 + id,
    timestamp: "2026-11-29T10:00:00.123Z",
    transaction_id: id,
    buyer_id: null,
    total_cents: items.reduce((sum, i) => sum + i.quantity * i.unit_price_cents, 0),
    payment_method: "credit_card",
    status: "completed",
    items,
  };
}

Deno.test(
  "consume flush: a redelivered transaction in two flushes in flight gets its items once",
  io,
  async () => {
    const ns = await createTestNamespace("cflush", { topics: true });
    const { topics } = names(ns.namespace);
    const sql = await openDatabase(ns.config, "dwh", { max: 2 });
    const kafka = createKafka(ns.config, { clientId: "flush-test" });
    const sender = createItemsSender(kafka);
    const admin = kafka.admin();
    try {
      await admin.connect();
      const events = [1, 2, 3].map(transaction);
      let offset = 0;
      const message = (event: TransactionEvent): KafkaMessage => ({
        offset: String(offset++),
        key: Buffer.from(String(event.customer_id)),
        value: Buffer.from(JSON.stringify(event)),
        timestamp: "0",
        attributes: 0,
        headers: {},
      } as KafkaMessage);
      const part = (...batch: TransactionEvent[]): Part => {
        const messages = batch.map(message);
        return {
          topic: topics.transactions,
          topicKey: "transactions",
          partition: 0,
          messages,
          nextOffset: String(Number(messages.at(-1)!.offset) + 1),
          commit: () => Promise.resolve(),
          heartbeat: () => Promise.resolve(),
        };
      };
      const accepted = (event: TransactionEvent): Accepted => {
        const result = decodeMessage("transactions", {
          topic: topics.transactions,
          partition: 0,
          offset: "0",
          key: null,
          value: encoder.encode(JSON.stringify(event)),
        });
        assert.ok(isAccepted(result));
        return result;
      };

      // A crash after the warehouse commit: txn-1 is stored and the outbox owes its items.
      const before = await storeEvents(sql, [accepted(events[0]!)]);
      assert.equal(before.stored, 1);

      const flush = createFlush({
        sql,
        producer: sender,
        topics,
        log: silentLogger,
        signal: new AbortController().signal,
        attempts: 3,
        onDeadLetters: () => {},
        onCommitted: () => {},
      });
      // Three flushes prepared before any finishes: txn-1 is redelivered in the first and
      // the third (a second copy in Kafka), both of which read the outbox listing it.
      const first = await flush.prepare([part(events[0]!)]);
      const second = await flush.prepare([part(events[1]!)]);
      const third = await flush.prepare([part(events[0]!, events[2]!)]);
      assert.deepEqual(first.stored.outbox.earlier, ["txn-1"]);
      assert.deepEqual(third.stored.outbox.earlier, ["txn-1"]);

      const reports = [];
      for (const prepared of [first, second, third]) reports.push(await flush.finish(prepared));
      assert.deepEqual(reports.map((r) => r.items.length), [2, 2, 2]);
      // Each item once: txn-1's two from the first finish, none again from the third.
      assert.equal(await topicMessageCount(admin, topics.transactionItems), 6);
      const [outbox] = await sql<{ n: number }[]>`
        select count(*)::int as n from transaction_items_outbox`;
      assert.equal(outbox!.n, 0);
    } finally {
      await admin.disconnect().catch(() => {});
      await sender.close();
      await sql.end({ timeout: 5 });
      await ns.cleanup();
    }
  },
);
