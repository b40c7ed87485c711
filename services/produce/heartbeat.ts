/**
 * The producer's heartbeat hash in Redis (`N:pipeline:heartbeat:produce`),
 * best-effort: Redis is not on the producer's data path, so when it is down
 * the producer warns once and keeps publishing.
 *
 * @module
 */

import type { Heartbeat } from "../../lib/contracts.ts";
import type { Logger } from "../../lib/log.ts";
import type { Redis } from "../../lib/redis.ts";

export interface HeartbeatSample {
  /** Events published so far (one per source row). */
  events: number;
  /** Stage-specific details: cursors, lag, held rows. */
  detail: unknown;
}

export interface HeartbeatOptions {
  redis: Redis;
  key: string;
  log: Logger;
  collect: () => Promise<HeartbeatSample>;
  intervalMs?: number;
}

export interface HeartbeatWriter {
  /** Writes one beat now (also used for the final beat of a drain). */
  beat(): Promise<void>;
  stop(): void;
}

/** Writes a {@link Heartbeat} every `intervalMs` until stopped. */
export function startHeartbeat(
  { redis, key, log, collect, intervalMs = 2000 }: HeartbeatOptions,
): HeartbeatWriter {
  let last = { at: performance.now(), events: 0 };
  let down = false;
  let running: Promise<void> | undefined;
  // ioredis reports connection errors as events; the beat reports them once.
  redis.on("error", () => {});

  async function write() {
    try {
      const sample = await collect();
      const now = performance.now();
      const seconds = Math.max((now - last.at) / 1000, 0.001);
      const beat: Heartbeat = {
        stage: "produce",
        pid: Deno.pid,
        at: new Date().toISOString(),
        events: sample.events,
        events_per_s: Math.round(Math.max(sample.events - last.events, 0) / seconds),
        dead_letters: 0,
        detail: JSON.stringify(sample.detail),
      };
      last = { at: now, events: sample.events };
      await redis.hset(key, { ...beat, pid: String(beat.pid) });
      if (down) log.info("✅ Redis reachable again; heartbeat resumed");
      down = false;
    } catch (error) {
      if (!down) {
        log.warn(
          `Cannot write the heartbeat to Redis: ${(error as Error).message}; ` +
            "publishing goes on, the heartbeat resumes when Redis answers",
        );
      }
      down = true;
    }
  }

  function beat(): Promise<void> {
    running ??= write().finally(() => running = undefined);
    return running;
  }

  const timer = setInterval(beat, intervalMs);
  return {
    beat,
    stop: () => clearInterval(timer),
  };
}
