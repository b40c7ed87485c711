/**
 * The pure part of running Kafka: which ports each broker gets, its
 * `server.properties`, its Log4j2 config, replication settings and cluster
 * ids. No I/O here, so all of it is unit-tested.
 *
 * @module
 */

import { UsageError } from "../../lib/cli.ts";
import { hostPort, isLocalHost } from "./process.ts";

/** One broker the stack runs (combined broker + KRaft controller). */
export interface BrokerSpec {
  nodeId: number;
  /** Client port (PLAINTEXT listener), advertised as 127.0.0.1:port. */
  port: number;
  /** KRaft controller port. */
  controllerPort: number;
}

/** The layout of the stack's Kafka cluster, saved in `<stateDir>/kafka-cluster.json`. */
export interface KafkaLayout {
  clusterId: string;
  version: string;
  brokers: BrokerSpec[];
}

/** Broker counts `--brokers` accepts: one node, or the seed's kafka1..3. */
export const BROKER_COUNTS = [1, 3] as const;

/**
 * Ports of `count` local brokers from `KAFKA_BROKERS`: its entries in order
 * when it lists enough, else the first port and every second port after it
 * (9092, 9094, 9096). Each controller listens on its broker's port + 1.
 *
 * @example
 * ```ts
 * import { planBrokers } from "./kafka_config.ts";
 * planBrokers(["127.0.0.1:9092"], 3).map((b) => `${b.port}/${b.controllerPort}`);
 * // ["9092/9093", "9094/9095", "9096/9097"]
 * ```
 */
export function planBrokers(brokers: readonly string[], count: number): BrokerSpec[] {
  const addresses = brokers.map(hostPort);
  const remote = addresses.find((a) => !isLocalHost(a.host));
  if (remote) {
    throw new UsageError(
      `Cannot start Kafka on ${remote.host}: the stack starts brokers on 127.0.0.1 only; ` +
        "point KAFKA_BROKERS at 127.0.0.1, or start that cluster yourself",
    );
  }
  const ports = addresses.length >= count
    ? addresses.slice(0, count).map((a) => a.port)
    : Array.from({ length: count }, (_, i) => addresses[0]!.port + 2 * i);
  const specs = ports.map((port, i) => ({ nodeId: i + 1, port, controllerPort: port + 1 }));
  const all = specs.flatMap((s) => [s.port, s.controllerPort]);
  const clash = all.find((p, i) => all.indexOf(p) !== i || p > 65535);
  if (clash !== undefined) {
    throw new UsageError(
      `Cannot use KAFKA_BROKERS as ${count} broker ports with controllers on port + 1: ` +
        `port ${clash} is used twice or out of range; current value is ${
          JSON.stringify(brokers.join(","))
        }`,
    );
  }
  return specs;
}

/** Replication for a cluster of `brokers`: RF 3 with min ISR 2 from three brokers up. */
export function replicationFor(brokers: number): { replicationFactor: number; minInsync: number } {
  const replicationFactor = Math.min(3, Math.max(1, brokers));
  return { replicationFactor, minInsync: replicationFactor >= 3 ? 2 : 1 };
}

