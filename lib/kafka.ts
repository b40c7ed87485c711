/**
 * The one module that knows the Kafka client library (kafkajs). Stages get
 * clients, producers, consumers and admin from here, so that swapping the
 * client (issue: kafkajs vs @platformatic/kafka) touches one file.
 *
 * @module
 */

import "./sealed_env.ts";
// Before any connection: no 40 ms delayed-ACK waits on small writes.
import "./tcp_nodelay.ts";
// Before any producer: kafkajs' varint writes without a Buffer per varint (same bytes).
import "./kafkajs_fast.ts";
import process from "node:process";
import {
  type Admin,
  type Consumer,
  type ConsumerConfig,
  type EachBatchPayload,
  type IHeaders,
  Kafka,
  type KafkaMessage,
  logLevel,
  type Message,
  Partitioners,
  type PartitionMetadata,
  type Producer,
  type ProducerConfig,
} from "kafkajs";
import type { Config } from "./config.ts";
import { names, TOPICS } from "./contracts.ts";
import type { Logger } from "./log.ts";

export type { Admin, Consumer, EachBatchPayload, IHeaders, Kafka, KafkaMessage, Message, Producer };

silenceNegativeTimeoutWarning();

export interface KafkaOptions {
  clientId: string;
  log?: Logger;
  /** kafkajs' own log level (default ERROR; its WARN lines are mostly noise). */
  level?: "nothing" | "error" | "warn" | "info";
}

/** A kafkajs client for the configured brokers, logging through `log`. */
export function createKafka(
  config: Config,
  { clientId, log, level = "error" }: KafkaOptions,
): Kafka {
  const levels = {
    nothing: logLevel.NOTHING,
    error: logLevel.ERROR,
    warn: logLevel.WARN,
    info: logLevel.INFO,
  };
  return new Kafka({
    clientId,
    brokers: [...config.kafka.brokers],
    logLevel: levels[level],
    connectionTimeout: 3000,
    requestTimeout: 30000,
    retry: { initialRetryTime: 200, retries: 8, maxRetryTime: 5000 },
    logCreator: () => ({ level, log: entry }) => {
      const text = `kafka: ${entry.message}${entry.error ? ` (${entry.error})` : ""}`;
      if (!log) return;
      if (level <= logLevel.ERROR) log.error(text);
      else log.warn(text);
    },
  });
}

/** An idempotent producer with acks=all on every send (see {@link send}). */
export function createProducer(kafka: Kafka, options: ProducerConfig = {}): Producer {
  return kafka.producer({
    idempotent: true,
    maxInFlightRequests: 5,
    createPartitioner: Partitioners.DefaultPartitioner,
    allowAutoTopicCreation: false,
    ...options,
  });
}

/**
 * The partition kafkajs' default (Java-compatible, murmur2) partitioner gives
 * a keyed message in a topic of `partitions` partitions. Producers that need
 * to know where each message goes (to check that every partition was
 * acknowledged) set it explicitly with this, so it cannot differ from the
 * partition kafkajs would have chosen.
 */
export function keyPartition(key: string, partitions: number): number {
  let known = keyPartitions.get(partitions);
  if (!known) keyPartitions.set(partitions, known = new Map());
  let partition = known.get(key);
  if (partition === undefined) {
    // murmur2 over a Buffer made from the key: about 1 µs under Deno, so remembered
    // (keys are customer ids; the bound keeps memory flat if there are very many).
    if (known.size >= 100_000) known.clear();
    const metadata: PartitionMetadata[] = Array.from({ length: partitions }, (_, i) => ({
      partitionErrorCode: 0,
      partitionId: i,
      leader: 0,
      replicas: [0],
      isr: [0],
    }));
    partition = keyed({
      topic: "",
      partitionMetadata: metadata,
      message: { key, value: null },
    });
    known.set(key, partition);
  }
  return partition;
}
const keyed = Partitioners.DefaultPartitioner();
const keyPartitions = new Map<number, Map<string, number>>();

/**
 * How long a fetch of a `--drain` run waits for data that is not there
 * (kafkajs' `maxWaitTimeInMs`, 100 ms otherwise). A drain reads up to end
 * offsets it knows, so an empty fetch has nothing to wait for, and stopping
 * the consumer waits for the fetch in flight: every drain ended up to 100 ms
 * after its last commit, and its last partial fetch came up to 100 ms late.
 */
