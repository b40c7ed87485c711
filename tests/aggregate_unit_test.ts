/**
 * The aggregator's pure parts (windows, watermark, reducer, batcher) and its
 * Redis script on a real Redis.
 */

import assert from "node:assert/strict";
import { names, type TransactionMetrics } from "../lib/contracts.ts";
import { createRedis } from "../lib/redis.ts";
import { createBatcher, createSerial } from "../services/aggregate/batcher.ts";
import { contributionOf, encodeChunks, fieldsOf } from "../services/aggregate/reduce.ts";
import { createMetricsScript, scriptKeys } from "../services/aggregate/script.ts";
import { createWatermarkTracker } from "../services/aggregate/watermark.ts";
import { isFinal, windowStart } from "../services/aggregate/window.ts";
import { createTestNamespace, type TestNamespace } from "./_support.ts";
import {
  type AnyEvent,
  behavior,
  expectedTotals,
  iso,
  itemsOf,
  reconcile,
  services,
  T0,
  totalsOf,
  transaction,
  withoutLate,
} from "./_aggregate_support.ts";

// -------------------------------------------------------------- pure parts

Deno.test("windows are epoch-aligned and final once the watermark passes their end", () => {
  assert.equal(windowStart(T0 + 29_999, 30_000), T0);
  assert.equal(windowStart(T0 + 30_000, 30_000), T0 + 30_000);
  const spec = { windowMs: 30_000, allowedLatenessMs: 0 };
  assert.equal(isFinal(T0, spec, T0 + 29_999), false);
  assert.equal(isFinal(T0, spec, T0 + 30_000), true);
  assert.equal(isFinal(T0, { ...spec, allowedLatenessMs: 5000 }, T0 + 30_000), false);
  assert.equal(isFinal(T0, { ...spec, allowedLatenessMs: 5000 }, T0 + 35_000), true);
  assert.equal(isFinal(T0, spec, undefined), false);
});

/** A clock an hour after the events (event times ahead of the clock are clamped). */
const C = T0 + 3_600_000;

Deno.test("watermark: minimum over partitions, held until each has shown an event", () => {
  const t = createWatermarkTracker({ latenessMs: 10_000, idleMs: 60_000 });
  assert.equal(t.watermark(C), "none");
  t.assign(["a:0", "a:1", "b:0"], C);
  t.observe(new Map([["a:0", T0 + 600_000]]), C);
  assert.equal(t.watermark(C), "hold");
  // A flush's events count as if observed, without being kept.
  assert.equal(
    t.watermark(C + 0, { pending: new Map([["a:1", T0 + 20_000], ["b:0", T0 + 50_000]]) }),
    T0 + 10_000,
  );
  assert.equal(t.watermark(C), "hold");
  t.observe(new Map([["a:1", T0 + 20_000], ["b:0", T0 + 50_000]]), C);
  assert.equal(t.watermark(C), T0 + 10_000);
  t.observe(new Map([["a:1", T0 + 15_000]]), C); // older than seen: no change
  assert.equal(t.watermark(C), T0 + 10_000);
});

Deno.test("watermark: a caught-up partition quiet for idleMs stops holding it back", () => {
  const t = createWatermarkTracker({ latenessMs: 0, idleMs: 60_000 });
  t.assign(["a:0", "a:1"], C);
  t.observe(new Map([["a:0", T0 + 100_000], ["a:1", T0 + 10_000]]), C);
  t.progress("a:1", 5, 5);
  t.progress("a:0", 3, 9);
  assert.equal(t.watermark(C + 60_000), T0 + 10_000); // quiet, not yet for long
  assert.equal(t.watermark(C + 60_001), T0 + 100_000); // a:1 idle and caught up
  t.progress("a:1", undefined, 6); // new data on a:1 not read yet: it holds again
  assert.equal(t.watermark(C + 60_001), T0 + 10_000);
  // An empty partition holds until idle; at the end of a drain all caught-up ones are idle.
  t.assign(["a:0", "a:1", "a:2"], C + 60_001);
  t.progress("a:2", 0, 0);
  assert.equal(t.watermark(C + 60_002), "hold");
  t.progress("a:0", 9, 9);
  t.progress("a:1", 6, 6);
  assert.equal(t.watermark(C + 60_002, { endOfInput: true }), T0 + 100_000);
  // Unassigned partitions are forgotten.
  t.assign(["a:1"], C + 70_000);
  assert.deepEqual(Object.keys(t.view(C + 70_000)), ["a:1"]);
  assert.equal(t.watermark(C + 70_000), T0 + 10_000);
});

