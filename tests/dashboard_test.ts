/**
 * The dashboard against the real Redis and PostgreSQL, served in-process on a
 * free port: SSE framing and clean-up, warehouse history, token, stream cap,
 * escaping, read-only routes, and outages that show and heal.
 */

import assert from "node:assert/strict";
import { loadConfig } from "../lib/config.ts";
import { names, REDIS_KEYS } from "../lib/contracts.ts";
import { openDatabase } from "../lib/db.ts";
import { createRedis } from "../lib/redis.ts";
import { averageCents, formatCents, formatInteger } from "../services/dashboard/format.ts";
import { summarize } from "../services/dashboard/history.ts";
import { createStateReader } from "../services/dashboard/state.ts";
import type { Sql } from "../lib/db.ts";
import type { DashboardState } from "../services/dashboard/model.ts";
import { createRouter } from "../services/dashboard/router.ts";
import { parseTotals } from "../services/dashboard/snapshot.ts";
import { formatComment, formatEvent, formatRetry } from "../services/dashboard/sse.ts";
import { safeJson } from "../routes/_document.tsx";
import {
  cuttableProxy,
  EVIL_CATEGORY,
  EVIL_PRODUCT,
  FRAME,
  frameReader,
  frameWhere,
  level,
  publishUpdate,
  seedMetrics,
  seedWarehouse,
  serveDashboard,
  waitFor,
} from "./_dashboard_fixtures.ts";
import { createTestNamespace } from "./_support.ts";

const IO = { sanitizeOps: false, sanitizeResources: false };

// ------------------------------------------------------------------ pure parts

Deno.test("formatting: exact cents, integers, half-up averages", () => {
  assert.equal(formatCents(161_799), "$1,617.99");
  assert.equal(formatCents(5), "$0.05");
  assert.equal(formatCents(-1_999), "-$19.99");
  assert.equal(formatCents(900_719_925_474_099), "$9,007,199,254,740.99");
  assert.equal(formatCents(null), "—");
  assert.equal(formatInteger(4796), "4,796");
  assert.equal(averageCents(1001, 2), 501);
  assert.equal(averageCents(1000, 3), 333);
  assert.equal(averageCents(5, 0), null);
});

Deno.test("SSE frames are exact bytes", () => {
  assert.equal(formatEvent(7, '{"a":1}'), 'id: 7\ndata: {"a":1}\n\n');
  assert.equal(formatEvent(8, "a\nb"), "id: 8\ndata: a\ndata: b\n\n");
  assert.equal(formatRetry(2000), "retry: 2000\n\n");
  assert.equal(formatComment("keep\nalive"), ": keep alive\n\n");
});

Deno.test("totals parse categories with ':' in the name and ignore junk", () => {
  const { totals, categories, behavior } = parseTotals({
    events: "10",
    revenue_cents: "oops",
    "category:A:B:units": "2",
    "category:A:B:revenue_cents": "300",
    "category:C:revenue_cents": "500",
    "behavior:search": "4",
  });
  assert.equal(totals.events, 10);
  assert.equal(totals.revenueCents, 0);
  assert.deepEqual(categories, [
    { category: "C", units: 0, revenueCents: 500 },
    { category: "A:B", units: 2, revenueCents: 300 },
  ]);
  assert.deepEqual(behavior, [{ type: "search", count: 4 }]);
});

Deno.test("safeJson cannot close a script element and round-trips", () => {
  const value = { name: "</script><script>alert(1)</script>", amp: "&", sep: "\u2028" };
  const text = safeJson(value);
  assert.ok(!/[<>&\u2028]/.test(text), text);
  assert.deepEqual(JSON.parse(text), value);
});

Deno.test("router: exact paths win, prefixes need a rest", () => {
  const match = createRouter([{ path: "/", handler: 1 }, { path: "/static/*", handler: 2 }]);
  assert.equal(match("/"), 1);
  assert.equal(match("/static/a.css"), 2);
  assert.equal(match("/static/"), undefined);
  assert.equal(match("/nope"), undefined);
});

Deno.test("event summaries use only well-typed payload fields", () => {
  assert.equal(
    summarize("transaction", { total_cents: 161_799, items: [{}, {}], payment_method: "paypal" }),
    "$1,617.99 · 2 items · paypal",
  );
  assert.equal(summarize("page_view", { product_id: "12", device: "mobile" }), "mobile");
  assert.equal(summarize("search", null), "");
});

