/**
 * The browser's one live connection: an EventSource on `/api/stream` whose
 * frames (the whole state) go to every island that subscribed. EventSource
 * reconnects by itself after a network error or a server restart; only when
 * the server refuses (401, 503) does it give up, and then we open a new one
 * later. On the server nothing here runs: hooks return the initial props.
 *
 * @module
 */

import { useEffect, useState } from "preact/hooks";
import type { DashboardState } from "../services/dashboard/model.ts";

/** What the live badge shows. */
export type Connection = "snapshot" | "live" | "reconnecting" | "refused";

const stateListeners = new Set<(state: DashboardState) => void>();
const connectionListeners = new Set<(connection: Connection) => void>();
let connection: Connection = "snapshot";
/** The newest frame, for islands that subscribe after it arrived. */
let latest: DashboardState | undefined;

/** How long to wait before asking again after the server refused the stream. */
const REFUSED_RETRY_MS = 15_000;

/**
 * Follows `url`; call once from the islands entry.
 *
 * @example
 * ```ts ignore
 * startLive("/api/stream");
 * ```
 */
export function startLive(url: string): void {
  const open = () => {
    const source = new EventSource(url);
    source.onopen = () => setConnection("live");
    source.onmessage = (event: MessageEvent<string>) => {
      let state: DashboardState;
      try {
        state = JSON.parse(event.data);
      } catch {
        return; // not ours; the next frame carries the whole state anyway
      }
      latest = state;
      for (const listener of stateListeners) listener(state);
    };
    source.onerror = () => {
      if (source.readyState !== EventSource.CLOSED) return setConnection("reconnecting");
      setConnection("refused");
      setTimeout(open, REFUSED_RETRY_MS);
    };
  };
  open();
}

function setConnection(next: Connection) {
  connection = next;
  for (const listener of connectionListeners) listener(next);
}

/**
 * The island's slice of the newest state: `initial` (its props) until the
 * first frame arrives.
 */
export function useLive<T>(select: (state: DashboardState) => T, initial: T): T {
  const [value, setValue] = useState(initial);
  useEffect(() => {
    const listener = (state: DashboardState) => setValue(select(state));
    stateListeners.add(listener);
    if (latest) listener(latest);
    return () => void stateListeners.delete(listener);
  }, []);
  return value;
}

/** The state of the live connection. */
export function useConnection(): Connection {
  const [value, setValue] = useState<Connection>(connection);
  useEffect(() => {
    connectionListeners.add(setValue);
    setValue(connection);
    return () => void connectionListeners.delete(setValue);
  }, []);
  return value;
}
