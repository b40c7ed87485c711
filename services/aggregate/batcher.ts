/**
 * Gathers the partition batches of one Kafka fetch into one flush, and runs
 * flushes and watermark ticks one at a time. kafkajs hands each partition's
 * batch to its own `eachBatch` call; each call submits its batch and waits,
 * the batches that arrive within `lingerMs` are flushed together (one Redis
 * script call per chunk instead of per partition), and every waiting call
 * settles with its flush.
 *
 * @module
 */

/** Runs tasks one after another, in call order. */
export interface Serial {
  run<T>(task: () => Promise<T>): Promise<T>;
}

/**
 * @example
 * ```ts
 * import { createSerial } from "./batcher.ts";
 * const serial = createSerial();
 * const order: number[] = [];
 * await Promise.all([serial.run(async () => order.push(1)), serial.run(async () => order.push(2))]);
 * order; // [1, 2]
 * ```
 */
export function createSerial(): Serial {
  let tail: Promise<unknown> = Promise.resolve();
  return {
    run<T>(task: () => Promise<T>): Promise<T> {
      const result = tail.then(task, task);
      tail = result.catch(() => {});
      return result;
    },
  };
}

export interface Batcher<T> {
  /** Queues `item` (of `size` messages); settles when the flush holding it settles. */
  submit(item: T, size: number): Promise<void>;
}

export interface BatcherOptions {
  /** How long the first queued item waits for others (default 5 ms). */
  lingerMs?: number;
  /** Flush without waiting once this many messages are queued (default 20,000). */
  maxSize?: number;
  /** Flushes run through this (default: a private one). */
  serial?: Serial;
}

interface Entry<T> {
  item: T;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * @example
 * ```ts
 * import { createBatcher } from "./batcher.ts";
 * const flushed: number[][] = [];
 * const batcher = createBatcher<number>(async (items) => {
 *   flushed.push(items);
 * });
 * await Promise.all([batcher.submit(1, 1), batcher.submit(2, 1)]);
 * flushed; // [[1, 2]]
 * ```
 */
export function createBatcher<T>(
  flush: (items: T[]) => Promise<void>,
  { lingerMs = 5, maxSize = 20_000, serial = createSerial() }: BatcherOptions = {},
): Batcher<T> {
  let pending: Entry<T>[] = [];
  let pendingSize = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let busy = false;

  function submit(item: T, size: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      pending.push({ item, resolve, reject });
      pendingSize += size;
      schedule();
    });
  }

  function schedule() {
    if (busy || pending.length === 0) return;
    if (pendingSize >= maxSize) {
      clearTimeout(timer);
      timer = undefined;
      void run();
    } else {
      timer ??= setTimeout(() => {
        timer = undefined;
        void run();
      }, lingerMs);
    }
  }

  async function run() {
    if (busy) return;
    busy = true;
    const entries = pending;
    pending = [];
    pendingSize = 0;
    try {
      await serial.run(() => flush(entries.map((e) => e.item)));
      for (const e of entries) e.resolve();
    } catch (error) {
      for (const e of entries) e.reject(error);
    } finally {
      busy = false;
      schedule();
    }
  }

  return { submit };
}
