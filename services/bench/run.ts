/**
 * One benchmark run, phase by phase, in its own namespace: warm-up,
 * catch-up per stage, the anchors on the same data, the running pipeline end
 * to end, and steady state with freshness. Returns raw measurements; the
 * report is built from them.
 *
 * @module
 */

import { connect } from "../../lib/db.ts";
import { runCopyAnchor, runKafkaAnchors } from "./anchors.ts";
import { brokerProcesses, JVM_COMPILER_THREAD, warmBroker } from "./broker_warmup.ts";
import { catchUp, generateArgs, warmUp } from "./catchup.ts";
import { exportWarehouseRows } from "./copy_anchor.ts";
import type { EventRow } from "../consume/rows.ts";
import { itemsInShop, publishedMessages, reconcile } from "./counts.ts";
import { describeMachine } from "./machine.ts";
import {
  watchBenchCpu,
  watchLongLivedCpu,
  watchMachineCpu,
  watchPostgresCpu,
  watchThreadsCpu,
} from "./pg_cpu.ts";
import type { BenchNamespace } from "./namespace.ts";
import type { SampleMessage } from "./payload.ts";
import type { Progress } from "./progress.ts";
import type { Measurements } from "./measurements.ts";
import { runStage, type StageProcess } from "./stage_process.ts";
import {
  endToEnd,
  freePort,
  startDashboard,
  startPipeline,
  steadyState,
  waitForChain,
} from "./steady.ts";

export interface BenchOptions {
  events: number;
  rate: number;
  seconds: number;
  anchors: boolean;
  sse: boolean;
  /** Most rounds of the broker's warm-up (./broker_warmup.ts); 0 skips it. */
  warmUpRounds: number;
}

