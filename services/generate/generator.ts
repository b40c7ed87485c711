/**
 * The generator: prepares the shop, then writes session events at a steady
 * rate (or as fast as PostgreSQL takes them) until `count` events, `duration`
 * or a signal. Events come from the seeded session model, so the data depends
 * only on the seed and the shop, never on timing; batching only changes how
 * many events share a statement.
 *
 * @module
 */

import { ServiceError } from "../../lib/cli.ts";
import type { Logger } from "../../lib/log.ts";
import { silentLogger } from "../../lib/log.ts";
import { retry, sleep as defaultSleep } from "../../lib/retry.ts";
import type { EventBatch } from "./batch.ts";
import {
  emptyTally,
  formatCents,
  formatCount,
  progressDue,
  progressLine,
  type Tally,
} from "./progress.ts";
import { createEventSource } from "./session.ts";
import type { ShopState, ShopStore } from "./store.ts";

export interface GeneratorDeps {
  /** Connects to PostgreSQL (retrying while it is down); the generator closes the store. */
  openStore: (signal: AbortSignal) => Promise<ShopStore>;
  log?: Logger;
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Told the number of events written after each batch (a progress bar). */
  onProgress?: (events: number) => void;
  /**
   * Failures of the start-up reads worth another attempt (a cut connection);
   * default none. Retried with backoff, one line per failure, up to `attempts`
   * times. (The store retries its writes itself, statement by statement.)
   */
  retryable?: (error: unknown) => boolean;
  /** Attempts of the start-up step (default 6: about 8 s of backoff). */
  attempts?: number;
}

export interface GeneratorOptions {
  seed: number;
  /** Events per second; 0 = as fast as possible (default 10). */
  rate?: number;
  /** Stop after this long (default 60 minutes). */
  durationMs?: number;
  /** Stop after exactly this many events (default: no limit). */
  count?: number;
  /** Share of events that are transactions (default 0.7). */
  transactionShare?: number;
  /** Most events in one write (default 2000). */
  batchSize?: number;
  /**
   * Writes in flight at once (default 2). With more than one, batches may
   * commit out of order, so ids follow event order only within a batch.
   */
  writers?: number;
}

export type StopReason = "count" | "duration" | "signal";

export interface GenerateSummary extends Tally {
  elapsedMs: number;
  eventsPerSecond: number;
  stoppedBy: StopReason;
  initial: ShopState["counts"];
}

export interface Generator {
  run(signal?: AbortSignal): Promise<GenerateSummary>;
  /** Totals written so far (for a heartbeat). */
  tally(): Tally;
}

/**
 * @example
 * ```ts ignore
 * const generator = createGenerator({ store, log }, { seed: 7, rate: 0, count: 5000 });
 * const summary = await generator.run(signal);
 * ```
 */
