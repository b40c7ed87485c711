/**
 * kafkajs against @platformatic/kafka (issue 9, requirement 3): the same
 * messages, the same broker, the producer path at a few batch/in-flight
 * shapes and the consumer path, each run in a fresh process and a fresh
 * topic, alternating clients, `repeat` times; the median is reported.
 *
 * @module
 */

import { ENV_VARS } from "../../lib/config.ts";
import { denoExecutable } from "../../lib/tasks.ts";
import type { BenchNamespace } from "./namespace.ts";
import { createExtraTopic } from "./namespace.ts";
import { median, rate, round } from "./stats.ts";
import { watchRss } from "./rss.ts";
import type { ClientName, ClientTiming } from "./client_runs.ts";

export interface ClientCase {
  client: ClientName;
  path: "produce" | "consume";
  /** Produce only: messages per request and requests awaited together. */
  batch?: number;
  inflight?: number;
  events_per_s: number;
  /** Consume only: rate from the first message (no group join). */
  fetch_events_per_s?: number;
  peak_rss_mb: number;
  runs: number[];
}

export interface ClientComparison {
  messages: number;
  repeat: number;
  cases: ClientCase[];
}

const CLIENTS: readonly ClientName[] = ["kafkajs", "platformatic"];
const SHAPES = [
  { batch: 1000, inflight: 1 },
  { batch: 5000, inflight: 1 },
  { batch: 1000, inflight: 4 },
] as const;

type WorkerResult = ClientTiming & { peak_rss_mb?: number };

async function worker(ns: BenchNamespace, args: string[]): Promise<WorkerResult> {
  const child = new Deno.Command(denoExecutable(), {
    args: [
      "run",
      "--no-prompt",
      "--allow-net=127.0.0.1,localhost",
      // The project's variables only; read stays unscoped: @platformatic/kafka's wasm-utils reads
      // its .wasm from Deno's npm cache, whose place ($DENO_DIR, ~/.cache/deno) varies.
      `--allow-env=${ENV_VARS.join(",")}`,
      "--allow-read",
      new URL("./client_worker.ts", import.meta.url).pathname,
      ...args,
    ],
    env: ns.env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const rss = watchRss(child.pid);
  const outputP = child.output();
  await child.status;
  const peak = await rss.stop();
  const out = await outputP;
  const text = new TextDecoder();
  const line = text.decode(out.stdout).trim().split("\n").at(-1) ?? "";
  if (!out.success || !line.startsWith("{")) {
    throw new Error(
      `Cannot compare Kafka clients as a run (${args.slice(0, 2).join(" ")}) failed: ${
        text.decode(out.stderr).trim().slice(-300)
      }`,
    );
  }
  return { ...(JSON.parse(line) as ClientTiming), peak_rss_mb: peak };
}

/**
 * Runs the comparison and returns the medians. `progress` receives one short
 * line per run.
 */
export async function compareClients(
  ns: BenchNamespace,
  { messages, repeat = 3, progress = () => {} }: {
    messages: number;
    repeat?: number;
    progress?: (line: string) => void;
  },
): Promise<ClientComparison> {
  const cases: ClientCase[] = [];
  const samples = new Map<string, WorkerResult[]>();
  const key = (c: string, p: string, b = 0, i = 0) => `${c}|${p}|${b}|${i}`;
  const push = (k: string, r: WorkerResult) => samples.set(k, [...(samples.get(k) ?? []), r]);
  let topicNo = 0;
  let consumeTopic = "";
  for (let round_ = 1; round_ <= repeat; round_++) {
    for (const shape of SHAPES) {
      for (const client of round_ % 2 ? CLIENTS : [...CLIENTS].reverse()) {
        const topic = await createExtraTopic(ns.config, `clients_${++topicNo}`);
        progress(`clients: ${client} produce batch ${shape.batch} x${shape.inflight} (${round_})`);
        const r = await worker(ns, [
          client,
          "produce",
          topic,
          String(messages),
          String(shape.batch),
          String(shape.inflight),
        ]);
        push(key(client, "produce", shape.batch, shape.inflight), r);
        consumeTopic ||= topic;
      }
    }
    for (const client of round_ % 2 ? CLIENTS : [...CLIENTS].reverse()) {
      progress(`clients: ${client} consume (${round_})`);
      const group = `${ns.namespace}.clients-${client}-${round_}`;
      // The topic holds `messages` plus the warm-up message.
      const r = await worker(ns, [client, "consume", consumeTopic, String(messages + 1), group]);
      push(key(client, "consume"), r);
    }
  }
  for (const [k, runs] of samples) {
    const [client, path, batch, inflight] = k.split("|");
    const rates = runs.map((r) => rate(r.count, r.ms));
    const c: ClientCase = {
      client: client as ClientName,
      path: path as "produce" | "consume",
      events_per_s: round(median(rates)) ?? 0,
      peak_rss_mb: round(Math.max(...runs.map((r) => r.peak_rss_mb ?? 0)), 1) ?? 0,
      runs: rates.map((v) => round(v) ?? 0),
    };
    if (path === "produce") {
      c.batch = Number(batch);
      c.inflight = Number(inflight);
    } else {
      c.fetch_events_per_s = round(median(runs.map((r) => rate(r.count, r.fetch_ms ?? r.ms)))) ??
        0;
    }
    cases.push(c);
  }
  return { messages, repeat, cases };
}
