/**
 * The command line of `deno task generate`. Every bad value is a
 * {@link UsageError} carrying the usage text, so the user sees what is
 * accepted (exit 2).
 *
 * @module
 */

import { durationFlag, numberFlag, parseFlags, usage, UsageError } from "../../lib/cli.ts";
import { MAX_SEED, randomSeed } from "./prng.ts";

export const SUMMARY =
  "Generate realistic shop activity (transactions and browsing) into PostgreSQL.";

export const FLAGS = {
  rate: { type: "string", default: "10", help: "events per second; 0 = as fast as possible" },
  duration: { type: "string", default: "60m", help: "stop after this long (30s, 10m, 2h)" },
  count: { type: "string", help: "stop after exactly this many events" },
  seed: { type: "string", help: "same seed and count give the same data (default random)" },
  "transaction-share": {
    type: "string",
    default: "0.7",
    help: "share of events that are transactions, 0 to 1",
  },
  "batch-size": { type: "string", default: "2000", help: "most events written per statement" },
} as const;

export interface GenerateFlags {
  rate: number;
  durationMs: number;
  count: number | undefined;
  seed: number;
  transactionShare: number;
  batchSize: number;
}

/**
 * @example
 * ```ts
 * import { parseGenerateFlags } from "./flags.ts";
 * parseGenerateFlags(["--rate", "0", "--count", "5000", "--seed", "7"]).count; // 5000
 * ```
 * @throws {UsageError} with the usage text appended.
 */
export function parseGenerateFlags(args: string[]): GenerateFlags {
  const flags = parseFlags("generate", SUMMARY, args, FLAGS);
  try {
    return {
      rate: numberFlag("rate", flags.rate, 0, 10_000_000),
      durationMs: durationFlag("duration", flags.duration),
      count: flags.count === undefined ? undefined : wholeFlag("count", flags.count, 0, 1e12),
      seed: flags.seed === undefined ? randomSeed() : wholeFlag("seed", flags.seed, 0, MAX_SEED),
      transactionShare: numberFlag("transaction-share", flags["transaction-share"], 0, 1),
      batchSize: wholeFlag("batch-size", flags["batch-size"], 1, 100_000),
    };
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    throw new UsageError(`${error.message}\n\n${usage("generate", SUMMARY, FLAGS)}`);
  }
}

function wholeFlag(name: string, raw: string | undefined, min: number, max: number): number {
  const value = numberFlag(name, raw, min, max);
  if (!Number.isInteger(value)) {
    throw new UsageError(
      `Cannot use --${name} as a whole number from ${min}: current value is ${JSON.stringify(raw)}`,
    );
  }
  return value;
}
