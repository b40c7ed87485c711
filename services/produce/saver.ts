/**
 * Durable cursor writes for a pump: ordered, and coalesced so that while one
 * write runs only the newest cursor waits (a backlog acknowledges pages far
 * faster than it needs them stored).
 *
 * @module
 */

import type { Cursor } from "./cursor.ts";

/** Coalescing, ordered cursor writes: only the latest pending cursor is written. */
export function createSaver(store: (cursor: Cursor) => Promise<void>) {
  let pending: Cursor | undefined;
  let running: Promise<void> | undefined;
  let failure: unknown;
  async function loop() {
    try {
      while (pending && failure === undefined) {
        const cursor = pending;
        pending = undefined;
        await store(cursor);
      }
    } catch (error) {
      failure = error;
    }
  }
  return {
    save(cursor: Cursor) {
      pending = cursor;
      // Cleared in a callback, never inside `loop`: after a failure `loop` returns without
      // awaiting, and a clear there would come before this assignment, leaving a settled
      // `running` for `flush` to await forever (a microtask spin that froze the worker).
      running ??= loop().finally(() => {
        running = undefined;
      });
    },
    async flush() {
      while (running) await running;
      if (failure !== undefined) {
        const error = failure;
        failure = undefined;
        throw error;
      }
    },
  };
}
