/**
 * Fault helpers that touch the services themselves: PostgreSQL sessions cut,
 * free ports, and a private Kafka (one or three brokers) or Redis started by
 * the stack in a temporary state folder, so that the shared services are
 * never stopped.
 *
 * @module
 */

import postgres from "postgres";
import { type Config, loadConfig } from "../lib/config.ts";
import { killBroker, stackDown, stackUp, startBroker } from "../services/stack/mod.ts";
import { keepLogs, type Stage } from "./_faults.ts";
import type { TestNamespace } from "./_support.ts";

/**
 * `pg_terminate_backend` on every session of the namespace's three databases
 * except our own; returns how many were cut.
 */
export async function cutConnections(config: Config): Promise<number> {
  const server = new URL(config.serverUrls.instashop);
  server.pathname = "/postgres";
  const databases = Object.values(config.databases).map((u) => new URL(u).pathname.slice(1));
  const sql = postgres(server.toString(), { max: 1, onnotice: () => {} });
  try {
    const rows = await sql`
      select pg_terminate_backend(pid) as cut from pg_stat_activity
      where datname = any(${databases}) and pid <> pg_backend_pid()`;
    return rows.filter((r) => r.cut).length;
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/**
 * A port p with p .. p + count - 1 all free on 127.0.0.1, below Linux's
 * ephemeral range (32768 and up): a port there can be taken by any outgoing
 * connection between this check and a broker's bind, which a cold broker
 * takes seconds to reach ("Kafka broker 1 stopped while starting", seen).
 */
export function freePorts(count: number): number {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20000 + 2 * Math.floor(Math.random() * 6000);
    const held: Deno.Listener[] = [];
    try {
      for (let i = 0; i < count; i++) {
        held.push(Deno.listen({ hostname: "127.0.0.1", port: port + i }));
      }
      return port;
    } catch {
      // taken; try another
    } finally {
      for (const l of held) l.close();
    }
  }
  throw new Error(`Cannot find ${count} free ports in a row`);
}

/** A private stack part (Kafka brokers or a Redis) in a temporary state folder. */
export interface PrivateStack {
  env: Record<string, string>;
  config: Config;
  stateDir: string;
  kill(nodeId: number): Promise<number>;
  start(nodeId: number): Promise<number>;
  /** Stops what this stack started and removes its state folder. */
  stop(): Promise<void>;
}

/**
 * `stackUp` with `overrides` (KAFKA_BROKERS and/or REDIS_URL on free ports)
 * and a temporary INSTASHOP_STATE_DIR: the stack starts what does not answer
 * there (our own broker(s) or redis-server) and uses the shared PostgreSQL.
 * It also creates the namespace's topics (RF 3, min ISR 2 with three brokers).
 * With `stateDir`, it starts again what an earlier call started there.
 */
export async function privateStack(
  baseEnv: Record<string, string>,
  overrides: Record<string, string>,
  { brokers = 1, stateDir: reuse }: { brokers?: 1 | 3; stateDir?: string } = {},
): Promise<PrivateStack> {
  const stateDir = reuse ?? await Deno.makeTempDir({ prefix: "faults-stack-" });
  const env = { ...baseEnv, ...overrides, INSTASHOP_STATE_DIR: stateDir };
  const config = loadConfig(env);
  const stop = async () => {
    await stackDown(config).catch((error) => console.error(`stackDown: ${error.message}`));
    await Deno.remove(stateDir, { recursive: true }).catch(() => {});
  };
  try {
    await stackUp(config, { brokers });
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    env,
    config,
    stateDir,
    kill: (nodeId) => killBroker(config, nodeId),
    start: (nodeId) => startBroker(config, nodeId),
    stop,
  };
}

/**
 * The end of a fault test, in the order that leaves nothing behind: the
 * stages killed (none may write or reconnect after the cleanup), their logs
 * kept, the private stack stopped, then the namespace dropped. Call it in
 * `finally` with whatever was started, also when `privateStack` itself
 * failed: the stack creates the namespace's databases before it starts
 * Kafka, so a broker that does not come up used to leave them behind. Every
 * step runs even when an earlier one failed; failures are printed and the
 * first is thrown.
 */
export async function teardown(
  { ns, stages = [], stack }: { ns: TestNamespace; stages?: Stage[]; stack?: PrivateStack },
): Promise<void> {
  const errors: unknown[] = [];
  const step = async (fn: () => Promise<unknown>) => {
    try {
      await fn();
    } catch (error) {
      console.error(`teardown of ${ns.namespace}: ${(error as Error).message}`);
      errors.push(error);
    }
  };
  for (const stage of stages) await step(() => stage.kill());
  await step(() => keepLogs(ns.namespace, stages));
  if (stack) await step(() => stack.stop());
  await step(() => ns.cleanup());
  if (errors.length > 0) throw errors[0];
}
