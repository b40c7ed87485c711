/**
 * What the soak run watches: each stage's resident memory (read with `ps`,
 * since Deno grants `/proc/<pid>` only with --allow-all), the events at each
 * step of the pipeline, and the memory bound it checks at the end.
 *
 * @module
 */

import postgres from "postgres";
import type { Config } from "../../lib/config.ts";
import { names, REDIS_KEYS } from "../../lib/contracts.ts";
import { createRedis } from "../../lib/redis.ts";

/** Resident memory of `pid` in MB, or undefined once it is gone. */
export async function rssMb(pid: number): Promise<number | undefined> {
  const out = await new Deno.Command("ps", {
    args: ["-o", "rss=", "-p", String(pid)],
    stdout: "piped",
    stderr: "null",
  }).output();
  const kb = Number(new TextDecoder().decode(out.stdout).trim());
  return out.success && kb > 0 ? kb / 1024 : undefined;
}

/** Events at each step: source rows, warehouse rows, events counted in Redis. */
export interface Counts {
  source: number;
  warehouse: number;
  redis: number;
}

/** Reads {@link Counts}; a store that is not there yet counts 0. */
export async function readCounts(config: Config): Promise<Counts> {
  const [transactions, behavior, warehouse, redis] = await Promise.all([
    count(config.databases.instashop, "select count(*) from transactions"),
    count(config.databases.crm, "select count(*) from user_behavior"),
    count(config.databases.dwh, "select count(*) from realtime_events"),
    redisEvents(config),
  ]);
  return { source: transactions + behavior, warehouse, redis };
}

async function count(url: string, query: string): Promise<number> {
  const sql = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 5 });
  try {
    const [row] = await sql.unsafe(query);
    return Number(row?.count ?? 0);
  } catch {
    return 0;
  } finally {
    await sql.end({ timeout: 1 });
  }
}

async function redisEvents(config: Config): Promise<number> {
  const redis = createRedis(config);
  try {
    return Number(await redis.hget(names(config.namespace).redis(REDIS_KEYS.totals), "events"));
  } catch {
    return 0;
  } finally {
    redis.disconnect();
  }
}

/** One stage's memory over the run. */
export interface MemoryTrack {
  stage: string;
  /** First sample (a few seconds in: before caches fill). */
  first?: number;
  /** The sample at the end of the warm-up: the "start" the bound is measured from. */
  warm?: number;
  last?: number;
  peak: number;
}

/** The verdict on one track: growth from warm to last, within `boundMb` or not. */
export function memoryVerdict(
  track: MemoryTrack,
  boundMb: number,
): { growthMb: number; ok: boolean } {
  if (track.warm === undefined || track.last === undefined) return { growthMb: NaN, ok: false };
  const growthMb = track.last - track.warm;
  return { growthMb, ok: growthMb <= boundMb };
}

/**
 * @example
 * ```ts
 * import { formatMb } from "./soak_watch.ts";
 * formatMb(123.456); // "123.5"
 * formatMb(undefined); // "-"
 * ```
 */
export function formatMb(mb: number | undefined): string {
  return mb === undefined || Number.isNaN(mb) ? "-" : mb.toFixed(1);
}
