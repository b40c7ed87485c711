/**
 * The per-partition watermark of one aggregator instance. Each assigned
 * partition remembers the newest event time seen in it; the watermark is the
 * minimum over the partitions minus the lateness, so that while a backlog is
 * caught up one partition that runs far ahead cannot make the others' events
 * late. A partition that is caught up with its end offset and has had no new
 * data for `idleMs` stops holding the watermark back. Pure: the clock is a
 * parameter.
 *
 * @module
 */

/** `hold`: a partition with pending data has not shown an event yet; `none`: nothing to say. */
export type LocalWatermark = number | "hold" | "none";

export interface WatermarkOptions {
  /** Subtracted from the newest event time (`--watermark`, default 10 s). */
  latenessMs: number;
  /** A caught-up partition without new data for this long no longer holds the watermark. */
  idleMs: number;
  /** Event times further ahead of the clock than this count only up to it (default 5 min). */
  maxFutureMs?: number;
}

/** `topic:partition` */
export type PartitionKey = string;

export interface PartitionView {
  newestMs: number | undefined;
  caughtUp: boolean;
  idle: boolean;
}

export interface WatermarkTracker {
  /** The partitions this instance now owns; state of partitions it keeps survives. */
  assign(keys: Iterable<PartitionKey>, nowMs: number): void;
  /** Folds in the newest event time of a flush that Redis accepted. */
  observe(newest: ReadonlyMap<PartitionKey, number>, nowMs: number): void;
  /** Where the instance stands on a partition: next offset to read and/or the end offset. */
  progress(key: PartitionKey, position?: number, high?: number): void;
  /**
   * The watermark, with a flush's `pending` newest times as if observed;
   * `endOfInput` (a finished `--drain`) treats every partition as idle.
   */
  watermark(
    nowMs: number,
    options?: { pending?: ReadonlyMap<PartitionKey, number>; endOfInput?: boolean },
  ): LocalWatermark;
  /** Per-partition state for the heartbeat. */
  view(nowMs: number): Record<PartitionKey, PartitionView>;
}

interface State {
  newestMs: number | undefined;
  lastDataMs: number;
  position: number | undefined;
  high: number | undefined;
}

/**
 * @example
 * ```ts
 * import { createWatermarkTracker } from "./watermark.ts";
 * const tracker = createWatermarkTracker({ latenessMs: 10_000, idleMs: 60_000 });
 * tracker.assign(["t:0", "t:1"], 0);
 * tracker.observe(new Map([["t:0", 100_000]]), 0);
 * tracker.watermark(0); // "hold": t:1 has shown no event yet
 * tracker.observe(new Map([["t:1", 50_000]]), 0);
 * tracker.watermark(0); // 40_000: the slower partition minus the lateness
 * ```
 */
export function createWatermarkTracker(
  { latenessMs, idleMs, maxFutureMs = 5 * 60_000 }: WatermarkOptions,
): WatermarkTracker {
  const states = new Map<PartitionKey, State>();

  function assign(keys: Iterable<PartitionKey>, nowMs: number) {
    const wanted = new Set(keys);
    for (const key of states.keys()) if (!wanted.has(key)) states.delete(key);
    for (const key of wanted) {
      if (!states.has(key)) {
        states.set(key, {
          newestMs: undefined,
          lastDataMs: nowMs,
          position: undefined,
          high: undefined,
        });
      }
    }
  }

  function observe(newest: ReadonlyMap<PartitionKey, number>, nowMs: number) {
    for (const [key, eventMs] of newest) {
      const state = states.get(key);
      if (!state) continue;
      state.newestMs = Math.max(state.newestMs ?? -Infinity, clamp(eventMs, nowMs));
      state.lastDataMs = nowMs;
    }
  }

  function progress(key: PartitionKey, position?: number, high?: number) {
    const state = states.get(key);
    if (!state) return;
    if (position !== undefined) state.position = Math.max(state.position ?? -1, position);
    if (high !== undefined) state.high = Math.max(state.high ?? -1, high);
  }

  function clamp(eventMs: number, nowMs: number) {
    return Math.min(eventMs, nowMs + maxFutureMs);
  }

  function isIdle(state: State, nowMs: number, endOfInput: boolean) {
    const caughtUp = state.high !== undefined && (state.position ?? -1) >= state.high;
    return caughtUp && (endOfInput || nowMs - state.lastDataMs > idleMs);
  }

  function watermark(
    nowMs: number,
    { pending, endOfInput = false }: {
      pending?: ReadonlyMap<PartitionKey, number>;
      endOfInput?: boolean;
    } = {},
  ): LocalWatermark {
    if (states.size === 0) return "none";
    let activeMin = Infinity;
    let idleMax = -Infinity;
    let active = 0;
    let holding = false;
    for (const [key, state] of states) {
      const extra = pending?.get(key);
      const newest = extra === undefined
        ? state.newestMs
        : Math.max(state.newestMs ?? -Infinity, clamp(extra, nowMs));
      const idle = extra === undefined && isIdle(state, nowMs, endOfInput);
      if (idle) {
        if (newest !== undefined) idleMax = Math.max(idleMax, newest);
        continue;
      }
      active++;
      if (newest === undefined) holding = true;
      else activeMin = Math.min(activeMin, newest);
    }
    if (holding) return "hold";
    if (active > 0) return activeMin - latenessMs;
    // Every partition is caught up and quiet: all that was sent is behind the newest time seen.
    return idleMax === -Infinity ? "none" : idleMax - latenessMs;
  }

  function view(nowMs: number): Record<PartitionKey, PartitionView> {
    const out: Record<PartitionKey, PartitionView> = {};
    for (const [key, state] of states) {
      out[key] = {
        newestMs: state.newestMs,
        caughtUp: state.high !== undefined && (state.position ?? -1) >= state.high,
        idle: isIdle(state, nowMs, false),
      };
    }
    return out;
  }

  return { assign, observe, progress, watermark, view };
}
