/**
 * `createRowPublisher`: the producer stage. Two streams run side by side, each
 * with its own pump, cursor, LISTEN and idempotent producer: `transactions`
 * (instashop, with items) to the `transactions` topic in a worker, and
 * `user_behavior` (crm) to `user_behavior` plus `searches` / `cart_events` on
 * this thread, which also coordinates: stop, heartbeat, the "💓" line, the
 * summary. Two threads use both cores; a second worker would only add its
 * start-up (an isolate loading kafkajs and postgres.js, about 0.3 CPU-seconds).
 *
 * @module
 */

import { ServiceError } from "../../lib/cli.ts";
import type { Config } from "../../lib/config.ts";
import { names } from "../../lib/contracts.ts";
import type { Logger } from "../../lib/log.ts";
import type { Redis } from "../../lib/redis.ts";
import { startHeartbeat } from "./heartbeat.ts";
import { runStream, type StreamReport } from "./runner.ts";
import { type StreamName, STREAMS } from "./streams.ts";
import type { WorkerReport, WorkerRequest } from "./worker.ts";

export interface PublisherDeps {
  config: Config;
  log: Logger;
  /** Heartbeat target; without it no heartbeat is written. */
  redis?: Redis;
}

export interface PublisherOptions {
  /** Publish what is publishable now, then return. */
  drain?: boolean;
  /** Poll interval when no NOTIFY arrives (default 2000). */
  intervalMs?: number;
  /** Rows per page (default 2000). */
  batch?: number;
  /** Re-send rows created at or after this time first (same event ids). */
  replaySince?: Date;
  signal?: AbortSignal;
  heartbeatMs?: number;
  /** How often the "💓" line is logged (default 30 s). */
  aliveLogMs?: number;
}

export interface PublishSummary {
  events: number;
  messages: number;
  replayed: number;
  elapsedMs: number;
  /** From the first row read to the last acknowledgement (the catch-up time). */
  busyMs: number;
  streams: StreamReport[];
}

export interface RowPublisher {
  run(): Promise<PublishSummary>;
  /** The latest report of each stream. */
  status(): StreamReport[];
}

/**
 * @example
 * ```ts ignore
 * const publisher = createRowPublisher({ config, log, redis }, { drain: true, signal });
 * const { messages } = await publisher.run();
 * ```
 */
