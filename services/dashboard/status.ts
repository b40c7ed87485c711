/**
 * The status panel, as the seed's "Redis: Conectado / Spark: Procesando /
 * Kafka: Datos fluyendo", from what the server could reach and the stages'
 * heartbeats. Pure: the clock is a parameter.
 *
 * @module
 */

import { formatAge, formatRate } from "./format.ts";
import type { StatusItem } from "./model.ts";
import type { HeartbeatStage, HeartbeatView } from "./snapshot.ts";

/** A heartbeat older than this means the stage is not running (they beat every few seconds). */
export const STALE_AFTER_MS = 15_000;

/** Whether a dependency answered the last read. */
export interface Reachability {
  ok: boolean;
  /** Why not (already free of credentials). */
  error?: string;
  /** Reachable but not set up yet (e.g. warehouse tables missing). */
  note?: string;
}

export interface StatusInput {
  redis: Reachability;
  warehouse: Reachability;
  heartbeats: Partial<Record<HeartbeatStage, HeartbeatView>>;
  now: number;
}

/**
 * The four lines of the status panel.
 *
 * @example
 * ```ts
 * import { buildStatus } from "./status.ts";
 * const lines = buildStatus({
 *   redis: { ok: true }, warehouse: { ok: true }, heartbeats: {}, now: Date.now(),
 * });
 * lines.map((l) => l.level); // ["ok", "warn", "warn", "ok"]
 * ```
 */
export function buildStatus({ redis, warehouse, heartbeats, now }: StatusInput): StatusItem[] {
  return [
    {
      key: "redis",
      label: "Redis",
      level: redis.ok ? "ok" : "down",
      text: redis.ok ? "Connected" : `Unreachable: ${redis.error ?? "no answer"}`,
    },
    aggregatorStatus(heartbeats.aggregate, now, redis.ok),
    kafkaStatus(heartbeats, now),
    {
      key: "warehouse",
      label: "Warehouse",
      level: warehouse.ok ? (warehouse.note ? "warn" : "ok") : "down",
      text: warehouse.ok
        ? warehouse.note ?? "Reachable"
        : `Unreachable: ${warehouse.error ?? "no answer"}`,
    },
  ];
}

/** The aggregator's own rate while its heartbeat is fresh, 0 when stale, null when never seen. */
export function eventsPerSecond(beat: HeartbeatView | undefined, now: number): number | null {
  if (!beat) return null;
  return now - beat.atMs <= STALE_AFTER_MS ? beat.eventsPerSecond : 0;
}

function aggregatorStatus(
  beat: HeartbeatView | undefined,
  now: number,
  redisOk: boolean,
): StatusItem {
  const item = { key: "aggregator", label: "Aggregator" } as const;
  if (!beat) {
    return {
      ...item,
      level: "warn",
      text: redisOk ? "No heartbeat yet" : "Unknown while Redis is unreachable",
    };
  }
  const age = now - beat.atMs;
  if (age > STALE_AFTER_MS) {
    return { ...item, level: "down", text: `Stopped: last heartbeat ${formatAge(age)} ago` };
  }
  return {
    ...item,
    level: "ok",
    text: `Processing: heartbeat ${formatAge(age)} ago, ${
      formatRate(beat.eventsPerSecond)
    } events/s`,
  };
}

/** Kafka flows when a stage that writes to or reads from it beats with events moving. */
function kafkaStatus(
  heartbeats: Partial<Record<HeartbeatStage, HeartbeatView>>,
  now: number,
): StatusItem {
  const item = { key: "kafka", label: "Kafka" } as const;
  const fresh = (["produce", "consume", "aggregate"] as const)
    .filter((stage) => {
      const beat = heartbeats[stage];
      return beat !== undefined && now - beat.atMs <= STALE_AFTER_MS;
    })
    .map((stage) => ({ stage, rate: heartbeats[stage]!.eventsPerSecond }));
  if (fresh.length === 0) {
    return {
      ...item,
      level: "down",
      text: "No data: no stage reading Kafka has a fresh heartbeat",
    };
  }
  const rates = fresh.map(({ stage, rate }) => `${stage} ${formatRate(rate)}/s`).join(", ");
  if (fresh.every(({ rate }) => rate === 0)) {
    return { ...item, level: "warn", text: `Idle: no new events (${rates})` };
  }
  return { ...item, level: "ok", text: `Data flowing: ${rates}` };
}
