/**
 * The behaviour mix: page views, product views, searches and cart events.
 *
 * @module
 */

import { formatInteger } from "../services/dashboard/format.ts";
import type { BehaviorPoint, DashboardState } from "../services/dashboard/model.ts";
import { ChartCanvas, FallbackTable, PALETTE } from "./_chart.tsx";
import { useLive } from "./_live.ts";

export interface BehaviorChartProps {
  behavior: BehaviorPoint[];
}

export const selectBehavior = (state: DashboardState): BehaviorChartProps => ({
  behavior: state.behavior,
});

/** `add_to_cart` -> `add to cart`. */
const readable = (type: string) => type.replaceAll("_", " ");

export default function BehaviorChart(props: BehaviorChartProps) {
  const { behavior } = useLive(selectBehavior, props);
  const total = behavior.reduce((sum, b) => sum + b.count, 0);
  const share = (count: number) =>
    total === 0 ? "0%" : `${Math.round((count / total) * 1000) / 10}%`;
  const config = {
    type: "doughnut",
    data: {
      labels: behavior.map((b) => readable(b.type)),
      datasets: [{
        label: "Events",
        data: behavior.map((b) => b.count),
        backgroundColor: behavior.map((_, i) => PALETTE[i % PALETTE.length]),
        borderWidth: 1,
      }],
    },
    options: {
      cutout: "55%",
      plugins: {
        legend: { position: "right" },
        tooltip: {
          callbacks: {
            label: (item: { dataIndex: number }) => {
              const b = behavior[item.dataIndex]!;
              return `${formatInteger(b.count)} (${share(b.count)})`;
            },
          },
        },
      },
    },
  };
  return (
    <>
      {behavior.length === 0 && <p class="empty">No behaviour events yet.</p>}
      <ChartCanvas label="Behaviour mix" config={config}>
        <FallbackTable
          caption="Behaviour mix"
          headers={["Event type", "Events", "Share"]}
          rows={behavior.map((b) => [readable(b.type), formatInteger(b.count), share(b.count)])}
        />
      </ChartCanvas>
    </>
  );
}
