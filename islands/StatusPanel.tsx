/**
 * Redis, aggregator, Kafka and warehouse, each green, amber or red with one
 * line of why.
 *
 * @module
 */

import type { DashboardState, StatusItem } from "../services/dashboard/model.ts";
import { useLive } from "./_live.ts";

export interface StatusPanelProps {
  status: StatusItem[];
}

export const selectStatus = (state: DashboardState): StatusPanelProps => ({
  status: state.status,
});

/** Said by screen readers; sighted users get the colour and the line of text. */
const LEVEL = { ok: "OK", warn: "Warning", down: "Down" } as const;

export default function StatusPanel(props: StatusPanelProps) {
  const { status } = useLive(selectStatus, props);
  return (
    <ul class="status">
      {status.map((item) => (
        <li class={`status-item level-${item.level}`} data-status={item.key} key={item.key}>
          <span class="status-dot">
            <span class="visually-hidden">{LEVEL[item.level]}:</span>
          </span>
          <span class="status-label">{item.label}</span>
          <span class="status-text">{item.text}</span>
        </li>
      ))}
    </ul>
  );
}
