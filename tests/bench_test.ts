/**
 * `deno task bench`: the pure parts (percentiles, tool-output parsers,
 * freshness matching, COPY escaping, the report's shape) and a smoke run
 * with a tiny N on the real stack that checks the JSON shape and that the
 * counts reconcile. No timing assertions.
 */

import assert from "node:assert/strict";
import { percentile, ratio, summarize } from "../services/bench/stats.ts";
import {
  parseConsumerPerformance,
  parseProducerPerformance,
} from "../services/bench/kafka_tools_output.ts";
import { freshnessByCount } from "../services/bench/freshness.ts";
import { copyLine } from "../services/consume/copy.ts";
import { statCpuSeconds, statusFieldMb } from "../services/bench/rss.ts";
import { busySeconds, watchThreadsCpu } from "../services/bench/pg_cpu.ts";
import { sampleMessages } from "../services/bench/payload.ts";
import { validateEvent } from "../lib/schemas.ts";
import { buildReport } from "../services/bench/report.ts";
import type { Measurements } from "../services/bench/measurements.ts";
import { REQUIRED_PATHS } from "../services/bench/targets.ts";
import { renderReport } from "../services/bench/table.ts";
import { parseMachine } from "../services/bench/machine.ts";
import { runTask } from "./_support.ts";

Deno.test("percentile is nearest-rank", () => {
  const values = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(percentile(values, 50), 50);
  assert.equal(percentile(values, 95), 95);
  assert.equal(percentile(values, 99), 99);
  assert.equal(percentile([7], 99), 7);
  const s = summarize([3, 1, 2]);
  assert.deepEqual([s.min, s.p50, s.max, s.count], [1, 2, 3, 3]);
  assert.equal(ratio(50, 100), 0.5);
  assert.equal(ratio(50, null), null);
});

Deno.test("ProducerPerformance and ConsumerPerformance output is parsed", () => {
  const producer = parseProducerPerformance(
    "Option --producer-props has been deprecated\n" +
      "200000 records sent, 60222.824450 records/sec (22.97 MB/sec), 344.27 ms avg latency, " +
      "544.00 ms max latency, 356 ms 50th, 481 ms 95th, 513 ms 99th, 534 ms 99.9th.\n",
  );
  assert.equal(producer.records, 200000);
  assert.equal(producer.records_per_s, 60222.82445);
  assert.equal(producer.p99_ms, 513);
  const consumer = parseConsumerPerformance(
    "start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, " +
      "rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec\n" +
      "2026-11-29 03:58:09:333, 2026-11-29 03:58:11:071, 76.2939, 43.8976, 200000, " +
      "115074.7986, 1005, 733, 104.0845, 272851.2960\n",
  );
  assert.equal(consumer.records, 200000);
  assert.equal(consumer.records_per_s, 115074.7986);
  assert.equal(consumer.fetch_records_per_s, 272851.296);
  assert.throws(() => parseProducerPerformance("nothing"), /no summary line/);
  assert.throws(() => parseConsumerPerformance("nothing"), /no stats line/);
});

Deno.test("freshness matches the k-th commit with the first count that covers it", () => {
  const observed = [{ at: 1100, count: 12 }, { at: 1300, count: 13 }];
  assert.deepEqual(freshnessByCount([1000, 1010, 1020], observed, 10), {
    latencies: [100, 90, 280],
    unseen: 0,
  });
  assert.deepEqual(freshnessByCount([1000, 1010, 1020], observed.slice(0, 1), 10), {
    latencies: [100, 90],
    unseen: 1,
  });
});

Deno.test("COPY text rows escape tabs, newlines and backslashes", () => {
  assert.equal(copyLine(["a\tb", 1, null, 'x\\"y\n']), 'a\\tb\t1\t\\N\tx\\\\"y\\n\n');
});

Deno.test("the machine's busy CPU is all of /proc/stat's first line but idle and iowait", () => {
  assert.equal(busySeconds("cpu  100 0 50 900 10 0 0 0 0 0\ncpu0 1 2 3 4 5 6 7 8"), 1.5);
  assert.equal(busySeconds("intr 1 2 3"), undefined);
});

Deno.test("threads are measured by name: every thread of this process, none of a name no thread has", async () => {
  const self = (psLine: string) => psLine.trim().split(/\s+/)[0] === String(Deno.pid);
  const main = watchThreadsCpu(self, undefined, /./);
  const none = watchThreadsCpu(self, undefined, /^no such thread$/);
  await Promise.all([main.ready, none.ready]);
  // Work on the main thread (a fixed amount, no clock): several 10 ms ticks of CPU.
  let x = 0;
  for (let i = 0; i < 200_000_000; i++) x = (x + i * 7) % 1_000_003;
  assert.ok(x >= 0);
  assert.ok(await main.stop() > 0);
  assert.equal(await none.stop(), 0);
});

Deno.test("the machine's CPU is named with its family and model", () => {
  const cpuinfo = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 26\nmodel\t\t: 2\n" +
    "model name\t: AMD EPYC\nstepping\t: 1\n";
  assert.deepEqual(parseMachine(cpuinfo, "MemTotal:       24641536 kB\n", 2), {
    nproc: 2,
    memory_gb: 23.5,
    cpu: "AMD EPYC (family 26, model 2)",
  });
  assert.equal(parseMachine("model name\t: Some CPU\n", "", 1).cpu, "Some CPU");
});

Deno.test("peak RSS is read from /proc status text", () => {
  assert.equal(statusFieldMb("Name:\tdeno\nVmHWM:\t  204800 kB\nVmRSS:\t 1024 kB\n", "VmHWM"), 200);
  assert.equal(statusFieldMb("Name:\tdeno\n", "VmHWM"), undefined);
  assert.equal(statCpuSeconds("42 (deno run) S 1 42 42 0 -1 0 0 0 0 0 250 50 0 0"), 3);
});

