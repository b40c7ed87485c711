/**
 * The aggregator's fast path (services/aggregate/scan.ts) beside
 * `decodeEvent`: whatever the scan accepts, `decodeEvent` accepts with the
 * same contribution; the scan accepts the events the pipeline writes. Pure
 * (no services).
 *
 * @module
 */

import assert from "node:assert/strict";
import { decodeEvent, type TopicKey } from "../lib/contracts.ts";
import { contributionOf, fieldsOf } from "../services/aggregate/reduce.ts";
import { scanContribution } from "../services/aggregate/scan.ts";
import { type AnyEvent, behavior, itemsOf, T0, transaction } from "./_aggregate_support.ts";
import { random } from "../services/bench/payload.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function topicOf(e: AnyEvent): TopicKey {
  if (e.event_type === "transaction") return "transactions";
  if (e.event_type === "transaction_item") return "transactionItems";
  return "userBehavior";
}

/** The scan's verdict matches decodeEvent's whenever the scan gives one. Returns it. */
function check(topic: TopicKey, bytes: Uint8Array): boolean {
  const scanned = scanContribution(topic, bytes);
  if (scanned === undefined) return false;
  const decoded = decodeEvent(topic, bytes);
  const text = decoder.decode(bytes);
  assert.ok(decoded.ok, `scan accepted what decodeEvent refuses: ${text}`);
  const expected = contributionOf(decoded.value);
  assert.equal(scanned.shape, expected.shape, text);
  assert.deepEqual(
    [scanned.id, scanned.eventMs, fieldsOf(scanned)],
    [expected.id, expected.eventMs, fieldsOf(expected)],
    text,
  );
  return true;
}

const EVENTS: AnyEvent[] = [];
for (let i = 1; i <= 40; i++) {
  const txn = transaction(i * 7919, T0 + i * 123_457, [1999 * i, 500, 12 + i].slice(0, 1 + i % 3));
  EVENTS.push(txn, ...itemsOf(txn));
  const types = ["page_view", "product_view", "search", "add_to_cart", "remove_from_cart"] as const;
  EVENTS.push(behavior(i * 104_729, T0 + i * 9_999, types[i % 5]!));
}

Deno.test("scan: accepts the pipeline's events, with decodeEvent's contribution", () => {
  for (const e of EVENTS) {
    assert.ok(check(topicOf(e), encoder.encode(JSON.stringify(e))), JSON.stringify(e));
  }
  // Large ids, null buyer, a query, every field at its limit.
  const txn = { ...transaction(2 ** 40, T0, [0]), buyer_id: null, event_id: `txn-${2 ** 40}` };
  assert.ok(check("transactions", encoder.encode(JSON.stringify(txn))));
  const long = {
    ...behavior(5, T0, "search"),
    search_query: "q".repeat(200),
    device: "d".repeat(40),
  };
  assert.ok(check("userBehavior", encoder.encode(JSON.stringify(long))));
});

Deno.test("scan: on the wrong topic or a non-canonical form, decodeEvent decides", () => {
  const [txn, item] = [EVENTS[0]!, EVENTS[1]!];
  const cases: [TopicKey, string][] = [
    ["userBehavior", JSON.stringify(txn)],
    ["transactions", JSON.stringify(item)],
    ["searches", JSON.stringify(EVENTS.at(-1))],
    ["transactions", JSON.stringify(txn, null, 1)],
    ["transactions", ` ${JSON.stringify(txn)}`],
    ["transactions", `${JSON.stringify(txn)}\n`],
    ["transactions", `\uFEFF${JSON.stringify(txn)}`],
    ["transactions", JSON.stringify({ ...txn, extra: 1 })],
    ["transactions", JSON.stringify(txn).replace('"status"', '"status":"x","status"')],
    ["transactions", JSON.stringify(txn).replace('"transaction_id":', '"transaction\\u005fid":')],
    [
      "transactions",
      JSON.stringify({ ...txn, total_cents: 1 }).replace(/"total_cents":1/, '"total_cents":1.0'),
    ],
    ["transactionItems", JSON.stringify({ ...item, category: "Caf\u00e9" })],
    ["transactionItems", JSON.stringify({ ...item, category: "a\\b" })],
  ];
  for (const [topic, text] of cases) {
    assert.equal(scanContribution(topic, encoder.encode(text)), undefined, text);
  }
});

