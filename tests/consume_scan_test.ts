/**
 * The consumer's fast path (services/consume/scan.ts) beside `parseMessage`
 * (JSON.parse and lib/schemas.ts): whatever the scan accepts, `parseMessage`
 * accepts with the same event and text, the same warehouse rows (COPY bytes
 * included) and the same `transaction_item` messages, byte for byte; the scan
 * accepts the events the pipeline writes. Pure (no services).
 *
 * @module
 */

import assert from "node:assert/strict";
import { random } from "../services/bench/payload.ts";
import { CHUNK_BYTES, giveChunks, takeChunk } from "../services/consume/chunk_pool.ts";
import { copyChunks, copyLine, writeDecimal } from "../services/consume/copy.ts";
import { eventLines, saleLines } from "../services/consume/lines.ts";
import {
  type Accepted,
  decodeMessage,
  type InputTopic,
  isAccepted,
  parseMessage,
  warehouseRows,
} from "../services/consume/rows.ts";
import { ScannedEvent } from "../services/consume/scanned.ts";
import {
  behavior,
  check,
  decoder,
  EVENTS,
  itemsOf,
  message,
  mutate,
  topicOf,
  transaction,
  written,
} from "./_consume_scan.ts";

Deno.test("consume scan: accepts the pipeline's events, with parseMessage's values", () => {
  for (const e of EVENTS) assert.ok(check(topicOf(e), JSON.stringify(e)), JSON.stringify(e));
  const t = transaction(2 ** 40, 2 ** 45, [[2 ** 49, 3, 2 ** 31 - 1, 419_430]]);
  assert.ok(check("transactions", JSON.stringify(t)));
  const b = behavior(5, 3, "search");
  assert.ok(check("searches", JSON.stringify({ ...b, search_query: "q".repeat(200) })));
  assert.ok(check("cartEvents", JSON.stringify(behavior(6, 3, "add_to_cart"))));
});

Deno.test("consume scan: a mixed batch gives the same rows and items as parseMessage", () => {
  const rnd = random(4);
  const texts: [InputTopic, string][] = [];
  for (let i = 0; i < 3000; i++) {
    const e = EVENTS[Math.floor(rnd() * EVENTS.length)]!;
    // Times vary, so that the dimensions' latest and first/last differ per event.
    const at = new Date(Date.UTC(2026, 0, 1) + Math.floor(rnd() * 1e9)).toISOString();
    const varied = { ...e, timestamp: rnd() < 0.1 ? at.replace(".", ".5").slice(0, 24) : at };
    let text = JSON.stringify(varied);
    // Some go the slow way: whitespace, an escape, non-ASCII.
    if (rnd() < 0.2) text = JSON.stringify(varied, null, 1);
    if (rnd() < 0.1) text = text.replace('"timestamp"', '"times\\u0074amp"');
    if (rnd() < 0.1) text = text.replace('"completed"', '"compl\u00e9ted"');
    const topic = topicOf(e);
    texts.push([topic, text]);
    if (e.event_type === "search" && rnd() < 0.5) texts.push(["searches", text]);
    if (e.event_type === "add_to_cart" && rnd() < 0.5) texts.push(["cartEvents", text]);
  }
  const sources = texts.map(([topic, text]) => [topic, message(topic, text)] as const);
  const fast = sources.map(([t, s]) => decodeMessage(t, s)).filter(isAccepted) as Accepted[];
  const slow = sources.map(([t, s]) => parseMessage(t, s)).filter(isAccepted) as Accepted[];
  const scanned = fast.filter((a) => a instanceof ScannedEvent).length;
  assert.ok(scanned > 1000 && scanned < fast.length, `${scanned} of ${fast.length} scanned`);
  assert.equal(fast.length, slow.length);
  const rows = written(fast);
  assert.ok(rows.eventBinary && rows.saleBinary, "the batch goes as binary COPY");
  assert.deepEqual(rows, written(slow));
  assert.deepEqual(itemsOf(fast), itemsOf(slow));
});

Deno.test("consume scan: COPY lines are copyLine's, payloads and numbers included", () => {
  const accepted = EVENTS.map((e) =>
    parseMessage(topicOf(e), message(topicOf(e), JSON.stringify(e)))
  );
  const rows = warehouseRows(accepted.filter(isAccepted) as Accepted[]);
  const events = rows.events.map((r) => [
    ...[r.event_id, r.event_type, r.customer_id, r.timestamp, r.source_topic],
    ...[r.source_partition, r.source_offset, r.payload as string],
  ]);
  const sales = rows.sales.map((r) => [
    ...[r.detail_id, r.event_id, r.transaction_id, r.customer_id, r.product_id, r.category],
    ...[r.quantity, r.unit_price_cents, r.revenue_cents, r.event_time],
  ]);
  const text = (c: Iterable<Uint8Array>) => [...c].map((b) => decoder.decode(b)).join("");
  assert.equal(text(copyChunks(eventLines(rows))), events.map(copyLine).join(""));
  assert.equal(text(copyChunks(saleLines(rows))), sales.map(copyLine).join(""));
  const b = new Uint8Array(20);
  const rnd = random(2);
  const numbers = [0, 9, 10, 99, 100, 2 ** 31 - 1, 2 ** 31, 2 ** 32 + 7, 1e15, 2 ** 53 - 1];
  for (let i = 0; i < 20_000; i++) numbers.push(Math.floor(rnd() * 10 ** Math.floor(rnd() * 16)));
  for (const n of numbers) {
    assert.equal(decoder.decode(b.subarray(2, writeDecimal(b, 2, n))), String(n));
  }
});

