/**
 * Revenue and transactions per aggregation window (line chart, two axes).
 *
 * @module
 */

import {
  formatCents,
  formatDollarsCompact,
  formatInteger,
  formatUtcTime,
} from "../services/dashboard/format.ts";
import type { DashboardState, WindowPoint } from "../services/dashboard/model.ts";
import { ChartCanvas, FallbackTable, PALETTE } from "./_chart.tsx";
import { useLive } from "./_live.ts";

export interface WindowChartProps {
  windows: WindowPoint[];
}

export const selectWindows = (state: DashboardState): WindowChartProps => ({
  windows: state.windows,
});

export default function WindowChart(props: WindowChartProps) {
  const { windows } = useLive(selectWindows, props);
  const labels = windows.map((w) => formatUtcTime(w.startMs));
  const config = {
    type: "line",
    data: {
      labels,
      datasets: [
        {
          label: "Revenue",
          data: windows.map((w) => w.revenueCents / 100),
          yAxisID: "revenue",
          borderColor: PALETTE[0],
          backgroundColor: PALETTE[0],
          // Monotone curves never overshoot: a line never shows a value no window had.
          cubicInterpolationMode: "monotone",
        },
        {
          label: "Transactions",
          data: windows.map((w) => w.transactions),
          yAxisID: "count",
          borderColor: PALETTE[1],
          backgroundColor: PALETTE[1],
          // Monotone curves never overshoot: a line never shows a value no window had.
          cubicInterpolationMode: "monotone",
        },
      ],
    },
    options: {
      interaction: { mode: "index", intersect: false },
      scales: {
        x: { ticks: { maxRotation: 0, autoSkipPadding: 12 } },
        revenue: {
          position: "left",
          beginAtZero: true,
          ticks: { callback: (v: number | string) => formatDollarsCompact(Number(v)) },
        },
        count: {
          position: "right",
          beginAtZero: true,
          grid: { drawOnChartArea: false },
          ticks: { precision: 0 },
        },
      },
      plugins: {
        tooltip: {
          callbacks: {
            label: (item: { datasetIndex: number; dataIndex: number }) => {
              const w = windows[item.dataIndex]!;
              return item.datasetIndex === 0
                ? `Revenue ${formatCents(w.revenueCents)}`
                : `Transactions ${formatInteger(w.transactions)}`;
            },
          },
        },
      },
    },
  };
  return (
    <>
      {windows.length === 0 && <p class="empty">No windows yet: waiting for the aggregator.</p>}
      <ChartCanvas label="Revenue and transactions per window" config={config}>
        <FallbackTable
          caption="Revenue and transactions per window (start, UTC)"
          headers={["Window start", "Revenue", "Transactions", "Events"]}
          rows={windows.map((w, i) => [
            `${labels[i]}${w.final ? "" : " (open)"}`,
            formatCents(w.revenueCents),
            formatInteger(w.transactions),
            formatInteger(w.events),
          ])}
        />
      </ChartCanvas>
    </>
  );
}
