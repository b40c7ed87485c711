/**
 * `deno task produce`: every new PostgreSQL row to Kafka, once, in commit
 * order. Thin: flags and wiring; the stage is `createRowPublisher`.
 *
 * @module
 */

import {
  durationFlag,
  numberFlag,
  parseFlags,
  runMain,
  ServiceError,
  UsageError,
} from "../../lib/cli.ts";
import { type Config, loadConfig } from "../../lib/config.ts";
import { openDatabase } from "../../lib/db.ts";
import { createKafka, ensureTopics, type Kafka } from "../../lib/kafka.ts";
import { createLogger, type Logger } from "../../lib/log.ts";
import { createRedis } from "../../lib/redis.ts";
import { retry } from "../../lib/retry.ts";
import { createRowPublisher } from "./publisher.ts";

const SUMMARY = "Publish every new row of instashop.transactions and crm_db.user_behavior to " +
  "Kafka exactly once, in commit order (LISTEN/NOTIFY, with a poll as fallback).";

const FLAGS = {
  interval: { type: "string", default: "2s", help: "poll interval when no NOTIFY arrives" },
  drain: { type: "boolean", help: "publish everything publishable now, then exit 0" },
  "replay-since": {
    type: "string",
    help: "first re-send rows created at or after this ISO 8601 time (same event ids)",
  },
  batch: { type: "string", default: "2000", help: "rows per page when catching up" },
} as const;

if (import.meta.main) {
  runMain(async (signal) => {
    const flags = parseFlags("produce", SUMMARY, Deno.args, FLAGS);
    const intervalMs = durationFlag("interval", flags.interval);
    if (intervalMs < 50) {
      throw new UsageError(
        `Cannot use --interval below 50ms: current value is ${JSON.stringify(flags.interval)}`,
      );
    }
    const batch = numberFlag("batch", flags.batch, 1, 50_000);
    if (!Number.isInteger(batch)) {
      throw new UsageError(`Cannot use --batch as a whole number: current value is ${batch}`);
    }
    const replaySince = parseSince(flags["replay-since"]);
    const drain = flags.drain;

    const config = loadConfig();
    const log = createLogger();
    // Creates the databases and applies migrations (with retries and one clear error);
    // each stream then opens its own connections in its worker.
    for (const name of ["instashop", "crm"] as const) {
      await (await openDatabase(config, name, { log, signal, max: 1 })).end({ timeout: 2 });
    }
    const kafka = createKafka(config, {
      clientId: "instashop-produce",
      log,
      level: config.debug ? "error" : "nothing",
    });
    await readyTopics(config, kafka, log, signal, drain);
    if (signal.aborted) return 130;
    const redis = createRedis(config, { failFast: true });
    try {
      const publisher = createRowPublisher(
        { config, log, redis },
        { drain, intervalMs, batch, replaySince, signal },
      );
      await publisher.run();
      return drain && signal.aborted ? 130 : 0;
    } finally {
      redis.disconnect();
    }
  });
}

/** Creates the namespace's topics if missing, waiting for Kafka a while. */
async function readyTopics(
  config: Config,
  kafka: Kafka,
  log: Logger,
  signal: AbortSignal,
  drain: boolean,
): Promise<void> {
  const brokers = config.kafka.brokers.join(",");
  try {
    await retry(
      async () => {
        const admin = kafka.admin();
        await admin.connect();
        try {
          await ensureTopics(admin, config.namespace, { partitions: config.kafka.partitions });
        } finally {
          await admin.disconnect();
        }
      },
      // Each attempt already spans kafkajs' own connection retries (about 20 s).
      { what: `reach Kafka at ${brokers}`, attempts: drain ? 3 : 30, log, signal },
    );
  } catch (error) {
    throw new ServiceError(
      `Cannot reach Kafka at ${brokers}: ${(error as Error).message}. ` +
        "Start it with `deno task stack up`.",
    );
  }
}

/** `--replay-since`: an ISO 8601 time with a zone (a bare date is UTC midnight). */
export function parseSince(raw: string | undefined): Date | undefined {
  if (raw === undefined) return undefined;
  const ok = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2}))?$/
    .test(raw.trim());
  const date = new Date(raw.trim());
  if (!ok || Number.isNaN(date.getTime())) {
    throw new UsageError(
      `Cannot use --replay-since as an ISO 8601 time like 2026-01-31T12:00:00Z: current value is ${
        JSON.stringify(raw)
      }`,
    );
  }
  return date;
}
