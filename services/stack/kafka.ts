/**
 * Kafka for the stack: use the configured cluster when it answers, else run
 * the real Apache Kafka broker (KRaft, combined broker + controller) from the
 * Maven jars, one node or three. Each broker lives in `<stateDir>/kafka-N/`
 * (properties, data, logs, pid file); the cluster layout (ports, cluster id)
 * is saved in `<stateDir>/kafka-cluster.json` so that a restart reuses the
 * data.
 *
 * @module
 */

import { ServiceError } from "../../lib/cli.ts";
import type { Config } from "../../lib/config.ts";
import { names } from "../../lib/contracts.ts";
import { createKafka, ensureTopics } from "../../lib/kafka.ts";
import type { Logger } from "../../lib/log.ts";
import { retry } from "../../lib/retry.ts";
import {
  alivePids,
  dirOf,
  freshLayout,
  readLayout,
  startBrokers,
  stopBrokers,
  waitReady,
} from "./kafka_broker.ts";
import { type KafkaLayout, planBrokers, replicationFor, sameBrokers } from "./kafka_config.ts";
import { probeKafka } from "./kafka_probe.ts";
import { hostPort, isLocalHost, stateDirOf } from "./process.ts";

export { killBroker, startBroker } from "./kafka_broker.ts";

/** One broker of the stack's own cluster. */
export interface BrokerState {
  nodeId: number;
  address: string;
  controllerPort: number;
  /** Set while the broker runs. */
  pid?: number;
  logs: string;
}

/** What `up` or `status` found about Kafka. */
export interface KafkaState {
  /** `KAFKA_BROKERS` as configured. */
  address: string;
  /** Who runs the cluster at `address`: the stack, someone else, or nobody. */
  owner: "stack" | "external" | "none";
  /** Live broker ids in the cluster's metadata. */
  brokerIds: number[];
  /** The stack's own brokers (empty when it never started any here). */
  brokers: BrokerState[];
  /** Topics of the namespace that exist, and those missing. */
  topics: string[];
  missingTopics: string[];
  /** Node ids this call started, and topics it created. */
  started: number[];
  createdTopics: string[];
}

/** Whether `config`'s KAFKA_BROKERS names the brokers of `layout`. */
function servesConfig(config: Config, layout: KafkaLayout): boolean {
  if (!config.kafka.brokers.every((b) => isLocalHost(hostPort(b).host))) return false;
  try {
    return sameBrokers(planBrokers(config.kafka.brokers, layout.brokers.length), layout.brokers);
  } catch {
    return false; // KAFKA_BROKERS cannot name that many local brokers
  }
}

/**
 * Brings Kafka up: the stack's own brokers when they serve KAFKA_BROKERS
 * (restarting any that stopped), else the configured cluster when it
 * answers, else new brokers (`brokers`, default 1). Then creates the
 * namespace's six topics. Idempotent.
 */
export async function kafkaUp(
  config: Config,
  { brokers: wanted, log }: { brokers?: number; log?: Logger } = {},
): Promise<KafkaState> {
  const state = stateDirOf(config);
  const saved = await readLayout(state);
  const alive = await alivePids(state, saved);
  const ours = saved !== undefined && servesConfig(config, saved);
  if (saved && alive.size > 0) {
    const ports = saved.brokers.map((b) => b.port).join(", ");
    if (!ours) {
      throw new ServiceError(
        `Cannot use KAFKA_BROKERS=${config.kafka.brokers.join(",")}: the stack already runs ` +
          `Kafka on 127.0.0.1 port ${ports} from ${state}; run \`deno task stack down\` first`,
      );
    }
    if (wanted !== undefined && wanted !== saved.brokers.length) {
      throw new ServiceError(
        `Cannot start ${wanted} Kafka broker(s): the stack already runs ${saved.brokers.length} ` +
          `(port ${ports}); run \`deno task stack down\` first`,
      );
    }
  }
  let started: number[] = [];
  let clusterSize: number;
  if (saved && ours && alive.size > 0) {
    started = saved.brokers.map((b) => b.nodeId).filter((id) => !alive.has(id));
    if (started.length > 0) await startBrokers(config, saved, started, log);
    else await waitReady(config, saved, [], 30_000);
    clusterSize = saved.brokers.length;
  } else {
    const seen = await probeKafka(config, config.kafka.brokers);
    const count = wanted ?? saved?.brokers.length ?? 1;
    if (seen) {
      if (seen.brokerIds.length < count) {
        throw new ServiceError(
          `Cannot start ${count} Kafka brokers: ${config.kafka.brokers.join(",")} already ` +
            `answers with ${seen.brokerIds.length} broker(s) the stack did not start; stop it, ` +
            "or set KAFKA_BROKERS to free ports",
        );
      }
      clusterSize = seen.brokerIds.length;
    } else {
      const remote = config.kafka.brokers.find((b) => !isLocalHost(hostPort(b).host));
      if (remote) {
        throw new ServiceError(
          `Cannot reach Kafka at ${remote}: nothing answers, and the stack starts brokers on ` +
            "127.0.0.1 only. Start that cluster, or point KAFKA_BROKERS at 127.0.0.1",
        );
      }
      const plan = planBrokers(config.kafka.brokers, count);
      const layout = saved && sameBrokers(saved.brokers, plan)
        ? saved
        : await freshLayout(state, plan, saved, log);
      started = layout.brokers.map((b) => b.nodeId);
      await startBrokers(config, layout, started, log);
      clusterSize = layout.brokers.length;
    }
  }
  const createdTopics = await createTopics(config, clusterSize);
  return { ...(await kafkaStatus(config)), started, createdTopics };
}

