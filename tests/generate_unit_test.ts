import assert from "node:assert/strict";
import { UsageError } from "../lib/cli.ts";
import { BEHAVIOR_TYPES, PAYMENT_METHODS } from "../lib/contracts.ts";
import { baseBuyers, baseCustomers, baseProducts } from "../services/generate/base_data.ts";
import { numberArray, textArray, transactionColumns } from "../services/generate/batch.ts";
import { CATALOGUE, CATEGORIES, searchWords } from "../services/generate/catalogue.ts";
import { parseGenerateFlags } from "../services/generate/flags.ts";
import { createGenerator } from "../services/generate/generator.ts";
import { heartbeatFields } from "../services/generate/heartbeat.ts";
import { createPrng, MAX_SEED } from "../services/generate/prng.ts";
import {
  formatCents,
  progressDue,
  progressLine,
  renderBar,
} from "../services/generate/progress.ts";
import {
  createEventSource,
  type NewBehavior,
  type NewTransaction,
  type Shop,
  type ShopEvent,
} from "../services/generate/session.ts";
import type { EventBatch } from "../services/generate/batch.ts";
import type { ShopStore } from "../services/generate/store.ts";

/** The base shop as a fresh database numbers it (ids from 1, in insertion order). */
function baseShop(): Shop {
  const customers = baseCustomers();
  const buyers = baseBuyers(customers);
  return {
    products: baseProducts().map((p, i) => ({ id: i + 1, ...p })),
    customers: customers.map((_, c) => ({
      id: c + 1,
      buyers: buyers.flatMap((b, i) =>
        b.customer === c ? [{ id: i + 1, paymentMethod: b.paymentMethod }] : []
      ),
    })),
  };
}

function take(n: number, seed: number, transactionShare?: number): ShopEvent[] {
  const source = createEventSource(baseShop(), { seed, transactionShare });
  return Array.from({ length: n }, () => source.next());
}

const VOCABULARY = new Set(
  CATALOGUE.flatMap((p) => [...searchWords(p.name), ...searchWords(p.category)]),
);

Deno.test("prng: the same seed gives the same sequence, another seed another", () => {
  const draw = (seed: number) => {
    const rng = createPrng(seed);
    return Array.from({ length: 20 }, () => rng.next());
  };
  assert.deepEqual(draw(7), draw(7));
  assert.notDeepEqual(draw(7), draw(8));
  assert.notDeepEqual(draw(MAX_SEED), draw(MAX_SEED % 2 ** 32), "high bits of the seed count");
});

Deno.test("prng: draws stay in range and cover it", () => {
  const rng = createPrng(1);
  const seen = new Set<number>();
  for (let i = 0; i < 10_000; i++) {
    const x = rng.next();
    assert.ok(x >= 0 && x < 1);
    const n = rng.int(1, 6);
    assert.ok(Number.isInteger(n) && n >= 1 && n <= 6);
    seen.add(n);
  }
  assert.deepEqual([...seen].sort(), [1, 2, 3, 4, 5, 6]);
  assert.match(rng.hex(12), /^[0-9a-f]{12}$/);
  const counts = { a: 0, b: 0 };
  for (let i = 0; i < 10_000; i++) counts[rng.weighted({ a: 3, b: 1 })]++;
  assert.ok(Math.abs(counts.a / 10_000 - 0.75) < 0.03, JSON.stringify(counts));
  assert.throws(() => createPrng(-1), RangeError);
  assert.throws(() => createPrng(1.5), RangeError);
});

Deno.test("catalogue: 200 products over 8 categories, realistic names and cent prices", () => {
  assert.equal(CATALOGUE.length, 200);
  assert.equal(CATEGORIES.length, 8);
  assert.equal(new Set(CATALOGUE.map((p) => p.name)).size, 200, "names are unique");
  for (const p of CATALOGUE) {
    assert.ok(Number.isInteger(p.priceCents) && p.priceCents > 0, p.name);
  }
  assert.deepEqual(CATALOGUE[0], { name: "iPhone 15", category: "Electronics", priceCents: 79900 });
  assert.deepEqual(searchWords("Kafka: The Definitive Guide"), [
    "kafka",
    "the",
    "definitive",
    "guide",
  ]);
});

