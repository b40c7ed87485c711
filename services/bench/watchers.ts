/**
 * What the bench observes of the pipeline's output: every `metrics:updates`
 * message (with the events that flush folded), the running `events` total in
 * `metrics:totals`, and the frames a dashboard client receives over SSE.
 *
 * @module
 */

import type { Config } from "../../lib/config.ts";
import { METRIC_FIELDS, names, REDIS_KEYS } from "../../lib/contracts.ts";
import { createRedis } from "../../lib/redis.ts";
import { sleep } from "../../lib/retry.ts";
import type { Observation } from "./freshness.ts";

/**
 * Subscribes to the namespace's `metrics:updates` and, after each message,
 * reads `metrics:totals` `events`. The observation is stamped when that read
 * returns: at that moment at least that many events were in Redis, so the
 * time is never early. (The message's own `events` field counts every new
 * contribution, items included, so it cannot be summed into the total.)
 */
export async function watchUpdates(config: Config) {
  const n = names(config.namespace);
  const channel = n.redis(REDIS_KEYS.updates);
  const totalsKey = n.redis(REDIS_KEYS.totals);
  const subscriber = createRedis(config);
  const reader = createRedis(config);
  const observations: Observation[] = [];
  let messages = 0;
  let reading = false;
  let again = false;
  const read = async () => {
    if (reading) {
      again = true;
      return;
    }
    reading = true;
    try {
      do {
        again = false;
        const count = Number(await reader.hget(totalsKey, METRIC_FIELDS.events) ?? 0);
        observations.push({ at: Date.now(), count });
      } while (again);
    } catch {
      // A failed read only loses one observation; the next message reads again.
    } finally {
      reading = false;
    }
  };
  subscriber.on("message", (from: string) => {
    if (from !== channel) return;
    messages++;
    void read();
  });
  await subscriber.subscribe(channel);
  return {
    observations: () => observations,
    messages: () => messages,
    stop() {
      subscriber.disconnect();
      reader.disconnect();
      return observations;
    },
  };
}

/** Reads and polls `metrics:totals` `events`. */
export function totalsReader(config: Config) {
  const redis = createRedis(config);
  const key = names(config.namespace).redis(REDIS_KEYS.totals);
  const count = async () => Number(await redis.hget(key, METRIC_FIELDS.events) ?? 0);
  return {
    count,
    /** `events` and `items_sold` together. */
    async fields(): Promise<{ events: number; items: number }> {
      const [events, items] = await redis.hmget(key, METRIC_FIELDS.events, METRIC_FIELDS.itemsSold);
      return { events: Number(events ?? 0), items: Number(items ?? 0) };
    },
    /** Polls until `events >= target`; returns the time it was first seen (epoch ms). */
    async waitFor(
      target: number,
      { timeoutMs, signal, onPoll }: {
        timeoutMs: number;
        signal?: AbortSignal;
        onPoll?: (count: number) => void;
      },
    ): Promise<{ at: number; count: number }> {
      const deadline = Date.now() + timeoutMs;
      while (true) {
        const n = await count();
        onPoll?.(n);
        if (n >= target) return { at: Date.now(), count: n };
        if (signal?.aborted) throw new Error("Cannot finish the benchmark: interrupted");
        if (Date.now() > deadline) {
          throw new Error(
            `Cannot see ${target} events in ${key} after ${timeoutMs} ms: current value is ${n}`,
          );
        }
        await sleep(50);
      }
    },
    close: () => redis.disconnect(),
  };
}

/**
 * A dashboard client: reads `/api/stream` and records, for each frame, the
 * time it arrived and the `kpis.events` it shows.
 */
export function watchSse(url: string) {
  const frames: Observation[] = [];
  const controller = new AbortController();
  let error: string | undefined;
  const done = (async () => {
    const response = await fetch(url, {
      signal: controller.signal,
      headers: { accept: "text/event-stream" },
    });
    if (!response.ok || !response.body) {
      throw new Error(`Cannot follow ${url}: HTTP ${response.status}`);
    }
    const decoder = new TextDecoder();
    let buffer = "";
    for await (const bytes of response.body) {
      const at = Date.now();
      buffer += decoder.decode(bytes, { stream: true });
      let end: number;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = frame.split("\n").filter((l) => l.startsWith("data:"))
          .map((l) => l.slice(5).replace(/^ /, "")).join("\n");
        if (!data) continue;
        try {
          const events = Number(
            (JSON.parse(data) as { kpis?: { events?: unknown } }).kpis?.events,
          );
          if (Number.isFinite(events)) frames.push({ at, count: events });
        } catch {
          // Not a state frame; ignore.
        }
      }
    }
  })().catch((e: Error) => {
    if (e.name !== "AbortError") error = e.message;
  });
  return {
    frames: () => frames,
    error: () => error,
    async stop() {
      controller.abort();
      await done;
      return frames;
    },
  };
}
