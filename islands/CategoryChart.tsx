/**
 * Sales by category: revenue bars, units in the tooltip and the table.
 *
 * @module
 */

import { formatCents, formatDollarsCompact, formatInteger } from "../services/dashboard/format.ts";
import type { CategoryPoint, DashboardState } from "../services/dashboard/model.ts";
import { ChartCanvas, FallbackTable, PALETTE } from "./_chart.tsx";
import { useLive } from "./_live.ts";

export interface CategoryChartProps {
  categories: CategoryPoint[];
}

export const selectCategories = (state: DashboardState): CategoryChartProps => ({
  categories: state.categories,
});

/** Axis labels stay short; the table and tooltip carry the full name. */
function shorten(name = ""): string {
  return name.length > 18 ? `${name.slice(0, 17)}…` : name;
}

export default function CategoryChart(props: CategoryChartProps) {
  const { categories } = useLive(selectCategories, props);
  const config = {
    type: "bar",
    data: {
      labels: categories.map((c) => c.category),
      datasets: [{
        label: "Revenue",
        data: categories.map((c) => c.revenueCents / 100),
        backgroundColor: categories.map((_, i) => PALETTE[i % PALETTE.length]),
        borderRadius: 4,
      }],
    },
    options: {
      indexAxis: "y",
      plugins: {
        legend: { display: false },
        tooltip: {
          callbacks: {
            title: (items: { dataIndex: number }[]) => categories[items[0]!.dataIndex]!.category,
            label: (item: { dataIndex: number }) => {
              const c = categories[item.dataIndex]!;
              return `${formatCents(c.revenueCents)} · ${formatInteger(c.units)} units`;
            },
          },
        },
      },
      scales: {
        y: { ticks: { callback: (_: unknown, i: number) => shorten(categories[i]?.category) } },
        x: {
          beginAtZero: true,
          ticks: {
            maxRotation: 0,
            callback: (v: number | string) => formatDollarsCompact(Number(v)),
          },
        },
      },
    },
  };
  return (
    <>
      {categories.length === 0 && <p class="empty">No sales yet.</p>}
      <ChartCanvas label="Sales by category" config={config}>
        <FallbackTable
          caption="Sales by category"
          headers={["Category", "Revenue", "Units"]}
          rows={categories.map((c) => [
            c.category,
            formatCents(c.revenueCents),
            formatInteger(c.units),
          ])}
        />
      </ChartCanvas>
    </>
  );
}