export function createRowPublisher(
  deps: PublisherDeps,
  options: PublisherOptions = {},
): RowPublisher {
  const { config, log, redis } = deps;
  const {
    drain = false,
    intervalMs = 2000,
    batch = 2000,
    replaySince,
    signal,
    heartbeatMs = 2000,
    aliveLogMs = 30_000,
  } = options;
  const n = names(config.namespace);
  const controller = new AbortController();
  const reports = new Map<StreamName, StreamReport>(
    (Object.keys(STREAMS) as StreamName[]).map((name) => [name, emptyReport(name)]),
  );
  const status = () => [...reports.values()];

  /** The stream that runs on this thread (the lighter one); the other gets a worker. */
  const LOCAL: StreamName = "user_behavior";

  async function runHere(stream: StreamName): Promise<StreamReport> {
    try {
      const report = await runStream(STREAMS[stream], config, log, {
        drain,
        batch,
        intervalMs,
        replaySince,
        signal: controller.signal,
        onStatus: (r) => reports.set(stream, r),
      });
      reports.set(stream, report);
      return report;
    } catch (error) {
      // As a worker reports it: one line, whatever the error.
      if (config.debug) console.error(error);
      throw error instanceof ServiceError
        ? error
        : new ServiceError(error instanceof Error ? error.message : String(error));
    }
  }

  function runWorker(stream: StreamName): Promise<StreamReport> {
    return new Promise((resolve, reject) => {
      const worker = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
      const post = (request: WorkerRequest) => worker.postMessage(request);
      const stop = () => post({ type: "stop" });
      controller.signal.addEventListener("abort", stop, { once: true });
      const finish = (settle: () => void) => {
        controller.signal.removeEventListener("abort", stop);
        worker.terminate();
        settle();
      };
      worker.onmessage = ({ data }: MessageEvent<WorkerReport>) => {
        if (data.type === "fatal") return finish(() => reject(new ServiceError(data.message)));
        reports.set(stream, data.report);
        if (data.type === "done") finish(() => resolve(data.report));
      };
      worker.onerror = (event) => {
        event.preventDefault();
        finish(() => reject(new ServiceError(`The ${stream} stream stopped: ${event.message}`)));
      };
      post({
        type: "run",
        stream,
        config,
        options: { drain, batch, intervalMs, replaySince: replaySince?.toISOString() },
      });
    });
  }

  async function run(): Promise<PublishSummary> {
    const started = performance.now();
    const abort = () => controller.abort();
    signal?.addEventListener("abort", abort, { once: true });
    if (signal?.aborted) abort();
    log.info(
      `🚀 Producer started (${
        drain ? "drain" : "follow"
      }): transactions -> ${n.topics.transactions}; ` +
        `user_behavior -> ${n.topics.userBehavior}, ${n.topics.searches}, ${n.topics.cartEvents}` +
        (drain ? "" : `; LISTEN instashop_rows, crm_rows, poll every ${intervalMs / 1000} s`),
    );
    const heartbeat = redis
      ? startHeartbeat({
        redis,
        key: n.heartbeat("produce"),
        log,
        collect,
        intervalMs: heartbeatMs,
      })
      : undefined;
    let reported = 0;
    const alive = setInterval(() => {
      const events = totals(status()).events;
      log.info(
        `💓 Producer active - ${events} events sent (${events - reported} in the last ${
          aliveLogMs / 1000
        } s); ${status().map((x) => `${x.stream} at ${x.acked}`).join(", ")}`,
      );
      reported = events;
    }, aliveLogMs);
    const results = await Promise.allSettled(
      (Object.keys(STREAMS) as StreamName[]).map((stream) =>
        (stream === LOCAL ? runHere(stream) : runWorker(stream)).catch((error) => {
          controller.abort(); // one stream failed: stop the other cleanly too
          throw error;
        })
      ),
    );
    clearInterval(alive);
    heartbeat?.stop();
    await heartbeat?.beat();
    signal?.removeEventListener("abort", abort);
    const failed = results.find((r) => r.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
    const summary = { ...totals(status()), elapsedMs: performance.now() - started };
    const [tx, ub] = summary.streams;
    const busy = busyMs(summary.streams);
    log.info(
      `✅ ${drain ? "Drained" : "Stopped"}: ${tx!.events} transactions and ${ub!.events} ` +
        `behaviour events (${summary.messages} messages${
          summary.replayed ? `, ${summary.replayed} rows replayed` : ""
        }) in ${(summary.elapsedMs / 1000).toFixed(2)} s` +
        (drain && busy > 0
          ? `; publishing took ${(busy / 1000).toFixed(2)} s, ${
            Math.round(summary.messages / (busy / 1000))
          } msgs/s`
          : ""),
    );
    return { ...summary, busyMs: busy };
  }

  function collect() {
    const streams = status();
    return Promise.resolve({
      events: totals(streams).events,
      detail: {
        mode: drain ? "drain" : "follow",
        streams: Object.fromEntries(streams.map((s) => [s.stream, s])),
      },
    });
  }

  return { run, status };
}

/** From the first row read to the last acknowledgement, over both streams. */
function busyMs(streams: StreamReport[]): number {
  const first = streams.map((s) => s.firstReadAt).filter((t) => t !== null) as number[];
  const last = streams.map((s) => s.lastAckAt).filter((t) => t !== null) as number[];
  return first.length && last.length ? Math.max(...last) - Math.min(...first) : 0;
}

function totals(streams: StreamReport[]) {
  return {
    events: streams.reduce((s, x) => s + x.events, 0),
    messages: streams.reduce((s, x) => s + x.messages, 0),
    replayed: streams.reduce((s, x) => s + x.replayed, 0),
    streams,
  };
}

function emptyReport(stream: StreamName): StreamReport {
  return {
    stream,
    acked: "",
    stored: "",
    events: 0,
    messages: 0,
    replayed: 0,
    held: 0,
    failing: null,
    firstReadAt: null,
    lastAckAt: null,
    lag: null,
  };
}
