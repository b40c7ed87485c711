/**
 * An optional heartbeat in Redis (`names(ns).heartbeat("generate")`, fields of
 * the `Heartbeat` contract) every two seconds, so that `deno task status` can
 * tell the generator is alive. Redis is not needed to generate: when it is
 * down the generator warns once and carries on.
 *
 * @module
 */

import type { Heartbeat } from "../../lib/contracts.ts";
import type { Tally } from "./progress.ts";

/** The part of Redis a heartbeat uses. */
export interface HeartbeatRedis {
  hset(key: string, fields: Record<string, string>): Promise<unknown>;
}

export interface HeartbeatOptions {
  key: string;
  /** The run's totals so far. */
  tally: () => Tally;
  /** Details for the `detail` field (seed, rate). */
  detail: Record<string, unknown>;
  intervalMs?: number;
  now?: () => number;
  pid?: number;
  /** Called once, on the first failed beat. */
  onUnavailable?: (error: Error) => void;
}

/**
 * The heartbeat fields for `tally`, with the rate since the previous beat.
 *
 * @example
 * ```ts
 * import { heartbeatFields } from "./heartbeat.ts";
 * const t = { events: 100, transactions: 70, items: 120, behaviors: 30, revenueCents: 5 };
 * heartbeatFields(t, { events: 0, atMs: 0 }, 2000, 1, {}).events_per_s; // "50"
 * ```
 */
export function heartbeatFields(
  tally: Tally,
  previous: { events: number; atMs: number },
  nowMs: number,
  pid: number,
  detail: Record<string, unknown>,
): Record<keyof Heartbeat, string> {
  const seconds = (nowMs - previous.atMs) / 1000;
  const rate = seconds > 0 ? (tally.events - previous.events) / seconds : 0;
  return {
    stage: "generate",
    pid: String(pid),
    at: new Date(nowMs).toISOString(),
    events: String(tally.events),
    events_per_s: String(Math.round(rate * 10) / 10),
    dead_letters: "0",
    detail: JSON.stringify({ ...detail, ...tally }),
  };
}

/** Starts beating at once and every `intervalMs`; returns a stop function. */
export function startHeartbeat(redis: HeartbeatRedis, options: HeartbeatOptions): () => void {
  const { key, tally, detail, intervalMs = 2000, now = Date.now, pid = Deno.pid } = options;
  let previous = { events: tally().events, atMs: now() };
  let warned = false;
  const beat = () => {
    const current = tally();
    const at = now();
    redis.hset(key, heartbeatFields(current, previous, at, pid, detail)).catch((error) => {
      if (!warned) options.onUnavailable?.(error as Error);
      warned = true;
    });
    previous = { events: current.events, atMs: at };
  };
  beat();
  const timer = setInterval(beat, intervalMs);
  return () => clearInterval(timer);
}
