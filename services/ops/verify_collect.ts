/**
 * What `verify` reads from each store: the shop and CRM rows, the warehouse,
 * and the Redis totals and windows. Only reads; a database that does not
 * exist is an error naming it, not created.
 *
 * @module
 */

import { ServiceError } from "../../lib/cli.ts";
import { type Config, redact } from "../../lib/config.ts";
import { type DatabaseName, names, REDIS_KEYS } from "../../lib/contracts.ts";
import { connect, type Sql } from "../../lib/db.ts";
import { createRedis } from "../../lib/redis.ts";
import { errorText, withDeadline } from "./deadline.ts";
import type { CategoryFacts, RedisFacts, SourceFacts, WarehouseFacts } from "./verify_checks.ts";

const DEADLINE_MS = 30_000;

/**
 * Where the aggregator keeps what is in the totals but in no window hash
 * (docs/aggregate.md): late events' contributions, and the sums of windows
 * retired by the retention.
 */
export const OUTSIDE_WINDOW_KEYS = { late: "metrics:late", expired: "metrics:expired" } as const;

/** Counts and cents of the shop and the CRM. */
export async function readSource(config: Config): Promise<SourceFacts> {
  const [shop, behavior] = await Promise.all([
    query(config, "instashop", async (sql) => {
      const [row] = await sql<Record<string, bigint>[]>`
        select (select count(*) from transactions) as transactions,
               (select coalesce(sum(total_cents), 0) from transactions)::bigint as total_cents,
               (select count(*) from transaction_details) as item_rows,
               (select coalesce(sum(quantity), 0) from transaction_details)::bigint as units,
               (select coalesce(sum(quantity::bigint * unit_price_cents), 0)
                  from transaction_details)::bigint as item_revenue_cents`;
      const categories = await sql<{ category: string; units: bigint; revenue: bigint }[]>`
        select p.category, sum(d.quantity)::bigint as units,
               sum(d.quantity::bigint * d.unit_price_cents)::bigint as revenue
        from transaction_details d join products p on p.id = d.product_id
        group by p.category`;
      return { row: row!, categories: categoryMap(categories) };
    }),
    query(config, "crm", async (sql) => {
      const rows = await sql<{ event_type: string; n: bigint }[]>`
        select event_type, count(*) as n from user_behavior group by event_type`;
      return Object.fromEntries(rows.map((r) => [r.event_type, int(r.n)]));
    }),
  ]);
  return {
    transactions: int(shop.row.transactions),
    total_cents: int(shop.row.total_cents),
    item_rows: int(shop.row.item_rows),
    units: int(shop.row.units),
    item_revenue_cents: int(shop.row.item_revenue_cents),
    categories: shop.categories,
    behavior,
  };
}

/** Rows of the warehouse by event type, and the sales facts. */
export async function readWarehouse(config: Config): Promise<WarehouseFacts> {
  return await query(config, "dwh", async (sql) => {
    const events = await sql<{ event_type: string; n: bigint }[]>`
      select event_type, count(*) as n from realtime_events group by event_type`;
    const [sales] = await sql<{ rows: bigint; units: bigint; revenue: bigint }[]>`
      select count(*) as rows, coalesce(sum(quantity), 0)::bigint as units,
             coalesce(sum(revenue_cents), 0)::bigint as revenue
      from fact_sales`;
    const categories = await sql<{ category: string; units: bigint; revenue: bigint }[]>`
      select category, sum(quantity)::bigint as units, sum(revenue_cents)::bigint as revenue
      from fact_sales group by category`;
    return {
      events: Object.fromEntries(events.map((r) => [r.event_type, int(r.n)])),
      sales_rows: int(sales!.rows),
      sales_units: int(sales!.units),
      sales_revenue_cents: int(sales!.revenue),
      categories: categoryMap(categories),
    };
  });
}

/** `metrics:totals`, the field sums over every window hash, and what is outside the windows. */
export async function readRedis(config: Config): Promise<RedisFacts> {
  const n = names(config.namespace);
  const redis = createRedis(config);
  redis.on("error", () => {});
  try {
    return await withDeadline(
      (async () => {
        const totals = numbers(await redis.hgetall(n.redis(REDIS_KEYS.totals)));
        const late = numbers(await redis.hgetall(n.redis(OUTSIDE_WINDOW_KEYS.late)));
        const expired = numbers(await redis.hgetall(n.redis(OUTSIDE_WINDOW_KEYS.expired)));
        const windowSums: Record<string, number> = {};
        const starts = await redis.zrange(n.redis(REDIS_KEYS.windows), 0, -1);
        for (let i = 0; i < starts.length; i += 500) {
          const pipeline = redis.pipeline();
          for (const start of starts.slice(i, i + 500)) {
            pipeline.hgetall(n.redis(`${REDIS_KEYS.windowPrefix}${start}`));
          }
          for (const [error, hash] of (await pipeline.exec()) ?? []) {
            if (error) throw error;
            for (const [field, value] of Object.entries(numbers(hash as Record<string, string>))) {
              windowSums[field] = (windowSums[field] ?? 0) + value;
            }
          }
        }
        return { totals, windowSums, late, expired };
      })(),
      DEADLINE_MS,
      `read Redis at ${redact(config.redisUrl)}`,
    );
  } catch (error) {
    throw new ServiceError(errorText(error));
  } finally {
    redis.disconnect();
  }
}

async function query<T>(config: Config, name: DatabaseName, body: (sql: Sql) => Promise<T>) {
  const url = config.databases[name];
  const sql = connect(url, { max: 1 });
  try {
    return await withDeadline(body(sql), DEADLINE_MS, `read ${redact(url)}`);
  } catch (error) {
    const code = (error as { code?: string }).code;
    const database = new URL(url).pathname.slice(1);
    if (code === "3D000" || code === "42P01") {
      throw new ServiceError(
        `Cannot verify ${database} as it has no pipeline data: ${errorText(error)}. ` +
          "Run the pipeline in this namespace first.",
      );
    }
    throw new ServiceError(`Cannot read ${database}: ${errorText(error)}`);
  } finally {
    await sql.end({ timeout: 1 }).catch(() => {});
  }
}

function categoryMap(
  rows: { category: string; units: bigint; revenue: bigint }[],
): Record<string, CategoryFacts> {
  return Object.fromEntries(
    rows.map((r) => [r.category, { units: int(r.units), revenue_cents: int(r.revenue) }]),
  );
}

/** The integer fields of a hash (every metric field is one; `final` flags are too). */
function numbers(hash: Record<string, string>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [field, value] of Object.entries(hash)) {
    if (!/^-?\d+$/.test(value)) continue;
    out[field] = int(value);
  }
  return out;
}

function int(value: bigint | number | string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) {
    throw new ServiceError(`Cannot compare ${value} exactly: it is beyond 2^53`);
  }
  return n;
}
