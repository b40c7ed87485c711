/**
 * What `deno task status` reads: Kafka (topics, end offsets, group lag), the
 * warehouse (rows, latest events) and Redis (metrics, heartbeats, dead
 * letters). Each store is read on its own with a time limit, so one that is
 * down shows as such and the others still report.
 *
 * @module
 */

import type { Config } from "../../lib/config.ts";
import { connect } from "../../lib/db.ts";
import { errorText, withDeadline } from "./deadline.ts";
import { type KafkaStatus, kafkaStatus } from "./status_kafka.ts";
import { type RedisStatus, redisStatus } from "./status_redis.ts";

export type { GroupStatus, KafkaStatus, PartitionLag, TopicStatus } from "./status_kafka.ts";
export { heartbeatStatus } from "./status_redis.ts";
export type { HeartbeatStatus, RedisStatus } from "./status_redis.ts";

/** A heartbeat older than this (of a stage that has ever beaten) makes status fail. */
export const DEFAULT_STALE_MS = 15_000;

export interface WarehouseEvent {
  event_id: string;
  event_type: string;
  customer_id: number;
  timestamp: string;
  processed_at: string;
}

export interface WarehouseStatus {
  ok: boolean;
  error?: string;
  database: string;
  /** False while the warehouse database or its tables do not exist (nothing consumed yet). */
  exists: boolean;
  realtime_events: number;
  fact_sales: number;
  last_events: WarehouseEvent[];
}

export interface StatusReport {
  namespace: string;
  at: string;
  stale_after_s: number;
  healthy: boolean;
  problems: string[];
  kafka: KafkaStatus;
  warehouse: WarehouseStatus;
  redis: RedisStatus;
}

const DEADLINE_MS = 10_000;
const UNDEFINED_DATABASE = "3D000";
const UNDEFINED_TABLE = "42P01";

/** Reads every store and judges health. */
export async function collectStatus(
  config: Config,
  { staleMs = DEFAULT_STALE_MS, now = () => Date.now() }: { staleMs?: number; now?: () => number } =
    {},
): Promise<StatusReport> {
  const [kafka, warehouse, redis] = await Promise.all([
    kafkaStatus(config),
    warehouseStatus(config),
    redisStatus(config, staleMs, now),
  ]);
  const problems: string[] = [];
  if (!kafka.ok) problems.push(`Kafka: ${kafka.error}`);
  if (!warehouse.ok) problems.push(`warehouse: ${warehouse.error}`);
  if (!redis.ok) problems.push(`Redis: ${redis.error}`);
  for (const beat of redis.heartbeats) {
    if (beat.stale) {
      problems.push(
        `${beat.stage}: last heartbeat ${beat.age_s} s ago (stale after ${staleMs / 1000} s)`,
      );
    }
  }
  return {
    namespace: config.namespace,
    at: new Date(now()).toISOString(),
    stale_after_s: staleMs / 1000,
    healthy: problems.length === 0,
    problems,
    kafka,
    warehouse,
    redis,
  };
}

/** Row counts and the five latest events of the warehouse. */
export async function warehouseStatus(config: Config): Promise<WarehouseStatus> {
  const database = new URL(config.databases.dwh).pathname.slice(1);
  const result: WarehouseStatus = {
    ok: true,
    database,
    exists: true,
    realtime_events: 0,
    fact_sales: 0,
    last_events: [],
  };
  const sql = connect(config.databases.dwh, { max: 1 });
  try {
    await withDeadline(
      (async () => {
        const [counts] = await sql<{ events: bigint; sales: bigint }[]>`
          select (select count(*) from realtime_events) as events,
                 (select count(*) from fact_sales) as sales`;
        result.realtime_events = Number(counts!.events);
        result.fact_sales = Number(counts!.sales);
        const rows = await sql<
          {
            event_id: string;
            event_type: string;
            customer_id: bigint;
            timestamp: Date;
            processed_at: Date;
          }[]
        >`select event_id, event_type, customer_id, "timestamp", processed_at
          from realtime_events order by processed_at desc, event_id desc limit 5`;
        result.last_events = rows.map((r) => ({
          event_id: r.event_id,
          event_type: r.event_type,
          customer_id: Number(r.customer_id),
          timestamp: r.timestamp.toISOString(),
          processed_at: r.processed_at.toISOString(),
        }));
      })(),
      DEADLINE_MS,
      `read the warehouse ${database}`,
    );
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === UNDEFINED_DATABASE || code === UNDEFINED_TABLE) result.exists = false;
    else {
      result.ok = false;
      result.error = errorText(error);
    }
  } finally {
    await sql.end({ timeout: 1 }).catch(() => {});
  }
  return result;
}