Deno.test("watermark: event times far ahead of the clock count only up to it", () => {
  const t = createWatermarkTracker({ latenessMs: 0, idleMs: 60_000, maxFutureMs: 1000 });
  t.assign(["a:0"], T0);
  t.observe(new Map([["a:0", T0 + 86_400_000]]), T0);
  assert.equal(t.watermark(T0), T0 + 1000);
});

Deno.test("reducer: contributions per event type, chunks with their own index tables", () => {
  const txn = transaction(7, T0 + 31_000, [1999, 500]);
  const c = contributionOf(txn);
  assert.deepEqual([c.shape.kind, c.id, c.eventMs, windowStart(c.eventMs, 30_000)], [
    "txn",
    7,
    T0 + 31_000,
    T0 + 30_000,
  ]);
  assert.deepEqual(fieldsOf(c), [["events", 1], ["transaction_count", 1], ["revenue_cents", 2999]]);
  assert.deepEqual(fieldsOf(contributionOf(itemsOf(txn)[1]!)), [
    ["items_sold", 2],
    ["category:Home & Garden:units", 2],
    ["category:Home & Garden:revenue_cents", 1000],
  ]);
  assert.deepEqual(fieldsOf(contributionOf(behavior(3, T0, "search"))), [
    ["events", 1],
    ["behavior:search", 1],
  ]);
  const contributions = [
    contributionOf(behavior(1, T0, "search")),
    contributionOf(behavior(2 ** 23 + 5, T0 + 40_000, "search")),
    contributionOf(behavior(4, T0 + 1, "search")),
    contributionOf(txn),
  ];
  const chunks = encodeChunks(contributions, {
    seenPrefix: "n:s:",
    maxEvents: 3,
    windowMs: 30_000,
  });
  assert.equal(chunks.length, 2);
  assert.deepEqual(chunks[0], {
    fields: ["events", "behavior:search"],
    windows: [T0, T0 + 30_000],
    // Group 1: window 1, no variable field, 2 pairs; group 2 the same shape in window 2.
    groups: ["1", "0", "2", "1", "1", "2", "1", "2", "0", "2", "1", "1", "2", "1"],
    // Ids 1 and 4 in the first bitmap segment, 2^23 + 5 in the second.
    sections: [
      { key: "n:s:ub:0", events: [1, 1, 0, 4, 1, 0] },
      { key: "n:s:ub:1", events: [5, 2, 0] },
    ],
    events: 3,
  });
  assert.deepEqual(chunks[1]!.fields, ["revenue_cents", "events", "transaction_count"]);
  assert.deepEqual(chunks[1]!.sections, [{ key: "n:s:txn:0", events: [7, 1, 2999] }]);
});

Deno.test("batcher: concurrent submissions share a flush; flushes and ticks run one at a time", async () => {
  const serial = createSerial();
  const log: string[] = [];
  const batcher = createBatcher<number>(async (items) => {
    log.push(`flush ${items.join(",")}`);
    await new Promise((r) => setTimeout(r, 10));
    log.push("flushed");
  }, { serial, lingerMs: 1 });
  const first = Promise.all([batcher.submit(1, 1), batcher.submit(2, 1)]);
  await new Promise((r) => setTimeout(r, 3));
  const tick = serial.run(() => Promise.resolve(log.push("tick")));
  await Promise.all([first, tick]);
  assert.deepEqual(log, ["flush 1,2", "flushed", "tick"]);
});