// ------------------------------------------------------------- real services

Deno.test({
  name: "SSE: a Redis publish reaches the stream as one exact frame; abort cleans up",
  ...IO,
  async fn() {
    const ns = await createTestNamespace("dashs");
    const n = names(ns.namespace);
    const redis = createRedis(ns.config);
    const served = serveDashboard(ns.config);
    const client = new AbortController();
    try {
      await seedMetrics(redis, n);
      const response = await fetch(`${served.base}/api/stream`, { signal: client.signal });
      assert.equal(response.status, 200);
      assert.equal(response.headers.get("content-type"), "text/event-stream; charset=utf-8");
      const next = frameReader(response.body!);
      assert.equal(await next(), "retry: 2000\n\n");
      const first = await frameWhere(next, () => true);
      assert.equal(first.state.kpis.revenueCents, 2_947_059);
      assert.equal(served.dashboard.hub.clientCount, 1);

      // The aggregator's move: write the keys, then publish on metrics:updates.
      await redis.hset(n.redis(REDIS_KEYS.totals), { revenue_cents: 3_000_000, events: 4800 });
      await publishUpdate(redis, n);
      const pushed = await frameWhere(next, (s) => s.kpis.revenueCents === 3_000_000);
      assert.ok(pushed.id > first.id);
      assert.equal(pushed.frame, `id: ${pushed.id}\ndata: ${JSON.stringify(pushed.state)}\n\n`);
      assert.equal(pushed.state.kpis.events, 4800);
      assert.equal(pushed.state.kpis.aovCents, averageCents(3_000_000, 1234));
      assert.equal(pushed.state.windows.length, 12);
      // Redis, aggregator, Kafka; this namespace has no warehouse database ("not set up yet").
      assert.deepEqual(pushed.state.status.map((s) => s.level), ["ok", "ok", "ok", "warn"]);

      client.abort();
      await waitFor(
        "the hub to drop the aborted client",
        () => served.dashboard.hub.clientCount === 0,
      );
      assert.equal(served.dashboard.hub.clientCount, 0);
    } finally {
      client.abort();
      await served.close();
      redis.disconnect();
      await ns.cleanup();
    }
  },
});

Deno.test({
  name: "SSE: keep-alive comments while nothing changes",
  ...IO,
  async fn() {
    const ns = await createTestNamespace("dashk");
    const served = serveDashboard(ns.config, { keepAliveMs: 100, refreshMs: 60_000 });
    const client = new AbortController();
    try {
      const response = await fetch(`${served.base}/api/stream`, { signal: client.signal });
      const next = frameReader(response.body!);
      const frames = [await next(), await next(), await next()];
      assert.equal(frames[0], "retry: 2000\n\n");
      assert.match(frames[1]!, FRAME);
      assert.equal(frames[2], ": keep-alive\n\n");
    } finally {
      client.abort();
      await served.close();
      await ns.cleanup();
    }
  },
});

