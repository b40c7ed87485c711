/**
 * Revenue by hour over the last 24 hours, from the warehouse (`fact_sales`).
 *
 * @module
 */

import {
  formatCents,
  formatDollarsCompact,
  formatInteger,
  formatUtcHour,
} from "../services/dashboard/format.ts";
import type { DashboardState, HourPoint } from "../services/dashboard/model.ts";
import { ChartCanvas, FallbackTable, PALETTE } from "./_chart.tsx";
import { useLive } from "./_live.ts";

export interface HourlyChartProps {
  hours: HourPoint[];
}

export const selectHours = (state: DashboardState): HourlyChartProps => ({
  hours: state.hours,
});

export default function HourlyChart(props: HourlyChartProps) {
  const { hours } = useLive(selectHours, props);
  const labels = hours.map((h) => formatUtcHour(h.hourMs));
  const config = {
    type: "bar",
    data: {
      labels,
      datasets: [{
        label: "Revenue",
        data: hours.map((h) => h.revenueCents / 100),
        backgroundColor: PALETTE[2],
        borderRadius: 3,
      }],
    },
    options: {
      plugins: {
        legend: { display: false },
        tooltip: {
          callbacks: {
            label: (item: { dataIndex: number }) => {
              const h = hours[item.dataIndex]!;
              return `${formatCents(h.revenueCents)} · ${
                formatInteger(h.transactions)
              } transactions`;
            },
          },
        },
      },
      scales: {
        y: {
          beginAtZero: true,
          ticks: { callback: (v: number | string) => formatDollarsCompact(Number(v)) },
        },
        x: { ticks: { maxRotation: 0, autoSkipPadding: 8 } },
      },
    },
  };
  const sold = hours.filter((h) => h.revenueCents !== 0);
  return (
    <>
      {sold.length === 0 && <p class="empty">No sales in the warehouse in the last 24 hours.</p>}
      <ChartCanvas label="Revenue by hour (UTC), last 24 hours" config={config}>
        <FallbackTable
          caption="Revenue by hour (UTC), last 24 hours"
          headers={["Hour (UTC)", "Revenue", "Transactions", "Units"]}
          rows={sold.map((h) => [
            formatUtcHour(h.hourMs),
            formatCents(h.revenueCents),
            formatInteger(h.transactions),
            formatInteger(h.units),
          ])}
        />
      </ChartCanvas>
    </>
  );
}
