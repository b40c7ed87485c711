/**
 * Wakes an idle pump at once (a NOTIFY arrived) instead of at its next poll.
 *
 * @module
 */

import { sleep } from "../../lib/retry.ts";

/** Wakes an idle pump at once (NOTIFY) instead of at its next poll. */
export function createWaker() {
  let woken = false;
  let resolve: (() => void) | undefined;
  return {
    wake() {
      woken = true;
      resolve?.();
    },
    clear() {
      woken = false;
    },
    async wait(ms: number, signal: AbortSignal) {
      if (!woken) {
        const local = new AbortController();
        const stop = () => local.abort();
        signal.addEventListener("abort", stop, { once: true });
        resolve = stop;
        await sleep(ms, local.signal);
        signal.removeEventListener("abort", stop);
        resolve = undefined;
      }
      woken = false;
    },
  };
}