Deno.test("base data: 50 customers with 1 to 3 buyers each, 100 buyers in all", () => {
  const customers = baseCustomers();
  const buyers = baseBuyers(customers);
  assert.equal(customers.length, 50);
  assert.equal(buyers.length, 100);
  assert.equal(new Set(customers.map((c) => c.email)).size, 50, "e-mails are unique");
  for (const c of customers) assert.match(c.email, /^[a-z.]+\d+@example\.com$/);
  customers.forEach((customer, index) => {
    const own = buyers.filter((b) => b.customer === index);
    assert.ok(own.length >= 1 && own.length <= 3);
    assert.equal(own[0]!.label, "personal");
    assert.equal(own[0]!.shippingCity, customer.city);
  });
  for (const b of buyers) {
    assert.ok((PAYMENT_METHODS as readonly string[]).includes(b.paymentMethod));
  }
  assert.deepEqual(baseCustomers(), customers, "base data does not depend on any seed");
  assert.equal(baseProducts().length, 200);
});

Deno.test("session model: the same seed gives the same events, whatever else", () => {
  assert.deepEqual(take(2000, 42), take(2000, 42));
  assert.notDeepEqual(take(200, 42), take(200, 43));
});

Deno.test("session model: transactions are real purchases whose totals add up", () => {
  const shop = baseShop();
  const products = new Map(shop.products.map((p) => [p.id, p]));
  const customers = new Map(shop.customers.map((c) => [c.id, c]));
  const events = take(20_000, 5);
  const transactions = events.filter((e): e is NewTransaction => e.kind === "transaction");
  const share = transactions.length / events.length;
  assert.ok(Math.abs(share - 0.7) < 0.02, `share ${share}`);
  for (const t of transactions) {
    assert.ok(t.items.length >= 1);
    assert.equal(new Set(t.items.map((i) => i.productId)).size, t.items.length, "no line twice");
    let sum = 0;
    for (const item of t.items) {
      assert.equal(item.unitPriceCents, products.get(item.productId)!.priceCents);
      assert.ok(Number.isInteger(item.quantity) && item.quantity >= 1 && item.quantity <= 5);
      sum += item.quantity * item.unitPriceCents;
    }
    assert.equal(t.totalCents, sum);
    const buyer = customers.get(t.customerId)!.buyers.find((b) => b.id === t.buyerId);
    assert.ok(buyer, "the buyer is one of the customer's");
    assert.equal(t.paymentMethod, buyer.paymentMethod);
    assert.equal(t.status, "completed");
  }
});

Deno.test("session model: behaviour follows sessions", () => {
  const behaviors = take(30_000, 9).filter((e): e is NewBehavior => e.kind === "behavior");
  const sessions = new Map<string, { customerId: number; device: string; viewed: Set<number> }>();
  const added = new Map<string, Set<number>>();
  const types = new Set<string>();
  for (const b of behaviors) {
    types.add(b.eventType);
    let session = sessions.get(b.sessionId);
    if (!session) {
      assert.equal(b.eventType, "page_view", "a session lands on a page first");
      session = { customerId: b.customerId, device: b.device, viewed: new Set() };
      sessions.set(b.sessionId, session);
      added.set(b.sessionId, new Set());
    }
    assert.equal(b.customerId, session.customerId, "one customer per session");
    assert.equal(b.device, session.device, "one device per session");
    const withProduct = b.eventType !== "page_view" && b.eventType !== "search";
    assert.equal(b.productId !== null, withProduct, b.eventType);
    assert.equal(b.searchQuery !== null, b.eventType === "search");
    if (b.searchQuery !== null) {
      assert.ok(b.searchQuery.length > 0);
      for (const word of b.searchQuery.split(" ")) assert.ok(VOCABULARY.has(word), word);
    }
    if (b.eventType === "product_view") session.viewed.add(b.productId!);
    if (b.eventType === "add_to_cart") {
      assert.ok(session.viewed.has(b.productId!), "added after viewing it");
      added.get(b.sessionId)!.add(b.productId!);
    }
    if (b.eventType === "remove_from_cart") {
      assert.ok(added.get(b.sessionId)!.has(b.productId!), "removed after adding it");
    }
  }
  assert.deepEqual([...types].sort(), [...BEHAVIOR_TYPES].sort());
});

