/**
 * Fixtures for the dashboard tests: metrics written to Redis and rows to the
 * warehouse exactly as the contracts describe (the aggregator and consumer
 * are not needed), an in-process server, and an SSE frame reader.
 *
 * @module
 */

import type { Config } from "../lib/config.ts";
import type { DashboardState } from "../services/dashboard/model.ts";
import { type Heartbeat, type MetricsUpdate, type Names, REDIS_KEYS } from "../lib/contracts.ts";
import type { Sql } from "../lib/db.ts";
import type { Redis } from "../lib/redis.ts";
import {
  createDashboard,
  type Dashboard,
  type DashboardOptions,
} from "../services/dashboard/app.ts";

/** A category name and a product name that must show as text, never as markup. */
export const EVIL_CATEGORY = "<script>alert('category')</script>";
export const EVIL_PRODUCT = "<img src=x onerror=alert('product')>";

export interface MetricsFixture {
  events: number;
  transactions: number;
  revenueCents: number;
}

/** Writes totals, 12 windows, latest-window keys and fresh heartbeats. */
export async function seedMetrics(
  redis: Redis,
  n: Names,
  { events = 4796, transactions = 1234, revenueCents = 2_947_059 }: Partial<MetricsFixture> = {},
  now = Date.now(),
): Promise<void> {
  const categories: [string, number, number][] = [
    ["Electronics", 120, 1_843_299],
    ["Books", 310, 402_310],
    ["Clothing", 95, 351_200],
    ["Home & Garden", 60, 220_150],
    ["Sports", 40, 130_000],
    [EVIL_CATEGORY, 1, 100],
  ];
  const totals: Record<string, number> = {
    events,
    transaction_count: transactions,
    revenue_cents: revenueCents,
    items_sold: 626,
    late_events: 7,
    "behavior:page_view": 1500,
    "behavior:product_view": 1100,
    "behavior:search": 600,
    "behavior:add_to_cart": 250,
    "behavior:remove_from_cart": 112,
  };
  for (const [category, units, cents] of categories) {
    totals[`category:${category}:units`] = units;
    totals[`category:${category}:revenue_cents`] = cents;
  }
  const tx = redis.multi().hset(n.redis(REDIS_KEYS.totals), totals);
  const firstWindow = Math.floor(now / 30_000) * 30_000 - 11 * 30_000;
  for (let i = 0; i < 12; i++) {
    const start = firstWindow + i * 30_000;
    tx.zadd(n.redis(REDIS_KEYS.windows), start, String(start));
    tx.hset(n.redis(`${REDIS_KEYS.windowPrefix}${start}`), {
      events: 100 + i * 7,
      transaction_count: 30 + (i * 13) % 17,
      revenue_cents: 50_000 + (i * 7919) % 40_000,
      final: i < 11 ? "1" : "0",
    });
  }
  tx.set(
    n.redis(REDIS_KEYS.transactions),
    JSON.stringify({ transaction_count: 30, last_update: new Date(now).toISOString() }),
  );
  for (const stage of ["produce", "consume", "aggregate"] as const) {
    const beat: Heartbeat = {
      stage,
      pid: 1,
      at: new Date(now).toISOString(),
      events: 100,
      events_per_s: 12.5,
      dead_letters: 0,
      detail: "{}",
    };
    tx.hset(n.heartbeat(stage), { ...beat });
  }
  await tx.exec();
}

/** Publishes a `metrics:updates` message as the aggregator does after a flush. */
export async function publishUpdate(redis: Redis, n: Names): Promise<void> {
  const update: MetricsUpdate = {
    at: new Date().toISOString(),
    events: 1,
    latest_window_start: null,
  };
  await redis.publish(n.redis(REDIS_KEYS.updates), JSON.stringify(update));
}

