/**
 * The stack's own Kafka brokers as processes: their folders and pid files,
 * the saved layout, formatting, detached start, the readiness check, and
 * fault injection (kill -9 and restart of one broker).
 *
 * @module
 */

import { ServiceError } from "../../lib/cli.ts";
import type { Config } from "../../lib/config.ts";
import type { Logger } from "../../lib/log.ts";
import { sleep } from "../../lib/retry.ts";
import {
  brokerCommand,
  type BrokerSpec,
  type KafkaLayout,
  log4jProperties,
  newClusterId,
  serverProperties,
} from "./kafka_config.ts";
import { ensureKafkaJars, requireJava } from "./kafka_jars.ts";
import { probeKafka, speaksKafka } from "./kafka_probe.ts";
import {
  launchDetached,
  livePid,
  portOpen,
  run,
  stateDirOf,
  stopProcess,
  tail,
} from "./process.ts";

export const dirOf = (state: string, id: number) => `${state}/kafka-${id}`;
export const pidFileOf = (state: string, id: number) => `${dirOf(state, id)}/broker.pid`;
export const markerOf = (state: string, id: number) => `${dirOf(state, id)}/server.properties`;

export async function readLayout(state: string): Promise<KafkaLayout | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(`${state}/kafka-cluster.json`)) as KafkaLayout;
  } catch {
    return undefined;
  }
}

export async function alivePids(state: string, layout?: KafkaLayout): Promise<Map<number, number>> {
  const alive = new Map<number, number>();
  for (const b of layout?.brokers ?? []) {
    const pid = await livePid(pidFileOf(state, b.nodeId), markerOf(state, b.nodeId));
    if (pid !== undefined) alive.set(b.nodeId, pid);
  }
  return alive;
}

export async function freshLayout(
  state: string,
  plan: BrokerSpec[],
  old: KafkaLayout | undefined,
  log?: Logger,
): Promise<KafkaLayout> {
  // Everything that can fail for a missing prerequisite fails before the old data goes.
  await checkPorts(plan);
  await requireJava();
  const { version } = await ensureKafkaJars({ log });
  for (const b of old?.brokers ?? []) {
    const dir = dirOf(state, b.nodeId);
    if (!(await Deno.stat(dir).then(() => true, () => false))) continue;
    log?.info(`🧹 Kafka layout changed; removing the old data in ${dir}`);
    await Deno.remove(dir, { recursive: true });
  }
  const layout = { clusterId: newClusterId(), version, brokers: plan };
  await Deno.mkdir(state, { recursive: true });
  await Deno.writeTextFile(`${state}/kafka-cluster.json`, JSON.stringify(layout, null, 2) + "\n");
  return layout;
}

/** One clear line when a port a broker needs is taken. */
async function checkPorts(specs: BrokerSpec[]): Promise<void> {
  for (const b of specs) {
    for (const port of [b.port, b.controllerPort]) {
      if (!(await portOpen("127.0.0.1", port))) continue;
      const kafka = await speaksKafka("127.0.0.1", port)
        ? " (a Kafka the stack did not start)"
        : "";
      throw new ServiceError(
        `Cannot start Kafka broker ${b.nodeId} on 127.0.0.1:${port}: the port is taken by ` +
          `another program${kafka}. Free it, set KAFKA_BROKERS to other ports, ` +
          "or use `docker compose up -d`",
      );
    }
  }
}

export async function startBrokers(
  config: Config,
  layout: KafkaLayout,
  ids: number[],
  log?: Logger,
): Promise<void> {
  const state = stateDirOf(config);
  const specs = layout.brokers.filter((b) => ids.includes(b.nodeId));
  await checkPorts(specs);
  await requireJava();
  const { dir: jarsDir } = await ensureKafkaJars({ log });
  await Promise.all(specs.map(async (b) => {
    const dir = dirOf(state, b.nodeId);
    await Deno.mkdir(`${dir}/logs`, { recursive: true });
    const dataDir = `${dir}/data`;
    await Deno.writeTextFile(
      `${dir}/server.properties`,
      serverProperties(layout, b, { dataDir, partitions: config.kafka.partitions }),
    );
    await Deno.writeTextFile(`${dir}/log4j2.properties`, log4jProperties());
    const formatted = await Deno.stat(`${dataDir}/meta.properties`).then(() => true, () => false);
    if (!formatted) await format(jarsDir, dir, layout.clusterId);
  }));
  const pids: number[] = [];
  for (const b of specs) {
    const dir = dirOf(state, b.nodeId);
    const pid = await launchDetached(brokerCommand({ jarsDir, brokerDir: dir }), {
      pidFile: pidFileOf(state, b.nodeId),
      logFile: `${dir}/logs/stdout.log`,
      cwd: dir,
    });
    pids.push(pid);
    log?.info(
      `🚀 Started Kafka broker ${b.nodeId} on 127.0.0.1:${b.port} ` +
        `(controller ${b.controllerPort}), pid ${pid}, logs ${dir}/logs`,
    );
  }
  await waitReady(config, layout, ids, layout.brokers.length > 1 ? 180_000 : 90_000);
}