export function createGenerator(deps: GeneratorDeps, options: GeneratorOptions): Generator {
  const {
    openStore,
    log = silentLogger,
    now = Date.now,
    sleep = defaultSleep,
    onProgress,
    retryable = () => false,
    attempts = 6,
  } = deps;
  const {
    seed,
    rate = 10,
    durationMs = 60 * 60_000,
    count,
    transactionShare = 0.7,
    batchSize = 2000,
    writers = 2,
  } = options;
  const tally = emptyTally();

  async function run(signal: AbortSignal = new AbortController().signal): Promise<GenerateSummary> {
    log.info(startLine());
    const store = await openStore(signal);
    try {
      return await generate(store, signal);
    } finally {
      await store.close();
    }
  }

  async function generate(store: ShopStore, signal: AbortSignal): Promise<GenerateSummary> {
    // Preparing is idempotent (base data goes in under a lock, once), so it can run again.
    const state = await retry(() => store.prepare(), {
      what: "prepare the shop in PostgreSQL",
      attempts,
      log,
      signal,
      sleep,
      retryIf: retryable,
    }).catch((error) => {
      if (!retryable(error)) throw error;
      throw new ServiceError(
        `Cannot prepare the shop in PostgreSQL after ${attempts} attempts: ` +
          `${(error as Error).message}`,
      );
    });
    const c = state.counts;
    if (state.inserted.products + state.inserted.customers + state.inserted.buyers > 0) {
      log.info(
        `🌱 Base data created: ${state.inserted.customers} customers, ${state.inserted.buyers} ` +
          `buyers, ${state.inserted.products} products`,
      );
    }
    log.info(
      `📊 Initial state: ${c.customers} customers, ${c.buyers} buyers, ${c.products} products ` +
        `(${formatCount(c.transactions)} transactions, ${formatCount(c.behaviors)} behaviour ` +
        `events already stored)`,
    );
    const source = createEventSource(state.shop, { seed, transactionShare });
    log.info("🔄 Starting the generation loop...");

    const start = now();
    const deadline = start + durationMs;
    let planned = 0;
    let lastLine = { events: 0, atMs: start };
    const inFlight = new Set<Promise<void>>();
    let failure: unknown;
    let stoppedBy: StopReason = "signal";

    const write = (batch: EventBatch) =>
      store.write(batch).then((written) => {
        tally.events += batch.events.length;
        tally.transactions += written.transactions;
        tally.items += written.items;
        tally.behaviors += written.behaviors;
        tally.revenueCents += written.revenueCents;
        onProgress?.(tally.events);
        const at = now();
        if (progressDue(lastLine, tally.events, at)) {
          log.info(progressLine(tally));
          lastLine = { events: tally.events, atMs: at };
        }
      }, (error) => {
        failure ??= error;
      });

    while (!signal.aborted && failure === undefined) {
      const t = now();
      if (count !== undefined && planned >= count) {
        stoppedBy = "count";
        break;
      }
      if (t >= deadline) {
        stoppedBy = "duration";
        break;
      }
      let n = batchSize;
      if (rate > 0) {
        // Event k is due k/rate seconds after the start; the first one at once.
        const due = Math.floor(((t - start) * rate) / 1000) + 1 - planned;
        if (due <= 0) {
          const wait = start + (planned * 1000) / rate - t;
          await sleep(Math.max(1, Math.min(wait, deadline - t)), signal);
          continue;
        }
        n = Math.min(n, due);
      }
      if (count !== undefined) n = Math.min(n, count - planned);
      const batch: EventBatch = { atMs: t, events: new Array(n) };
      for (let i = 0; i < n; i++) batch.events[i] = source.next();
      planned += n;
      // Writes overlap (PostgreSQL gets a core per connection) and the next
      // batch is built while they run.
      while (inFlight.size >= writers) await Promise.race(inFlight);
      const pending: Promise<void> = write(batch).finally(() => inFlight.delete(pending));
      inFlight.add(pending);
    }
    await Promise.all(inFlight);
    if (failure !== undefined) {
      throw new ServiceError(
        `Cannot write events to PostgreSQL: ${(failure as Error).message ?? failure}; ` +
          `stopped after ${tally.events} events written in full`,
      );
    }

    const elapsedMs = Math.max(now() - start, 1);
    const summary: GenerateSummary = {
      ...tally,
      elapsedMs,
      eventsPerSecond: (tally.events * 1000) / elapsedMs,
      stoppedBy,
      initial: c,
    };
    if (tally.events !== lastLine.events) log.info(progressLine(tally));
    log.info(summaryLine(summary));
    return summary;
  }

  function startLine(): string {
    const share = `${Math.round(transactionShare * 1000) / 10}% transactions`;
    const pace = rate === 0 ? "as fast as possible" : `at ${rate} events/s`;
    const limit = count !== undefined
      ? `${formatCount(count)} events`
      : `${formatDuration(durationMs)}`;
    return `🚀 Starting realistic data generation: ${limit} ${pace}, ${share} (seed ${seed})`;
  }

  return { run, tally: () => ({ ...tally }) };
}

function summaryLine(s: GenerateSummary): string {
  const why = { count: "count reached", duration: "duration reached", signal: "stopped by signal" }[
    s.stoppedBy
  ];
  return `✅ Done (${why}): ${formatCount(s.events)} events (${formatCount(s.transactions)} ` +
    `transactions with ${formatCount(s.items)} items, ${formatCount(s.behaviors)} behaviour ` +
    `events), revenue ${formatCents(s.revenueCents)}, in ${(s.elapsedMs / 1000).toFixed(2)} s: ` +
    `${formatCount(s.eventsPerSecond)} events/s`;
}

/** 3600000 -> "60 minutes", 90000 -> "90 seconds". */
export function formatDuration(ms: number): string {
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000} minutes`;
  return `${Math.round(ms / 100) / 10} seconds`;
}
