/**
 * Number and time formatting shared by the server render and the islands, so
 * that the first paint and every live update read the same (en-US, USD, UTC).
 *
 * @module
 */

const INTEGER = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
const USD = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" });
const USD_COMPACT = new Intl.NumberFormat("en-US", {
  style: "currency",
  currency: "USD",
  notation: "compact",
  maximumFractionDigits: 1,
});
const RATE = new Intl.NumberFormat("en-US", {
  minimumFractionDigits: 1,
  maximumFractionDigits: 1,
});

/** The placeholder for a number that is not known yet. */
export const NONE = "—";

/**
 * @example
 * ```ts
 * import { formatInteger } from "./format.ts";
 * formatInteger(4796); // "4,796"
 * ```
 */
export function formatInteger(value: number | null): string {
  return value === null || !Number.isFinite(value) ? NONE : INTEGER.format(value);
}

/**
 * Formats integer cents as US dollars, exactly: the amount goes to Intl as a
 * decimal string, never through a float division.
 *
 * @example
 * ```ts
 * import { formatCents } from "./format.ts";
 * formatCents(161799); // "$1,617.99"
 * formatCents(-5); // "-$0.05"
 * ```
 */
export function formatCents(cents: number | null): string {
  if (cents === null || !Number.isSafeInteger(cents)) return NONE;
  const sign = cents < 0 ? "-" : "";
  const abs = Math.abs(cents);
  const decimal = `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, "0")}`;
  // Intl.NumberFormat accepts decimal strings (ES2023) and formats them exactly.
  return USD.format(decimal as unknown as number);
}

/** Short dollars for chart axes (`$1.2K`); never used where the exact value matters. */
export function formatDollarsCompact(dollars: number): string {
  return USD_COMPACT.format(dollars);
}

/** Events per second with one decimal. */
export function formatRate(value: number | null): string {
  return value === null || !Number.isFinite(value) ? NONE : RATE.format(value);
}

/**
 * Average order value in whole cents, rounded half up, from integers only.
 *
 * @example
 * ```ts
 * import { averageCents } from "./format.ts";
 * averageCents(1001, 2); // 501
 * averageCents(0, 0); // null
 * ```
 */
export function averageCents(totalCents: number, count: number): number | null {
  if (count <= 0) return null;
  return Math.floor((2 * totalCents + count) / (2 * count));
}

/** `HH:MM:SS` in UTC, from ISO text or epoch ms. */
export function formatUtcTime(time: string | number): string {
  const date = new Date(time);
  return Number.isNaN(date.getTime()) ? NONE : date.toISOString().slice(11, 19);
}

/** `HH:MM` in UTC (hour buckets). */
export function formatUtcHour(time: string | number): string {
  return formatUtcTime(time).slice(0, 5);
}

/** `YYYY-MM-DD HH:MM:SS UTC`, or the placeholder. */
export function formatUtcDateTime(time: string | number | null): string {
  if (time === null) return NONE;
  const date = new Date(time);
  if (Number.isNaN(date.getTime())) return NONE;
  return `${date.toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

/**
 * A human age: `4 s`, `3 min`, `2 h`.
 *
 * @example
 * ```ts
 * import { formatAge } from "./format.ts";
 * formatAge(4_200); // "4 s"
 * formatAge(185_000); // "3 min"
 * ```
 */
export function formatAge(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 90) return `${seconds} s`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 90) return `${minutes} min`;
  return `${INTEGER.format(Math.round(minutes / 60))} h`;
}
