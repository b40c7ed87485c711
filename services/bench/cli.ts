/**
 * `deno task bench`: throughput of every stage, freshness from commit to
 * Redis and to a dashboard client, beside Kafka's and PostgreSQL's own
 * limits, in a namespace of its own (dropped at the end unless --keep).
 * `--clients` instead compares kafkajs with @platformatic/kafka.
 *
 * @module
 */

import { numberFlag, parseFlags, runMain, UsageError } from "../../lib/cli.ts";
import { childEnv } from "../../lib/config.ts";
import { compareClients } from "./clients.ts";
import { createBenchNamespace } from "./namespace.ts";
import { createProgress } from "./progress.ts";
import { buildReport } from "./report.ts";
import { runBench } from "./run.ts";
import { renderClients, renderReport } from "./table.ts";
import { stopAllStages } from "./stage_process.ts";

const SUMMARY = "Benchmark the pipeline stage by stage, end to end and in steady state, " +
  "beside Kafka's ProducerPerformance/ConsumerPerformance and a raw PostgreSQL COPY.";

const FLAGS = {
  events: { type: "string", default: "200000", help: "backlog size for the catch-up phases" },
  rate: { type: "string", default: "2000", help: "events/s in the steady-state phase" },
  seconds: { type: "string", default: "60", help: "length of the steady-state phase" },
  json: { type: "boolean", help: "print the report as JSON on stdout" },
  keep: { type: "boolean", help: "keep the bench namespace (databases, topics, keys)" },
  "no-anchors": { type: "boolean", help: "skip the Kafka and COPY anchors" },
  "no-sse": { type: "boolean", help: "skip the dashboard client in steady state" },
  "warm-up": {
    type: "string",
    default: "8",
    help: "most rounds of Kafka's tools warming the broker before timing (0: none)",
  },
  clients: { type: "boolean", help: "only compare kafkajs with @platformatic/kafka" },
  repeat: { type: "string", default: "3", help: "runs per case with --clients (median kept)" },
} as const;

function whole(name: string, raw: string | undefined, min: number): number {
  const value = numberFlag(name, raw, min);
  if (!Number.isInteger(value)) {
    throw new UsageError(`Cannot use --${name} as a whole number: current value is ${raw}`);
  }
  return value;
}

await runMain(async (signal) => {
  const flags = parseFlags("bench", SUMMARY, Deno.args, FLAGS);
  const events = whole("events", flags.events, 1);
  const rate = numberFlag("rate", flags.rate, 1);
  const seconds = numberFlag("seconds", flags.seconds, 1);
  const repeat = whole("repeat", flags.repeat, 1);
  const warmUpRounds = whole("warm-up", flags["warm-up"], 0);
  const progress = createProgress();
  // Ctrl-C: stop the stage processes so that the phase fails and the namespace is dropped.
  signal.addEventListener("abort", () => void stopAllStages(), { once: true });
  const ns = await createBenchNamespace(childEnv());
  progress.note(`namespace ${ns.namespace}${flags.keep ? " (kept)" : ""}`);
  try {
    if (flags.clients) {
      const clients = await compareClients(ns, {
        messages: events,
        repeat,
        progress: (line) => progress.update(line),
      });
      progress.done();
      console.log(flags.json ? JSON.stringify({ clients }, null, 2) : renderClients(clients));
      return 0;
    }
    const measurements = await runBench(
      ns,
      {
        events,
        rate,
        seconds,
        anchors: !flags["no-anchors"],
        sse: !flags["no-sse"],
        warmUpRounds,
      },
      progress,
      signal,
    );
    const report = buildReport(measurements);
    progress.done();
    console.log(flags.json ? JSON.stringify(report, null, 2) : renderReport(report));
    return report.reconcile.ok ? 0 : 1;
  } finally {
    if (!flags.keep) {
      progress.update(`dropping namespace ${ns.namespace}`);
      await ns.cleanup();
      progress.done();
    }
  }
});
