/**
 * The latest events the warehouse stored (`realtime_events`).
 *
 * @module
 */

import { formatUtcTime } from "../services/dashboard/format.ts";
import type { DashboardState, LatestEvent } from "../services/dashboard/model.ts";
import { useLive } from "./_live.ts";

export interface LatestEventsProps {
  events: LatestEvent[];
}

export const selectLatestEvents = (state: DashboardState): LatestEventsProps => ({
  events: state.latestEvents,
});

export default function LatestEvents(props: LatestEventsProps) {
  const { events } = useLive(selectLatestEvents, props);
  if (events.length === 0) return <p class="empty">No events in the warehouse yet.</p>;
  return (
    <div class="table-scroll">
      <table class="events">
        <thead>
          <tr>
            <th scope="col">Stored (UTC)</th>
            <th scope="col" class="optional">Event time</th>
            <th scope="col">Type</th>
            <th scope="col">Customer</th>
            <th scope="col">Detail</th>
          </tr>
        </thead>
        <tbody>
          {events.map((e) => (
            <tr key={e.eventId} title={e.eventId}>
              <td>{formatUtcTime(e.processedAt)}</td>
              <td class="optional">{formatUtcTime(e.timestamp)}</td>
              <td>
                <span class={`tag tag-${e.eventType.replace(/[^a-z_]/g, "")}`}>
                  {e.eventType.replaceAll("_", " ")}
                </span>
              </td>
              <td class="num">{e.customerId}</td>
              <td class="detail">{e.summary}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
