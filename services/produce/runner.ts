/**
 * Runs one stream end to end with its own connections: a PostgreSQL pool and
 * LISTEN in the stream's database, a Kafka producer, and the pump. The
 * producer runs each stream in its own worker (see `worker.ts`), so this is
 * everything a worker needs; it reports its status every `statusMs`.
 *
 * @module
 */

import type { Config } from "../../lib/config.ts";
import { names } from "../../lib/contracts.ts";
import { connect, type Sql } from "../../lib/db.ts";
import { createKafka } from "../../lib/kafka.ts";
import type { Logger } from "../../lib/log.ts";
import { createSender } from "./sender.ts";
import { createSource } from "./source.ts";
import { createStreamPump, type StreamStatus } from "./stream.ts";
import type { StreamSpec } from "./streams.ts";

/** A stream's status plus its lag: rows after the acknowledged cursor (null if unknown). */
export interface StreamReport extends StreamStatus {
  lag: number | null;
}

export interface RunStreamOptions {
  drain: boolean;
  batch: number;
  intervalMs: number;
  replaySince?: Date;
  signal: AbortSignal;
  statusMs?: number;
  onStatus?: (report: StreamReport) => void;
}

/** Runs `spec` until the signal aborts (or, draining, until caught up); returns its last report. */
export async function runStream(
  spec: StreamSpec,
  config: Config,
  log: Logger,
  { drain, batch, intervalMs, replaySince, signal, statusMs = 1000, onStatus }: RunStreamOptions,
): Promise<StreamReport> {
  const n = names(config.namespace);
  // JIT would compile each page query anew (a second or more when statistics are
  // stale after a bulk load) to save milliseconds: off for these short queries.
  const sql = connect(config.databases[spec.database], { max: 3, settings: { jit: "off" } });
  const kafka = createKafka(config, {
    clientId: `instashop-produce-${spec.name}`,
    log,
    level: config.debug ? "error" : "nothing",
  });
  const sender = createSender(kafka, n.topics);
  const listener = createListener(sql, spec.channel, log, intervalMs);
  const pump = createStreamPump({
    source: createSource(sql, spec.table),
    sender,
    toMessages: spec.toMessages,
    describe: (rows, messages) => spec.describe(rows, messages, n),
    noun: spec.noun,
    log,
    signal,
    drain,
    batch,
    intervalMs,
    replaySince,
    onPostgresRecovered: () => void listener.rearm(),
  });
  const report = async (): Promise<StreamReport> => ({
    ...pump.status(),
    lag: (await pump.lag()) ?? null,
  });
  const timer = setInterval(() => void report().then((r) => onStatus?.(r)), statusMs);
  try {
    if (!drain) await listener.arm(() => pump.wake());
    await pump.run();
    return await report();
  } finally {
    clearInterval(timer);
    await listener.close();
    await sender.close();
    await sql.end({ timeout: 2 });
  }
}

/**
 * LISTEN on `channel`, re-armed after PostgreSQL comes back (postgres.js
 * re-listens on reconnect but gives up silently if the server is still down).
 */
function createListener(sql: Sql, channel: string, log: Logger, intervalMs: number) {
  let onNotify: (() => void) | undefined;
  let unlisten: (() => Promise<void>) | undefined;
  let warned = false;
  async function arm(fn?: () => void) {
    if (fn) onNotify = fn;
    const wake = onNotify;
    if (!wake) return;
    try {
      // onlisten also fires after each reconnect: wake to catch what we missed.
      const request = await sql.listen(channel, wake, wake);
      unlisten = request.unlisten;
      warned = false;
    } catch (error) {
      if (!warned) {
        log.warn(
          `Cannot LISTEN on ${channel}: ${(error as Error).message}; polling every ${
            intervalMs / 1000
          } s`,
        );
      }
      warned = true;
    }
  }
  async function close() {
    const u = unlisten;
    unlisten = undefined;
    await u?.().catch(() => {});
  }
  return {
    arm,
    async rearm() {
      if (!onNotify) return;
      await close();
      await arm();
    },
    close,
  };
}
