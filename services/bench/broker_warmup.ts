/**
 * Warms the Kafka broker before anything is timed. A broker started shortly
 * before the bench spends its first minutes compiling (the JVM's C1/C2
 * threads): on a 2-core machine that took a third of the end-to-end phase's
 * CPU and halved Kafka's own ProducerPerformance, which would flatter the
 * producer's ratio. The pipeline's broker is a long-lived service, so the
 * bench measures a warm one: rounds of ProducerPerformance and
 * ConsumerPerformance on a scratch topic, untimed, until a round leaves the
 * compiler threads nearly idle.
 *
 * @module
 */

import { resolve } from "node:path";
import type { Config } from "../../lib/config.ts";
import { kafkaJarsDir } from "../stack/mod.ts";
import { consumerPerformance, producerPerformance } from "./kafka_perf.ts";
import { type BenchNamespace, createExtraTopic } from "./namespace.ts";
import { watchThreadsCpu } from "./pg_cpu.ts";
import type { Progress } from "./progress.ts";

/** `ps` line tests for the broker processes, and for this checkout's own ones. */
export function brokerProcesses(config: Config): {
  isBroker(psLine: string): boolean;
  isOwnBroker(psLine: string): boolean;
} {
  // The stack's own brokers for this checkout when it runs them (see kafka_broker.ts), else all.
  const own = `-Dkafka.logs.dir=${resolve(config.stateDir)}/kafka-`;
  return {
    isBroker: (l) => l.includes("kafka.Kafka"),
    isOwnBroker: (l) => l.includes(own),
  };
}

/** A C1/C2 compiler thread of the JVM. */
export const JVM_COMPILER_THREAD = /^C[12] CompilerThre/;

export interface BrokerWarmUp {
  rounds: number;
  /** CPU seconds of the broker's compiler threads in each round. */
  compiler_seconds: number[];
}

/**
 * Runs up to `maxRounds` rounds of `records` messages through the broker and
 * stops after the first round whose compiler threads spent less than
 * `quietSeconds`.
 */
export async function warmBroker(
  ns: BenchNamespace,
  progress: Progress,
  { records = 200_000, maxRounds = 8, quietSeconds = 0.15, signal }: {
    records?: number;
    maxRounds?: number;
    quietSeconds?: number;
    signal?: AbortSignal;
  } = {},
): Promise<BrokerWarmUp> {
  const jarDir = await kafkaJarsDir();
  const brokers = ns.config.kafka.brokers;
  const { isBroker, isOwnBroker } = brokerProcesses(ns.config);
  const topic = await createExtraTopic(ns.config, "warm_up");
  const payloadFile = await Deno.makeTempFile({ prefix: "bench-warm-up-", suffix: ".txt" });
  const compiler: number[] = [];
  try {
    await Deno.writeTextFile(payloadFile, samplePayloads(200).join("\n"));
    for (let round = 1; round <= maxRounds; round++) {
      progress.update(`warm-up: Kafka broker, round ${round} (${records} messages, untimed)`);
      const jit = watchThreadsCpu(isBroker, isOwnBroker, JVM_COMPILER_THREAD);
      await jit.ready;
      await producerPerformance({ jarDir, brokers, topic, records, payloadFile, signal });
      await consumerPerformance({
        jarDir,
        brokers,
        topic,
        records,
        group: `${ns.namespace}.warm-up-${round}`,
        signal,
      });
      compiler.push(await jit.stop());
      if (compiler.at(-1)! < quietSeconds) break;
    }
  } finally {
    await Deno.remove(payloadFile).catch(() => {});
  }
  progress.note(
    `warm-up: Kafka broker, ${compiler.length} round(s); its compiler threads spent ` +
      `${compiler.map((s) => s.toFixed(2)).join(", ")} s`,
  );
  return { rounds: compiler.length, compiler_seconds: compiler };
}

/** Transaction-like JSON bodies of about the pipeline's size (~400 bytes). */
function samplePayloads(count: number): string[] {
  return Array.from({ length: count }, (_, i) =>
    JSON.stringify({
      schema_version: 1,
      event_id: `warm-${i}`,
      event_type: "transaction",
      customer_id: 1 + i % 50,
      timestamp: new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString(),
      transaction_id: i,
      total_cents: 1000 + i * 7,
      items: [{
        detail_id: i,
        product_id: i % 200,
        product_name: `Product ${i % 200}`,
        quantity: 1,
      }],
    }));
}
