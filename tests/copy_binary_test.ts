/**
 * The fast path's binary COPY against PostgreSQL's own text parsing: the
 * timestamps it encodes are the microseconds PostgreSQL reads from the same
 * text, what it cannot vouch for it leaves to the text COPY, and a batch
 * stored through it (the fast path) leaves the very table contents the staging
 * path (text COPY, typed by PostgreSQL) leaves.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { BehaviorEvent, TransactionEvent } from "../lib/contracts.ts";
import { openDatabase, type Sql } from "../lib/db.ts";
import { binaryEventChunks, binarySaleChunks, isoMicros } from "../services/consume/copy_binary.ts";
import { writeDirect } from "../services/consume/direct.ts";
import {
  type Accepted,
  decodeMessage,
  isAccepted,
  warehouseRows,
} from "../services/consume/rows.ts";
import { writeStaged } from "../services/consume/staged.ts";
import { createTestNamespace } from "./_support.ts";

const io = { sanitizeOps: false, sanitizeResources: false };

async function withWarehouse(fn: (sql: Sql) => Promise<void>) {
  const ns = await createTestNamespace("cb");
  const sql = await openDatabase(ns.config, "dwh", { max: 1 });
  try {
    await fn(sql);
  } finally {
    await sql.end({ timeout: 5 });
    await ns.cleanup();
  }
}

/** A pseudo-random generator, reproducible. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

const pad = (n: number, width: number) => String(n).padStart(width, "0");

/** ISO texts in and around the form the encoder takes: fractions of 0-7 digits, edge dates. */
function isoTexts(count: number): string[] {
  const random = prng(7);
  const pick = (n: number) => Math.floor(random() * n);
  const texts = [
    "2000-01-01T00:00:00Z",
    "1999-12-31T23:59:59.999999Z",
    "1800-01-01T00:00:00Z",
    "2200-12-31T23:59:59.9Z",
    "2024-02-29T12:00:00.5Z",
    "2000-02-29T00:00:00.000001Z",
    "1970-01-01T00:00:00.000000Z",
    "2026-11-29T10:00:00.123456Z",
  ];
  for (let i = 0; i < count; i++) {
    const digits = pick(8);
    const fraction = digits === 0 ? "" : "." + pad(pick(10 ** digits), digits);
    texts.push(
      `${pad(1795 + pick(420), 4)}-${pad(1 + pick(12), 2)}-${pad(1 + pick(31), 2)}T` +
        `${pad(pick(25), 2)}:${pad(pick(61), 2)}:${pad(pick(61), 2)}${fraction}Z`,
    );
  }
  return texts;
}

Deno.test("copy_binary: isoMicros refuses what it cannot vouch for", () => {
  for (
    const text of [
      "2026-02-30T00:00:00Z",
      "2023-02-29T00:00:00Z",
      "1900-02-29T00:00:00Z",
      "2026-04-31T00:00:00Z",
      "2026-01-01T24:00:00Z",
      "2026-01-01T23:60:00Z",
      "2026-01-01T23:59:60Z",
      "2026-13-01T00:00:00Z",
      "2026-00-01T00:00:00Z",
      "2026-01-00T00:00:00Z",
      "1799-12-31T23:59:59Z",
      "2201-01-01T00:00:00Z",
      "0000-01-01T00:00:00Z",
      "2026-01-01T00:00:00.1234567Z",
      "2026-01-01T00:00:00.Z",
      "2026-01-01T00:00:00z",
      "2026-01-01T00:00:00",
      "2026-01-01 00:00:00Z",
      "2026-01-01T00:00:00+00:00",
      "2026-1-01T00:00:00Z",
      "2026-01-01T0a:00:00Z",
      "2026-01-01T00:00:00.12a4Z",
      "+2026-01-01T00:00:00Z",
    ]
  ) assert.equal(isoMicros(text), undefined, text);
});

Deno.test(
  "copy_binary: isoMicros gives what PostgreSQL reads from the same text, to the microsecond",
  io,
  async () => {
    await withWarehouse(async (sql) => {
      const texts = isoTexts(20_000);
      const vouched = texts.filter((t) => isoMicros(t) !== undefined);
      // Enough of both kinds for the comparison to mean something.
      assert.ok(vouched.length > 10_000 && vouched.length < texts.length, `${vouched.length}`);
      const rows = await sql<{ micros: string }[]>`
        select ((extract(epoch from t::timestamptz) - 946684800) * 1000000)::int8::text as micros
        from unnest(${vouched}::text[]) with ordinality as u(t, i) order by i`;
      assert.deepEqual(rows.map((r) => r.micros), vouched.map((t) => String(isoMicros(t))));
    });
  },
);

let offset = 2 ** 40;
function accept(event: TransactionEvent | BehaviorEvent, topic: "transactions" | "userBehavior") {
  const result = decodeMessage(topic, {
    topic: `t.${topic}\tx`,
    partition: 2 ** 31 - 1,
    offset: String(offset++),
    key: null,
    value: new TextEncoder().encode(JSON.stringify(event)),
  });
  assert.ok(isAccepted(result), "reason" in result ? result.reason : "");
  return result;
}

