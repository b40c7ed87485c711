/**
 * Consumer benchmark (not a test): fills a scratch namespace with `--events`
 * valid events, drains them with the warehouse consumer in this process, and
 * then loads the very rows it stored with a raw `COPY ... FROM STDIN` into
 * empty twins of `realtime_events` and `fact_sales` (same indexes): the
 * anchor of `deno task bench` (services/bench/copy_anchor.ts), and finally times the warehouse write path alone (`storeEvents`, no
 * Kafka) on the same events. Prints the rates, their ratios and the load
 * average (the machine may be shared); the namespace is dropped at the end.
 *
 * ```sh
 * deno run -A services/consume/bench.ts --events 200000
 * ```
 *
 * @module
 */

import process from "node:process";
import { parseFlags, runMain } from "../../lib/cli.ts";
import { loadConfig } from "../../lib/config.ts";
import { type Names, names, type TransactionEvent } from "../../lib/contracts.ts";
import { connect } from "../../lib/db.ts";
import { runCopyAnchor } from "../bench/anchors.ts";
import { checkpoint } from "../bench/checkpoint.ts";
import { exportWarehouseRows } from "../bench/copy_anchor.ts";
import { createKafka, createProducer, ensureTopics } from "../../lib/kafka.ts";
import { createLogger, silentLogger } from "../../lib/log.ts";
import { cleanupNamespace } from "../../tests/_support.ts";
import { createWarehouseConsumer } from "./consumer.ts";
import { type Accepted, decodeMessage, isAccepted } from "./rows.ts";
import { storeEvents } from "./warehouse.ts";

const CATEGORIES = ["Electronics", "Books", "Sports", "Toys", "Beauty", "Clothing"];

/** `count` events: 70% transactions of 1 to 3 items, 30% behaviour (searches repeated). */
export function* benchEvents(
  count: number,
): Generator<{ topic: "t" | "b" | "s"; key: string; value: string }> {
  let detail = 1;
  const start = Date.UTC(2026, 0, 1);
  for (let i = 1; i <= count; i++) {
    const customer = 1 + (i * 7919) % 500;
    const timestamp = new Date(start + i * 13).toISOString();
    if (i % 10 < 7) {
      const items = Array.from({ length: 1 + (i % 3) }, (_, k) => ({
        detail_id: detail++,
        product_id: 1 + (i + k) % 200,
        product_name: `Product ${1 + (i + k) % 200}`,
        category: CATEGORIES[(i + k) % CATEGORIES.length]!,
        quantity: 1 + (i + k) % 3,
        unit_price_cents: 999 + ((i + k) % 200) * 100,
      }));
      const event: TransactionEvent = {
        schema_version: 1,
        event_id: `txn-${i}`,
        event_type: "transaction",
        customer_id: customer,
        timestamp,
        transaction_id: i,
        buyer_id: customer * 2,
        total_cents: items.reduce((s, it) => s + it.quantity * it.unit_price_cents, 0),
        payment_method: "credit_card",
        status: "completed",
        items,
      };
      yield { topic: "t", key: String(customer), value: JSON.stringify(event) };
    } else {
      const search = i % 10 === 9;
      const value = JSON.stringify({
        schema_version: 1,
        event_id: `ub-${i}`,
        event_type: search ? "search" : "product_view",
        customer_id: customer,
        timestamp,
        behavior_id: i,
        session_id: `s-${customer}-${i >> 6}`,
        product_id: search ? null : 1 + i % 200,
        search_query: search ? "wireless headphones" : null,
        device: "mobile",
      });
      yield { topic: "b", key: String(customer), value };
      if (search) yield { topic: "s", key: String(customer), value };
    }
  }
}

/** The bench's events as the consumer accepts them (behaviour events once, from user_behavior). */
function acceptedEvents(count: number, topics: Names["topics"]): Accepted[] {
  const encoder = new TextEncoder();
  const accepted: Accepted[] = [];
  let offset = 0;
  for (const e of benchEvents(count)) {
    if (e.topic === "s") continue;
    const topicKey = e.topic === "t" ? "transactions" : "userBehavior";
    const result = decodeMessage(topicKey, {
      topic: topics[topicKey],
      partition: 0,
      offset: String(offset++),
      key: encoder.encode(e.key),
      value: encoder.encode(e.value),
    });
    if (isAccepted(result)) accepted.push(result);
  }
  return accepted;
}

