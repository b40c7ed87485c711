/**
 * The benchmark's own namespace on the shared stack (databases, topics,
 * groups, Redis keys all prefixed), created at start and dropped at the end
 * unless `--keep`. Only names under this namespace are ever touched.
 *
 * @module
 */

import postgres from "postgres";
import { type Config, loadConfig } from "../../lib/config.ts";
import { names } from "../../lib/contracts.ts";
import { createKafka, ensureTopics } from "../../lib/kafka.ts";
import { createRedis } from "../../lib/redis.ts";
import { retry } from "../../lib/retry.ts";

export interface BenchNamespace {
  namespace: string;
  config: Config;
  /** Environment for stage processes: the parent's, with `PIPELINE_NAMESPACE` set. */
  env: Record<string, string>;
  cleanup(): Promise<void>;
}

/** A fresh namespace like `bench_k3x9a` (random suffix, so parallel runs never collide). */
export function benchNamespaceName(prefix = "bench"): string {
  const random = crypto.getRandomValues(new Uint32Array(1))[0]!.toString(36);
  return `${prefix}_${random}`.slice(0, 40);
}

/**
 * Creates the namespace and its pipeline topics (the stages would create them
 * too; creating them first keeps topic creation out of the timings).
 */
export async function createBenchNamespace(
  base: Record<string, string>,
  prefix = "bench",
): Promise<BenchNamespace> {
  const namespace = benchNamespaceName(prefix);
  const env = { ...base, PIPELINE_NAMESPACE: namespace };
  const config = loadConfig(env);
  const admin = createKafka(config, { clientId: "bench-admin" }).admin();
  await admin.connect();
  try {
    await ensureTopics(admin, namespace, { partitions: config.kafka.partitions });
  } finally {
    await admin.disconnect();
  }
  return { namespace, config, env, cleanup: () => dropNamespace(config) };
}

/** Creates an extra topic of the namespace (anchors, client comparison). */
export async function createExtraTopic(
  config: Config,
  suffix: string,
  partitions = config.kafka.partitions,
): Promise<string> {
  const topic = `${config.namespace}.${suffix}`;
  const admin = createKafka(config, { clientId: "bench-admin" }).admin();
  await admin.connect();
  try {
    await admin.createTopics({
      waitForLeaders: false,
      topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }],
    });
    // kafkajs' own wait gives up on UNKNOWN_TOPIC_OR_PARTITION while the broker is busy.
    await retry(async () => {
      const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
      const ready = topics[0]?.partitions.filter((p) => p.leader >= 0).length ?? 0;
      if (ready < partitions) throw new Error(`${ready}/${partitions} partitions have a leader`);
    }, { what: `see topic ${topic} ready`, attempts: 20, initialDelayMs: 100, maxDelayMs: 1000 });
  } finally {
    await admin.disconnect();
  }
  return topic;
}

/** Drops every database, topic, group and Redis key of the namespace. */
export async function dropNamespace(config: Config): Promise<void> {
  const prefix = config.namespace;
  if (!prefix) throw new Error("refusing to drop the default namespace");
  const admin = createKafka(config, { clientId: "bench-cleanup" }).admin();
  await admin.connect();
  try {
    const topics = (await admin.listTopics()).filter((t) => t.startsWith(`${prefix}.`));
    if (topics.length > 0) await admin.deleteTopics({ topics, timeout: 20000 });
    const groups = (await admin.listGroups()).groups.map((g) => g.groupId)
      .filter((g) => g.startsWith(`${prefix}.`));
    if (groups.length > 0) await admin.deleteGroups(groups).catch(() => {});
  } finally {
    await admin.disconnect();
  }
  const server = new URL(config.serverUrls.instashop);
  server.pathname = "/postgres";
  const sql = postgres(server.toString(), { max: 1, onnotice: () => {} });
  try {
    for (const url of Object.values(config.databases)) {
      const db = new URL(url).pathname.slice(1);
      await sql.unsafe(`drop database if exists "${db}" with (force)`);
    }
  } finally {
    await sql.end();
  }
  const redis = createRedis(config);
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(
        cursor,
        "MATCH",
        names(prefix).redis("*"),
        "COUNT",
        1000,
      );
      if (keys.length > 0) await redis.del(...keys);
      cursor = next;
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
}
