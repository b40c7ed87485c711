/**
 * Calls the metrics script (./lua.ts): the Redis key layout of the aggregator
 * and one typed `apply` per chunk. EVALSHA first, EVAL when Redis does not
 * know the script yet (after a restart of Redis or a SCRIPT FLUSH).
 *
 * @module
 */

import { type Names, REDIS_KEYS } from "../../lib/contracts.ts";
import type { Redis } from "../../lib/redis.ts";
import { METRICS_LUA } from "./lua.ts";
import { Buffer } from "node:buffer";
import { packUints } from "./pack.ts";
import type { EncodedChunk } from "./reduce.ts";
import type { LocalWatermark } from "./watermark.ts";

/** The aggregator's own keys beside those of the contract (docs/aggregate.md). */
export const AGGREGATE_KEYS = {
  /** Hash: the late events' contributions, same fields as the totals. */
  late: "metrics:late",
  /** Hash: sums of windows retired by the retention, same fields as the totals. */
  expired: "metrics:expired",
  /** Hash: `group_ms` (the group watermark), `final_through_ms`, `window_ms`. */
  watermark: "metrics:watermark",
  /** Hash: instance id -> `<watermark|hold>@<redis time ms>`. */
  instances: "metrics:instances",
  /** Set of `<topic>:<partition>:<offset>` of counted dead letters. */
  deadLetterSeen: "metrics:seen:dead_letters",
} as const;

/** Every key of the script, namespaced. */
export function scriptKeys(n: Names) {
  return {
    totals: n.redis(REDIS_KEYS.totals),
    late: n.redis(AGGREGATE_KEYS.late),
    expired: n.redis(AGGREGATE_KEYS.expired),
    windows: n.redis(REDIS_KEYS.windows),
    watermark: n.redis(AGGREGATE_KEYS.watermark),
    instances: n.redis(AGGREGATE_KEYS.instances),
    transactions: n.redis(REDIS_KEYS.transactions),
    behavior: n.redis(REDIS_KEYS.behavior),
    updates: n.redis(REDIS_KEYS.updates),
    deadLetters: n.redis(REDIS_KEYS.deadLetters),
    deadLetterSeen: n.redis(AGGREGATE_KEYS.deadLetterSeen),
    windowPrefix: n.redis(REDIS_KEYS.windowPrefix),
    productsPrefix: n.redis(REDIS_KEYS.productsPrefix),
    seenPrefix: n.redis(REDIS_KEYS.seenPrefix),
  };
}

export interface ScriptOptions {
  windowMs: number;
  allowedLatenessMs: number;
  retentionMs: number;
  /** An instance entry older than this no longer counts for the group watermark. */
  staleMs: number;
}

export interface ApplyInput {
  instance: string;
  /** This instance's watermark after the chunk; undefined leaves its entry alone. */
  watermark?: LocalWatermark;
  chunk?: EncodedChunk;
  /** `[counter field, "<topic>:<partition>:<offset>"]` of dead letters already sent. */
  deadLetters?: readonly (readonly [string, string])[];
}

export interface ApplyResult {
  /** Events counted for the first time. */
  added: number;
  /** Events skipped as already counted. */
  duplicates: number;
  /** Of `added`, those whose window was final. */
  late: number;
  /** The group watermark after the call. */
  groupWatermarkMs: number | undefined;
  finalized: number;
  trimmed: number;
}

export interface MetricsScript {
  apply(input: ApplyInput): Promise<ApplyResult>;
}

/**
 * @example
 * ```ts ignore
 * const script = createMetricsScript(redis, names("demo"), {
 *   windowMs: 30_000, allowedLatenessMs: 0, retentionMs: 86_400_000, staleMs: 30_000,
 * });
 * await script.apply({ instance: "a", watermark: "none" });
 * ```
 */
export function createMetricsScript(
  redis: Redis,
  n: Names,
  { windowMs, allowedLatenessMs, retentionMs, staleMs }: ScriptOptions,
): MetricsScript {
  const k = scriptKeys(n);
  const keys = [
    k.totals,
    k.late,
    k.expired,
    k.windows,
    k.watermark,
    k.instances,
    k.transactions,
    k.behavior,
    k.updates,
    k.deadLetters,
    k.deadLetterSeen,
  ];
  let sha: string | undefined;

  async function apply({ instance, watermark, chunk, deadLetters = [] }: ApplyInput) {
    const args: (string | Buffer)[] = [
      ...keys,
      k.windowPrefix,
      k.productsPrefix,
      instance,
      watermark === undefined ? "" : String(watermark),
      String(windowMs),
      String(allowedLatenessMs),
      String(retentionMs),
      String(staleMs),
      ...counted(chunk?.fields ?? []),
      ...counted(chunk?.windows ?? []),
      ...counted(chunk?.groups ?? []),
      ...counted(deadLetters.flat()),
    ];
    for (const { key, events } of chunk?.sections ?? []) {
      const packed = packUints(events);
      args.push(key, String(events.length / 3), Buffer.from(packed.buffer, 0, packed.length));
    }
    sha ??= await sha1(METRICS_LUA);
    let reply: unknown;
    try {
      reply = await redis.evalsha(sha, keys.length, args);
    } catch (error) {
      if (!String((error as Error).message).includes("NOSCRIPT")) throw error;
      reply = await redis.eval(METRICS_LUA, keys.length, args);
    }
    return parseReply(reply);
  }

  return { apply };
}

function counted(values: readonly (string | number)[]): string[] {
  return [String(values.length), ...values.map(String)];
}

function parseReply(reply: unknown): ApplyResult {
  if (!Array.isArray(reply) || reply.length !== 6) {
    throw new Error(`Cannot read the metrics script's reply: current value is ${reply}`);
  }
  const [added, duplicates, late, group, finalized, trimmed] = reply;
  return {
    added: Number(added),
    duplicates: Number(duplicates),
    late: Number(late),
    groupWatermarkMs: group === "" ? undefined : Number(group),
    finalized: Number(finalized),
    trimmed: Number(trimmed),
  };
}

async function sha1(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-1", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
