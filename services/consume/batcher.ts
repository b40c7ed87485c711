/**
 * A two-stage pipeline for the partition batches kafkajs hands over.
 *
 * Batches that arrive together (one Kafka fetch gives one `eachBatch` call
 * per partition) are gathered into one flush, so the warehouse sees one
 * transaction per fetch rather than one per partition. A flush runs in two
 * stages, `prepare` (validate, dead letters, warehouse) then `finish`
 * (transaction_items, offset commit). Up to `concurrency` flushes prepare at
 * once, and up to `depth` are in flight (started, not finished): a flush
 * waiting for its finish does not hold a prepare's place, so the warehouse
 * takes the next batch while the items of the last go to Kafka, and Kafka
 * fetches the one after meanwhile. Finishes run one at a time in start order,
 * so commits stay in order; and once a flush fails, every flush already in
 * flight fails too, so no later commit can pass over it.
 *
 * A flush starts beside one in flight only once `overlapSize` messages are
 * queued; a smaller remainder waits for the flush in flight to finish and
 * grows meanwhile. Every flush costs the same round trips and commit however
 * small it is, and starting a second one at the first batch that arrived
 * made flushes of a single partition's few hundred messages (one in two, when
 * the stages ran together). Batches are admitted to the queue (`submit`
 * resolves) while it holds fewer than `queueLimit` messages, so that Kafka
 * keeps fetching while the flushes run. Once nothing more is coming (the end of
 * a drain), `release` lets the remainder start without waiting to grow: in a
 * 100,000-event drain the last 8,000 messages waited some 200 ms for the
 * flushes before them to finish.
 *
 * @module
 */

export interface Batcher<T> {
  /**
   * Queues `item` (of `size` messages). Resolves once the queue has room for
   * it or its flush has started, which is the backpressure; `done` settles
   * when that flush has finished.
   */
  submit(item: T, size: number): Promise<{ done: Promise<void> }>;
  /** Resolves when nothing is queued or in flight. */
  idle(): Promise<void>;
  /**
   * Nothing more is coming: what is queued, and whatever comes after, starts
   * as soon as a prepare's place is free, without waiting for `overlapSize`.
   */
  release(): void;
}

export interface Stages<T, C> {
  prepare(items: T[]): Promise<C>;
  finish(prepared: C): Promise<void>;
}

export interface BatcherOptions {
  /** How long the first item of an idle batcher waits for others (default 5 ms). */
  lingerMs?: number;
  /** Messages per flush, at most; one item larger than this is flushed alone (default 20,000). */
  maxSize?: number;
  /**
   * The first flush's limit instead of `maxSize`, doubled at each flush up to it (default
   * `maxSize`): a slow start, so that the warehouse gets work while the process warms up.
   */
  firstSize?: number;
  /** Prepares at once (default 2); finishes run one at a time. */
  concurrency?: number;
  /** Flushes started and not yet finished, at most (default `concurrency + 2`). */
  depth?: number;
  /** Messages queued before a flush starts beside one in flight (default `maxSize / 2`). */
  overlapSize?: number;
  /** Messages queued, at most, before `submit` waits for a flush to start (default `maxSize`). */
  queueLimit?: number;
}

