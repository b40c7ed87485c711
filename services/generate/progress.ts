/**
 * How the generator reports progress: the seed's "📈 Progress" line every 50
 * events (at most once a second at high rates), a one-line summary, and a
 * progress bar on a terminal when the run has a known length.
 *
 * @module
 */

import type { Logger } from "../../lib/log.ts";

/** Running totals of one run. */
export interface Tally {
  events: number;
  transactions: number;
  items: number;
  behaviors: number;
  revenueCents: number;
}

export const emptyTally = (): Tally => ({
  events: 0,
  transactions: 0,
  items: 0,
  behaviors: 0,
  revenueCents: 0,
});

/** Groups thousands: 12345 -> "12,345". */
export function formatCount(n: number): string {
  return Math.round(n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/**
 * Integer cents as currency units, exactly (no float arithmetic).
 *
 * @example
 * ```ts
 * import { formatCents } from "./progress.ts";
 * formatCents(123456789); // "1,234,567.89"
 * ```
 */
export function formatCents(cents: number): string {
  const sign = cents < 0 ? "-" : "";
  const abs = Math.abs(cents);
  return `${sign}${formatCount(Math.floor(abs / 100))}.${String(abs % 100).padStart(2, "0")}`;
}

/** The seed's progress line. */
export function progressLine(t: Tally): string {
  return `📈 Progress: ${formatCount(t.events)} events generated (${
    formatCount(t.transactions)
  } transactions, ${formatCount(t.behaviors)} behaviour events)`;
}

/**
 * True when a progress line is due: the count crossed a multiple of `every`
 * since the last line, and at least `minIntervalMs` passed.
 */
export function progressDue(
  last: { events: number; atMs: number },
  events: number,
  nowMs: number,
  { every = 50, minIntervalMs = 1000 } = {},
): boolean {
  return Math.floor(events / every) > Math.floor(last.events / every) &&
    nowMs - last.atMs >= minIntervalMs;
}

/**
 * A text progress bar.
 *
 * @example
 * ```ts
 * import { renderBar } from "./progress.ts";
 * renderBar(50, 200, 10); // "[██▌       ]  25% 50/200"
 * ```
 */
export function renderBar(done: number, total: number, width = 30): string {
  const ratio = total <= 0 ? 1 : Math.min(done / total, 1);
  const cells = ratio * width;
  const full = Math.floor(cells);
  const half = cells - full >= 0.5 && full < width ? "▌" : "";
  const bar = ("█".repeat(full) + half).padEnd(width, " ");
  const percent = `${Math.floor(ratio * 100)}%`.padStart(4, " ");
  return `[${bar}] ${percent} ${formatCount(done)}/${formatCount(total)}`;
}

/** A bar redrawn in place on a terminal, with log lines printed above it. */
export interface ProgressBar {
  /** A logger whose lines do not tear the bar. */
  log: Logger;
  update(done: number): void;
  /** Leaves the final bar on its own line. */
  finish(): void;
}

/**
 * @param write writes raw text to the terminal (stdout).
 */
export function createProgressBar(
  total: number,
  log: Logger,
  write: (text: string) => void,
  { now = Date.now, redrawMs = 100 }: { now?: () => number; redrawMs?: number } = {},
): ProgressBar {
  let shown = "";
  let drawnAt = 0;
  let last = 0;
  const clear = () => {
    if (shown) write("\r\x1b[2K");
  };
  const draw = () => {
    shown = renderBar(last, total);
    drawnAt = now();
    write(`\r${shown}`);
  };
  const around = (line: (message: string) => void) => (message: string) => {
    clear();
    line(message);
    if (shown) draw();
  };
  return {
    log: { info: around(log.info), warn: around(log.warn), error: around(log.error) },
    update(done) {
      last = done;
      if (done >= total || now() - drawnAt >= redrawMs) {
        clear();
        draw();
      }
    },
    finish() {
      if (!shown) return;
      clear();
      draw();
      write("\n");
      shown = "";
    },
  };
}
