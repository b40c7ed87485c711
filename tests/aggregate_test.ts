/**
 * `deno task aggregate` on real Kafka and Redis, run as a user runs it: exact
 * totals, a restart after a kill -9, two instances, late events, a catch-up
 * over several partitions, and `--rebuild`. The pure parts and the Redis
 * script are in aggregate_unit_test.ts.
 */

import assert from "node:assert/strict";
import { names, type TransactionEvent } from "../lib/contracts.ts";
import { createKafka } from "../lib/kafka.ts";
import { createRedis } from "../lib/redis.ts";
import { windowStart } from "../services/aggregate/window.ts";
import { createTestNamespace, runTask, spawnTask } from "./_support.ts";
import {
  type AnyEvent,
  counted,
  expectedTotals,
  iso,
  produce,
  readDeadLetters,
  reconcile,
  services,
  stream,
  T0,
  totalsOf,
  transaction,
  waitCaughtUp,
  watch,
  withoutLate,
} from "./_aggregate_support.ts";

// ------------------------------------------------------------- the stage

Deno.test({
  name: "aggregate --drain: Redis totals equal the input exactly; bad messages are dead letters",
  ...services,
  async fn() {
    const ns = await createTestNamespace("agg", { topics: true });
    const redis = createRedis(ns.config);
    const n = names(ns.namespace);
    try {
      const events = stream(1500);
      const resent = events.slice(100, 160); // a producer re-send: same event ids again
      const bad = transaction(99_999, T0, [100]);
      await produce(ns, [...events, ...resent], undefined, [
        { topic: "transactions", value: "not json" },
        { topic: "transactions", value: JSON.stringify({ ...bad, total_cents: 1 }) },
      ]);
      const result = await runTask("aggregate", ["--drain"], ns.env);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /Drained after/);

      const totals = await totalsOf(redis, ns);
      assert.deepEqual(withoutLate(totals), expectedTotals(events));
      assert.equal(totals.late_events, 0);
      await reconcile(redis, ns);

      const txns = events.filter((e): e is TransactionEvent => e.event_type === "transaction");
      const latest = Math.max(...txns.map((t) => windowStart(Date.parse(t.timestamp), 30_000)));
      const inLatest = txns.filter((t) => windowStart(Date.parse(t.timestamp), 30_000) === latest);
      const json = JSON.parse((await redis.get(n.redis("metrics:transactions")))!);
      const cents = inLatest.reduce((s, t) => s + t.total_cents, 0);
      assert.equal(json.window_start, iso(latest));
      assert.equal(json.transaction_count, inLatest.length);
      assert.equal(json.total_revenue_cents, cents);
      assert.equal(json.total_revenue, cents / 100);

      assert.equal(
        await redis.hget(n.redis("pipeline:dead_letters"), "aggregate:transactions"),
        "2",
      );
      const letters = await readDeadLetters(ns, 2);
      assert.deepEqual(
        letters.map((l) => l.value).sort(),
        [
          JSON.stringify({ ...bad, total_cents: 1 }),
          "not json",
        ].sort(),
      );
      assert.equal(letters[0]!.headers["dlq.stage"], "aggregate");
      assert.equal(letters[0]!.headers["dlq.source.topic"], n.topics.transactions);

      const beat = await redis.hgetall(n.heartbeat("aggregate"));
      assert.equal(beat.stage, "aggregate");
      assert.equal(JSON.parse(beat.detail!).lag_total, 0);
    } finally {
      redis.disconnect();
      await ns.cleanup();
    }
  },
});

Deno.test({
  name:
    "aggregate: killed after writing Redis but before committing, a restart counts nothing twice",
  ...services,
  async fn() {
    const ns = await createTestNamespace("aggk", { topics: true });
    const redis = createRedis(ns.config);
    try {
      const events = stream(3000);
      await produce(ns, events);
      const first = watch(spawnTask("aggregate", ["--hold-after-write"], ns.env));
      await first.waitFor("Fault injection");
      const before = await totalsOf(redis, ns);
      assert.ok(before.events! > 0, "the first run wrote metrics");
      first.kill("SIGKILL");
      assert.equal((await first.end()).signal, "SIGKILL");

      const again = await runTask("aggregate", ["--drain"], ns.env);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, /[1-9][\d,]* already counted/);
      const totals = await totalsOf(redis, ns);
      assert.deepEqual(withoutLate(totals), expectedTotals(events));
      await reconcile(redis, ns);
    } finally {
      redis.disconnect();
      await ns.cleanup();
    }
  },
});

