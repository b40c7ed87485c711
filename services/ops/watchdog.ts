/**
 * Kills a stage whose heartbeat stopped while its process lives on, so that
 * the supervisor restarts it as it would after a crash. Every stage beats in
 * Redis every 2 s from a timer; a process that stopped beating runs no timers
 * (stopped, frozen, its event loop blocked), and nothing inside it can
 * notice. The stages are safe to kill at any point, so a kill and a restart
 * lose and duplicate nothing. A stage that beats but makes no progress is not
 * its business.
 *
 * @module
 */

import type { Config } from "../../lib/config.ts";
import { type Names, names, type Stage, STAGES } from "../../lib/contracts.ts";
import { createRedis, type Redis } from "../../lib/redis.ts";
import { sleep } from "../../lib/retry.ts";
import { sendSignal } from "../../lib/signal.ts";

/**
 * Default `--stall-timeout` of `deno task start`: 30 missed beats. Long enough
 * that no legitimate pause comes near it (a stage waits for PostgreSQL or
 * Kafka with its timers running, and beats meanwhile).
 */
export const STALL_TIMEOUT_MS = 60_000;

/** A stage's last heartbeat as read from Redis. */
export interface Beat {
  pid: number;
  /** Epoch ms of the beat. */
  at: number;
}

/** A supervised child, as the supervisor reports it. */
export interface Watched {
  name: string;
  pid: number;
}

export interface WatchdogOptions {
  /** The stage's last heartbeat; null when it has none. Throws when Redis cannot say. */
  lastBeat(stage: string): Promise<Beat | null>;
  /** A beat older than this, seen twice in a row, is a hung stage. */
  staleMs: number;
  /** Between checks (default a third of `staleMs`, at most 10 s). */
  checkMs?: number;
  kill(pid: number): Promise<void> | void;
  say(line: string): void;
  signal: AbortSignal;
  now?: () => number;
}

/**
 * Whether `beat` says the process `pid` has hung: the beat is its own (a
 * restarted stage's first beats come from its new pid) and older than
 * `staleMs`. A process that never beat is not judged (it may be starting).
 *
 * @example
 * ```ts
 * import { hung } from "./watchdog.ts";
 * hung({ pid: 7, at: 0 }, 7, 61_000, 60_000); // true
 * hung({ pid: 7, at: 0 }, 8, 61_000, 60_000); // false: another process beat
 * ```
 */
export function hung(beat: Beat | null, pid: number, now: number, staleMs: number): boolean {
  return beat !== null && beat.pid === pid && now - beat.at > staleMs;
}

/**
 * Watches the children `update` reports until `signal` aborts. A stage is
 * killed once two checks in a row found it hung: a beat read just after a
 * Redis outage may be old while the stage is about to beat again.
 */
export function createWatchdog(options: WatchdogOptions): {
  update(running: readonly Watched[]): void;
  done: Promise<void>;
} {
  const { lastBeat, staleMs, kill, say, signal, now = Date.now } = options;
  const checkMs = options.checkMs ?? Math.min(10_000, Math.max(500, staleMs / 3));
  let children: readonly Watched[] = [];
  const strikes = new Map<number, number>();

  async function check(): Promise<void> {
    for (const child of children) {
      let beat: Beat | null;
      try {
        beat = await lastBeat(child.name);
      } catch {
        // Redis cannot say: no judgement, and no strike carried across the gap.
        strikes.delete(child.pid);
        continue;
      }
      if (!hung(beat, child.pid, now(), staleMs)) {
        strikes.delete(child.pid);
        continue;
      }
      const count = (strikes.get(child.pid) ?? 0) + 1;
      strikes.set(child.pid, count);
      if (count < 2 || signal.aborted) continue;
      strikes.delete(child.pid);
      const age = Math.round((now() - beat!.at) / 1000);
      say(
        `⏰ ${child.name} (pid ${child.pid}) has not written its heartbeat for ${age} s: ` +
          "killing it (SIGKILL) so that it restarts",
      );
      await kill(child.pid);
    }
  }

  async function loop(): Promise<void> {
    while (!signal.aborted) {
      await sleep(checkMs, signal);
      if (!signal.aborted) await check();
    }
  }

  return {
    update(running) {
      children = running;
      for (const pid of strikes.keys()) {
        if (!running.some((c) => c.pid === pid)) strikes.delete(pid);
      }
    },
    done: loop(),
  };
}

/** `lastBeat` from the stages' heartbeat hashes in Redis (`pid` and `at` fields). */
export function redisBeats(redis: Redis, n: Names): (stage: string) => Promise<Beat | null> {
  const isStage = (name: string): name is Stage => (STAGES as readonly string[]).includes(name);
  return async function lastBeat(stage) {
    if (!isStage(stage)) return null;
    const [pid, at] = await redis.hmget(n.heartbeat(stage), "pid", "at");
    if (!pid || !at) return null;
    return { pid: Number(pid), at: Date.parse(at) };
  };
}

/**
 * The watchdog of `deno task start`: beats read from Redis (failing fast while
 * it is away: no judgement then), a hung stage's process group killed. None
 * when `staleMs` is 0.
 */
export function startWatchdog(
  config: Config,
  staleMs: number,
  { say, signal }: { say(line: string): void; signal: AbortSignal },
): { update(running: readonly Watched[]): void; close(): Promise<void> } | undefined {
  if (staleMs <= 0) return undefined;
  const redis = createRedis(config, { failFast: true });
  redis.on("error", () => {});
  const watchdog = createWatchdog({
    lastBeat: redisBeats(redis, names(config.namespace)),
    staleMs,
    // Its own process group (services/ops/supervisor.ts): the stage and what it spawned.
    kill: async (pid) => void await sendSignal(-pid, "SIGKILL"),
    say,
    signal,
  });
  return {
    update: watchdog.update,
    async close() {
      await watchdog.done;
      redis.disconnect();
    },
  };
}