Deno.test({
  name: "history from a real warehouse; the page escapes data and embeds safe JSON",
  ...IO,
  async fn() {
    const ns = await createTestNamespace("dashh");
    const n = names(ns.namespace);
    const redis = createRedis(ns.config);
    const sql = await openDatabase(ns.config, "dwh");
    const served = serveDashboard(ns.config);
    try {
      const now = Date.now();
      await seedMetrics(redis, n, {}, now);
      await seedWarehouse(sql, now);

      const res = await fetch(`${served.base}/api/history`);
      assert.equal(res.status, 200);
      const history = await res.json();
      assert.equal(history.latestEvents.length, 20);
      assert.deepEqual(
        history.latestEvents.slice(0, 4).map((e: { eventId: string }) => e.eventId),
        ["e-0", "e-1", "e-2", "e-3"],
      );
      assert.equal(history.latestEvents[0].summary, "$1,617.99 · 2 items · credit_card");
      assert.equal(history.hours.length, 24);
      const hour = Math.floor(now / 3_600_000) * 3_600_000;
      const byHour = new Map(history.hours.map((h: { hourMs: number }) => [h.hourMs, h]));
      assert.deepEqual(byHour.get(hour), {
        hourMs: hour,
        revenueCents: 2 * 79_900 + 1_999,
        units: 3,
        transactions: 1,
      });
      assert.deepEqual(byHour.get(hour - 2 * 3_600_000), {
        hourMs: hour - 2 * 3_600_000,
        revenueCents: 3_003,
        units: 3,
        transactions: 1,
      });
      const total = history.hours.reduce(
        (s: number, h: { revenueCents: number }) => s + h.revenueCents,
        0,
      );
      assert.equal(total, 161_799 + 3_003);

      const small = await (await fetch(`${served.base}/api/history?limit=5&hours=3`)).json();
      assert.equal(small.latestEvents.length, 5);
      assert.equal(small.hours.length, 3);
      const bad = await fetch(`${served.base}/api/history?limit=lots`);
      assert.equal(bad.status, 400);
      assert.match((await bad.json()).error, /^Cannot use limit as a whole number/);

      const page = await fetch(`${served.base}/`);
      assert.equal(page.status, 200);
      const html = await page.text();
      assert.ok(html.includes('data-kpi="revenue"><dt>Revenue</dt><dd class="kpi-value"'));
      assert.ok(html.includes(">$29,470.59<"), "revenue rendered server-side");
      // Preact escapes `<` (and `&`, `"`) in text: enough that no tag can open.
      assert.ok(html.includes("&lt;script>alert('category')&lt;/script>"), "category as text");
      assert.ok(html.includes("&lt;img src=x onerror=alert('product')>"), "product as text");
      assert.ok(!html.includes("<script>alert"), "no live script from data");
      assert.ok(!html.includes("<img"), "no live markup from data");
      assert.equal(html.match(/<script/g)?.length, 2, "only the bundle and the boot JSON");
      assert.equal(html.match(/<canvas/g)?.length, 4, "four charts");
      const boot = /<script type="application\/json" id="dashboard-boot">(.*?)<\/script>/s
        .exec(html)![1]!;
      assert.ok(boot.includes("\\u003cscript\\u003ealert('category')\\u003c/script\\u003e"));
      const state = JSON.parse(boot).state as DashboardState;
      assert.ok(state.categories.some((c) => c.category === EVIL_CATEGORY));
      assert.ok(state.latestEvents.some((e) => e.summary.includes(EVIL_PRODUCT)));

      const metrics = await (await fetch(`${served.base}/api/metrics`)).json() as DashboardState;
      assert.deepEqual(metrics.kpis, {
        events: 4796,
        transactions: 1234,
        revenueCents: 2_947_059,
        itemsSold: 626,
        lateEvents: 7,
        aovCents: 2388,
        eventsPerSecond: 12.5,
      });
    } finally {
      await served.close();
      redis.disconnect();
      await sql.end();
      await ns.cleanup();
    }
  },
});

Deno.test({
  name: "DASHBOARD_TOKEN: every route requires it, by header or query",
  ...IO,
  async fn() {
    const ns = await createTestNamespace("dasht");
    const config = loadConfig({ ...ns.env, DASHBOARD_TOKEN: "s3cret" });
    const served = serveDashboard(config);
    const get = (path: string, init?: RequestInit) => fetch(`${served.base}${path}`, init);
    try {
      for (const path of ["/", "/api/stream", "/api/metrics", "/api/history", "/api/health"]) {
        const res = await get(path);
        assert.equal(res.status, 401, path);
        assert.equal(res.headers.get("www-authenticate"), 'Bearer realm="instashop-dashboard"');
        await res.body?.cancel();
      }
      for (const path of ["/static/dashboard.css", "/nope", "/?token=wrong"]) {
        const res = await get(path);
        assert.equal(res.status, 401, path);
        await res.body?.cancel();
      }
      const page = await get("/?token=s3cret");
      assert.equal(page.status, 200);
      const html = await page.text();
      assert.ok(html.includes('"stream":"/api/stream?token=s3cret"'));
      assert.ok(html.includes('href="/static/dashboard.css?token=s3cret"'));
      const bearer = await get("/api/health", { headers: { authorization: "Bearer s3cret" } });
      assert.equal(bearer.status, 200);
      assert.equal((await bearer.json()).streams.max, 100);
      const css = await get("/static/dashboard.css?token=s3cret");
      assert.equal(css.status, 200);
      assert.equal(css.headers.get("content-type"), "text/css; charset=utf-8");
      await css.body?.cancel();
    } finally {
      await served.close();
      await ns.cleanup();
    }
  },
});