/** Strings COPY text must escape, and characters beyond ASCII. */
const ODD = ["tab\there", "new\nline", "cr\rlf\r\n", "back\\slash", "\\N", "é 漢字 😀", "plain"];

function oddBatch(count: number): Accepted[] {
  const random = prng(11);
  const times = isoTexts(count).filter((t) => isoMicros(t) !== undefined);
  const out: Accepted[] = [];
  for (let i = 0; i < times.length && out.length < count; i++) {
    const name = ODD[i % ODD.length]!;
    if (i % 3 === 0) {
      out.push(accept({
        schema_version: 1,
        event_id: `ub-${i + 1}`,
        event_type: "search",
        customer_id: Number.MAX_SAFE_INTEGER - i,
        timestamp: times[i]!,
        behavior_id: i + 1,
        session_id: `s-${name}`,
        product_id: null,
        search_query: name,
        device: "mobile",
      }, "userBehavior"));
      continue;
    }
    const items = Array.from({ length: 1 + i % 3 }, (_, j) => ({
      detail_id: 2 ** 52 + i * 4 + j,
      product_id: 1 + Math.floor(random() * 50),
      product_name: `${name} ${j}`,
      category: ODD[(i + j) % ODD.length]!,
      quantity: j === 2 ? 2 ** 31 - 1 : 1 + j,
      unit_price_cents: j === 2 ? 3 : Math.floor(random() * 1e9),
    }));
    out.push(accept({
      schema_version: 1,
      event_id: `txn-${2 ** 50 + i}`,
      event_type: "transaction",
      customer_id: 1 + Math.floor(random() * 40),
      timestamp: times[i]!,
      transaction_id: 2 ** 50 + i,
      buyer_id: null,
      total_cents: items.reduce((s, it) => s + it.quantity * it.unit_price_cents, 0),
      payment_method: "paypal",
      status: "completed",
      items,
    }, "transactions"));
  }
  return out;
}

async function dump(sql: Sql) {
  const text = (q: string) => sql.unsafe(q).then((rows) => rows.map((r) => JSON.stringify(r)));
  return {
    events: await text(`select event_id, event_type, customer_id::text, "timestamp"::text,
      extract(epoch from "timestamp")::text as epoch, source_topic, source_partition,
      source_offset::text, payload::text from realtime_events order by event_id`),
    sales: await text(`select detail_id::text, event_id, transaction_id::text,
      customer_id::text, product_id::text, category, quantity, unit_price_cents::text,
      revenue_cents::text, extract(epoch from event_time)::text as epoch
      from fact_sales order by detail_id`),
    products: await text(`select product_id::text, name, category,
      last_unit_price_cents::text, extract(epoch from price_seen_at)::text as epoch
      from dim_product order by product_id`),
    customers: await text(`select customer_id::text, extract(epoch from first_seen)::text as f,
      extract(epoch from last_seen)::text as l from dim_customer order by customer_id`),
    outbox: await text(`select event_ids from transaction_items_outbox order by batch_id`),
  };
}

Deno.test(
  "copy_binary: the fast path's binary COPY stores exactly what the staging path's text COPY does",
  io,
  async () => {
    await withWarehouse(async (sql) => {
      const batch = oddBatch(3_000);
      const rows = warehouseRows(batch);
      assert.ok(binaryEventChunks(rows) && binarySaleChunks(rows), "the binary path is taken");
      await writeStaged(sql, rows);
      const text = await dump(sql);
      await sql`truncate realtime_events, fact_sales, dim_product, dim_customer,
        transaction_items_outbox`;
      const direct = await writeDirect(sql, batch, rows, false);
      assert.equal(direct.stored, rows.events.length);
      const binary = await dump(sql);
      assert.equal(binary.events.length, rows.events.length);
      assert.equal(binary.sales.length, rows.sales.length);
      assert.deepEqual(binary, text);
    });
  },
);

Deno.test("copy_binary: a value it cannot vouch for leaves the table to the text COPY", () => {
  const batch = oddBatch(50);
  const rows = warehouseRows(batch);
  const odd = { ...rows, events: [{ ...rows.events[0]!, timestamp: "2026-02-30T00:00:00Z" }] };
  assert.equal(binaryEventChunks(odd), undefined);
  const sale = { ...rows, sales: [{ ...rows.sales[0]!, quantity: 2 ** 31 }] };
  assert.equal(binarySaleChunks(sale), undefined);
  const big = { ...rows, sales: [{ ...rows.sales[0]!, revenue_cents: 2 ** 53 }] };
  assert.equal(binarySaleChunks(big), undefined);
  const offset = { ...rows, events: [{ ...rows.events[0]!, source_offset: "-1" }] };
  assert.equal(binaryEventChunks(offset), undefined);
});