/** Runs every phase; `signal` stops the stage processes and ends the run. */
export async function runBench(
  ns: BenchNamespace,
  options: BenchOptions,
  progress: Progress,
  signal: AbortSignal,
): Promise<Measurements> {
  const { env, config } = ns;
  const machine = await describeMachine();
  await warmUp(env, progress);
  const warmedBroker = options.warmUpRounds > 0
    ? await warmBroker(ns, progress, { maxRounds: options.warmUpRounds, signal })
    : undefined;
  const caught = await catchUp(env, options.events, progress);
  const afterCatchUp = await reconcile(config);
  const messages = publishedMessages(afterCatchUp.topics);

  const anchors: Measurements["anchors"] = {};
  if (options.anchors) {
    const dwh = connect(config.databases.dwh, { max: 1 });
    try {
      const rows = await exportWarehouseRows(dwh);
      progress.update(
        `anchor: COPY ${rows.events.length} realtime_events + ${rows.sales.length} fact_sales rows`,
      );
      anchors.copy = await runCopyAnchor(dwh, rows);
      progress.note(
        `COPY: ${anchors.copy.rows} events at ${anchors.copy.events_per_s}/s with their ` +
          `${anchors.copy.sale_rows} fact_sales rows, ${anchors.copy.format} format ` +
          `(${JSON.stringify(anchors.copy.by_format)}; realtime_events alone ` +
          `${anchors.copy.events_table_per_s}/s)`,
      );
      progress.update(`anchor: ProducerPerformance + ConsumerPerformance, ${messages} messages`);
      anchors.kafka = await runKafkaAnchors(ns, {
        records: messages,
        messages: payloadsOf(rows.events, 20_000),
        signal,
      });
      progress.note(
        `ProducerPerformance: ${anchors.kafka.producer_perf.records_per_s}/s; ` +
          `ConsumerPerformance: ${anchors.kafka.consumer_perf.records_per_s}/s`,
      );
    } finally {
      await dwh.end({ timeout: 2 });
    }
  }

  progress.update(`end to end: generating a second backlog of ${options.events}`);
  await runStage("generate", generateArgs(options.events, { seed: 10 }), env, {
    timeoutMs: 120_000 + options.events,
  });
  const target = afterCatchUp.generated + options.events;
  const items = await itemsInShop(config);
  // Each PostgreSQL sample runs `ps` (about 20 ms of CPU here): once a second, not five times.
  const pgDuringE2e = watchPostgresCpu(ns.namespace, 1000);
  // The broker and Redis serve the whole machine: only a quiet machine makes these the chain's.
  const { isBroker, isOwnBroker } = brokerProcesses(config);
  const kafkaDuringE2e = watchLongLivedCpu(isBroker, isOwnBroker);
  // Part of the broker's figure: a broker started shortly before spends most of it compiling.
  const kafkaJitDuringE2e = watchThreadsCpu(isBroker, isOwnBroker, JVM_COMPILER_THREAD);
  const redisDuringE2e = watchLongLivedCpu((l) => l.includes("redis-server"));
  const benchDuringE2e = watchBenchCpu();
  const machineDuringE2e = watchMachineCpu();
  const pipeline = startPipeline(env);
  let dashboard: StageProcess | undefined;
  const onAbort = () => void pipeline.stop();
  signal.addEventListener("abort", onAbort, { once: true });
  let rss: Record<string, number> = {};
  let steady: Measurements["steady"];
  let e2e: { ms: number };
  let e2eCpu: Record<string, number> = {};
  let e2eMachineCpu = 0;
  try {
    e2e = await endToEnd(config, pipeline, { target, items, progress, signal });
    e2eCpu = Object.fromEntries(
      await Promise.all(pipeline.stages.map(async (s) => [s.task, await s.cpuNow()])),
    );
    e2eCpu.postgres = await pgDuringE2e.stop();
    e2eCpu.kafka = await kafkaDuringE2e.stop();
    e2eCpu.kafka_jit = await kafkaJitDuringE2e.stop();
    e2eCpu.redis = await redisDuringE2e.stop();
    // The bench's polling and samplers: on the same 2 cores, so part of what the machine did.
    e2eCpu.bench = await benchDuringE2e.stop();
    e2eMachineCpu = await machineDuringE2e.stop();
    progress.note(`end to end: ${options.events} events in ${(e2e.ms / 1000).toFixed(2)} s`);
    let sseUrl: string | undefined;
    if (options.sse) {
      const port = freePort();
      dashboard = await startDashboard(env, port);
      sseUrl = `http://127.0.0.1:${port}/api/stream`;
    }
    const result = await steadyState(config, env, pipeline, {
      rate: options.rate,
      seconds: options.seconds,
      sseUrl,
      progress,
      signal,
    });
    // Stop only once every count can reconcile: the consumer may trail the aggregator.
    await waitForChain(config, {
      target: target + result.events,
      items: await itemsInShop(config),
      progress,
      signal,
      timeoutMs: 180_000,
      label: "steady state, settling",
    });
    steady = {
      targetRate: options.rate,
      seconds: options.seconds,
      ...result,
      rss: { produce: 0, consume: 0, aggregate: 0, dashboard: 0 },
    };
  } finally {
    signal.removeEventListener("abort", onAbort);
    progress.update("stopping the stages");
    rss = await pipeline.stop();
    if (dashboard) rss.dashboard = (await dashboard.stop()).peakRssMb;
  }
  if (steady) {
    steady.rss = {
      produce: rss.produce ?? 0,
      consume: rss.consume ?? 0,
      aggregate: rss.aggregate ?? 0,
      dashboard: rss.dashboard ?? 0,
    };
  }
  progress.update("reconciling counts");
  const final = await reconcile(config);
  const { topics: _topics, ...counts } = final;
  const peak = (stage: "produce" | "consume" | "aggregate") =>
    Math.max(caught.drains[stage].peakRssMb, rss[stage] ?? 0);
  return {
    machine,
    namespace: ns.namespace,
    options: { events: options.events, rate: options.rate, seconds: options.seconds },
    generate: caught.generate,
    produce: { ...caught.drains.produce, messages, peakRssMb: peak("produce") },
    consume: {
      ...caught.drains.consume,
      rows: afterCatchUp.warehouse_rows,
      messages,
      peakRssMb: peak("consume"),
    },
    aggregate: {
      ...caught.drains.aggregate,
      messages: (afterCatchUp.topics.transactions ?? 0) + (afterCatchUp.topics.userBehavior ?? 0) +
        (afterCatchUp.topics.transactionItems ?? 0),
      peakRssMb: peak("aggregate"),
    },
    endToEnd: {
      events: options.events,
      ms: e2e.ms,
      cpuSeconds: e2eCpu,
      machineCpuSeconds: e2eMachineCpu,
    },
    steady,
    anchors,
    ...(warmedBroker ? { warmUp: { kafka: warmedBroker } } : {}),
    reconcile: counts,
  };
}

/**
 * Message bodies for ProducerPerformance: the warehouse payloads, compacted
 * back to the producer's JSON (jsonb's text form adds spaces), at most `max`.
 */
function payloadsOf(events: readonly EventRow[], max: number): SampleMessage[] {
  const step = Math.max(1, Math.floor(events.length / max));
  const out: SampleMessage[] = [];
  for (let i = 0; i < events.length && out.length < max; i += step) {
    const e = events[i]!;
    // Read back from the warehouse: text (bytes only for a row the consumer built).
    const text = typeof e.payload === "string" ? e.payload : new TextDecoder().decode(e.payload);
    out.push({ key: String(e.customer_id), value: JSON.stringify(JSON.parse(text)) });
  }
  return out;
}