Deno.test("synthetic messages are valid events of the pipeline's size", () => {
  const messages = sampleMessages(2000, 3);
  for (const m of messages) {
    const event = JSON.parse(m.value) as { event_type: string };
    const topic = event.event_type === "transaction" ? "transactions" : "userBehavior";
    assert.equal(validateEvent(topic, event).ok, true, m.value);
  }
  assert.deepEqual(sampleMessages(5, 3), sampleMessages(5, 3));
});

function get(object: unknown, path: string): unknown {
  return path.split(".").reduce<unknown>(
    (o, k) => (o as Record<string, unknown> | undefined)?.[k],
    object,
  );
}

Deno.test("the report has the issue's JSON shape and renders", () => {
  const run = { events: 1000, wallMs: 2000, idleMs: 1000, peakRssMb: 100, cpuSeconds: 0.5 };
  const m: Measurements = {
    machine: { nproc: 2, memory_gb: 24, cpu: "AMD EPYC", os: "linux x86_64", deno: "2" },
    namespace: "bench_x",
    options: { events: 1000, rate: 200, seconds: 5 },
    generate: run,
    produce: { ...run, messages: 1100 },
    consume: { ...run, rows: 1000, messages: 1100 },
    aggregate: { ...run, messages: 2500 },
    endToEnd: {
      events: 1000,
      ms: 500,
      cpuSeconds: { produce: 0.05, kafka: 0.02, kafka_jit: 0.015, bench: 0.01 },
      machineCpuSeconds: 0.09,
    },
    steady: {
      targetRate: 200,
      seconds: 5,
      events: 1000,
      generateMs: 5000,
      redis: { latencies: [10, 20, 30], unseen: 0 },
      updates: 3,
      frames: 2,
      rss: { produce: 1, consume: 2, aggregate: 3, dashboard: 4 },
    },
    anchors: {
      copy: {
        rows: 1000,
        sale_rows: 1600,
        ms: 100,
        events_per_s: 10000,
        events_table_per_s: 16000,
        format: "binary",
        by_format: { text: 8000, binary: 10000 },
      },
    },
    reconcile: {
      generated: 2000,
      transactions: 1400,
      behavior: 600,
      published_events: 2000,
      warehouse_rows: 2000,
      metrics_events: 2000,
      items_in_shop: 2800,
      metrics_items_sold: 2800,
      ok: true,
    },
  };
  const report = buildReport(m);
  for (const path of REQUIRED_PATHS) {
    assert.ok(path.split(".").length > 1 && get(report, path) !== undefined, path);
  }
  assert.equal(report.stages.produce.events_per_s, 1000);
  assert.equal(report.stages.produce.wall_events_per_s, 500);
  assert.equal(report.stages.produce.cpu_us_per_event, 500);
  assert.equal(report.stages.consume.ratio_vs_copy, 0.1);
  assert.equal(report.stages.produce.ratio_vs_kafka_perf, null);
  assert.equal(report.end_to_end.events_per_s, 2000);
  assert.deepEqual(report.end_to_end.cpu_us_per_event, {
    produce: 50,
    kafka: 20,
    kafka_jit: 15, // part of kafka, not added to the total again
    bench: 10,
    total: 70,
  });
  assert.equal(report.end_to_end.machine_cpu_us_per_event, 90);
  assert.equal(report.freshness_ms.p99, 30);
  assert.match(renderReport(report), /end to end/);
});

Deno.test({
  name: "deno task bench --json runs a tiny pipeline and its counts reconcile",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const events = 500;
    const rate = 200;
    const seconds = 5;
    const result = await runTask("bench", [
      "--events",
      String(events),
      "--rate",
      String(rate),
      "--seconds",
      String(seconds),
      "--warm-up",
      "1",
      "--json",
    ]);
    assert.equal(result.code, 0, result.stderr.slice(-2000));
    const report = JSON.parse(result.stdout);
    for (const path of REQUIRED_PATHS) {
      assert.equal(typeof get(report, path), "number", `${path} in ${result.stdout.slice(0, 400)}`);
    }
    for (const stage of ["generate", "produce", "consume", "aggregate"]) {
      assert.equal(report.stages[stage].events, events, stage);
    }
    // Two backlogs of `events` plus the steady-state events, counted once everywhere.
    const total = 2 * events + rate * seconds;
    assert.deepEqual(
      [
        report.reconcile.generated,
        report.reconcile.published_events,
        report.reconcile.warehouse_rows,
        report.reconcile.metrics_events,
      ],
      [total, total, total, total],
    );
    assert.equal(report.reconcile.metrics_items_sold, report.reconcile.items_in_shop);
    assert.equal(report.reconcile.ok, true);
    // One round of the broker's warm-up, its compiler threads measured (a floor: zero is possible).
    assert.equal(report.warm_up.kafka.rounds, 1);
    assert.equal(report.warm_up.kafka.compiler_seconds.length, 1);
    assert.equal(typeof report.warm_up.kafka.compiler_seconds[0], "number");
    assert.equal(report.steady.events, rate * seconds);
    assert.equal(report.freshness_ms.samples + report.freshness_ms.unseen, rate * seconds);
    assert.ok(report.stages.produce.messages >= events);
    // The COPY anchor loads what the consumer stored after the first backlog: its events and
    // their items (70% are transactions of one item or more).
    assert.equal(report.anchors.copy.rows, events);
    assert.ok(report.anchors.copy.by_format.text > 0 && report.anchors.copy.by_format.binary > 0);
    assert.ok(
      report.anchors.copy.sale_rows >= events / 2,
      `${report.anchors.copy.sale_rows} sales`,
    );
  },
});
