/**
 * `deno task aggregate`: windowed metrics from Kafka into Redis, exact across
 * restarts and scale-out. See docs/aggregate.md.
 *
 * @module
 */

import { durationFlag, numberFlag, parseFlags, runMain, UsageError } from "../../lib/cli.ts";
import { GROUPS } from "../../lib/contracts.ts";
import { loadConfig } from "../../lib/config.ts";
import { createLogger } from "../../lib/log.ts";
import { createAggregator } from "./aggregator.ts";

const SUMMARY = "Reads transactions, user_behavior and transaction_items and keeps exact " +
  "metrics in Redis: running totals and event-time windows, each event counted once.";

if (import.meta.main) {
  await runMain(async (signal) => {
    const flags = parseFlags("aggregate", SUMMARY, Deno.args, {
      window: { type: "string", help: "tumbling window length", default: "30s" },
      watermark: {
        type: "string",
        help: "how far the watermark trails the newest event time",
        default: "10s",
      },
      "allowed-lateness": {
        type: "string",
        help: "keep windows open this much longer after the watermark passed them",
        default: "0s",
      },
      retention: { type: "string", help: "how long windows stay in the series", default: "24h" },
      "idle-timeout": {
        type: "string",
        help: "a caught-up partition without data for this long stops holding the watermark " +
          "(default twice the window)",
      },
      drain: { type: "boolean", help: "consume to the end offsets seen at start, flush, exit 0" },
      rebuild: {
        type: "boolean",
        help: "delete this namespace's metrics and recompute them from the earliest offsets",
      },
      group: {
        type: "string",
        help: "consumer group (namespaced as N.<group>)",
        default: GROUPS.aggregate,
      },
      "fetch-bytes": {
        type: "string",
        help: "Kafka fetch size per partition, in bytes",
        default: String(1024 * 1024),
      },
      "hold-after-write": {
        type: "boolean",
        help: "fault injection (tests): after the first Redis write, wait to be killed",
      },
    });
    const windowMs = positive("window", durationFlag("window", flags.window));
    const allowedLatenessMs = durationFlag("allowed-lateness", flags["allowed-lateness"]);
    const retentionMs = positive("retention", durationFlag("retention", flags.retention));
    if (retentionMs <= allowedLatenessMs) {
      throw new UsageError(
        `Cannot use --retention ${flags.retention} as it must exceed --allowed-lateness ` +
          `${flags["allowed-lateness"]}: windows would be retired while still open`,
      );
    }
    const idle = flags["idle-timeout"];
    const config = loadConfig();
    const aggregator = createAggregator({ config, log: createLogger() }, {
      group: flags.group,
      windowMs,
      latenessMs: durationFlag("watermark", flags.watermark),
      allowedLatenessMs,
      retentionMs,
      idleMs: idle === undefined ? undefined : durationFlag("idle-timeout", idle),
      drain: flags.drain,
      rebuild: flags.rebuild,
      holdAfterWrite: flags["hold-after-write"],
      fetchBytes: numberFlag("fetch-bytes", flags["fetch-bytes"], 1024, 256 * 1024 * 1024),
    });
    await aggregator.run(signal);
    return 0;
  });
}

function positive(name: string, ms: number): number {
  if (ms <= 0) {
    throw new UsageError(`Cannot use --${name} as a duration: current value is 0`);
  }
  return ms;
}