export const DRAIN_FETCH_WAIT_MS = 10;

/**
 * A consumer that commits by hand: callers resolve offsets and commit after
 * their sink. A setting given as `undefined` keeps its default here.
 */
export function createConsumer(kafka: Kafka, config: ConsumerConfig): Consumer {
  const given = Object.entries(config).filter(([, value]) => value !== undefined);
  return kafka.consumer({
    sessionTimeout: 30000,
    heartbeatInterval: 3000,
    maxBytesPerPartition: 4 * 1024 * 1024,
    maxWaitTimeInMs: 100,
    allowAutoTopicCreation: false,
    ...Object.fromEntries(given) as ConsumerConfig,
  });
}

export interface TopicOptions {
  partitions: number;
  replicationFactor?: number;
  minInsyncReplicas?: number;
}

/**
 * Creates the six topics of `namespace` when missing; idempotent. Returns the
 * names it created.
 */
export async function ensureTopics(
  admin: Admin,
  namespace: string,
  { partitions, replicationFactor = 1, minInsyncReplicas }: TopicOptions,
): Promise<string[]> {
  const n = names(namespace);
  const existing = new Set(await admin.listTopics());
  const wanted = Object.keys(TOPICS).map((k) => n.topics[k as keyof typeof TOPICS]);
  const missing = wanted.filter((t) => !existing.has(t));
  if (missing.length === 0) return [];
  const configEntries = [
    // Room for a 1 MB poison message on input topics and its dead letter.
    { name: "max.message.bytes", value: String(4 * 1024 * 1024) },
    ...(minInsyncReplicas
      ? [{ name: "min.insync.replicas", value: String(minInsyncReplicas) }]
      : []),
  ];
  try {
    // kafkajs' own waitForLeaders fails at random with UNKNOWN_TOPIC_OR_PARTITION
    // right after creation; we poll metadata ourselves instead.
    await admin.createTopics({
      waitForLeaders: false,
      topics: missing.map((topic) => ({
        topic,
        numPartitions: topic === n.topics.deadLetters ? 1 : partitions,
        replicationFactor,
        configEntries,
      })),
    });
  } catch (error) {
    // Another process created them between our list and our create.
    if ((error as { type?: string }).type !== "TOPIC_ALREADY_EXISTS") throw error;
  }
  await waitForLeaders(admin, missing);
  return missing;
}

/** Polls metadata until every partition of `topics` has a leader (or 30 s pass). */
export async function waitForLeaders(admin: Admin, topics: string[]): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const { topics: meta } = await admin.fetchTopicMetadata({ topics });
      const ready = meta.length === topics.length &&
        meta.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0));
      if (ready) return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
    }
    if (Date.now() > deadline) {
      throw new Error(`Cannot use topics ${topics.join(", ")}: no leader after 30 s`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Deletes every topic of `namespace` (tests clean up with this). */
export async function deleteTopics(admin: Admin, namespace: string): Promise<void> {
  const n = names(namespace);
  const existing = new Set(await admin.listTopics());
  const topics = Object.values(n.topics).filter((t) => existing.has(t));
  if (topics.length > 0) await admin.deleteTopics({ topics, timeout: 10000 });
}

/** Sum over partitions of (high - low) watermark of `topic`: messages it holds now. */
export async function topicMessageCount(admin: Admin, topic: string): Promise<number> {
  const offsets = await admin.fetchTopicOffsets(topic);
  return offsets.reduce((sum, p) => sum + Number(p.high) - Number(p.low), 0);
}

// kafkajs computes a negative timeout in its request queue when the clock moves;
// Node's compat layer warns on every occurrence. The timer still fires at 1 ms.
function silenceNegativeTimeoutWarning() {
  const emit = process.emitWarning.bind(process);
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    const name = typeof warning === "string" ? rest[0] : warning.name;
    if (name === "TimeoutNegativeWarning") return;
    // deno-lint-ignore no-explicit-any
    (emit as any)(warning, ...rest);
  }) as typeof process.emitWarning;
}