Deno.test({
  name: "SSE cap: one stream over DASHBOARD_MAX_STREAMS gets a clear 503",
  ...IO,
  async fn() {
    const ns = await createTestNamespace("dashc");
    const served = serveDashboard(loadConfig({ ...ns.env, DASHBOARD_MAX_STREAMS: "1" }));
    const first = new AbortController();
    const third = new AbortController();
    try {
      const open = await fetch(`${served.base}/api/stream`, { signal: first.signal });
      assert.equal(open.status, 200);
      const refused = await fetch(`${served.base}/api/stream`);
      assert.equal(refused.status, 503);
      assert.equal(refused.headers.get("retry-after"), "10");
      assert.match(
        (await refused.json()).error,
        /^Cannot open a live stream as all 1 allowed streams are in use \(DASHBOARD_MAX_STREAMS\)/,
      );
      first.abort();
      await waitFor("the first stream to leave", () => served.dashboard.hub.clientCount === 0);
      const again = await fetch(`${served.base}/api/stream`, { signal: third.signal });
      assert.equal(again.status, 200);
    } finally {
      first.abort();
      third.abort();
      await served.close();
      await ns.cleanup();
    }
  },
});

Deno.test({
  name: "read-only: other methods 405, unknown paths and escapes from static/ 404, HEAD works",
  ...IO,
  async fn() {
    const ns = await createTestNamespace("dashr");
    const served = serveDashboard(ns.config);
    try {
      for (const method of ["POST", "PUT", "DELETE", "PATCH"]) {
        const res = await fetch(`${served.base}/api/metrics`, { method });
        assert.equal(res.status, 405, method);
        assert.equal(res.headers.get("allow"), "GET, HEAD");
        await res.body?.cancel();
      }
      for (
        const path of ["/nope", "/static/../deno.json", "/static/%2e%2e/deno.json", "/static/"]
      ) {
        const res = await fetch(`${served.base}${path}`);
        assert.equal(res.status, 404, path);
        await res.body?.cancel();
      }
      const head = await fetch(`${served.base}/`, { method: "HEAD" });
      assert.equal(head.status, 200);
      assert.equal(head.headers.get("content-type"), "text/html; charset=utf-8");
      assert.match(head.headers.get("content-security-policy")!, /script-src 'self'/);
      assert.equal(head.headers.get("referrer-policy"), "no-referrer");
    } finally {
      await served.close();
      await ns.cleanup();
    }
  },
});

Deno.test({
  name: "Redis outage: page keeps serving with the last numbers, status says so, then recovers",
  ...IO,
  async fn() {
    const ns = await createTestNamespace("dasho");
    const n = names(ns.namespace);
    const redis = createRedis(ns.config);
    const proxy = cuttableProxy({ hostname: "127.0.0.1", port: 6379 });
    proxy.start();
    const config = loadConfig({ ...ns.env, REDIS_URL: `redis://127.0.0.1:${proxy.port}` });
    const served = serveDashboard(config, { refreshMs: 300 });
    const client = new AbortController();
    try {
      await seedMetrics(redis, n);
      const response = await fetch(`${served.base}/api/stream`, { signal: client.signal });
      const next = frameReader(response.body!);
      await frameWhere(next, (s) => level(s, "redis") === "ok" && s.kpis.events === 4796);

      proxy.cut();
      const down = await frameWhere(next, (s) => level(s, "redis") === "down");
      assert.equal(down.state.kpis.revenueCents, 2_947_059, "last good numbers stay");
      const page = await fetch(`${served.base}/`);
      assert.equal(page.status, 200);
      const html = await page.text();
      assert.match(html, /data-status="redis"><span class="status-dot">.*?Unreachable: /);
      assert.ok(html.includes(">$29,470.59<"));
      const metrics = await fetch(`${served.base}/api/metrics`);
      assert.equal(metrics.status, 503);
      assert.match((await metrics.json()).error, /^Cannot read metrics as Redis is unreachable/);
      const health = await (await fetch(`${served.base}/api/health`)).json();
      assert.equal(health.status, "degraded");

      proxy.start();
      await frameWhere(next, (s) => level(s, "redis") === "ok");
      // The subscriber is back too: a publish is relayed again.
      await redis.hset(n.redis(REDIS_KEYS.totals), { revenue_cents: 1 });
      await publishUpdate(redis, n);
      const healed = await frameWhere(next, (s) => s.kpis.revenueCents === 1);
      assert.equal(level(healed.state, "redis"), "ok");
    } finally {
      client.abort();
      await served.close();
      proxy.cut();
      redis.disconnect();
      await ns.cleanup();
    }
  },
});