if (import.meta.main) {
  await runMain(async () => {
    const flags = parseFlags("bench (consume)", "Consumer vs raw COPY.", Deno.args, {
      events: { type: "string", help: "events to drain", default: "200000" },
      keep: { type: "boolean", help: "keep the namespace" },
      verbose: { type: "boolean", help: "log the consumer" },
      batch: { type: "string", help: "largest flush, in messages", default: "20000" },
      concurrency: { type: "string", help: "flushes in flight", default: "2" },
    });
    const count = Number(flags.events);
    const namespace = `cbench_${crypto.getRandomValues(new Uint32Array(1))[0]!.toString(36)}`;
    const config = loadConfig({ ...Deno.env.toObject(), PIPELINE_NAMESPACE: namespace });
    const log = createLogger();
    const topics = names(namespace).topics;
    const kafka = createKafka(config, { clientId: "consume-bench" });
    try {
      const admin = kafka.admin();
      await admin.connect();
      await ensureTopics(admin, namespace, { partitions: config.kafka.partitions });
      await admin.disconnect();
      const producer = createProducer(kafka);
      await producer.connect();
      const target = { t: topics.transactions, b: topics.userBehavior, s: topics.searches };
      let batch: { topic: string; messages: { key: string; value: string }[] }[] = [];
      let size = 0;
      let messages = 0;
      for (const e of benchEvents(count)) {
        let entry = batch.find((b) => b.topic === target[e.topic]);
        if (!entry) batch.push(entry = { topic: target[e.topic], messages: [] });
        entry.messages.push({ key: e.key, value: e.value });
        messages++;
        if (++size >= 10_000) {
          await producer.sendBatch({ topicMessages: batch, acks: -1 });
          batch = [];
          size = 0;
        }
      }
      if (size > 0) await producer.sendBatch({ topicMessages: batch, acks: -1 });
      await producer.disconnect();
      log.info(`📦 ${count} events in ${messages} messages on ${namespace}`);

      const consumer = createWarehouseConsumer(
        { config, log: flags.verbose ? log : silentLogger },
        {
          drain: true,
          maxBatchMessages: Number(flags.batch),
          concurrency: Number(flags.concurrency),
        },
      );
      // As the bench's timed phases (services/bench/checkpoint.ts).
      await checkpoint(config.databases.dwh);
      const cpuBefore = process.cpuUsage();
      const summary = await consumer.run(new AbortController().signal);
      const cpu = process.cpuUsage(cpuBefore);
      // The same drain with nothing left to do: start-up, group join, end offsets.
      const fixed = await createWarehouseConsumer({ config, log: silentLogger }, { drain: true })
        .run(new AbortController().signal);
      const wallPerSecond = Math.round(count / (summary.ms / 1000));
      const perSecond = Math.round(count / ((summary.ms - fixed.ms) / 1000));
      log.info(
        `🏃 consume --drain: ${summary.stored} events (${summary.messages} messages, ` +
          `${summary.items} items) in ${Math.round(summary.ms)} ms, of which ` +
          `${Math.round(fixed.ms)} ms fixed (start-up, group join) = ${perSecond} events/s ` +
          `(${wallPerSecond} with the fixed cost); this process used ` +
          `${Math.round((cpu.user + cpu.system) / 1000)} ms of CPU`,
      );

      const url = config.databases.dwh;
      const sql = connect(url, { max: 1 });
      try {
        // The bench's own anchor (services/bench): the same rows, both tables, best format of two.
        const copy = await runCopyAnchor(sql, await exportWarehouseRows(sql));
        const copyPerSecond = copy.events_per_s;
        log.info(
          `📋 raw COPY of the same rows (realtime_events and fact_sales, ${copy.format}): ` +
            `${copy.ms} ms = ${copyPerSecond} events/s (${JSON.stringify(copy.by_format)})`,
        );
        log.info(`⚖️  consumer / COPY = ${(perSecond / copyPerSecond).toFixed(2)}`);

        // The warehouse write path alone (no Kafka): the same events, stored again from empty
        // tables in flushes of the consumer's size, one transaction each.
        const accepted = acceptedEvents(count, names(namespace).topics);
        await sql`truncate realtime_events, fact_sales, dim_product, dim_customer,
          transaction_items_outbox`;
        const started = performance.now();
        for (let i = 0; i < accepted.length; i += Number(flags.batch)) {
          await storeEvents(sql, accepted.slice(i, i + Number(flags.batch)));
        }
        const storePerSecond = Math.round(count / ((performance.now() - started) / 1000));
        log.info(
          `🗄️  warehouse path alone (storeEvents): ${storePerSecond} events/s = ` +
            `${(storePerSecond / copyPerSecond).toFixed(2)} of COPY`,
        );
        log.info(
          `🖥️  load average ${Deno.loadavg().join(" ")} on ${navigator.hardwareConcurrency} cores`,
        );
      } finally {
        await sql.end();
      }
    } finally {
      if (!flags.keep) await cleanupNamespace(config);
    }
  });
}
