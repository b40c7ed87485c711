/**
 * The dashboard's state: what the server reads from Redis and the warehouse,
 * what the page renders first, and what every SSE `data:` frame carries. Pure
 * types, shared by the server and the browser islands.
 *
 * @module
 */

/** How healthy one dependency looks: green, amber or red in the status panel. */
export type Level = "ok" | "warn" | "down";

/** One line of the status panel. */
export interface StatusItem {
  key: "redis" | "aggregator" | "kafka" | "warehouse";
  label: string;
  level: Level;
  text: string;
}

/** The headline numbers, from `metrics:totals` and the aggregator's heartbeat. */
export interface Kpis {
  events: number;
  transactions: number;
  revenueCents: number;
  /** Revenue / transactions in whole cents (half up); null before the first sale. */
  aovCents: number | null;
  /** The aggregator's own rate; null while it has never beaten. */
  eventsPerSecond: number | null;
  lateEvents: number;
  itemsSold: number;
}

/** One aggregation window (`metrics:window:<startMs>`). */
export interface WindowPoint {
  startMs: number;
  events: number;
  transactions: number;
  revenueCents: number;
  /** The watermark passed the window's end: its numbers are settled. */
  final: boolean;
}

/** Running totals of one category. */
export interface CategoryPoint {
  category: string;
  units: number;
  revenueCents: number;
}

/** Running count of one behaviour type. */
export interface BehaviorPoint {
  type: string;
  count: number;
}

/** One hour of `fact_sales` (UTC). */
export interface HourPoint {
  hourMs: number;
  revenueCents: number;
  units: number;
  transactions: number;
}

/** One row of `realtime_events`, with a one-line summary of its payload. */
export interface LatestEvent {
  eventId: string;
  eventType: string;
  customerId: number;
  /** Event time, ISO UTC. */
  timestamp: string;
  /** When the warehouse stored it, ISO UTC. */
  processedAt: string;
  summary: string;
}

/** Everything the page shows; one SSE frame carries one of these as JSON. */
export interface DashboardState {
  /** When the server read it (ISO UTC). */
  at: string;
  /** The aggregator's last write (ISO UTC), or null before its first flush. */
  lastUpdate: string | null;
  kpis: Kpis;
  /** Oldest first. */
  windows: WindowPoint[];
  /** Largest revenue first. */
  categories: CategoryPoint[];
  behavior: BehaviorPoint[];
  /** The last 24 hours, oldest first, one point per hour (zeros included). */
  hours: HourPoint[];
  /** Newest first. */
  latestEvents: LatestEvent[];
  status: StatusItem[];
}

/** What the page embeds for the islands: the stream to follow and the first state. */
export interface Boot {
  stream: string;
  state: DashboardState;
}