async function format(jarsDir: string, dir: string, clusterId: string): Promise<void> {
  const result = await run([
    "java",
    "-Xmx256m",
    `-Dkafka.logs.dir=${dir}/logs`,
    `-Dlog4j2.configurationFile=${dir}/log4j2.properties`,
    "-cp",
    `${jarsDir}/*`,
    "kafka.tools.StorageTool",
    "format",
    "-t",
    clusterId,
    "-c",
    `${dir}/server.properties`,
  ]);
  if (!result || result.code !== 0) {
    const why = `${result?.stdout ?? ""}\n${result?.stderr ?? ""}`.trim().split("\n").slice(-3);
    throw new ServiceError(`Cannot format Kafka storage in ${dir}/data: ${why.join(" ")}`);
  }
}

/** Waits until every broker of `layout` shows in a metadata round trip. */
export async function waitReady(
  config: Config,
  layout: KafkaLayout,
  starting: number[],
  timeoutMs: number,
): Promise<void> {
  const state = stateDirOf(config);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const id of starting) {
      const pid = await livePid(pidFileOf(state, id), markerOf(state, id));
      if (pid === undefined) {
        const logs = `${dirOf(state, id)}/logs`;
        const last = await tail(`${logs}/stdout.log`, 3) || await tail(`${logs}/server.log`, 3);
        throw new ServiceError(
          `Kafka broker ${id} stopped while starting; see ${logs}/server.log` +
            (last ? `: ${last.replaceAll("\n", " | ")}` : ""),
        );
      }
    }
    if (await clusterReady(config, layout, starting)) return;
    if (Date.now() > deadline) {
      throw new ServiceError(
        `Kafka did not become ready within ${timeoutMs / 1000} s; see ${state}/kafka-*/logs`,
      );
    }
    await sleep(1000);
  }
}

/**
 * Every broker of `layout` is in the cluster's metadata, and each broker in
 * `starting` answers a metadata round trip itself: the metadata of the
 * others still lists a killed broker until its session times out.
 */
async function clusterReady(
  config: Config,
  layout: KafkaLayout,
  starting: number[],
): Promise<boolean> {
  const address = (b: BrokerSpec) => `127.0.0.1:${b.port}`;
  const seen = await probeKafka(config, layout.brokers.map(address), 5000);
  if (!seen || !layout.brokers.every((b) => seen.brokerIds.includes(b.nodeId))) return false;
  for (const b of layout.brokers.filter((b) => starting.includes(b.nodeId))) {
    const own = await probeKafka(config, [address(b)], 5000);
    if (!own?.brokerIds.includes(b.nodeId)) return false;
  }
  return true;
}

/**
 * Stops the given brokers of the stack at once with `signal` and waits until
 * each process is gone and its ports are closed: a JVM's sockets outlive
 * its main thread for a moment, and a restart must find the ports free.
 * Returns the node ids and pids it stopped.
 */
export async function stopBrokers(
  config: Config,
  ids: number[],
  { signal = "SIGTERM", pids }: {
    signal?: Deno.Signal;
    /** Stop a broker only while it runs as this pid (the process someone started). */
    pids?: Map<number, number | undefined>;
  } = {},
): Promise<Map<number, number>> {
  const state = stateDirOf(config);
  const layout = await readLayout(state);
  const alive = await alivePids(state, layout);
  const stopped = new Map(
    [...alive].filter(([id, pid]) => ids.includes(id) && (!pids || pids.get(id) === pid)),
  );
  await Promise.all([...stopped].map(async ([id, pid]) => {
    await stopProcess(pid, markerOf(state, id), { signal, graceMs: 30_000 });
    await Deno.remove(pidFileOf(state, id)).catch(() => {});
    const spec = layout!.brokers.find((b) => b.nodeId === id)!;
    for (let i = 0; i < 100; i++) {
      const open = await portOpen("127.0.0.1", spec.port, 200) ||
        await portOpen("127.0.0.1", spec.controllerPort, 200);
      if (!open) break;
      await sleep(100);
    }
  }));
  return stopped;
}

/**
 * Fault injection: sends `signal` (default SIGKILL, a crash) to broker
 * `nodeId` of the stack's cluster and waits until it is gone. Returns its pid.
 */
export async function killBroker(
  config: Config,
  nodeId: number,
  { signal = "SIGKILL" }: { signal?: Deno.Signal } = {},
): Promise<number> {
  const pid = (await stopBrokers(config, [nodeId], { signal })).get(nodeId);
  if (pid === undefined) {
    throw new ServiceError(`Cannot stop Kafka broker ${nodeId}: the stack does not run it`);
  }
  return pid;
}

/**
 * Starts broker `nodeId` of the stack's cluster again, on its old data, and
 * waits until it is back in the cluster. Returns its pid.
 */
export async function startBroker(
  config: Config,
  nodeId: number,
  { log }: { log?: Logger } = {},
): Promise<number> {
  const state = stateDirOf(config);
  const layout = await readLayout(state);
  if (!layout?.brokers.some((b) => b.nodeId === nodeId)) {
    throw new ServiceError(`Cannot start Kafka broker ${nodeId}: the stack has no such broker`);
  }
  const running = await livePid(pidFileOf(state, nodeId), markerOf(state, nodeId));
  if (running !== undefined) return running;
  await startBrokers(config, layout, [nodeId], log);
  const pid = await livePid(pidFileOf(state, nodeId), markerOf(state, nodeId));
  if (pid === undefined) {
    throw new ServiceError(
      `Kafka broker ${nodeId} did not stay up; see ${dirOf(state, nodeId)}/logs`,
    );
  }
  return pid;
}
