/**
 * Throughput of the aggregator on a backlog: sends `--events` synthetic
 * events (transactions with their items, and behaviour) to a fresh
 * namespace, drains them with {@link createAggregator} in this process, checks
 * the Redis totals against what was sent, reports events per second and
 * removes the namespace.
 *
 * ```sh
 * deno run --allow-net=127.0.0.1,localhost --allow-env --allow-read services/aggregate/bench.ts --events 200000
 * ```
 *
 * @module
 */

import { numberFlag, parseFlags, runMain, ServiceError } from "../../lib/cli.ts";
import { loadConfig } from "../../lib/config.ts";
import {
  BEHAVIOR_TYPES,
  type BehaviorEvent,
  names,
  type PipelineEvent,
  type TransactionEvent,
  type TransactionItemEvent,
} from "../../lib/contracts.ts";
import { createKafka, createProducer, deleteTopics, ensureTopics } from "../../lib/kafka.ts";
import { createLogger, silentLogger } from "../../lib/log.ts";
import { createRedis } from "../../lib/redis.ts";
import { createAggregator } from "./aggregator.ts";
import { contributionOf, fieldsOf } from "./reduce.ts";

const CATEGORIES = ["Electronics", "Books", "Home & Garden", "Sports", "Toys"];

/** Synthetic events in time order: every third a transaction (with 2 items), else behaviour. */
export function* syntheticEvents(count: number, startMs: number): Generator<PipelineEvent> {
  let made = 0;
  for (let i = 1; made < count; i++) {
    const timestamp = new Date(startMs + i * 5).toISOString();
    const customer = 1 + (i * 7919) % 5000;
    if (i % 3 === 0) {
      const items = [0, 1].map((k) => ({
        detail_id: i * 2 + k,
        product_id: 1 + (i + k) % 50,
        product_name: `Product ${1 + (i + k) % 50}`,
        category: CATEGORIES[(i + k) % CATEGORIES.length]!,
        quantity: 1 + k,
        unit_price_cents: 499 + (i % 1000) * 13,
      }));
      const txn: TransactionEvent = {
        schema_version: 1,
        event_id: `txn-${i}`,
        event_type: "transaction",
        customer_id: customer,
        timestamp,
        transaction_id: i,
        buyer_id: customer,
        total_cents: items.reduce((s, it) => s + it.quantity * it.unit_price_cents, 0),
        payment_method: "credit_card",
        status: "completed",
        items,
      };
      yield txn;
      made++;
      for (const it of items) {
        if (made >= count) return;
        const item: TransactionItemEvent = {
          schema_version: 1,
          event_id: `ti-${it.detail_id}`,
          event_type: "transaction_item",
          customer_id: customer,
          timestamp,
          transaction_id: i,
          ...it,
          revenue_cents: it.quantity * it.unit_price_cents,
        };
        yield item;
        made++;
      }
    } else {
      const type = BEHAVIOR_TYPES[i % BEHAVIOR_TYPES.length]!;
      const event: BehaviorEvent = {
        schema_version: 1,
        event_id: `ub-${i}`,
        event_type: type,
        customer_id: customer,
        timestamp,
        behavior_id: i,
        session_id: `sess-${customer}-${Math.floor(i / 50)}`,
        product_id: type === "search" ? null : 1 + i % 50,
        search_query: type === "search" ? "wireless headphones" : null,
        device: "mobile",
      };
      yield event;
      made++;
    }
  }
}

if (import.meta.main) {
  await runMain(async () => {
    const flags = parseFlags(
      "aggregate bench",
      "Measures the aggregator on a backlog.",
      Deno.args,
      {
        events: { type: "string", help: "events to send", default: "200000" },
        verbose: { type: "boolean", help: "show the aggregator's log" },
      },
    );
    const count = numberFlag("events", flags.events, 1, 10_000_000);
    const base = loadConfig();
    const namespace = `bench_agg_${crypto.randomUUID().slice(0, 8)}`;
    const config = { ...base, namespace };
    const n = names(namespace);
    const kafka = createKafka(config, { clientId: "aggregate-bench" });
    const admin = kafka.admin();
    const redis = createRedis(config);
    const log = createLogger();
    await admin.connect();
    try {
      await ensureTopics(admin, namespace, { partitions: config.kafka.partitions });
      const expected: Record<string, number> = {};
      const producer = createProducer(kafka);
      await producer.connect();
      const sendStarted = performance.now();
      const topicOf = (e: PipelineEvent) =>
        e.event_type === "transaction"
          ? n.topics.transactions
          : e.event_type === "transaction_item"
          ? n.topics.transactionItems
          : n.topics.userBehavior;
      let pending = new Map<string, { key: string; value: string }[]>();
      let size = 0;
      const send = async () => {
        await producer.sendBatch({
          acks: -1,
          topicMessages: [...pending].map(([topic, messages]) => ({ topic, messages })),
        });
        pending = new Map();
        size = 0;
      };
      for (const event of syntheticEvents(count, Date.parse("2026-01-01T00:00:00Z"))) {
        for (const [f, v] of fieldsOf(contributionOf(event))) {
          expected[f] = (expected[f] ?? 0) + v;
        }
        const list = pending.get(topicOf(event)) ?? [];
        list.push({ key: String(event.customer_id), value: JSON.stringify(event) });
        pending.set(topicOf(event), list);
        if (++size >= 20_000) await send();
      }
      if (size > 0) await send();
      await producer.disconnect();
      const sendMs = performance.now() - sendStarted;
      log.info(
        `📤 Sent ${count.toLocaleString("en-US")} events in ${(sendMs / 1000).toFixed(1)} s`,
      );

      const aggregator = createAggregator({ config, log: flags.verbose ? log : silentLogger }, {
        drain: true,
      });
      const summary = await aggregator.run(AbortSignal.timeout(600_000));
      const totals = await redis.hgetall(n.redis("metrics:totals"));
      const wrong = Object.entries(expected).filter(([f, v]) => Number(totals[f]) !== v);
      if (summary.added !== count || wrong.length > 0) {
        throw new ServiceError(
          `Cannot confirm the totals: ${summary.added} counted of ${count}; wrong fields: ${
            wrong.map(([f]) => f).join(", ")
          }`,
        );
      }
      const rate = Math.round(count / (summary.ms / 1000));
      log.info(
        `⚡ Aggregated ${count.toLocaleString("en-US")} events in ${
          (summary.ms / 1000).toFixed(2)
        } s (startup, group join and drain included): ${rate.toLocaleString("en-US")} events/s; ` +
          `${summary.flushes} flushes; totals exact`,
      );
    } finally {
      await deleteTopics(admin, namespace).catch(() => {});
      await admin.deleteGroups([n.group("aggregate")]).catch(() => {});
      await admin.disconnect();
      let cursor = "0";
      do {
        const [next, keys] = await redis.scan(cursor, "MATCH", n.redis("*"), "COUNT", 1000);
        cursor = next;
        if (keys.length > 0) await redis.unlink(...keys);
      } while (cursor !== "0");
      redis.disconnect();
    }
  });
}