interface Entry<T> {
  item: T;
  size: number;
  started: () => void;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * @example
 * ```ts
 * import { createBatcher } from "./batcher.ts";
 * const flushed: number[][] = [];
 * const batcher = createBatcher<number, number[]>({
 *   prepare: (items) => Promise.resolve(items),
 *   finish: (items) => {
 *     flushed.push(items);
 *     return Promise.resolve();
 *   },
 * });
 * await Promise.all([batcher.submit(1, 1), batcher.submit(2, 1)]);
 * await batcher.idle();
 * flushed; // [[1, 2]]
 * ```
 */
export function createBatcher<T, C>(
  stages: Stages<T, C>,
  {
    lingerMs = 5,
    maxSize = 20_000,
    firstSize = maxSize,
    concurrency = 2,
    depth = concurrency + 2,
    overlapSize = maxSize / 2,
    queueLimit = maxSize,
  }: BatcherOptions = {},
): Batcher<T> {
  let queue: Entry<T>[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  /** Flushes started and not yet finished, and those of them still preparing. */
  let inFlight = 0;
  let preparing = 0;
  /** The finish of the last flush started: finishes run in start order. */
  let finishing: Promise<void> = Promise.resolve();
  /** Once a flush failed, every flush already in flight fails too, until none is left. */
  let failure: { error: unknown } | undefined;
  let idleWaiters: (() => void)[] = [];
  /** Messages per flush, at most, for the next flush (the slow start). */
  let limit = Math.min(firstSize, maxSize);
  let released = false;

  function submit(item: T, size: number): Promise<{ done: Promise<void> }> {
    return new Promise((accept) => {
      const done = new Promise<void>((resolve, reject) => {
        queue.push({ item, size, started: () => accept({ done }), resolve, reject });
      });
      // A rejection is for whoever awaits `done`; never an unhandled one here.
      done.catch(() => {});
      schedule(true);
      admit();
    });
  }

  /** Lets the batches that fit within `queueLimit` (from the head) return to Kafka. */
  function admit() {
    let queued = 0;
    for (const e of queue) {
      queued += e.size;
      if (queued > queueLimit && e !== queue[0]) break;
      e.started();
    }
  }

  function schedule(linger: boolean) {
    if (preparing >= concurrency || inFlight >= depth || queue.length === 0) return checkIdle();
    const queued = queue.reduce((sum, e) => sum + e.size, 0);
    // The finish of the flush in flight calls back here: the remainder goes then, grown.
    if (inFlight > 0 && queued < overlapSize && !released) return;
    if (linger && inFlight === 0 && queued < limit) {
      timer ??= setTimeout(() => {
        timer = undefined;
        schedule(false);
      }, lingerMs);
      return;
    }
    clearTimeout(timer);
    timer = undefined;
    start();
  }

  function start() {
    let size = 0;
    let count = 0;
    while (count < queue.length && (count === 0 || size + queue[count]!.size <= limit)) {
      size += queue[count]!.size;
      count++;
    }
    const entries = queue.slice(0, count);
    queue = queue.slice(count);
    limit = Math.min(limit * 2, maxSize);
    inFlight++;
    preparing++;
    for (const e of entries) e.started();
    admit();
    const prepared = stages.prepare(entries.map((e) => e.item));
    const prepareOver = () => {
      preparing--;
      schedule(false);
    };
    prepared.then(prepareOver, prepareOver);
    finishing = finishing.then(async () => {
      try {
        if (failure) throw failure.error;
        await stages.finish(await prepared);
        for (const e of entries) e.resolve();
      } catch (error) {
        failure ??= { error };
        for (const e of entries) e.reject(error);
      } finally {
        inFlight--;
        if (inFlight === 0) failure = undefined;
        schedule(false);
      }
    });
    schedule(false);
  }

  function checkIdle() {
    if (inFlight > 0 || queue.length > 0) return;
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const w of waiters) w();
  }

  function idle(): Promise<void> {
    return new Promise((resolve) => {
      idleWaiters.push(resolve);
      checkIdle();
    });
  }

  function release() {
    released = true;
    schedule(false);
  }

  return { submit, idle, release };
}

/**
 * `batcher` for a producer of items that knows its last one: each item is
 * submitted, and once `isLast` says nothing comes after it, the batcher is
 * released (see {@link Batcher.release}).
 *
 * @example
 * ```ts
 * import { createBatcher, releasedAfter } from "./batcher.ts";
 * const batcher = createBatcher<number, number[]>({
 *   prepare: (items) => Promise.resolve(items),
 *   finish: () => Promise.resolve(),
 * });
 * const input = releasedAfter(batcher, (n) => n === 3);
 * await Promise.all([1, 2, 3].map((n) => input.submit(n, 1)));
 * await input.idle();
 * ```
 */
export function releasedAfter<T>(
  batcher: Batcher<T>,
  isLast: (item: T) => boolean,
): Pick<Batcher<T>, "submit" | "idle"> {
  return {
    submit(item, size) {
      const queued = batcher.submit(item, size);
      if (isLast(item)) batcher.release();
      return queued;
    },
    idle: () => batcher.idle(),
  };
}