/** Inserts `events` rows into realtime_events (newest first = e-0) and sales over 3 hours. */
export async function seedWarehouse(sql: Sql, now = Date.now(), events = 25): Promise<void> {
  const types = ["transaction", "page_view", "search", "transaction_item", "add_to_cart"];
  for (let i = 0; i < events; i++) {
    const type = types[i % types.length]!;
    const payload = type === "transaction"
      ? { total_cents: 161_799, items: [{}, {}], payment_method: "credit_card" }
      : type === "search"
      ? { search_query: "usb <b>c</b>", device: "mobile" }
      : type === "transaction_item"
      ? { quantity: 2, product_name: EVIL_PRODUCT, category: EVIL_CATEGORY, revenue_cents: 3998 }
      : { product_id: 12, device: "desktop" };
    await sql`
      insert into realtime_events (event_id, event_type, customer_id, "timestamp", processed_at,
        source_topic, source_partition, source_offset, payload)
      values (${`e-${i}`}, ${type}, ${100 + i}, ${new Date(now - i * 1000)},
        ${new Date(now - i * 500)}, 'test', 0, ${i}, ${sql.json(payload)})`;
  }
  // Two items of one transaction this hour, one sale two hours ago.
  const sales: [number, number, number, number, number][] = [
    [1, 10, 2, 79_900, 0],
    [2, 10, 1, 1_999, 0],
    [3, 11, 3, 1_001, 2],
  ];
  for (const [detail, transaction, quantity, unit, hoursAgo] of sales) {
    await sql`
      insert into fact_sales (detail_id, event_id, transaction_id, customer_id, product_id,
        category, quantity, unit_price_cents, revenue_cents, event_time)
      values (${detail}, ${`ti-${detail}`}, ${transaction}, 1, 1, 'Electronics', ${quantity},
        ${unit}, ${quantity * unit}, ${new Date(now - hoursAgo * 3_600_000)})`;
  }
}

export interface Served {
  base: string;
  dashboard: Dashboard;
  close(): Promise<void>;
}

/** Serves a dashboard in-process, on a free port unless `port` is given. */
export function serveDashboard(
  config: Config,
  options: DashboardOptions = {},
  port = 0,
): Served {
  const dashboard = createDashboard({ config }, options);
  const server = Deno.serve(
    { hostname: "127.0.0.1", port, onListen: () => {} },
    dashboard.fetch,
  );
  return {
    base: `http://127.0.0.1:${server.addr.port}`,
    dashboard,
    async close() {
      await dashboard.close();
      await server.shutdown();
    },
  };
}

/** Reads SSE frames (text up to and including the blank line) from a response body. */
export function frameReader(body: ReadableStream<Uint8Array>): () => Promise<string> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  return async function next(): Promise<string> {
    while (!buffer.includes("\n\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`stream ended; unread: ${JSON.stringify(buffer)}`);
      buffer += decoder.decode(value, { stream: true });
    }
    const end = buffer.indexOf("\n\n") + 2;
    const frame = buffer.slice(0, end);
    buffer = buffer.slice(end);
    return frame;
  };
}

/** Polls `check` until it returns true, or throws after `timeoutMs` naming `what`. */
export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** One data frame: id line, one data line, blank line. */
export const FRAME = /^id: (\d+)\ndata: ([^\n]*)\n\n$/;

/** Reads frames until one's state satisfies `match`; returns the frame and its state. */
export async function frameWhere(
  next: () => Promise<string>,
  match: (state: DashboardState) => boolean,
  timeoutMs = 15_000,
): Promise<{ frame: string; id: number; state: DashboardState }> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const frame = await next();
    const parsed = FRAME.exec(frame);
    if (!parsed) continue; // keep-alive comments
    const state = JSON.parse(parsed[2]!) as DashboardState;
    if (match(state)) return { frame, id: Number(parsed[1]), state };
  }
  throw new Error("Timed out waiting for a matching SSE frame");
}

/** The level of one status line. */
export const level = (state: DashboardState, key: string) =>
  state.status.find((s) => s.key === key)?.level;

/** A TCP proxy to the shared Redis that the test can cut and restore (never touching Redis). */
export function cuttableProxy(target: Deno.ConnectOptions) {
  let listener: Deno.Listener | undefined;
  let port = 0;
  const conns = new Set<Deno.Conn>();
  async function relay(client: Deno.Conn) {
    conns.add(client);
    try {
      const upstream = await Deno.connect(target);
      conns.add(upstream);
      await Promise.all([
        client.readable.pipeTo(upstream.writable),
        upstream.readable.pipeTo(client.writable),
      ]).catch(() => {});
    } catch {
      // cut while connecting
    }
  }
  return {
    get port() {
      return port;
    },
    start() {
      listener = Deno.listen({ hostname: "127.0.0.1", port });
      port = (listener.addr as Deno.NetAddr).port;
      (async () => {
        for await (const conn of listener!) relay(conn);
      })().catch(() => {});
    },
    cut() {
      listener?.close();
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // already closed
        }
      }
      conns.clear();
    },
  };
}