Deno.test({
  name: "aggregate: two instances in one group give exactly the totals of one",
  ...services,
  async fn() {
    const ns = await createTestNamespace("agg2", { topics: true });
    const redis = createRedis(ns.config);
    const a = watch(spawnTask("aggregate", [], ns.env));
    const b = watch(spawnTask("aggregate", [], ns.env));
    try {
      await Promise.all([a.waitFor("Group ID"), b.waitFor("Group ID")]);
      const events: AnyEvent[] = [];
      for (let round = 0; round < 6; round++) {
        const batch = stream(500, { startMs: T0 + round * 125_000, firstId: 1 + round * 500 });
        events.push(...batch);
        await produce(ns, round === 3 ? [...batch, ...events.slice(0, 200)] : batch);
        await new Promise((r) => setTimeout(r, 700));
      }
      await waitCaughtUp(ns);
      a.kill("SIGTERM");
      b.kill("SIGTERM");
      const [sa, sb] = await Promise.all([a.end(), b.end()]);
      assert.equal(sa.code, 0, a.text);
      assert.equal(sb.code, 0, b.text);

      const totals = await totalsOf(redis, ns);
      assert.deepEqual(withoutLate(totals), expectedTotals(events));
      await reconcile(redis, ns);
      // Both did part of the work, and between them counted each event once.
      const [ca, cb] = [counted(a.text), counted(b.text)];
      assert.ok(ca > 0 && cb > 0, `counted ${ca} and ${cb}`);
      assert.equal(ca + cb, new Set(events.map((e) => e.event_id)).size);
    } finally {
      a.kill("SIGKILL");
      b.kill("SIGKILL");
      redis.disconnect();
      await ns.cleanup();
    }
  },
});

Deno.test({
  name: "aggregate: a late event is counted in late_events, not folded into its final window",
  ...services,
  async fn() {
    const strict = await createTestNamespace("aggl", { topics: true });
    const lenient = await createTestNamespace("aggl", { topics: true });
    const redis = createRedis(strict.config);
    const flags = ["--drain", "--window", "10s", "--watermark", "0s"];
    const onPartition0 = () => 0;
    try {
      // First run: the watermark reaches T0+100 s, so the window [50 s, 60 s) closes.
      const early = [transaction(1, T0 + 50_000, [1000]), transaction(2, T0 + 100_000, [2000])];
      // Second run: one event for that closed window, one for the open [100 s, 110 s).
      const late = transaction(3, T0 + 55_000, [4000]);
      const onTime = transaction(4, T0 + 105_000, [8000]);
      for (const [ns, extra] of [[strict, []], [lenient, ["--allowed-lateness", "60s"]]] as const) {
        await produce(ns, early, onPartition0);
        const first = await runTask("aggregate", [...flags, ...extra], ns.env);
        assert.equal(first.code, 0, first.stderr);
        await produce(ns, [late, onTime], onPartition0);
        const second = await runTask("aggregate", [...flags, ...extra], ns.env);
        assert.equal(second.code, 0, second.stderr);
      }

      const n = names(strict.namespace);
      const totals = await totalsOf(redis, strict);
      assert.equal(totals.transaction_count, 4);
      assert.equal(totals.revenue_cents, 15_000);
      assert.equal(totals.late_events, 1);
      assert.deepEqual(await redis.hgetall(n.redis(`metrics:window:${T0 + 50_000}`)), {
        events: "1",
        transaction_count: "1",
        revenue_cents: "1000",
        final: "1",
      });
      assert.equal(
        await redis.hget(n.redis(`metrics:window:${T0 + 100_000}`), "revenue_cents"),
        "10000",
      );
      assert.deepEqual(await redis.hgetall(n.redis("metrics:late")), {
        events: "1",
        transaction_count: "1",
        revenue_cents: "4000",
        late_events: "1",
      });
      await reconcile(redis, strict);

      // With --allowed-lateness 60s the window was still open: the event is folded in.
      const m = names(lenient.namespace);
      const lenientTotals = await totalsOf(redis, lenient);
      assert.equal(lenientTotals.late_events ?? 0, 0);
      assert.equal(lenientTotals.revenue_cents, 15_000);
      const window = await redis.hgetall(m.redis(`metrics:window:${T0 + 50_000}`));
      assert.equal(window.revenue_cents, "5000");
      assert.equal(window.final, undefined);
      await reconcile(redis, lenient);
    } finally {
      redis.disconnect();
      await strict.cleanup();
      await lenient.cleanup();
    }
  },
});

