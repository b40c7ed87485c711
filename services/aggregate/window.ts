/**
 * Event-time tumbling windows: which window an event falls in, and when a
 * window is closed to new events. The same rule runs inside the Redis script
 * (./lua.ts), which decides lateness atomically with the increments; this
 * module is its reference, used for the window of each event and in tests.
 *
 * @module
 */

/** Window length and how long a window stays open after the watermark reaches its end. */
export interface WindowSpec {
  /** Length of a tumbling window (`--window`, default 30 s). */
  windowMs: number;
  /** Extra time a window accepts events after the watermark passed its end (`--allowed-lateness`). */
  allowedLatenessMs: number;
}

/**
 * Start (epoch ms) of the tumbling window holding `eventMs`. Windows are
 * aligned to the epoch, so every instance assigns an event to the same window.
 *
 * @example
 * ```ts
 * import { windowStart } from "./window.ts";
 * windowStart(Date.parse("2026-01-01T00:00:44.999Z"), 30_000); // 2026-01-01T00:00:30Z in ms
 * ```
 */
export function windowStart(eventMs: number, windowMs: number): number {
  return Math.floor(eventMs / windowMs) * windowMs;
}

/**
 * True when the window starting at `startMs` is final under `watermarkMs`:
 * its end plus the allowed lateness is at or behind the watermark. An event
 * of a final window is late: counted in the totals and `late_events`, never
 * folded into the window.
 *
 * @example
 * ```ts
 * import { isFinal } from "./window.ts";
 * const spec = { windowMs: 30_000, allowedLatenessMs: 0 };
 * isFinal(0, spec, 30_000); // true: the watermark reached the window's end
 * isFinal(0, spec, 29_999); // false
 * isFinal(0, spec, undefined); // false: no watermark yet
 * ```
 */
export function isFinal(
  startMs: number,
  { windowMs, allowedLatenessMs }: WindowSpec,
  watermarkMs: number | undefined,
): boolean {
  return watermarkMs !== undefined && startMs + windowMs + allowedLatenessMs <= watermarkMs;
}