/** `server.properties` of one broker of `layout`. */
export function serverProperties(
  layout: KafkaLayout,
  broker: BrokerSpec,
  { dataDir, partitions }: { dataDir: string; partitions: number },
): string {
  const { replicationFactor: rf, minInsync } = replicationFor(layout.brokers.length);
  const voters = layout.brokers.map((b) => `${b.nodeId}@127.0.0.1:${b.controllerPort}`).join(",");
  const lines = [
    "# Written by `deno task stack up`; rewritten on every start.",
    "process.roles=broker,controller",
    `node.id=${broker.nodeId}`,
    `controller.quorum.voters=${voters}`,
    `listeners=PLAINTEXT://127.0.0.1:${broker.port},CONTROLLER://127.0.0.1:${broker.controllerPort}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${broker.port}`,
    "controller.listener.names=CONTROLLER",
    "inter.broker.listener.name=PLAINTEXT",
    "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
    `log.dirs=${dataDir}`,
    `num.partitions=${partitions}`,
    `default.replication.factor=${rf}`,
    `min.insync.replicas=${minInsync}`,
    `offsets.topic.replication.factor=${rf}`,
    `transaction.state.log.replication.factor=${rf}`,
    `transaction.state.log.min.isr=${minInsync}`,
    `share.coordinator.state.topic.replication.factor=${rf}`,
    `share.coordinator.state.topic.min.isr=${minInsync}`,
    // A new consumer group starts at once instead of waiting 3 s for more members.
    "group.initial.rebalance.delay.ms=0",
    // Sized for a small machine (2 cores).
    "num.network.threads=2",
    "num.io.threads=4",
  ];
  return lines.join("\n") + "\n";
}

/**
 * Log4j2 config: INFO to `<kafka.logs.dir>/server.log` (rolled at 20 MB, 3
 * kept), warnings also to stdout (`stdout.log`). A `.properties` file needs no
 * YAML parser on the class path.
 */
export function log4jProperties(): string {
  return [
    "status = warn",
    "appender.file.type = RollingFile",
    "appender.file.name = FILE",
    "appender.file.fileName = ${sys:kafka.logs.dir}/server.log",
    "appender.file.filePattern = ${sys:kafka.logs.dir}/server.log.%i",
    "appender.file.layout.type = PatternLayout",
    "appender.file.layout.pattern = [%d] %p %m (%c)%n",
    "appender.file.policies.type = Policies",
    "appender.file.policies.size.type = SizeBasedTriggeringPolicy",
    "appender.file.policies.size.size = 20MB",
    "appender.file.strategy.type = DefaultRolloverStrategy",
    "appender.file.strategy.max = 3",
    "appender.console.type = Console",
    "appender.console.name = STDOUT",
    "appender.console.layout.type = PatternLayout",
    "appender.console.layout.pattern = [%d] %p %m (%c)%n",
    "appender.console.filter.threshold.type = ThresholdFilter",
    "appender.console.filter.threshold.level = warn",
    "rootLogger.level = INFO",
    "rootLogger.appenderRef.file.ref = FILE",
    "rootLogger.appenderRef.console.ref = STDOUT",
    // Client-side chatter of the broker's own clients is noise at INFO.
    "logger.clients.name = org.apache.kafka.clients",
    "logger.clients.level = WARN",
    "",
  ].join("\n");
}

/** The JVM command line of one broker. Heap is small: the machine is shared. */
export function brokerCommand(
  { jarsDir, brokerDir }: { jarsDir: string; brokerDir: string },
): string[] {
  return [
    "java",
    "-Xms256m",
    "-Xmx768m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
    `-Dkafka.logs.dir=${brokerDir}/logs`,
    `-Dlog4j2.configurationFile=${brokerDir}/log4j2.properties`,
    "-cp",
    `${jarsDir}/*`,
    "kafka.Kafka",
    `${brokerDir}/server.properties`,
  ];
}

/**
 * A Kafka cluster id: 16 random bytes, base64url without padding, as
 * `kafka-storage random-uuid` prints (saves starting a JVM).
 */
export function newClusterId(): string {
  for (;;) {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    const id = btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_")
      .replace(/=+$/, "");
    // StorageTool reads an id starting with "-" as a flag; Kafka's own generator draws again.
    if (!id.startsWith("-")) return id;
  }
}

/** Whether two layouts describe the same brokers on the same ports. */
export function sameBrokers(a: readonly BrokerSpec[], b: readonly BrokerSpec[]): boolean {
  return a.length === b.length &&
    a.every((x, i) => x.port === b[i]!.port && x.controllerPort === b[i]!.controllerPort);
}