Deno.test("session model: the transaction share is honoured at its ends", () => {
  assert.ok(take(500, 1, 0).every((e) => e.kind === "behavior"));
  assert.ok(take(500, 1, 1).every((e) => e.kind === "transaction"));
});

Deno.test("batch: array literals escape and keep nulls", () => {
  assert.equal(numberArray([1, null, 3]), "{1,NULL,3}");
  assert.equal(
    textArray(['say "hi"', "back\\slash", null, "Levi's"]),
    String.raw`{"say \"hi\"","back\\slash",NULL,"Levi's"}`,
  );
  const columns = transactionColumns([
    {
      kind: "transaction",
      customerId: 1,
      buyerId: null,
      paymentMethod: "paypal",
      status: "completed",
      totalCents: 2 * 500 + 250,
      items: [{ productId: 4, quantity: 2, unitPriceCents: 500 }, {
        productId: 9,
        quantity: 1,
        unitPriceCents: 250,
      }],
    },
    {
      kind: "transaction",
      customerId: 2,
      buyerId: 3,
      paymentMethod: "debit_card",
      status: "completed",
      totalCents: 100,
      items: [{ productId: 1, quantity: 1, unitPriceCents: 100 }],
    },
  ]);
  assert.equal(columns.itemOrdinals, "{1,1,2}");
  assert.equal(columns.buyerIds, "{NULL,3}");
  assert.equal(columns.items, 3);
  assert.equal(columns.revenueCents, 1350);
});

Deno.test("progress: lines, bar and money", () => {
  assert.equal(formatCents(123456789), "1,234,567.89");
  assert.equal(formatCents(5), "0.05");
  assert.equal(
    progressLine({ events: 50, transactions: 35, behaviors: 15, items: 60, revenueCents: 1 }),
    "📈 Progress: 50 events generated (35 transactions, 15 behaviour events)",
  );
  assert.equal(renderBar(50, 200, 10), "[██▌       ]  25% 50/200");
  assert.equal(renderBar(200, 200, 4), "[████] 100% 200/200");
  assert.ok(progressDue({ events: 0, atMs: 0 }, 50, 5000));
  assert.ok(!progressDue({ events: 0, atMs: 0 }, 49, 5000), "not before 50 events");
  assert.ok(!progressDue({ events: 50, atMs: 4500 }, 100, 5000), "at most once a second");
});

Deno.test("heartbeat: the contract's fields, with the rate since the last beat", () => {
  const tally = { events: 300, transactions: 210, items: 350, behaviors: 90, revenueCents: 7 };
  const fields = heartbeatFields(tally, { events: 100, atMs: 0 }, 2000, 42, { seed: 7 });
  assert.equal(fields.stage, "generate");
  assert.equal(fields.events, "300");
  assert.equal(fields.events_per_s, "100");
  assert.equal(fields.at, "1970-01-01T00:00:02.000Z");
  assert.equal(JSON.parse(fields.detail).seed, 7);
});

Deno.test("flags: defaults, and bad values exit 2 with the usage", () => {
  const defaults = parseGenerateFlags([]);
  assert.equal(defaults.rate, 10);
  assert.equal(defaults.durationMs, 60 * 60_000);
  assert.equal(defaults.transactionShare, 0.7);
  assert.equal(defaults.count, undefined);
  for (
    const args of [
      ["--rate=-1"],
      ["--count", "1.5"],
      ["--seed", "abc"],
      ["--transaction-share", "1.2"],
      ["--duration", "soon"],
      ["--colour"],
    ]
  ) {
    assert.throws(() => parseGenerateFlags(args), (error: Error) => {
      assert.ok(error instanceof UsageError, args.join(" "));
      assert.match(error.message, /Usage: deno task generate/);
      return true;
    });
  }
});