Deno.test("consume scan: on the wrong topic or a non-canonical form, parseMessage decides", () => {
  const [txn, ub] = [EVENTS[0]!, EVENTS[1]!];
  const cases: [InputTopic, string][] = [
    ["userBehavior", JSON.stringify(txn)],
    ["transactions", JSON.stringify(ub)],
    ["searches", JSON.stringify(behavior(3, 1, "page_view"))],
    ["cartEvents", JSON.stringify(behavior(3, 1, "search"))],
    ["transactions", JSON.stringify(txn, null, 1)],
    ["transactions", ` ${JSON.stringify(txn)}`],
    ["transactions", `${JSON.stringify(txn)}\n`],
    ["transactions", `\uFEFF${JSON.stringify(txn)}`],
    ["transactions", JSON.stringify({ ...txn, extra: 1 })],
    ["transactions", JSON.stringify(txn).replace('"status"', '"status":"x","status"')],
    ["transactions", JSON.stringify({ ...txn, status: "caf\u00e9" })],
    ["transactions", JSON.stringify({ ...txn, status: "a\\b" })],
    ["transactions", JSON.stringify({ ...txn, status: "a\tb" })],
    ["transactions", JSON.stringify({ ...txn, timestamp: "0000-01-01T00:00:00.000Z" })],
    ["transactions", JSON.stringify(transaction(9, 1, [[1, 1, 2 ** 31, 1]]))],
    ["transactions", JSON.stringify(transaction(9, 1, [[1, 1, 2 ** 31 - 1, 2 ** 23]]))],
  ];
  for (const [topic, text] of cases) {
    assert.equal(check(topic, text), false, text);
  }
});

Deno.test("consume scan: each field at and past its limits agrees with parseMessage", () => {
  const limits: Record<string, number> = {
    event_id: 80,
    timestamp: 40,
    payment_method: 40,
    status: 40,
    session_id: 80,
    device: 40,
    search_query: 200,
    product_name: 200,
    category: 80,
  };
  let accepted = 0;
  for (const e of [EVENTS[0]!, EVENTS[1]!, EVENTS[5]!, behavior(3, 2, "search")]) {
    const flat = e as unknown as Record<string, unknown>;
    const variants: unknown[] = [];
    const vary = (o: Record<string, unknown>, set: (v: Record<string, unknown>) => unknown) => {
      for (const [field, value] of Object.entries(o)) {
        if (typeof value === "string" && limits[field]) {
          for (const n of [0, 1, limits[field]!, limits[field]! + 1]) {
            variants.push(set({ ...o, [field]: "x".repeat(n) }));
          }
        }
        if (typeof value === "number" || value === null) {
          for (const v of [null, -1, 0, 1, 2, 2 ** 53, 123456789012345, 1e15, 1.5]) {
            variants.push(set({ ...o, [field]: v }));
          }
        }
      }
    };
    vary(flat, (v) => v);
    const items = flat.items as Record<string, unknown>[] | undefined;
    if (items) vary(items[0]!, (item) => ({ ...flat, items: [item, ...items.slice(1)] }));
    for (const v of variants) if (check(topicOf(e), JSON.stringify(v))) accepted++;
  }
  assert.ok(accepted > 40, `only ${accepted} variants took the fast path`);
});

Deno.test("consume scan: timestamps give parseMessage's rows, or go to parseMessage", () => {
  const base = EVENTS[2]!;
  let accepted = 0;
  for (const year of ["2024", "2026", "2100", "0000", "0001", "9999"]) {
    for (const month of ["00", "01", "02", "12", "13"]) {
      for (const day of ["00", "01", "28", "29", "30", "31", "32"]) {
        for (const time of ["00:00:00", "23:59:59", "24:00:00", "23:60:00", "23:59:60"]) {
          for (const ms of [".000", ".001", ".999", "", ".5"]) {
            const timestamp = `${year}-${month}-${day}T${time}${ms}Z`;
            if (check("transactions", JSON.stringify({ ...base, timestamp }))) accepted++;
          }
        }
      }
    }
  }
  assert.ok(accepted > 300, `only ${accepted} timestamps took the fast path`);
});

Deno.test("consume scan: never accepts what parseMessage refuses, over 60,000 mutations", () => {
  const rnd = random(9);
  const topics: InputTopic[] = ["transactions", "userBehavior", "searches", "cartEvents"];
  let accepted = 0;
  let refused = 0;
  for (let i = 0; i < 60_000; i++) {
    const e = EVENTS[i % EVENTS.length]!;
    let text = JSON.stringify(e);
    const edits = 1 + Math.floor(rnd() * 3);
    for (let k = 0; k < edits; k++) text = mutate(text, rnd);
    // Mostly the event's own topic, sometimes another.
    const topic = rnd() < 0.9 ? topicOf(e) : topics[Math.floor(rnd() * topics.length)]!;
    if (check(topic, text)) accepted++;
    else if (!isAccepted(parseMessage(topic, message(topic, text)))) refused++;
  }
  // Both sides are exercised: edits the scan vouches for, and refusals left to parseMessage.
  assert.ok(accepted > 1000 && refused > 10_000, `accepted ${accepted}, refused ${refused}`);
});

Deno.test("consume scan: the COPY chunk pool hands back only its own buffers, once", () => {
  const a = takeChunk();
  const b = takeChunk();
  assert.notEqual(a.buffer, b.buffer);
  giveChunks([a.subarray(0, 10), new Uint8Array(CHUNK_BYTES), a]);
  const c = takeChunk();
  assert.equal(c.buffer, a.buffer, "a buffer given back is reused");
  assert.notEqual(takeChunk().buffer, a.buffer, "and handed out once");
  giveChunks([b, c]);
});
