import assert from "node:assert/strict";
import { decodeEvent, type TransactionEvent } from "../lib/contracts.ts";

const encode = (value: unknown) =>
  new TextEncoder().encode(typeof value === "string" ? value : JSON.stringify(value));

const transaction: TransactionEvent = {
  schema_version: 1,
  event_id: "txn-7",
  event_type: "transaction",
  customer_id: 28,
  timestamp: "2026-11-29T10:00:00.123Z",
  transaction_id: 7,
  buyer_id: 3,
  total_cents: 2 * 79900 + 1999,
  payment_method: "credit_card",
  status: "completed",
  items: [
    {
      detail_id: 1,
      product_id: 1,
      product_name: "iPhone 15",
      category: "Electronics",
      quantity: 2,
      unit_price_cents: 79900,
    },
    {
      detail_id: 2,
      product_id: 9,
      product_name: "USB-C Cable",
      category: "Electronics",
      quantity: 1,
      unit_price_cents: 1999,
    },
  ],
};

Deno.test("schemas: a valid transaction decodes", () => {
  const decoded = decodeEvent("transactions", encode(transaction));
  assert.equal(decoded.ok, true);
});

Deno.test("schemas: a real U+FFFD is valid UTF-8; a byte that is not, is refused", () => {
  const items = [{ ...transaction.items[0]!, product_name: "Caf\uFFFD" }];
  const text = JSON.stringify({ ...transaction, items, total_cents: 2 * 79900 });
  const decoded = decodeEvent("transactions", encode(text));
  assert.equal(decoded.ok, true);
  if (decoded.ok) {
    assert.equal((decoded.value as TransactionEvent).items[0]!.product_name, "Caf\uFFFD");
  }
  const broken = encode(text.replace("Caf\uFFFD", "Caf\u00e9"));
  broken[broken.indexOf(0xc3)] = 0xff;
  const refused = decodeEvent("transactions", broken);
  assert.equal(refused.ok, false);
  if (!refused.ok) assert.equal(refused.reason, "not valid UTF-8");
});

Deno.test("schemas: each kind of bad input has its reason", () => {
  const cases: [Uint8Array, RegExp][] = [
    [encode("not json"), /not JSON/],
    [new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), /UTF-8/],
    [encode({ ...transaction, customer_id: "28" }), /customer_id must be an integer/],
    [encode({ ...transaction, items: [] }), /items must be a non-empty array/],
    [encode({ ...transaction, total_cents: 1 }), /not the sum of items/],
    [encode({ ...transaction, timestamp: "2026-11-29 10:00" }), /timestamp/],
    [encode({ ...transaction, event_type: "refund" }), /event_type must be transaction/],
    [encode({ ...transaction, event_id: "txn-8" }), /event_id does not match/],
    [encode([1, 2]), /message must be an object/],
    [new Uint8Array(300 * 1024).fill(0x20), /too large/],
    [new Uint8Array(0), /empty/],
  ];
  for (const [bytes, reason] of cases) {
    const decoded = decodeEvent("transactions", bytes);
    assert.equal(decoded.ok, false);
    if (!decoded.ok) assert.match(decoded.reason, reason);
  }
});

Deno.test("schemas: behaviour events are checked against their topic", () => {
  const search = {
    schema_version: 1,
    event_id: "ub-5",
    event_type: "search",
    customer_id: 4,
    timestamp: "2026-11-29T10:00:00Z",
    behavior_id: 5,
    session_id: "s-1",
    product_id: null,
    search_query: "iphone",
    device: "mobile",
  };
  assert.equal(decodeEvent("userBehavior", encode(search)).ok, true);
  assert.equal(decodeEvent("searches", encode(search)).ok, true);
  const onCart = decodeEvent("cartEvents", encode(search));
  assert.equal(onCart.ok, false);
  const unknown = decodeEvent("userBehavior", encode({ ...search, event_type: "dance" }));
  assert.deepEqual(unknown, { ok: false, reason: 'unknown event_type "dance"' });
  const missing = { ...search } as Record<string, unknown>;
  delete missing.product_id;
  assert.deepEqual(decodeEvent("userBehavior", encode(missing)), {
    ok: false,
    reason: "product_id is missing",
  });
});
