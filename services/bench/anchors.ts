/**
 * Runs the three anchors of a bench run in its namespace: Kafka's
 * ProducerPerformance and ConsumerPerformance on a scratch topic with the same
 * message count and bodies, and a raw COPY of the same warehouse rows.
 *
 * @module
 */

import { kafkaJarsDir } from "../stack/mod.ts";
import type { Sql } from "../../lib/db.ts";
import { checkpoint } from "./checkpoint.ts";
import { type BenchNamespace, createExtraTopic } from "./namespace.ts";
import { consumerPerformance, producerPerformance } from "./kafka_perf.ts";
import type { ConsumerPerfResult, ProducerPerfResult } from "./kafka_tools_output.ts";
import {
  copyAnchor,
  copyData,
  type CopyFormat,
  type CopyResult,
  type StoredRows,
} from "./copy_anchor.ts";
import type { SampleMessage } from "./payload.ts";
import { meanValueBytes } from "./payload.ts";
import { rate, round } from "./stats.ts";

export interface KafkaAnchors {
  /** Runs of each tool; the best is kept. */
  runs: number;
  /** Mean value size of the messages the tool sent. */
  message_bytes: number;
  producer_perf: ProducerPerfResult & { command: string };
  consumer_perf: ConsumerPerfResult & { command: string };
}

export interface CopyAnchorResult {
  /** `realtime_events` rows, one an event. */
  rows: number;
  /** `fact_sales` rows, one a transaction item. */
  sale_rows: number;
  ms: number;
  /** Events per second of both loads together: what the consumer's ratio is taken against. */
  events_per_s: number;
  /** `realtime_events` rows per second of that load alone (the anchor before session 4). */
  events_table_per_s: number;
  /** The format of the fastest load. */
  format: CopyFormat;
  /** Events per second of both loads, best run of each format. */
  by_format: Partial<Record<CopyFormat, number>>;
}

/**
 * ProducerPerformance then ConsumerPerformance over `records` messages whose
 * bodies are drawn from `messages` (written to a payload file, one a line).
 */
export async function runKafkaAnchors(
  ns: BenchNamespace,
  { records, messages, signal, runs = 2 }: {
    records: number;
    messages: readonly SampleMessage[];
    signal?: AbortSignal;
    runs?: number;
  },
): Promise<KafkaAnchors> {
  const jarDir = await kafkaJarsDir();
  const topic = await createExtraTopic(ns.config, "anchor_perf");
  const payloadFile = await Deno.makeTempFile({ prefix: "bench-payload-", suffix: ".txt" });
  try {
    // The tool splits the file on newlines; JSON.stringify never emits a raw one.
    await Deno.writeTextFile(payloadFile, messages.map((m) => m.value).join("\n"));
    const brokers = ns.config.kafka.brokers;
    // Best of `runs`: on a shared 2-core machine one run can be halved by a neighbour,
    // and an anchor that is too low would flatter the pipeline.
    let producer: KafkaAnchors["producer_perf"] | undefined;
    let consumer: KafkaAnchors["consumer_perf"] | undefined;
    for (let run = 1; run <= runs; run++) {
      const p = await producerPerformance({ jarDir, brokers, topic, records, payloadFile, signal });
      if (!producer || p.records_per_s > producer.records_per_s) producer = p;
    }
    for (let run = 1; run <= runs; run++) {
      const c = await consumerPerformance({
        jarDir,
        brokers,
        topic,
        records,
        group: `${ns.namespace}.anchor-perf-${run}`,
        signal,
      });
      if (!consumer || c.records_per_s > consumer.records_per_s) consumer = c;
    }
    return {
      message_bytes: meanValueBytes(messages),
      producer_perf: producer!,
      consumer_perf: consumer!,
      runs,
    };
  } finally {
    await Deno.remove(payloadFile).catch(() => {});
  }
}

/**
 * COPY of the warehouse rows (`realtime_events` and `fact_sales`) into empty
 * twins of their tables, in text and in binary format, `runs` times each;
 * the fastest load of both tables is the anchor.
 */
export async function runCopyAnchor(
  sql: Sql,
  rows: StoredRows,
  { runs = 2 } = {},
): Promise<CopyAnchorResult> {
  const counts = { events: rows.events.length, sales: rows.sales.length };
  let best: CopyResult | undefined;
  const byFormat: Partial<Record<CopyFormat, number>> = {};
  for (const format of ["text", "binary"] as const) {
    // Encoded before the clock starts: the anchor times PostgreSQL, not the encoder.
    const data = copyData(rows, format);
    if (!data) continue;
    for (let run = 1; run <= runs; run++) {
      // Each load from a fresh checkpoint, as each timed drain.
      await checkpoint(sql);
      const r = await copyAnchor(sql, data, counts, { format });
      if (!best || r.ms < best.ms) best = r;
      const perS = round(rate(r.rows, r.ms)) ?? 0;
      byFormat[format] = Math.max(byFormat[format] ?? 0, perS);
    }
  }
  for (const table of best!.tables) await sql.unsafe(`drop table if exists ${table}`);
  return {
    format: best!.format,
    rows: best!.rows,
    sale_rows: best!.saleRows,
    ms: round(best!.ms, 1) ?? 0,
    events_per_s: round(rate(best!.rows, best!.ms)) ?? 0,
    events_table_per_s: round(rate(best!.rows, best!.eventsMs)) ?? 0,
    by_format: byFormat,
  };
}
