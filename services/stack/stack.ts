/**
 * The whole stack: PostgreSQL, Redis and Kafka together, under one lock so
 * that two `up` at once never start anything twice, and the status lines
 * the CLI prints.
 *
 * @module
 */

import type { Config } from "../../lib/config.ts";
import type { Logger } from "../../lib/log.ts";
import { kafkaDown, type KafkaState, kafkaStatus, kafkaUp } from "./kafka.ts";
import { postgresDown, type PostgresState, postgresStatus, postgresUp } from "./postgres.ts";
import { stateDirOf, withLock } from "./process.ts";
import { redisDown, type RedisState, redisStatus, redisUp } from "./redis.ts";

/** What runs where. */
export interface StackState {
  postgres: PostgresState;
  redis: RedisState;
  kafka: KafkaState;
}

export interface StackUpOptions {
  /** Kafka brokers to start when none answer (1 or 3); default: what runs, else 1. */
  brokers?: number;
  log?: Logger;
}

/**
 * Brings the stack up for `config`'s namespace: services that answer are
 * used, missing ones are started (detached, they outlive the caller), and
 * the namespace's databases and topics are created. Idempotent.
 *
 * @example
 * ```ts ignore
 * import { loadConfig } from "../../lib/config.ts";
 * import { stackUp } from "./mod.ts";
 * const state = await stackUp(loadConfig(), { brokers: 3 });
 * state.kafka.brokerIds; // [1, 2, 3]
 * ```
 */
export async function stackUp(
  config: Config,
  { brokers, log }: StackUpOptions = {},
): Promise<StackState> {
  return await withLock(stateDirOf(config), async () => {
    const [postgres, redis, kafka] = await Promise.allSettled([
      postgresUp(config, { log }),
      redisUp(config, { log }),
      kafkaUp(config, { brokers, log }),
    ]);
    for (const result of [postgres, redis, kafka]) {
      if (result.status === "rejected") throw result.reason;
    }
    return {
      postgres: (postgres as PromiseFulfilledResult<PostgresState>).value,
      redis: (redis as PromiseFulfilledResult<RedisState>).value,
      kafka: (kafka as PromiseFulfilledResult<KafkaState>).value,
    };
  });
}

export interface StackDownOptions {
  log?: Logger;
  /**
   * Stop only what this `stackUp` result started, and only while the very
   * process it started still runs (`deno task start` on exit). Without it,
   * everything the stack ever started from this state folder stops
   * (`deno task stack down`).
   */
  only?: StackState;
}

/**
 * Stops what the stack started from `config.stateDir` (never a service it
 * found running), or with `only` just what one `stackUp` started; returns
 * what it stopped, e.g. `["Kafka broker 1", "Redis"]`.
 *
 * @example
 * ```ts ignore
 * const state = await stackUp(config); // started Redis, found Kafka running
 * await stackDown(config, { only: state }); // stops Redis, leaves Kafka to whoever started it
 * ```
 */
export async function stackDown(
  config: Config,
  { log, only }: StackDownOptions = {},
): Promise<string[]> {
  return await withLock(stateDirOf(config), async () => {
    const stopped: string[] = [];
    const brokers = only?.kafka.started.map((id) => ({
      id,
      pid: only.kafka.brokers.find((b) => b.nodeId === id)?.pid,
    }));
    for (const id of await kafkaDown(config, { log, only: brokers })) {
      stopped.push(`Kafka broker ${id}`);
    }
    if ((!only || only.redis.started) && await redisDown(config, { log, pid: only?.redis.pid })) {
      stopped.push("Redis");
    }
    if (
      (!only || only.postgres.started) &&
      await postgresDown(config, { log, pid: only?.postgres.pid })
    ) {
      stopped.push("PostgreSQL");
    }
    return stopped;
  });
}

/** What runs where, without changing anything. */
export async function stackStatus(config: Config): Promise<StackState> {
  const [postgres, redis, kafka] = await Promise.all([
    postgresStatus(config),
    redisStatus(config),
    kafkaStatus(config),
  ]);
  return { postgres, redis, kafka };
}

/** Whether all three services answer and the namespace's databases and topics exist. */
export function stackHealthy(state: StackState): boolean {
  return state.postgres.owner !== "none" && state.postgres.missingDatabases.length === 0 &&
    state.redis.owner !== "none" &&
    state.kafka.owner !== "none" && state.kafka.missingTopics.length === 0;
}

/** Names of what `up` started, e.g. `["PostgreSQL", "Kafka broker 1"]`. */
export function startedBy(state: StackState): string[] {
  return [
    ...(state.postgres.started ? ["PostgreSQL"] : []),
    ...(state.redis.started ? ["Redis"] : []),
    ...state.kafka.started.map((id) => `Kafka broker ${id}`),
  ];
}

/**
 * The status table: one line per service (and per broker the stack runs).
 *
 * @example
 * ```ts ignore
 * for (const line of formatStatus(await stackStatus(config))) console.log(line);
 * // PostgreSQL  127.0.0.1:5432  running, not started by the stack  databases: instashop, crm_db, dwh_db
 * ```
 */
export function formatStatus(state: StackState): string[] {
  const { postgres: pg, redis, kafka } = state;
  const who = (owner: string, pid?: number) =>
    owner === "stack"
      ? `running, started by the stack (pid ${pid})`
      : owner === "external"
      ? "running, not started by the stack"
      : "not running";
  const row = (name: string, address: string, what: string, extra: string) =>
    `${name.padEnd(11)} ${address.padEnd(15)} ${what}${extra ? `  ${extra}` : ""}`;
  const missing = (list: string[]) => list.length ? `; missing: ${list.join(", ")}` : "";
  const lines = [
    row(
      "PostgreSQL",
      pg.address,
      who(pg.owner, pg.pid),
      pg.owner === "none"
        ? ""
        : `databases: ${pg.databases.join(", ") || "none"}${missing(pg.missingDatabases)}` +
          (pg.dataDir ? `; data ${pg.dataDir}, log ${pg.logFile}` : ""),
    ),
    row(
      "Redis",
      redis.address,
      who(redis.owner, redis.pid),
      redis.dataDir ? `data ${redis.dataDir}` : "",
    ),
    row(
      "Kafka",
      kafka.address,
      kafka.owner === "stack" ? "running, started by the stack" : who(kafka.owner),
      kafka.owner === "none"
        ? ""
        : `${kafka.brokerIds.length} broker(s); topics ${kafka.topics.length}/${
          kafka.topics.length + kafka.missingTopics.length
        }${missing(kafka.missingTopics)}`,
    ),
  ];
  for (const b of kafka.brokers) {
    lines.push(
      `  broker ${b.nodeId}  ${b.address} (controller ${b.controllerPort})  ` +
        `${b.pid !== undefined ? `pid ${b.pid}` : "stopped"}  logs ${b.logs}`,
    );
  }
  return lines;
}
