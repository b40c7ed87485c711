/**
 * The last update time (UTC) and whether the page is live.
 *
 * @module
 */

import { formatUtcDateTime } from "../services/dashboard/format.ts";
import type { DashboardState } from "../services/dashboard/model.ts";
import { type Connection, useConnection, useLive } from "./_live.ts";

export interface LiveBadgeProps {
  lastUpdate: string | null;
  at: string;
}

export const selectLiveBadge = (state: DashboardState): LiveBadgeProps => ({
  lastUpdate: state.lastUpdate,
  at: state.at,
});

const LABEL: Record<Connection, string> = {
  snapshot: "Snapshot",
  live: "Live",
  reconnecting: "Reconnecting…",
  refused: "Live updates refused; retrying",
};

export default function LiveBadge(props: LiveBadgeProps) {
  const { lastUpdate, at } = useLive(selectLiveBadge, props);
  const connection = useConnection();
  return (
    <div class="live">
      <span class={`live-dot live-${connection}`} data-connection={connection}>
        {LABEL[connection]}
      </span>
      <span class="live-time">
        Last update:{" "}
        <time data-last-update dateTime={lastUpdate ?? undefined}>
          {formatUtcDateTime(lastUpdate)}
        </time>
      </span>
      <span class="live-read">read {formatUtcDateTime(at)}</span>
    </div>
  );
}
