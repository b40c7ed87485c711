/**
 * The warehouse write on real PostgreSQL (no Kafka): the fast path (direct
 * COPY), its fall back to the staging path when a row is in the way or a value
 * is refused, and the outbox of one row per warehouse transaction.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { BehaviorEvent, TransactionEvent } from "../lib/contracts.ts";
import { openDatabase, type Sql } from "../lib/db.ts";
import { copyChecked, copyChunks, copyLine } from "../services/consume/copy.ts";
import { ScannedEvent } from "../services/consume/scanned.ts";
import {
  type Accepted,
  decodeMessage,
  type InputTopic,
  isAccepted,
} from "../services/consume/rows.ts";
import { clearOutbox, storeEvents } from "../services/consume/warehouse.ts";
import { createTestNamespace, type TestNamespace } from "./_support.ts";

const io = { sanitizeOps: false, sanitizeResources: false };

function transaction(id: number, timestamp = "2026-11-29T10:00:00.123Z"): TransactionEvent {
  const items = Array.from({ length: id % 3 + 1 }, (_, j) => ({
    detail_id: id * 10 + j,
    product_id: 1 + (id + j) % 5,
    product_name: `Product ${1 + (id + j) % 5}`,
    category: j % 2 === 0 ? "Books" : "Electronics",
    quantity: 1 + j,
    unit_price_cents: 199 + id,
  }));
  return {
    schema_version: 1,
    event_id: `txn-${id}`,
    event_type: "transaction",
    customer_id: 1 + id % 17,
    timestamp,
    transaction_id: id,
    buyer_id: null,
    total_cents: items.reduce((s, i) => s + i.quantity * i.unit_price_cents, 0),
    payment_method: "paypal",
    status: "completed",
    items,
  };
}

function behavior(id: number, type: BehaviorEvent["event_type"] = "search"): BehaviorEvent {
  return {
    schema_version: 1,
    event_id: `ub-${id}`,
    event_type: type,
    customer_id: 3,
    timestamp: "2026-11-29T10:00:01.000Z",
    behavior_id: id,
    session_id: "s-3",
    product_id: null,
    search_query: "usb cable",
    device: "mobile",
  };
}

let offset = 0;
function accept(event: TransactionEvent | BehaviorEvent, topic: InputTopic): Accepted {
  const result = decodeMessage(topic, {
    topic: `t.${topic}`,
    partition: 0,
    offset: String(offset++),
    key: null,
    value: new TextEncoder().encode(JSON.stringify(event)),
  });
  assert.ok(isAccepted(result), JSON.stringify(result));
  return result;
}

const txns = (from: number, count: number) =>
  Array.from({ length: count }, (_, k) => accept(transaction(from + k), "transactions"));

async function withWarehouse(fn: (sql: Sql, ns: TestNamespace) => Promise<void>) {
  const ns = await createTestNamespace("wh");
  const sql = await openDatabase(ns.config, "dwh", { max: 1 });
  try {
    await fn(sql, ns);
  } finally {
    await sql.end({ timeout: 5 });
    await ns.cleanup();
  }
}

async function contents(sql: Sql) {
  const events = await sql<{ event_id: string; source_topic: string }[]>`
    select event_id, source_topic from realtime_events order by event_id`;
  const [sales] = await sql<{ n: number; ids: string[] }[]>`
    select count(*)::int as n, coalesce(array_agg(event_id order by detail_id), '{}') as ids
    from fact_sales`;
  const outbox = await sql<{ ids: string[] }[]>`
    select event_ids as ids from transaction_items_outbox order by batch_id`;
  return {
    events: Object.fromEntries(events.map((e) => [e.event_id, e.source_topic])),
    sales: sales!.n,
    saleIds: sales!.ids,
    outbox: outbox.map((r) => [...r.ids].sort()),
  };
}

const itemIds = (events: readonly Accepted[]) =>
  events.flatMap((a) =>
    a.event.event_type === "transaction" ? a.event.items.map((i) => `ti-${i.detail_id}`) : []
  ).sort((a, b) => Number(a.slice(3)) - Number(b.slice(3)));

Deno.test("warehouse: COPY chunks are the lines' UTF-8 bytes, whole lines each, any size", () => {
  const text = new TextDecoder("utf-8", { fatal: true });
  const many = Array.from({ length: 10_000 }, (_, i) => [`ü${i}`, i, "z€".repeat(i % 300)]);
  const cases = [
    [["a\tb", 1, null], ["é€😀\\", -2.5, "x"]],
    many,
    // A line larger than a chunk, between others.
    [...many.slice(0, 3000), ["y".repeat(3_000_000), 3, "😀".repeat(500_000)], ...many],
  ];
  for (const rows of cases) {
    const chunks = [...copyChunks(rows)];
    assert.equal(chunks.map((c) => text.decode(c)).join(""), rows.map(copyLine).join(""));
    for (const c of chunks) assert.equal(c.at(-1), 10, "a chunk ends mid-line");
    if (rows.length > 2) assert.ok(chunks.length >= 3, `${chunks.length} chunks`);
  }
});

Deno.test(
  "warehouse: copyChecked rejects a COPY refused at its end or midway; the connection stays usable",
  io,
  async () => {
    await withWarehouse(async (sql) => {
      await sql`create table copied (id int primary key, at timestamptz not null)`;
      await sql`insert into copied values (0, now())`;
      const many = (bad: (string | number)[]) =>
        Array.from(
          { length: 50_000 },
          (_, i) => i === 20_000 ? bad : [i + 1, "2026-01-01T00:00:00Z"],
        );
      const cases: [string, (string | number)[][]][] = [
        // Refused when the last row arrives: postgres.js alone would neither finish nor fail.
        ["a duplicate at the end", [[1, "2026-01-01T00:00:00Z"], [0, "2026-01-01T00:00:00Z"]]],
        ["a bad date at the end", [[1, "2026-02-30T00:00:00Z"]]],
        // Refused while rows are still being written.
        ["a duplicate midway", many([0, "2026-01-01T00:00:00Z"])],
        ["a bad date midway", many([-1, "2026-02-30T00:00:00Z"])],
      ];
      for (const [what, rows] of cases) {
        await assert.rejects(
          sql.begin(async (tx) => {
            await copyChecked(tx, await tx`copy copied from stdin`.writable(), rows, 30_000);
          }),
          (error: Error & { code?: string }) => {
            assert.match(error.code ?? "", /^(23505|22008|25P02)$/, `${what}: ${error.message}`);
            return true;
          },
          what,
        );
        const [row] = await sql<{ n: number }[]>`select count(*)::int as n from copied`;
        assert.equal(row!.n, 1, `${what}: a row of the failed COPY is visible`);
      }
      await sql.begin(async (tx) => {
        await copyChecked(
          tx,
          await tx`copy copied from stdin`.writable(),
          many([-1, "2026-01-02"]),
        );
      });
      const [row] = await sql<{ n: number }[]>`select count(*)::int as n from copied`;
      assert.equal(row!.n, 50_001);
    });
  },
);

Deno.test(
  "warehouse: a transaction stored by another writer fails the direct COPY; the staging path stores the rest, owes it its items",
  io,
  async () => {
    await withWarehouse(async (sql, ns) => {
      // Another writer (a replay under another group, say) stored txn-3 and txn-700 and
      // sent no items yet: its outbox row is outstanding.
      const other = await openDatabase(ns.config, "dwh", { max: 1 });
      try {
        const first = await storeEvents(other, [...txns(3, 1), ...txns(700, 1)]);
        assert.equal(first.stored, 2);
      } finally {
        await other.end({ timeout: 5 });
      }
      // A small batch (refused at the end of the COPY) and a large one (refused midway), each
      // on a fresh pool (after a failed COPY, a pool probes every id for a while).
      for (const batch of [txns(1, 5), txns(690, 3000)]) {
        const before = await contents(sql);
        const fresh = await openDatabase(ns.config, "dwh", { max: 1 });
        let result;
        try {
          result = await storeEvents(fresh, batch);
          // The connection is usable: the next query on the pool's one connection works.
          const [one] = await fresh<{ n: number }[]>`select 1 as n`;
          assert.equal(one!.n, 1);
        } finally {
          await fresh.end({ timeout: 5 });
        }
        assert.equal(result.fallbacks, 1);
        assert.equal(result.stored, batch.length - 1);
        assert.deepEqual(result.rejected, []);
        const ids = batch.map((a) => a.event.event_id);
        assert.deepEqual([...result.publish].sort(), [...ids].sort());
        const after = await contents(sql);
        assert.equal(
          Object.keys(after.events).length,
          Object.keys(before.events).length + batch.length - 1,
        );
        assert.equal(after.sales, new Set([...before.saleIds, ...itemIds(batch)]).size);
      }
    });
  },
);

Deno.test(
  "warehouse: a value PostgreSQL refuses in the direct COPY costs one dead letter, the rest is stored",
  io,
  async () => {
    await withWarehouse(async (sql) => {
      const bad = accept(
        { ...transaction(50, "2026-02-30T10:00:00Z"), event_id: "txn-50" },
        "transactions",
      );
      // The same fault in the form the fast path reads (services/consume/scan.ts).
      const scanned = accept(
        { ...transaction(51, "2026-02-30T10:00:00.000Z"), event_id: "txn-51" },
        "transactions",
      );
      assert.ok(scanned instanceof ScannedEvent);
      const good = [...txns(1, 20), accept(behavior(1), "userBehavior")];
      const result = await storeEvents(sql, [
        ...good.slice(0, 10),
        bad,
        ...good.slice(10),
        scanned,
      ]);
      assert.equal(result.stored, good.length);
      assert.equal(result.rejected.length, 2);
      assert.equal(result.rejected[0]!.source, bad.source);
      assert.deepEqual(result.rejected[1]!.source, {
        topic: "t.transactions",
        partition: 0,
        offset: scanned.source.offset,
        key: null,
        value: new TextEncoder().encode(scanned.json),
      });
      for (const r of result.rejected) {
        assert.match(r.reason, /warehouse refused it: date\/time field value/);
      }
      const stored = await contents(sql);
      assert.equal(Object.keys(stored.events).length, good.length);
      assert.deepEqual(stored.saleIds, itemIds(good));
      assert.deepEqual(
        stored.outbox.flat().sort(),
        txns(1, 20).map((a) => a.event.event_id).sort(),
      );
      const [one] = await sql<{ n: number }[]>`select 1 as n`;
      assert.equal(one!.n, 1);
    });
  },
);

Deno.test(
  "warehouse: one outbox row per store; a redelivery owes what an outstanding row lists, a replay nothing",
  io,
  async () => {
    await withWarehouse(async (sql) => {
      const first = await storeEvents(sql, txns(1, 4));
      assert.equal(first.outbox.rows.length, 1);
      assert.deepEqual((await contents(sql)).outbox, [["txn-1", "txn-2", "txn-3", "txn-4"]]);

      // Redelivered, with more: txn-1 and txn-2 are stored and still owed, txn-5 new.
      const again = await storeEvents(sql, [...txns(1, 2), ...txns(5, 1)]);
      assert.equal(again.fallbacks, 1, "the direct COPY met txn-1");
      assert.equal(again.stored, 1);
      assert.deepEqual([...again.publish].sort(), ["txn-1", "txn-2", "txn-5"]);
      assert.deepEqual(again.outbox.earlier.sort(), ["txn-1", "txn-2"]);
      await clearOutbox(sql, again.outbox);
      assert.deepEqual((await contents(sql)).outbox, [["txn-3", "txn-4"]]);

      // The fast path now probes every id (a replay is under way): no COPY fails.
      const rest = await storeEvents(sql, [...txns(3, 2), ...txns(6, 1)]);
      assert.equal(rest.fallbacks, 0);
      assert.deepEqual([...rest.publish].sort(), ["txn-3", "txn-4", "txn-6"]);
      await clearOutbox(sql, rest.outbox);
      assert.deepEqual((await contents(sql)).outbox, []);

      // Everything published: a replay stores and owes nothing.
      const replay = await storeEvents(sql, txns(1, 6));
      assert.equal(replay.stored, 0);
      assert.deepEqual([...replay.publish], []);
      assert.equal((await contents(sql)).sales, itemIds(txns(1, 6)).length);
    });
  },
);

Deno.test(
  "warehouse: two stores in flight sharing a behaviour event: no COPY fails, one row",
  io,
  async () => {
    await withWarehouse(async (_, ns) => {
      const sql = await openDatabase(ns.config, "dwh", { max: 2 });
      try {
        const shared = behavior(9);
        const a = [...txns(1, 200), accept(shared, "userBehavior")];
        const b = [accept(shared, "searches"), ...txns(201, 200)];
        const [ra, rb] = await Promise.all([storeEvents(sql, a), storeEvents(sql, b)]);
        assert.equal(ra.fallbacks + rb.fallbacks, 0);
        assert.equal(ra.stored + rb.stored, 401);
        const stored = await contents(sql);
        assert.equal(stored.events["ub-9"], "t.userBehavior");
      } finally {
        await sql.end({ timeout: 5 });
      }
    });
  },
);

Deno.test(
  "warehouse: a store sharing an event with one held up writes its other events meanwhile",
  io,
  async () => {
    await withWarehouse(async (_, ns) => {
      const sql = await openDatabase(ns.config, "dwh", { max: 2 });
      const blocker = await openDatabase(ns.config, "dwh", { max: 1 });
      const reader = await openDatabase(ns.config, "dwh", { max: 1 });
      try {
        // `a` upserts customer 99, which an open transaction is inserting: `a` waits for it.
        const held = Promise.withResolvers<void>();
        const locked = Promise.withResolvers<void>();
        const blocking = blocker.begin(async (tx) => {
          await tx`insert into dim_customer (customer_id, first_seen, last_seen)
            values (99, now(), now())`;
          locked.resolve();
          await held.promise;
          throw new Error("roll back");
        }).catch(() => {});
        await locked.promise;
        const shared = behavior(9);
        const a = [
          accept(shared, "userBehavior"),
          accept({ ...behavior(100), customer_id: 99 }, "userBehavior"),
        ];
        const others = Array.from(
          { length: 10 },
          (_, k) => accept({ ...transaction(201 + k), customer_id: 50 }, "transactions"),
        );
        const b = [accept(shared, "searches"), ...others];
        let aDone = false;
        const ra = storeEvents(sql, a).finally(() => aDone = true);
        const rb = storeEvents(sql, b);
        try {
          let visible = 0;
          for (let i = 0; i < 200 && visible < others.length; i++) {
            await new Promise((r) => setTimeout(r, 50));
            [{ n: visible }] = await reader<{ n: number }[]>`
              select count(*)::int as n from realtime_events where customer_id = 50`;
          }
          assert.equal(visible, others.length, "b's other events are committed while a waits");
          assert.equal(aDone, false);
        } finally {
          held.resolve();
          await blocking;
          await Promise.allSettled([ra, rb]);
        }
        const [resultA, resultB] = await Promise.all([ra, rb]);
        assert.equal(resultA.fallbacks + resultB.fallbacks, 0);
        assert.deepEqual([resultA.stored, resultB.stored], [2, others.length]);
        const stored = await contents(reader);
        assert.equal(stored.events["ub-9"], "t.userBehavior");
        assert.equal(Object.keys(stored.events).length, 2 + others.length);
        // b's dimension rows too, upserted once a was over.
        const customers = await reader<{ id: number }[]>`
          select customer_id::int as id from dim_customer order by customer_id`;
        assert.deepEqual(customers.map((c) => c.id), [3, 50, 99]);
        const [{ n: products }] = await reader<{ n: number }[]>`
          select count(*)::int as n from dim_product`;
        assert.equal(products, 5);
        assert.deepEqual(stored.saleIds, itemIds(others));
      } finally {
        await sql.end({ timeout: 5 });
        await blocker.end({ timeout: 5 });
        await reader.end({ timeout: 5 });
      }
    });
  },
);

Deno.test(
  "warehouse: when the store in flight refuses its copy of a shared event, the other stores its own",
  io,
  async () => {
    await withWarehouse(async (_, ns) => {
      const sql = await openDatabase(ns.config, "dwh", { max: 2 });
      try {
        const refused = { ...behavior(9), timestamp: "2026-02-30T10:00:01.000Z" };
        const a = [...txns(1, 5), accept(refused, "userBehavior")];
        const b = [accept(behavior(9), "searches"), ...txns(201, 5)];
        const [ra, rb] = await Promise.all([storeEvents(sql, a), storeEvents(sql, b)]);
        assert.equal(ra.rejected.length, 1);
        assert.equal(ra.rejected[0]!.source, a[5]!.source);
        assert.deepEqual([ra.stored, rb.stored], [5, 6]);
        const stored = await contents(sql);
        assert.equal(stored.events["ub-9"], "t.searches");
        assert.equal(Object.keys(stored.events).length, 11);
      } finally {
        await sql.end({ timeout: 5 });
      }
    });
  },
);

Deno.test(
  "warehouse: a searched event stored before is skipped by the probe; a page view stored before fails the COPY and falls back",
  io,
  async () => {
    await withWarehouse(async (sql, ns) => {
      const other = await openDatabase(ns.config, "dwh", { max: 1 });
      try {
        await storeEvents(other, [
          accept(behavior(1), "searches"),
          accept(behavior(2, "page_view"), "userBehavior"),
        ]);
      } finally {
        await other.end({ timeout: 5 });
      }
      const searched = await storeEvents(sql, [accept(behavior(1), "userBehavior"), ...txns(1, 3)]);
      assert.equal(searched.fallbacks, 0);
      assert.equal(searched.stored, 3);
      const viewed = await storeEvents(sql, [
        accept(behavior(2, "page_view"), "userBehavior"),
        ...txns(4, 3),
      ]);
      assert.equal(viewed.fallbacks, 1);
      assert.equal(viewed.stored, 3);
      const stored = await contents(sql);
      // The first copy stored stays: a later one of the same event changes nothing.
      assert.equal(stored.events["ub-1"], "t.searches");
      assert.equal(Object.keys(stored.events).length, 8);
      assert.deepEqual(stored.saleIds, itemIds(txns(1, 6)));
    });
  },
);
