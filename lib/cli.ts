/**
 * Flag parsing and the error policy of every CLI entry: a bad flag prints
 * usage and exits 2, a bad environment value exits 2, a missing service gets
 * one clear line and exits 1, and no stack trace reaches the user unless
 * `INSTASHOP_DEBUG` is set.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { ConfigError, loadConfig } from "./config.ts";

/** A flag: its type, default, and one line of help. */
export interface FlagSpec {
  type: "string" | "boolean";
  help: string;
  default?: string | boolean;
  short?: string;
}
export type FlagSpecs = Record<string, FlagSpec>;

type Values<S extends FlagSpecs> = {
  [K in keyof S]: S[K]["type"] extends "boolean" ? boolean : string | undefined;
};

/** A bad command line; exit code 2. */
export class UsageError extends Error {
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** A service that cannot be reached or a prerequisite that is missing; exit code 1. */
export class ServiceError extends Error {
  readonly exitCode = 1;
  constructor(message: string) {
    super(message);
    this.name = "ServiceError";
  }
}

/** Renders the usage text of a command. */
export function usage(command: string, summary: string, specs: FlagSpecs): string {
  const lines = [`Usage: deno task ${command} [options]`, "", summary, "", "Options:"];
  for (const [name, spec] of Object.entries({ ...specs, help: helpSpec })) {
    const flag = spec.type === "string" ? `--${name} <value>` : `--${name}`;
    const def = spec.default !== undefined && spec.type === "string"
      ? ` (default ${spec.default})`
      : "";
    lines.push(`  ${flag.padEnd(28)} ${spec.help}${def}`);
  }
  return lines.join("\n");
}

const helpSpec: FlagSpec = { type: "boolean", help: "show this help and exit" };

/**
 * Parses `args` against `specs`. `--help` prints usage and exits 0; anything
 * unknown or malformed throws {@link UsageError} with the usage appended.
 *
 * @example
 * ```ts
 * import { parseFlags } from "./cli.ts";
 * const flags = parseFlags("produce", "Publish rows.", ["--drain"], {
 *   drain: { type: "boolean", help: "publish the backlog and exit" },
 * });
 * flags.drain; // true
 * ```
 */
export function parseFlags<S extends FlagSpecs>(
  command: string,
  summary: string,
  args: string[],
  specs: S,
): Values<S> {
  const text = usage(command, summary, specs);
  let parsed;
  try {
    parsed = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        ...Object.fromEntries(
          Object.entries(specs).map(([name, s]) => [
            name,
            { type: s.type, ...(s.short ? { short: s.short } : {}) },
          ]),
        ),
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (error) {
    throw new UsageError(`${(error as Error).message}\n\n${text}`);
  }
  if (parsed.values.help) {
    console.log(text);
    Deno.exit(0);
  }
  const values: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(specs)) {
    values[name] = (parsed.values as Record<string, unknown>)[name] ?? spec.default ??
      (spec.type === "boolean" ? false : undefined);
  }
  return values as Values<S>;
}

/** Parses a flag value as a number within bounds, or throws a {@link UsageError}. */
export function numberFlag(
  name: string,
  raw: string | undefined,
  min: number,
  max = Infinity,
): number {
  const value = Number(raw);
  if (
    raw === undefined || raw.trim() === "" || !Number.isFinite(value) || value < min || value > max
  ) {
    throw new UsageError(
      `Cannot use --${name} as a number from ${min}${
        max === Infinity ? " up" : ` to ${max}`
      }: current value is ${JSON.stringify(raw)}`,
    );
  }
  return value;
}

/** Parses durations like `90`, `30s`, `10m`, `2h`, `500ms` into milliseconds. */
export function durationFlag(name: string, raw: string | undefined): number {
  const match = raw?.trim().match(/^(\d+(?:\.\d+)?)(ms|s|m|h)?$/);
  if (!match) {
    throw new UsageError(
      `Cannot use --${name} as a duration like 30s, 10m or 2h: current value is ${
        JSON.stringify(raw)
      }`,
    );
  }
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] ?? "s"]!;
  return Math.round(Number(match[1]) * unit);
}

/**
 * Runs a CLI body with the project's error policy and clean shutdown: the
 * `AbortSignal` fires on SIGINT or SIGTERM; a second signal (a second later or more) exits at
 * once.
 */
export async function runMain(
  body: (signal: AbortSignal) => Promise<number | void>,
): Promise<never> {
  const controller = new AbortController();
  let firstSignalAt = 0;
  const onSignal = () => {
    // `deno task` forwards the terminal's Ctrl-C to its child, which also gets it from the
    // terminal: one Ctrl-C arrives twice within milliseconds. Only a later one means "now".
    if (controller.signal.aborted) {
      if (Date.now() - firstSignalAt > 1000) Deno.exit(130);
      return;
    }
    firstSignalAt = Date.now();
    controller.abort();
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  let code = 0;
  try {
    code = (await body(controller.signal)) ?? 0;
  } catch (error) {
    code = reportError(error);
  }
  Deno.exit(code);
}

/** Prints one clear line for a known error (and the stack for others when debugging). */
export function reportError(error: unknown): number {
  if (
    error instanceof UsageError || error instanceof ConfigError || error instanceof ServiceError
  ) {
    console.error(`error: ${error.message}`);
    return error.exitCode;
  }
  const message = error instanceof Error ? error.message : String(error);
  console.error(`error: ${message}`);
  if (debugEnabled()) console.error(error);
  return 1;
}

function debugEnabled(): boolean {
  try {
    return loadConfig().debug;
  } catch {
    return false;
  }
}
