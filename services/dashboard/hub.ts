/**
 * The SSE relay: one Redis subscriber for all browsers. A message on
 * `metrics:updates` asks for a fresh state; bursts are coalesced into at most
 * one read per `coalesceMs`, and each read goes to every client as one frame.
 * Each client is a ReadableStream that the HTTP response streams; it leaves
 * the hub when the browser goes away (stream cancelled or connection ended).
 *
 * @module
 */

import type { Logger } from "../../lib/log.ts";
import type { Redis } from "../../lib/redis.ts";
import type { DashboardState } from "./model.ts";
import { encode, formatComment, formatEvent, formatRetry } from "./sse.ts";

export interface HubOptions {
  /** A dedicated connection; the hub puts it in subscriber mode. */
  subscriber: Redis;
  channel: string;
  /** Reads the state to push; expected not to throw (failures are part of the state). */
  read: () => Promise<DashboardState>;
  maxClients: number;
  log: Logger;
  /** At most one read per this many ms (default 150). */
  coalesceMs?: number;
  /** A comment line to every client this often (default 15000). */
  keepAliveMs?: number;
  /** Re-read this often while clients are connected, so heartbeat ages and outages show (default 5000). */
  refreshMs?: number;
  /** The browser's reconnect delay (default 2000). */
  retryMs?: number;
  /** Frames a client may have queued before it is dropped as too slow (default 32). */
  maxQueuedFrames?: number;
}

export interface Hub {
  /** Connected clients. */
  readonly clientCount: number;
  /** Frames sent so far (the id of the latest). */
  readonly lastId: number;
  /**
   * Opens a client stream; undefined when `maxClients` are connected. The
   * stream starts with a `retry:` hint and the latest frame, if any. The
   * client leaves when the stream is cancelled (the browser went away) or
   * when `done` settles (Deno.serve's `completed`).
   */
  connect(done?: Promise<unknown>): ReadableStream<Uint8Array> | undefined;
  /** Asks for a fresh state to push (coalesced). */
  refresh(): void;
  /** Ends every client stream and stops listening. */
  close(): void;
}

interface Client {
  controller: ReadableStreamDefaultController<Uint8Array>;
  detach(): void;
}

/**
 * @example
 * ```ts ignore
 * const hub = createHub({ subscriber, channel: "demo:metrics:updates", read, maxClients: 100, log });
 * const body = hub.connect(info.completed);
 * ```
 */
export function createHub(options: HubOptions): Hub {
  const { subscriber, channel, read, maxClients, log } = options;
  const { coalesceMs = 150, keepAliveMs = 15_000, refreshMs = 5_000, retryMs = 2_000 } = options;
  const { maxQueuedFrames = 32 } = options;
  const clients = new Set<Client>();
  const retryFrame = encode(formatRetry(retryMs));
  const keepAliveFrame = encode(formatComment("keep-alive"));
  let latest: Uint8Array | undefined;
  let lastId = 0;
  let lastReadAt = -Infinity;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let reading = false;
  let dirty = false;
  let closed = false;
  let tickers: ReturnType<typeof setInterval>[] = [];

  subscriber.on("message", onMessage);
  subscriber.on("ready", onReady);
  subscriber.on("close", onConnectionChange);
  // ioredis re-subscribes after a reconnect by itself; "ready" also covers the first connect.
  if (subscriber.status === "ready") onReady();

  function onMessage(from: string) {
    if (from === channel) refresh();
  }

  function onReady() {
    subscriber.subscribe(channel).catch((error: Error) => {
      log.warn(`Cannot subscribe to ${channel}: ${error.message}`);
    });
    refresh();
  }

  function onConnectionChange() {
    refresh();
  }

  /** Schedules one read, at most one per `coalesceMs`; a request during a read re-reads after it. */
  function refresh() {
    if (closed || clients.size === 0) {
      latest = undefined;
      return;
    }
    if (reading) {
      dirty = true;
      return;
    }
    if (timer !== undefined) return;
    timer = setTimeout(run, Math.max(0, lastReadAt + coalesceMs - Date.now()));
  }

  async function run() {
    timer = undefined;
    reading = true;
    lastReadAt = Date.now();
    try {
      const state = await read();
      if (!closed) broadcast(encode(formatEvent(++lastId, JSON.stringify(state))));
    } catch (error) {
      log.error(`Cannot build the dashboard state: ${(error as Error).message}`);
    } finally {
      reading = false;
      if (dirty) {
        dirty = false;
        refresh();
      }
    }
  }

  function broadcast(frame: Uint8Array) {
    latest = frame;
    for (const client of clients) send(client, frame);
  }

  function send(client: Client, frame: Uint8Array) {
    // A client that stopped reading only needs the newest state; drop it and let it reconnect.
    if ((client.controller.desiredSize ?? 0) <= -maxQueuedFrames) {
      client.detach();
      client.controller.error(new Error("client too slow"));
      return;
    }
    try {
      client.controller.enqueue(frame);
    } catch {
      client.detach();
    }
  }

  function startTickers() {
    tickers = [
      setInterval(() => {
        for (const client of clients) send(client, keepAliveFrame);
      }, keepAliveMs),
      setInterval(refresh, refreshMs),
    ];
  }

  function stopTickers() {
    for (const ticker of tickers) clearInterval(ticker);
    tickers = [];
  }

  function connect(done?: Promise<unknown>): ReadableStream<Uint8Array> | undefined {
    if (closed || clients.size >= maxClients) return undefined;
    let client: Client;
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        client = { controller, detach };
        clients.add(client);
        if (clients.size === 1) startTickers();
        controller.enqueue(retryFrame);
        if (latest) controller.enqueue(latest);
      },
      cancel: () => detach(),
    }, { highWaterMark: 8, size: () => 1 });
    done?.then(leave, leave);
    refresh();
    return stream;

    function leave() {
      detach();
      try {
        client.controller.close();
      } catch {
        // already closed or errored
      }
    }

    function detach() {
      if (!clients.delete(client)) return;
      if (clients.size === 0) stopTickers();
    }
  }

  function close() {
    if (closed) return;
    closed = true;
    clearTimeout(timer);
    stopTickers();
    subscriber.off("message", onMessage);
    subscriber.off("ready", onReady);
    subscriber.off("close", onConnectionChange);
    for (const client of [...clients]) {
      client.detach();
      try {
        client.controller.close();
      } catch {
        // already closed or errored
      }
    }
  }

  return {
    get clientCount() {
      return clients.size;
    },
    get lastId() {
      return lastId;
    },
    connect,
    refresh,
    close,
  };
}