Deno.test("scan: each field at and past its limits agrees with decodeEvent", () => {
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
  const ids = ["7", "07", "7x", "", "0", "-7", "1234567890123456", "123456789012345"];
  let accepted = 0;
  for (const e of [EVENTS[0]!, EVENTS[1]!, EVENTS.at(-1)!, behavior(3, T0, "search")]) {
    const variants: Record<string, unknown>[] = [];
    const flat = e as unknown as Record<string, unknown>;
    for (const [field, value] of Object.entries(flat)) {
      if (typeof value === "string" && limits[field]) {
        for (const n of [0, 1, limits[field]!, limits[field]! + 1]) {
          variants.push({ ...flat, [field]: "x".repeat(n) });
        }
      }
      if (typeof value === "number" || value === null) {
        for (const v of [null, -1, 0, 1, 2, 2 ** 53, 123456789012345, 1e15]) {
          variants.push({ ...flat, [field]: v });
        }
      }
    }
    const prefix = String(flat.event_id).split("-")[0];
    for (const id of ids) {
      const n = Number(id);
      variants.push({ ...flat, event_id: `${prefix}-${id}` });
      if (Number.isSafeInteger(n)) {
        const key = prefix === "txn"
          ? "transaction_id"
          : prefix === "ub"
          ? "behavior_id"
          : "detail_id";
        variants.push({ ...flat, event_id: `${prefix}-${id}`, [key]: n });
      }
    }
    for (const v of variants) {
      if (check(topicOf(e), encoder.encode(JSON.stringify(v)))) accepted++;
    }
  }
  assert.ok(accepted > 50, `only ${accepted} variants took the fast path`);
});

Deno.test("scan: timestamps give Date.parse's time, or go to decodeEvent", () => {
  const base = EVENTS.at(-1)!;
  let accepted = 0;
  for (const year of ["2024", "2026", "2100", "2000", "1970", "0000", "9999"]) {
    for (const month of ["00", "01", "02", "04", "12", "13"]) {
      for (const day of ["00", "01", "28", "29", "30", "31", "32"]) {
        for (
          const time of ["00:00:00", "23:59:59", "24:00:00", "23:60:00", "23:59:60", "12:34:56"]
        ) {
          for (const ms of [".000", ".001", ".999", "", ".5", ".123456"]) {
            const timestamp = `${year}-${month}-${day}T${time}${ms}Z`;
            const bytes = encoder.encode(JSON.stringify({ ...base, timestamp }));
            if (check("userBehavior", bytes)) accepted++;
          }
        }
      }
    }
  }
  assert.ok(accepted > 1000, `only ${accepted} timestamps took the fast path`);
});

const VALUES = [
  "0",
  "1",
  "-1",
  "2",
  "1.0",
  "1e2",
  "01",
  "9007199254740993",
  "999999999999999",
  "1000000000000000",
  "null",
  "true",
  '"1"',
  '""',
  '"x"',
  '"txn-1"',
  '"ub-1"',
  '"ti-1"',
  '"transaction"',
  '"transaction_item"',
  '"search"',
  "[]",
  "{}",
  '"2026-01-01T00:00:00.000Z"',
];
const BYTES = [...'{}[],:"\\ 0123456789-.enul\u0000\u007f', "\u00e9"];

/** One random edit of `text`: a byte, a value, a key, or a whole field. */
function mutate(text: string, rnd: () => number): string {
  const at = Math.floor(rnd() * text.length);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!;
  switch (Math.floor(rnd() * 6)) {
    case 0:
      return text.slice(0, at) + text.slice(at + 1);
    case 1:
      return text.slice(0, at) + pick(BYTES) + text.slice(at);
    case 2:
      return text.slice(0, at) + pick(BYTES) + text.slice(at + 1);
    case 3: {
      // Replace the value after a random key.
      const keys = [...text.matchAll(/"([a-z_]+)":/g)];
      const key = pick(keys);
      const start = key.index! + key[0].length;
      let end = start;
      if (text[start] === '"') end = text.indexOf('"', start + 1) + 1;
      else while (end < text.length && !",}]".includes(text[end]!)) end++;
      if (text[start] === "[") end = text.indexOf("]", start) + 1;
      return text.slice(0, start) + pick(VALUES) + text.slice(end);
    }
    case 4: {
      // Rename or repeat a key.
      const keys = [...text.matchAll(/"([a-z_]+)":/g)];
      const a = pick(keys), b = pick(keys);
      return rnd() < 0.5
        ? text.slice(0, a.index!) + b[0] + text.slice(a.index! + a[0].length)
        : text.slice(0, a.index!) + `${b[0]}1,` + text.slice(a.index!);
    }
    default: {
      // Drop a field.
      const fields = [...text.matchAll(/,"[a-z_]+":("[^"]*"|[^,{}[\]]*)/g)];
      const f = pick(fields);
      return f ? text.slice(0, f.index!) + text.slice(f.index! + f[0].length) : text;
    }
  }
}

Deno.test("scan: never accepts what decodeEvent refuses, over 60,000 mutations", () => {
  const rnd = random(9);
  let accepted = 0;
  let refused = 0;
  for (let i = 0; i < 60_000; i++) {
    const e = EVENTS[i % EVENTS.length]!;
    let text = JSON.stringify(e);
    const edits = 1 + Math.floor(rnd() * 3);
    for (let k = 0; k < edits; k++) text = mutate(text, rnd);
    const bytes = encoder.encode(text);
    if (check(topicOf(e), bytes)) accepted++;
    else if (!decodeEvent(topicOf(e), bytes).ok) refused++;
  }
  // Both sides are exercised: edits the scan vouches for, and refusals left to decodeEvent.
  assert.ok(accepted > 1000 && refused > 10_000, `accepted ${accepted}, refused ${refused}`);
});
