/**
 * The headline numbers: total events, transactions, revenue, average order
 * value, events per second and late events.
 *
 * @module
 */

import { formatCents, formatInteger, formatRate } from "../services/dashboard/format.ts";
import type { DashboardState, Kpis as KpiValues } from "../services/dashboard/model.ts";
import { useLive } from "./_live.ts";

export interface KpisProps {
  kpis: KpiValues;
}

export const selectKpis = (state: DashboardState): KpisProps => ({ kpis: state.kpis });

export default function Kpis(props: KpisProps) {
  const { kpis } = useLive(selectKpis, props);
  const cards: [key: string, label: string, value: string, hint: string][] = [
    ["events", "Total events", formatInteger(kpis.events), "transactions + behaviour"],
    [
      "transactions",
      "Transactions",
      formatInteger(kpis.transactions),
      `${formatInteger(kpis.itemsSold)} items sold`,
    ],
    ["revenue", "Revenue", formatCents(kpis.revenueCents), "all windows, exact to the cent"],
    ["aov", "Average order value", formatCents(kpis.aovCents), "revenue ÷ transactions"],
    ["rate", "Events per second", formatRate(kpis.eventsPerSecond), "aggregator, now"],
    ["late", "Late events", formatInteger(kpis.lateEvents), "behind the watermark"],
  ];
  return (
    <dl class="kpis">
      {cards.map(([key, label, value, hint]) => (
        <div class="kpi" data-kpi={key} key={key}>
          <dt>{label}</dt>
          <dd class="kpi-value" title={value}>{value}</dd>
          <dd class="kpi-hint">{hint}</dd>
        </div>
      ))}
    </dl>
  );
}
