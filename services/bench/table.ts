/**
 * The human-readable report: stages beside their anchors, freshness, the
 * targets, and the counts that reconcile. Pure: a report in, text out.
 *
 * @module
 */

import type { BenchReport } from "./report.ts";
import type { ClientComparison } from "./clients.ts";

const fmt = (n: number | null | undefined, digits = 0) =>
  n === null || n === undefined || !Number.isFinite(n) ? "-" : n.toLocaleString("en-US", {
    maximumFractionDigits: digits,
    minimumFractionDigits: digits,
  });

/** Lays out rows under a header with columns padded to their widest cell (numbers right). */
export function grid(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)).join("  ")
      .trimEnd();
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

/**
 * @example
 * ```ts ignore
 * console.log(renderReport(buildReport(measurements)));
 * ```
 */
export function renderReport(r: BenchReport): string {
  const s = r.stages;
  const a = r.anchors;
  const out: string[] = [];
  out.push(
    `deno task bench — namespace ${r.namespace}, ${fmt(r.options.events)} events; ` +
      `${r.machine.nproc} cores, ${fmt(r.machine.memory_gb, 1)} GB, ${r.machine.cpu}`,
    "",
    "Catch-up (each stage drains the backlog alone; start-up subtracted, see wall rate)",
    grid(
      [
        "stage",
        "events",
        "s",
        "events/s",
        "wall ev/s",
        "peak RSS MB",
        "CPU µs/ev",
        "PG µs/ev",
        "anchor",
        "anchor/s",
        "ratio",
      ],
      [
        row("generate", s.generate),
        [
          ...row("produce", s.produce),
          "ProducerPerformance (msg/s)",
          fmt(a.kafka_producer_perf?.events_per_s),
          fmt(s.produce.ratio_vs_kafka_perf, 2),
        ],
        [
          ...row("consume", s.consume),
          "COPY events + sales",
          fmt(a.copy?.events_per_s),
          fmt(s.consume.ratio_vs_copy, 2),
        ],
        [
          ...row("aggregate", s.aggregate),
          "ConsumerPerformance",
          fmt(a.kafka_consumer_perf?.events_per_s),
          "",
        ],
        [
          "end to end",
          fmt(r.end_to_end.events),
          fmt(r.end_to_end.seconds, 2),
          fmt(r.end_to_end.events_per_s),
          "",
          "",
          "",
          "",
          "",
          "",
          "",
        ],
      ],
    ),
    `messages: produce wrote ${fmt(s.produce.messages)} (${fmt(s.produce.messages_per_s)}/s, ` +
      `subset topics included), consume read ${fmt(s.consume.messages)} (${
        fmt(s.consume.messages_per_s)
      }/s), aggregate read ${fmt(s.aggregate.messages)} (${
        fmt(s.aggregate.messages_per_s)
      }/s, items included); anchor bodies ${fmt(a.kafka_producer_perf?.message_bytes)} B`,
  );
  if (r.warm_up) {
    const { rounds, compiler_seconds } = r.warm_up.kafka;
    out.push(
      `warm-up (untimed): ${rounds} round(s) of Kafka's tools before the catch-up; the broker's ` +
        `compiler threads spent ${compiler_seconds.map((c) => fmt(c, 2)).join(", ")} s`,
    );
  }
  if (r.end_to_end.cpu_us_per_event) {
    out.push(
      `end to end, CPU µs per event: ${
        Object.entries(r.end_to_end.cpu_us_per_event).map(([k, v]) => `${k} ${fmt(v)}`).join(", ")
      }; the whole machine ${
        fmt(r.end_to_end.machine_cpu_us_per_event)
      } (every process; ${r.machine.nproc} cores give ${fmt(r.machine.nproc * 1e6)} µs per second)`,
    );
  }
  if (r.steady) {
    const sse = r.freshness_sse_ms;
    out.push(
      "",
      `Steady state: ${fmt(r.steady.events)} events at ${fmt(r.steady.achieved_rate)}/s ` +
        `(target ${fmt(r.steady.target_rate)}/s for ${r.steady.seconds} s), ` +
        `${fmt(r.steady.updates)} flushes, ${fmt(r.steady.sse_frames)} SSE frames`,
      grid(["freshness from commit (ms)", "p50", "p95", "p99", "max", "samples", "unseen"], [
        freshRow("to the Redis write", r.freshness_ms),
        ...(sse ? [freshRow("to the SSE frame", sse)] : []),
        ...(r.freshness_split_ms
          ? [
            freshRow("  commit to Kafka (produce)", r.freshness_split_ms.commit_to_kafka),
            freshRow("  Kafka to Redis (aggregate)", r.freshness_split_ms.kafka_to_redis),
          ]
          : []),
      ]),
      `peak RSS while running (MB): ${
        Object.entries(r.steady.peak_rss_mb).filter(([, v]) => v > 0).map(([k, v]) =>
          `${k} ${fmt(v, 1)}`
        ).join(", ")
      }`,
    );
  }
  out.push(
    "",
    grid(
      ["target", "value", "target", "met"],
      r.targets.map((t) => [
        t.name,
        fmt(t.value, t.value !== null && t.value < 10 ? 2 : 0),
        `${t.kind === "min" ? ">=" : "<"} ${fmt(t.target, t.target < 10 ? 1 : 0)}`,
        t.met ? "yes" : "NO",
      ]),
    ),
    "",
    `Counts: generated ${fmt(r.reconcile.generated)} (${fmt(r.reconcile.transactions)} ` +
      `transactions, ${fmt(r.reconcile.behavior)} behaviour), published ${
        fmt(r.reconcile.published_events)
      }, warehouse ${fmt(r.reconcile.warehouse_rows)}, metrics ${
        fmt(r.reconcile.metrics_events)
      }; items ${fmt(r.reconcile.items_in_shop)} sold, ${
        fmt(r.reconcile.metrics_items_sold)
      } in metrics — ${r.reconcile.ok ? "reconciled" : "DO NOT RECONCILE"}`,
  );
  if (r.clients) out.push("", renderClients(r.clients));
  return out.join("\n");
}

function row(name: string, st: BenchReport["stages"]["generate"]): string[] {
  return [
    name,
    fmt(st.events),
    fmt(st.seconds, 2),
    fmt(st.events_per_s),
    fmt(st.wall_events_per_s),
    fmt(st.peak_rss_mb, 1),
    fmt(st.cpu_us_per_event),
    fmt(st.pg_cpu_us_per_event),
  ];
}

function freshRow(name: string, f: BenchReport["freshness_ms"]): string[] {
  return [name, fmt(f.p50), fmt(f.p95), fmt(f.p99), fmt(f.max), fmt(f.samples), fmt(f.unseen)];
}

/** The kafkajs vs @platformatic/kafka table. */
export function renderClients(c: ClientComparison): string {
  return [
    `Kafka clients on Deno: ${fmt(c.messages)} messages, median of ${c.repeat} runs each`,
    grid(
      ["client", "path", "batch x in-flight", "msg/s", "fetch msg/s", "peak RSS MB", "runs"],
      c.cases.map((k) => [
        k.client,
        k.path,
        k.batch ? `${k.batch} x ${k.inflight}` : "",
        fmt(k.events_per_s),
        fmt(k.fetch_events_per_s),
        fmt(k.peak_rss_mb, 1),
        k.runs.map((v) => fmt(v)).join(" / "),
      ]),
    ),
  ].join("\n");
}
