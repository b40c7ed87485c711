/**
 * Does Kafka answer? Two checks: a raw ApiVersions request that tells a Kafka
 * broker from any other program on the port within a second, and the real
 * readiness check, a metadata round trip through lib/kafka.ts' admin client.
 *
 * @module
 */

import type { Config } from "../../lib/config.ts";
import { createKafka } from "../../lib/kafka.ts";
import { hostPort, within } from "./process.ts";

const CORRELATION_ID = 0x1c57a5c;

/**
 * Whether a Kafka broker listens on host:port: it answers an ApiVersions
 * request (API key 18) with our correlation id. Any Kafka answers this, even
 * with UNSUPPORTED_VERSION, because clients negotiate versions through it.
 */
export async function speaksKafka(host: string, port: number, timeoutMs = 2000): Promise<boolean> {
  let conn: Deno.TcpConn | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("timeout")), timeoutMs);
  });
  try {
    conn = await Promise.race([Deno.connect({ hostname: host, port }), timeout]);
    const clientId = new TextEncoder().encode("instashop-stack");
    const request = new Uint8Array(14 + clientId.length);
    const view = new DataView(request.buffer);
    view.setInt32(0, request.length - 4);
    view.setInt16(4, 18); // ApiVersions
    view.setInt16(6, 0);
    view.setInt32(8, CORRELATION_ID);
    view.setInt16(12, clientId.length);
    request.set(clientId, 14);
    await Promise.race([conn.write(request), timeout]);
    const reply = new Uint8Array(8);
    let read = 0;
    while (read < reply.length) {
      const n = await Promise.race([conn.read(reply.subarray(read)), timeout]);
      if (n === null) return false;
      read += n;
    }
    return new DataView(reply.buffer).getInt32(4) === CORRELATION_ID;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
    try {
      conn?.close();
    } catch { /* already closed */ }
  }
}

/** What a metadata round trip saw: live broker ids and topic names. */
export interface KafkaProbe {
  brokerIds: number[];
  topics: string[];
}

/**
 * A metadata round trip to the brokers among `addresses` that accept
 * connections; undefined when none answers within `timeoutMs`.
 *
 * @example
 * ```ts ignore
 * const seen = await probeKafka(loadConfig(), ["127.0.0.1:9092"]);
 * seen?.brokerIds; // [1]
 * ```
 */
export async function probeKafka(
  config: Config,
  addresses: readonly string[],
  timeoutMs = 10_000,
): Promise<KafkaProbe | undefined> {
  const open: string[] = [];
  for (const address of addresses) {
    const { host, port } = hostPort(address);
    if (await speaksKafka(host, port)) open.push(address);
  }
  if (open.length === 0) return undefined;
  const admin = createKafka(
    { ...config, kafka: { ...config.kafka, brokers: open } },
    { clientId: "instashop-stack", level: "nothing" },
  ).admin();
  try {
    return await within(
      (async () => {
        await admin.connect();
        const cluster = await admin.describeCluster();
        const topics = await admin.listTopics();
        return { brokerIds: cluster.brokers.map((b) => b.nodeId).sort((a, b) => a - b), topics };
      })(),
      timeoutMs,
    );
  } catch {
    return undefined;
  } finally {
    await within(admin.disconnect().catch(() => {}), 2000);
  }
}