Deno.test({
  name: "aggregate: catching up a backlog with one partition far ahead makes no event late",
  ...services,
  async fn() {
    const ns = await createTestNamespace("aggc", { topics: true });
    const redis = createRedis(ns.config);
    try {
      // Partition 0 of every topic runs an hour ahead; partitions 1-5 interleave the first minutes.
      const ahead = stream(300, { startMs: T0 + 3_600_000, stepMs: 1000, firstId: 1 });
      const behind = stream(1500, { startMs: T0, stepMs: 200, firstId: 1001 });
      const partitionOf = new Map<string, number>();
      ahead.forEach((e) => partitionOf.set(e.event_id, 0));
      const perTopic = new Map<string, number>();
      for (const e of behind) {
        const k = perTopic.get(e.event_type === "transaction_item" ? "ti" : e.event_type) ?? 0;
        perTopic.set(e.event_type === "transaction_item" ? "ti" : e.event_type, k + 1);
        partitionOf.set(e.event_id, 1 + k % 5);
      }
      // Small sends make small record batches, so that small fetches take a bit of every
      // partition each time: partition 0's hour arrives with the first minutes of the others.
      await produce(ns, [...ahead, ...behind], (e) => partitionOf.get(e.event_id), [], 60);
      const result = await runTask("aggregate", ["--drain", "--fetch-bytes", "4096"], ns.env);
      assert.equal(result.code, 0, result.stderr);
      const flushes = Number(result.stdout.match(/Batch ([\d,]+)/g)?.at(-1)?.slice(6));
      assert.ok(flushes > 10, `only ${flushes} flushes:\n${result.stdout}`);

      const totals = await totalsOf(redis, ns);
      assert.equal(totals.late_events ?? 0, 0, result.stdout);
      assert.deepEqual(withoutLate(totals), expectedTotals([...ahead, ...behind]));
      await reconcile(redis, ns);
      const n = names(ns.namespace);
      const windows = await redis.zrange(n.redis("metrics:windows"), 0, -1);
      assert.ok(windows.includes(String(T0)) && windows.includes(String(T0 + 3_600_000)));
    } finally {
      redis.disconnect();
      await ns.cleanup();
    }
  },
});

Deno.test({
  name: "aggregate --rebuild: recomputes lost or damaged metrics exactly; refuses while one runs",
  ...services,
  async fn() {
    const ns = await createTestNamespace("aggb", { topics: true });
    const redis = createRedis(ns.config);
    const n = names(ns.namespace);
    const running = watch(spawnTask("aggregate", [], ns.env));
    try {
      const events = stream(600);
      await produce(ns, events, undefined, [{ topic: "transactions", value: "{}" }]);
      // A running instance holds the group: a rebuild must not pull offsets from under it.
      const until = Date.now() + 30_000;
      while (Number(await redis.hget(n.redis("metrics:totals"), "events")) < 400) {
        assert.ok(Date.now() < until, running.text);
        await new Promise((r) => setTimeout(r, 200));
      }
      const refused = await runTask("aggregate", ["--rebuild", "--drain"], ns.env);
      assert.equal(refused.code, 1);
      assert.match(
        refused.stderr,
        /^error: Cannot rebuild the metrics as group .* running member/m,
      );
      running.kill("SIGTERM");
      assert.equal((await running.end()).code, 0, running.text);

      // Damage: a wrong total, a lost window, a lost bitmap (which alone would allow double counts).
      await redis.hset(n.redis("metrics:totals"), "transaction_count", "999999");
      const [someWindow] = await redis.zrange(n.redis("metrics:windows"), 0, 0);
      await redis.del(n.redis(`metrics:window:${someWindow}`), n.redis("metrics:seen:ub:0"));
      const rebuilt = await runTask("aggregate", ["--rebuild", "--drain"], ns.env);
      assert.equal(rebuilt.code, 0, rebuilt.stderr);
      assert.match(rebuilt.stdout, /Rebuild: deleted \d+ metrics keys/);
      assert.deepEqual(withoutLate(await totalsOf(redis, ns)), expectedTotals(events));
      await reconcile(redis, ns);
      // The dead letter was counted again once, and not sent a second time.
      assert.equal(
        await redis.hget(n.redis("pipeline:dead_letters"), "aggregate:transactions"),
        "1",
      );
      const admin = createKafka(ns.config, { clientId: "test-dlq-count" }).admin();
      await admin.connect();
      const [dlq] = await admin.fetchTopicOffsets(n.topics.deadLetters);
      await admin.disconnect();
      assert.equal(dlq!.high, "1");
    } finally {
      running.kill("SIGKILL");
      redis.disconnect();
      await ns.cleanup();
    }
  },
});
