/**
 * The Kafka anchors: Kafka's own ProducerPerformance and ConsumerPerformance,
 * run from the same Maven jars as the broker, against the configured broker,
 * with the same message count and (when given a payload file) the same
 * message bodies as the pipeline. Producer settings match ours: acks=all,
 * idempotent; everything else is the Java client's default.
 *
 * @module
 */

import { ServiceError } from "../../lib/cli.ts";
import {
  type ConsumerPerfResult,
  parseConsumerPerformance,
  parseProducerPerformance,
  type ProducerPerfResult,
} from "./kafka_tools_output.ts";

export interface KafkaPerfOptions {
  /** Directory holding kafka-tools and kafka-clients jars. */
  jarDir: string;
  brokers: readonly string[];
  topic: string;
  records: number;
  signal?: AbortSignal;
}

/**
 * Runs ProducerPerformance with `payloadFile` (newline-separated message
 * values, picked at random by the tool) unthrottled.
 */
export async function producerPerformance(
  { jarDir, brokers, topic, records, signal, payloadFile }: KafkaPerfOptions & {
    payloadFile: string;
  },
): Promise<ProducerPerfResult & { command: string }> {
  const args = [
    "org.apache.kafka.tools.ProducerPerformance",
    "--topic",
    topic,
    "--num-records",
    String(records),
    "--payload-file",
    payloadFile,
    "--throughput",
    "-1",
    "--command-property",
    `bootstrap.servers=${brokers.join(",")}`,
    "acks=all",
    "enable.idempotence=true",
  ];
  const output = await java(jarDir, args, signal);
  return { ...parseProducerPerformance(output), command: describe(args) };
}

/** Runs ConsumerPerformance for `records` messages of `topic` under a new group. */
export async function consumerPerformance(
  { jarDir, brokers, topic, records, signal, group }: KafkaPerfOptions & { group: string },
): Promise<ConsumerPerfResult & { command: string }> {
  const args = [
    "org.apache.kafka.tools.ConsumerPerformance",
    "--bootstrap-server",
    brokers.join(","),
    "--topic",
    topic,
    "--num-records",
    String(records),
    "--group",
    group,
    "--timeout",
    "30000",
  ];
  const output = await java(jarDir, args, signal);
  return { ...parseConsumerPerformance(output), command: describe(args) };
}

async function java(jarDir: string, args: string[], signal?: AbortSignal): Promise<string> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("java", {
      args: ["-cp", `${jarDir}/*`, ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal,
    }).output();
  } catch (error) {
    throw new ServiceError(
      `Cannot run java for ${args[0]}: ${(error as Error).message}. Install a JDK 17+.`,
    );
  }
  const text = new TextDecoder();
  const stdout = text.decode(out.stdout);
  if (!out.success) {
    throw new ServiceError(
      `Cannot run ${args[0]} as it exited ${out.code}: ${text.decode(out.stderr).slice(-400)}`,
    );
  }
  return stdout;
}

function describe(args: string[]): string {
  return `java -cp '<kafka jars>/*' ${args.map((a) => a.includes(" ") ? `'${a}'` : a).join(" ")}`;
}