/** A store in memory, and a clock that moves only when the generator sleeps. */
function fakes(fail?: Error) {
  const batches: EventBatch[] = [];
  let closed = false;
  const store: ShopStore = {
    prepare: () =>
      Promise.resolve({
        shop: baseShop(),
        counts: { customers: 50, buyers: 100, products: 200, transactions: 0, behaviors: 0 },
        inserted: { customers: 0, buyers: 0, products: 0 },
      }),
    write: (batch) => {
      if (fail) return Promise.reject(fail);
      batches.push(batch);
      const t = batch.events.filter((e): e is NewTransaction => e.kind === "transaction");
      return Promise.resolve({
        transactions: t.length,
        items: t.reduce((n, e) => n + e.items.length, 0),
        behaviors: batch.events.length - t.length,
        revenueCents: t.reduce((n, e) => n + e.totalCents, 0),
      });
    },
    close: () => {
      closed = true;
      return Promise.resolve();
    },
  };
  let clock = 1_000_000;
  const deps = {
    openStore: () => Promise.resolve(store),
    now: () => clock,
    sleep: (ms: number) => {
      clock += ms;
      return Promise.resolve();
    },
  };
  return { deps, batches, closed: () => closed };
}

Deno.test("generator: --count is exact and batches stay within --batch-size", async () => {
  const { deps, batches, closed } = fakes();
  const summary = await createGenerator(deps, { seed: 3, rate: 0, count: 1234, batchSize: 100 })
    .run();
  assert.equal(summary.events, 1234);
  assert.equal(summary.transactions + summary.behaviors, 1234);
  assert.equal(summary.stoppedBy, "count");
  assert.ok(batches.every((b) => b.events.length <= 100));
  assert.equal(batches.reduce((n, b) => n + b.events.length, 0), 1234);
  assert.ok(closed());
  const again = fakes();
  await createGenerator(again.deps, { seed: 3, rate: 0, count: 1234, batchSize: 7 }).run();
  assert.deepEqual(
    again.batches.flatMap((b) => b.events),
    batches.flatMap((b) => b.events),
    "batching does not change the data",
  );
});

Deno.test("generator: --rate paces events and --duration stops the run", async () => {
  const { deps, batches } = fakes();
  const summary = await createGenerator(deps, { seed: 1, rate: 10, durationMs: 2000 }).run();
  assert.equal(summary.events, 20);
  assert.equal(summary.stoppedBy, "duration");
  assert.ok(batches.every((b) => b.events.length === 1), "one event per write at 10/s");
  assert.equal(batches[1]!.atMs - batches[0]!.atMs, 100);
});

Deno.test("generator: a signal stops it cleanly; a failed write fails the run", async () => {
  const controller = new AbortController();
  controller.abort();
  const stopped = await createGenerator(fakes().deps, { seed: 1, rate: 0 }).run(controller.signal);
  assert.equal(stopped.stoppedBy, "signal");
  const broken = fakes(new Error("disk full"));
  await assert.rejects(
    createGenerator(broken.deps, { seed: 1, rate: 0, count: 10 }).run(),
    /disk full/,
  );
  assert.ok(broken.closed(), "the store is closed after a failure");
});

Deno.test("generator: a cut connection at start-up is retried, one line per failure", async () => {
  const { deps } = fakes();
  const store = await deps.openStore();
  const cut = Object.assign(new Error("write CONNECTION_CLOSED 127.0.0.1:5432"), {
    code: "CONNECTION_CLOSED",
  });
  let prepares = 0;
  const flaky: ShopStore = {
    ...store,
    prepare: () => ++prepares === 1 ? Promise.reject(cut) : store.prepare(),
  };
  const warnings: string[] = [];
  const log = { info() {}, warn: (m: string) => warnings.push(m), error() {} };
  const retryable = (e: unknown) => (e as { code?: string }).code === "CONNECTION_CLOSED";
  const summary = await createGenerator(
    { ...deps, openStore: () => Promise.resolve(flaky), log, retryable },
    { seed: 2, rate: 0, count: 50 },
  ).run();
  assert.equal(summary.events, 50);
  assert.equal(prepares, 2);
  assert.equal(warnings.length, 1);
  assert.match(
    warnings[0]!,
    /Cannot prepare the shop in PostgreSQL \(attempt 1\/6\): write CONNECTION_CLOSED/,
  );
  // Anything else still fails the run at once.
  const broken: ShopStore = { ...store, prepare: () => Promise.reject(new Error("disk full")) };
  await assert.rejects(
    createGenerator(
      { ...deps, openStore: () => Promise.resolve(broken), log, retryable },
      { seed: 2, rate: 0, count: 50 },
    ).run(),
    /disk full/,
  );
  assert.equal(warnings.length, 1);
});
