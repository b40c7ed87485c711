/**
 * Warehouse queries: the latest events and the revenue by hour. Missing tables
 * (the consumer has not run yet) read as empty, not as an error.
 *
 * @module
 */

import type { Sql } from "../../lib/db.ts";
import { formatCents } from "./format.ts";
import type { HourPoint, LatestEvent } from "./model.ts";

const HOUR_MS = 3_600_000;

export interface History {
  latestEvents: LatestEvent[];
  hours: HourPoint[];
  /** The server answered but the warehouse database or its tables do not exist yet. */
  tablesMissing: boolean;
}

export interface HistoryOptions {
  /** Latest events to return (default 20). */
  limit?: number;
  /** Hours of revenue, the current one included (default 24). */
  hours?: number;
  now?: number;
}

/**
 * Reads the history shown on the page.
 *
 * @example
 * ```ts ignore
 * const history = await readHistory(connect(config.databases.dwh));
 * history.hours.length; // 24
 * ```
 */
export async function readHistory(
  sql: Sql,
  { limit = 20, hours = 24, now = Date.now() }: HistoryOptions = {},
): Promise<History> {
  const firstHourMs = Math.floor(now / HOUR_MS) * HOUR_MS - (hours - 1) * HOUR_MS;
  try {
    const [events, sales] = await Promise.all([
      sql<EventRow[]>`
        select event_id, event_type, customer_id, "timestamp", processed_at, payload
        from realtime_events order by processed_at desc, event_id limit ${limit}`,
      sql<HourRow[]>`
        select (extract(epoch from date_trunc('hour', event_time)) * 1000)::bigint as hour_ms,
               sum(revenue_cents)::bigint as revenue_cents,
               sum(quantity)::bigint as units,
               count(distinct transaction_id)::bigint as transactions
        from fact_sales where event_time >= ${new Date(firstHourMs)}
        group by 1 order by 1`,
    ]);
    return {
      latestEvents: events.map(toLatestEvent),
      hours: fillHours(sales, firstHourMs, hours),
      tablesMissing: false,
    };
  } catch (error) {
    // 3D000: no such database, 42P01: no such table; both mean the consumer has not run yet.
    const code = (error as { code?: string }).code;
    if (code !== "3D000" && code !== "42P01") throw error;
    return { latestEvents: [], hours: fillHours([], firstHourMs, hours), tablesMissing: true };
  }
}

interface EventRow {
  event_id: string;
  event_type: string;
  customer_id: number | bigint;
  timestamp: Date;
  processed_at: Date;
  payload: unknown;
}

interface HourRow {
  hour_ms: number | bigint;
  revenue_cents: number | bigint;
  units: number | bigint;
  transactions: number | bigint;
}

function toLatestEvent(row: EventRow): LatestEvent {
  return {
    eventId: row.event_id,
    eventType: row.event_type,
    customerId: Number(row.customer_id),
    timestamp: row.timestamp.toISOString(),
    processedAt: row.processed_at.toISOString(),
    summary: summarize(row.event_type, row.payload),
  };
}

/** One point per hour from `firstHourMs`, zeros where no sale happened. */
function fillHours(rows: HourRow[], firstHourMs: number, hours: number): HourPoint[] {
  const byHour = new Map(rows.map((r) => [Number(r.hour_ms), r]));
  return Array.from({ length: hours }, (_, i) => {
    const hourMs = firstHourMs + i * HOUR_MS;
    const row = byHour.get(hourMs);
    return {
      hourMs,
      revenueCents: Number(row?.revenue_cents ?? 0),
      units: Number(row?.units ?? 0),
      transactions: Number(row?.transactions ?? 0),
    };
  });
}

/**
 * One line about an event's payload. The payload is data from outside: only
 * fields of the expected type are used, and the result is plain text (the
 * page escapes it).
 *
 * @example
 * ```ts
 * import { summarize } from "./history.ts";
 * summarize("search", { search_query: "usb", device: "mobile" }); // "“usb” · mobile"
 * ```
 */
export function summarize(eventType: string, payload: unknown): string {
  const p = (payload && typeof payload === "object" ? payload : {}) as Record<string, unknown>;
  const text = (key: string) => typeof p[key] === "string" ? p[key] as string : undefined;
  const num = (key: string) => typeof p[key] === "number" ? p[key] as number : undefined;
  const parts: (string | undefined)[] = [];
  switch (eventType) {
    case "transaction": {
      const items = Array.isArray(p.items) ? p.items.length : undefined;
      const total = num("total_cents");
      parts.push(
        total === undefined ? undefined : formatCents(total),
        items === undefined ? undefined : `${items} item${items === 1 ? "" : "s"}`,
        text("payment_method"),
      );
      break;
    }
    case "transaction_item": {
      const quantity = num("quantity");
      const name = text("product_name");
      const category = text("category");
      parts.push(
        name === undefined ? undefined : `${quantity ?? "?"} × ${name}`,
        category,
        num("revenue_cents") === undefined ? undefined : formatCents(num("revenue_cents")!),
      );
      break;
    }
    case "search":
      parts.push(text("search_query") === undefined ? undefined : `“${text("search_query")}”`);
      parts.push(text("device"));
      break;
    default:
      parts.push(
        num("product_id") === undefined ? undefined : `product ${num("product_id")}`,
        text("device"),
      );
  }
  return parts.filter((part) => part !== undefined && part !== "").join(" · ");
}
