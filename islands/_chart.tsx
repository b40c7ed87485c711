/**
 * A chart.js canvas for the chart islands (not an island itself). Only the
 * controllers, elements and scales the dashboard uses are registered, so the
 * bundle carries no more of chart.js than that. The canvas holds a data table
 * as fallback content: browsers show it when scripting is off, screen readers
 * read it always.
 *
 * @module
 */

import {
  ArcElement,
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  type ChartConfiguration,
  DoughnutController,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
} from "chart.js";
import type { ComponentChildren } from "preact";
import { useEffect, useRef } from "preact/hooks";

Chart.register(
  ArcElement,
  BarController,
  BarElement,
  CategoryScale,
  DoughnutController,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
);
Chart.defaults.font.family = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
Chart.defaults.color = "#475569";
// Frames arrive every second or so: redraw at once instead of animating between them.
Chart.defaults.animation = false;
Chart.defaults.maintainAspectRatio = false;

/** Series colours, readable on white and told apart without colour vision. */
export const PALETTE = [
  "#2563eb",
  "#f59e0b",
  "#10b981",
  "#ef4444",
  "#8b5cf6",
  "#0ea5e9",
  "#ec4899",
  "#84cc16",
  "#64748b",
  "#14b8a6",
];

export interface ChartCanvasProps {
  /** Accessible name of the chart. */
  label: string;
  /** Rebuilt from props on each render; the chart takes its data and options. */
  // deno-lint-ignore no-explicit-any
  config: ChartConfiguration<any>;
  /** Fallback content (a table of the same numbers). */
  children: ComponentChildren;
}

/** A responsive chart in a fixed-height box. */
export function ChartCanvas({ label, config, children }: ChartCanvasProps) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const chart = useRef<Chart>();

  useEffect(() => {
    chart.current = new Chart(canvas.current!, config);
    return () => chart.current?.destroy();
  }, []);

  useEffect(() => {
    const current = chart.current;
    if (!current || current.config.data === config.data) return;
    current.data = config.data;
    current.options = config.options ?? {};
    current.update();
  }, [config]);

  return (
    <div class="chart-box">
      <canvas ref={canvas} role="img" aria-label={label}>{children}</canvas>
    </div>
  );
}

export interface FallbackTableProps {
  caption: string;
  headers: string[];
  rows: string[][];
}

/** The numbers of a chart as a table. */
export function FallbackTable({ caption, headers, rows }: FallbackTableProps) {
  return (
    <table>
      <caption>{caption}</caption>
      <thead>
        <tr>{headers.map((h) => <th scope="col" key={h}>{h}</th>)}</tr>
      </thead>
      <tbody>
        {rows.map((row, r) => <tr key={r}>{row.map((cell, c) => <td key={c}>{cell}</td>)}</tr>)}
      </tbody>
    </table>
  );
}
