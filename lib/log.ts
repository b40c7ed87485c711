/**
 * Log lines like the seed's (an emoji, then plain words), one line each, with
 * a UTC time. The supervisor in main.ts adds the stage prefix.
 *
 * @module
 */

/** A small logger; `quiet` drops info lines (tests, benchmarks). */
export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/**
 * @example
 * ```ts
 * import { createLogger } from "./log.ts";
 * const log = createLogger();
 * log.info("🚀 Producer started");
 * ```
 */
export function createLogger({ quiet = false }: { quiet?: boolean } = {}): Logger {
  const stamp = () => new Date().toISOString();
  return {
    info: (message) => {
      if (!quiet) console.log(`${stamp()} ${message}`);
    },
    warn: (message) => console.error(`${stamp()} ⚠️  ${message}`),
    error: (message) => console.error(`${stamp()} ❌ ${message}`),
  };
}

/** A logger that drops everything (unit tests). */
export const silentLogger: Logger = { info() {}, warn() {}, error() {} };