/**
 * Creates the namespace's topics and waits until every partition has a
 * leader; returns the topics it created. On a cluster formed a moment ago a
 * new topic reaches some brokers' metadata late, and kafkajs' own wait for
 * leaders gives up on the first UNKNOWN_TOPIC_OR_PARTITION, so both steps
 * are retried (ensureTopics is idempotent).
 */
async function createTopics(config: Config, clusterSize: number): Promise<string[]> {
  const { replicationFactor, minInsync } = replicationFor(clusterSize);
  const admin = createKafka(config, { clientId: "instashop-stack" }).admin();
  await admin.connect();
  try {
    const wanted = Object.values(names(config.namespace).topics);
    const before = new Set(await admin.listTopics());
    await retry(
      () =>
        ensureTopics(admin, config.namespace, {
          partitions: config.kafka.partitions,
          replicationFactor,
          minInsyncReplicas: replicationFactor >= 3 ? minInsync : undefined,
        }),
      { what: "create the topics", attempts: 6 },
    );
    await retry(async () => {
      const { topics } = await admin.fetchTopicMetadata({ topics: wanted });
      const leaderless = topics.filter((t) => t.partitions.some((p) => p.leader < 0));
      if (leaderless.length > 0) {
        throw new Error(`no leader yet for ${leaderless.map((t) => t.name).join(", ")}`);
      }
    }, { what: "see the topics' leaders", attempts: 10 });
    // A new broker creates __consumer_offsets on the first group request and
    // answers NOT_COORDINATOR until it has loaded; stages asking for their
    // group offsets at that moment would fail, so the stack waits here.
    await retry(
      () => admin.fetchOffsets({ groupId: "instashop-stack-ready", topics: [wanted[0]!] }),
      { what: "reach the group coordinator", attempts: 15, maxDelayMs: 4000 },
    );
    return wanted.filter((t) => !before.has(t));
  } finally {
    await admin.disconnect();
  }
}

/** What runs now: the stack's brokers, the configured cluster, the namespace's topics. */
export async function kafkaStatus(config: Config): Promise<KafkaState> {
  const state = stateDirOf(config);
  const layout = await readLayout(state);
  const alive = await alivePids(state, layout);
  const seen = await probeKafka(config, config.kafka.brokers);
  const brokers = (layout?.brokers ?? []).map((b) => ({
    nodeId: b.nodeId,
    address: `127.0.0.1:${b.port}`,
    controllerPort: b.controllerPort,
    pid: alive.get(b.nodeId),
    logs: `${dirOf(state, b.nodeId)}/logs`,
  }));
  const wanted = Object.values(names(config.namespace).topics);
  const present = new Set(seen?.topics ?? []);
  return {
    address: config.kafka.brokers.join(","),
    owner: layout && alive.size > 0 && servesConfig(config, layout)
      ? "stack"
      : seen
      ? "external"
      : "none",
    brokerIds: seen?.brokerIds ?? [],
    brokers,
    topics: wanted.filter((t) => present.has(t)),
    missingTopics: wanted.filter((t) => !present.has(t)),
    started: [],
    createdTopics: [],
  };
}

/**
 * Stops the brokers the stack started (SIGTERM, all at once), or with `only`
 * those of the list whose process is still the one started (same pid);
 * returns their node ids.
 */
export async function kafkaDown(
  config: Config,
  { log, only }: { log?: Logger; only?: { id: number; pid?: number }[] } = {},
): Promise<number[]> {
  const state = stateDirOf(config);
  const layout = await readLayout(state);
  const ids = layout?.brokers.map((b) => b.nodeId) ?? [];
  const stopped = await stopBrokers(
    config,
    only ? ids.filter((id) => only.some((b) => b.id === id)) : ids,
    { pids: only ? new Map(only.map((b) => [b.id, b.pid])) : undefined },
  );
  for (const [id, pid] of stopped) log?.info(`🛑 Stopped Kafka broker ${id} (pid ${pid})`);
  return [...stopped.keys()];
}