// --------------------------------------------------------- the Redis script

const SCRIPT_OPTIONS = {
  windowMs: 30_000,
  allowedLatenessMs: 0,
  retentionMs: 3_600_000,
  staleMs: 30_000,
};

function chunkOf(ns: TestNamespace, events: AnyEvent[]) {
  const seenPrefix = scriptKeys(names(ns.namespace)).seenPrefix;
  return encodeChunks(events.map((e) => contributionOf(e)), {
    seenPrefix,
    maxEvents: 10_000,
    windowMs: 30_000,
  })[0];
}

Deno.test({
  name: "script: each event once; late ones beside their final window; seed-shaped JSON",
  ...services,
  async fn() {
    const ns = await createTestNamespace("aggs");
    const redis = createRedis(ns.config);
    const subscriber = createRedis(ns.config);
    const n = names(ns.namespace);
    try {
      const updates: string[] = [];
      await subscriber.subscribe(n.redis("metrics:updates"));
      subscriber.on("message", (_channel: string, message: string) => updates.push(message));
      const script = createMetricsScript(redis, n, SCRIPT_OPTIONS);
      const t1 = transaction(1, T0 + 1000, [1999, 500]);
      const t2 = transaction(2, T0 + 31_000, [10_000]);
      const first = [t1, t1, t2, behavior(1, T0 + 5000, "search"), ...itemsOf(t1)];
      const r1 = await script.apply({
        instance: "a",
        watermark: T0 + 60_000,
        chunk: chunkOf(ns, first),
      });
      assert.deepEqual(r1, {
        added: 5,
        duplicates: 1,
        late: 0,
        groupWatermarkMs: T0 + 60_000,
        finalized: 2,
        trimmed: 0,
      });
      const lateOne = behavior(2, T0 + 10_000, "page_view");
      const t3 = transaction(3, T0 + 70_000, [250]);
      const r2 = await script.apply({ instance: "a", chunk: chunkOf(ns, [lateOne, t1, t3]) });
      assert.deepEqual([r2.added, r2.duplicates, r2.late], [2, 1, 1]);

      const totals = await totalsOf(redis, ns);
      assert.deepEqual(withoutLate(totals), expectedTotals([...first, lateOne, t3]));
      assert.equal(totals.late_events, 1);
      assert.deepEqual(await redis.hgetall(n.redis("metrics:late")), {
        events: "1",
        "behavior:page_view": "1",
        late_events: "1",
      });
      const w0 = await redis.hgetall(n.redis(`metrics:window:${T0}`));
      assert.equal(w0["behavior:page_view"], undefined);
      assert.equal(w0.final, "1");
      assert.equal(w0.revenue_cents, "2999");
      await reconcile(redis, ns);

      const txn = JSON.parse((await redis.get(n.redis("metrics:transactions")))!);
      assert.deepEqual(
        Object.keys(txn),
        [
          "transaction_count",
          "total_revenue",
          "total_revenue_cents",
          "avg_order_value",
          "avg_order_value_cents",
          "window_start",
          "window_end",
          "last_update",
        ] satisfies (keyof TransactionMetrics)[],
      );
      assert.deepEqual({ ...txn, last_update: "" }, {
        transaction_count: 1,
        total_revenue: 2.5,
        total_revenue_cents: 250,
        avg_order_value: 2.5,
        avg_order_value_cents: 250,
        window_start: "2026-01-01T00:01:00.000Z",
        window_end: "2026-01-01T00:01:30.000Z",
        last_update: "",
      });
      assert.ok(Math.abs(Date.parse(txn.last_update) - Date.now()) < 60_000);
      const behaviorJson = JSON.parse((await redis.get(n.redis("metrics:behavior")))!);
      assert.deepEqual(behaviorJson.counts, {
        page_view: 0,
        product_view: 0,
        search: 0,
        add_to_cart: 0,
        remove_from_cart: 0,
      });
      const products = JSON.parse((await redis.get(n.redis("metrics:products:Home & Garden")))!);
      assert.deepEqual({ ...products, last_update: "" }, {
        category: "Home & Garden",
        product_sales: 2,
        category_revenue: 10,
        category_revenue_cents: 1000,
        last_update: "",
      });
      for (let i = 0; i < 50 && updates.length < 2; i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.deepEqual(updates.map((u) => JSON.parse(u).events), [5, 2]);
      assert.equal(JSON.parse(updates[1]!).latest_window_start, "2026-01-01T00:01:00.000Z");
    } finally {
      subscriber.disconnect();
      redis.disconnect();
      await ns.cleanup();
    }
  },
});

Deno.test({
  name: "script: group watermark is the lowest live instance's, waits for holds, never goes back",
  ...services,
  async fn() {
    const ns = await createTestNamespace("aggw");
    const redis = createRedis(ns.config);
    const n = names(ns.namespace);
    try {
      const script = createMetricsScript(redis, n, SCRIPT_OPTIONS);
      const wm = async (instance: string, watermark: number | "hold" | "none") =>
        (await script.apply({ instance, watermark })).groupWatermarkMs;
      assert.equal(await wm("a", "hold"), undefined);
      assert.equal(await wm("a", T0 + 100), T0 + 100);
      assert.equal(await wm("b", "hold"), T0 + 100);
      assert.equal(await wm("a", T0 + 200), T0 + 100);
      assert.equal(await wm("b", T0 + 150), T0 + 150);
      assert.equal(await wm("b", "none"), T0 + 200);
      assert.equal(await wm("a", T0 + 50), T0 + 200);
      // An entry not refreshed for longer than the stale time counts no more (and is dropped).
      await redis.hset(n.redis("metrics:instances"), "dead", `${T0}@1`);
      assert.equal(await wm("a", T0 + 300), T0 + 300);
      assert.deepEqual(Object.keys(await redis.hgetall(n.redis("metrics:instances"))), ["a"]);
    } finally {
      redis.disconnect();
      await ns.cleanup();
    }
  },
});

Deno.test({
  name: "script: ISO times match JavaScript's; retention retires windows into metrics:expired",
  ...services,
  async fn() {
    const ns = await createTestNamespace("aggr");
    const redis = createRedis(ns.config);
    const n = names(ns.namespace);
    try {
      const script = createMetricsScript(redis, n, { ...SCRIPT_OPTIONS, retentionMs: 60_000 });
      const starts = [
        "1970-01-01T00:00:00.000Z",
        "2000-02-29T23:59:30.000Z",
        "2024-02-29T12:00:00.000Z",
        "2026-12-31T23:59:30.000Z",
        "2100-03-01T00:00:00.000Z",
      ].map(Date.parse);
      for (const [i, start] of starts.entries()) {
        await script.apply({
          instance: "a",
          chunk: chunkOf(ns, [transaction(i + 1, start + 999, [100])]),
          deadLetters: [["aggregate:transactions", "x:0:7"]],
        });
        const json = JSON.parse((await redis.get(n.redis("metrics:transactions")))!);
        assert.equal(json.window_start, iso(start));
        assert.equal(json.window_end, iso(start + 30_000));
      }
      assert.equal(
        await redis.hget(n.redis("pipeline:dead_letters"), "aggregate:transactions"),
        "1",
      );
      const result = await script.apply({ instance: "a", watermark: starts[3]! + 90_000 });
      assert.equal(result.trimmed, 4);
      assert.deepEqual(await redis.zrange(n.redis("metrics:windows"), 0, -1), [
        String(starts[4]),
      ]);
      assert.equal(await redis.hget(n.redis("metrics:expired"), "transaction_count"), "4");
      await reconcile(redis, ns);
    } finally {
      redis.disconnect();
      await ns.cleanup();
    }
  },
});
