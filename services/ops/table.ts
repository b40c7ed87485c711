/**
 * Plain-text tables for the terminal: columns padded to their widest cell,
 * numbers right-aligned.
 *
 * @module
 */

/** A cell: numbers are right-aligned and shown with thousands separators. */
export type Cell = string | number | null | undefined;

/**
 * Renders `rows` under `header`, two spaces between columns.
 *
 * @example
 * ```ts
 * import { renderTable } from "./table.ts";
 * renderTable(["check", "n"], [["rows", 1200]]);
 * // ["check  n", "-----  -----", "rows   1,200"]
 * ```
 */
export function renderTable(header: string[], rows: Cell[][]): string[] {
  const text = rows.map((row) => row.map(cellText));
  const widths = header.map((h, i) => Math.max(h.length, ...text.map((r) => r[i]?.length ?? 0)));
  const numeric = header.map((_, i) =>
    rows.length > 0 &&
    rows.every((r) => typeof r[i] === "number" || r[i] === null || r[i] === undefined)
  );
  const line = (cells: string[], align: boolean) =>
    cells.map((c, i) => align && numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))
      .join("  ").trimEnd();
  return [
    line(header, false),
    widths.map((w) => "-".repeat(w)).join("  "),
    ...text.map((r) => line(r, true)),
  ];
}

/**
 * @example
 * ```ts
 * import { cellText } from "./table.ts";
 * cellText(1234567); // "1,234,567"
 * cellText(null); // "-"
 * ```
 */
export function cellText(cell: Cell): string {
  if (cell === null || cell === undefined) return "-";
  if (typeof cell === "number") {
    return Number.isInteger(cell) ? cell.toLocaleString("en-US") : String(cell);
  }
  return cell;
}