Deno.test({
  name: "a warehouse query in flight never holds back the Redis numbers (one query at a time)",
  ...IO,
  async fn() {
    const ns = await createTestNamespace("dashf");
    const redis = createRedis(ns.config);
    const n = names(ns.namespace);
    // A warehouse whose queries hang until released; the first history read (its two queries)
    // fails at once, so the reader has tried once: the first read waits for that attempt,
    // later ones must not.
    let queries = 0;
    const release: (() => void)[] = [];
    const warehouse = (() => {
      queries++;
      if (queries <= 2) return Promise.reject(new Error("warehouse down"));
      return new Promise((_, reject) => release.push(() => reject(new Error("released"))));
    }) as unknown as Sql;
    const warnings: string[] = [];
    const reader = createStateReader({
      redis,
      warehouse,
      names: n,
      log: { info() {}, warn: (m) => warnings.push(m), error() {} },
      historyTtlMs: 0,
      queryTimeoutMs: 3_600_000,
    });
    try {
      await seedMetrics(redis, n, { events: 10 });
      const first = await reader.read();
      assert.equal(first.kpis.events, 10);
      assert.equal(level(first, "warehouse"), "down");
      await seedMetrics(redis, n, { events: 11 });
      // The refresh this read starts hangs; the read still answers with the new Redis numbers.
      // (A guard releases the query after 20 s, so that a reader that waits fails, not hangs.)
      let released = false;
      const guard = setTimeout(() => {
        released = true;
        for (const r of release) r();
      }, 20_000);
      const second = await reader.read();
      clearTimeout(guard);
      assert.equal(released, false, "the read waited for the warehouse query");
      const inFlight = release.length;
      assert.ok(inFlight > 0, "no history refresh in flight");
      assert.equal(second.kpis.events, 11);
      await seedMetrics(redis, n, { events: 12 });
      const third = await reader.read();
      assert.equal(third.kpis.events, 12);
      assert.equal(release.length, inFlight, "a second refresh started while one was in flight");
      assert.equal(warnings.length, 1, warnings.join("\n"));
    } finally {
      for (const r of release) r();
      await new Promise((resolve) => setTimeout(resolve, 10));
      redis.disconnect();
      await ns.cleanup();
    }
  },
});

Deno.test({
  name: "warehouse missing or unreachable: page 200, status says so, history 503",
  ...IO,
  async fn() {
    const ns = await createTestNamespace("dashw");
    // No dwh database was created in this namespace: "not set up yet".
    const missing = serveDashboard(ns.config);
    // Nothing listens on port 1: "unreachable".
    const unreachable = serveDashboard(loadConfig({
      ...ns.env,
      DWH_DATABASE_URL: "postgres://postgres:hunter2@127.0.0.1:1/dwh_db",
    }));
    try {
      const empty = await fetch(`${missing.base}/api/history`);
      assert.equal(empty.status, 200);
      const history = await empty.json();
      assert.equal(history.tablesMissing, true);
      assert.equal(history.latestEvents.length, 0);
      const state = await (await fetch(`${missing.base}/api/metrics`)).json() as DashboardState;
      assert.equal(level(state, "warehouse"), "warn");

      const down = await fetch(`${unreachable.base}/api/history`);
      assert.equal(down.status, 503);
      const { error } = await down.json();
      assert.match(error, /^Cannot read the warehouse as it does not answer: /);
      const page = await fetch(`${unreachable.base}/`);
      assert.equal(page.status, 200);
      const html = await page.text();
      assert.match(html, /data-status="warehouse"><span class="status-dot">.*?Unreachable: /);
      assert.ok(!html.includes("hunter2") && !error.includes("hunter2"), "no credentials");
    } finally {
      await missing.close();
      await unreachable.close();
      await ns.cleanup();
    }
  },
});
