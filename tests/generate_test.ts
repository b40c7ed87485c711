/**
 * `deno task generate` against the real PostgreSQL, each test in its own
 * namespace (its own instashop and crm_db databases), run as a user runs it.
 */

import assert from "node:assert/strict";
import { childEnv } from "../lib/config.ts";
import { connect, type Sql } from "../lib/db.ts";
import { PAYMENT_METHODS } from "../lib/contracts.ts";
import { CATALOGUE, searchWords } from "../services/generate/catalogue.ts";
import { createTestNamespace, runTask, type TestNamespace } from "./_support.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };

async function withDatabases<T>(
  ns: TestNamespace,
  body: (shop: Sql, crm: Sql) => Promise<T>,
): Promise<T> {
  const shop = connect(ns.config.databases.instashop, { max: 1 });
  const crm = connect(ns.config.databases.crm, { max: 1 });
  try {
    return await body(shop, crm);
  } finally {
    await Promise.all([shop.end(), crm.end()]);
  }
}

async function generate(ns: TestNamespace, args: string[], env: Record<string, string> = {}) {
  const result = await runTask("generate", args, { ...ns.env, ...env });
  assert.equal(result.code, 0, `generate ${args.join(" ")} failed:\n${result.stderr}`);
  return result;
}

/**
 * Counts and sums that describe the data, independent of ids and timing.
 * Joins, not correlated subqueries: the tables were just bulk-loaded and have
 * no planner statistics yet.
 */
async function fingerprint(shop: Sql, crm: Sql) {
  const [t] = await shop<
    { transactions: number; revenue: string; items: number; units: number; digest: string }[]
  >`
    with lines as (
      select transaction_id, count(*)::int as items, sum(quantity)::int as units,
             string_agg(concat_ws(':', product_id, quantity, unit_price_cents), ',' order by id)
               as items_text
      from transaction_details group by transaction_id
    ), rows as (
      select t.total_cents, l.items, l.units,
             concat_ws('|', t.customer_id, t.buyer_id, t.total_cents, t.payment_method, t.status,
                       l.items_text) as line
      from transactions t left join lines l on l.transaction_id = t.id
    )
    select count(*)::int as transactions, sum(total_cents)::text as revenue,
           sum(items)::int as items, sum(units)::int as units,
           md5(string_agg(line, ';' order by line)) as digest
    from rows`;
  const byType = await crm<{ event_type: string; n: number }[]>`
    select event_type, count(*)::int as n from user_behavior group by 1 order by 1`;
  const [b] = await crm<{ digest: string }[]>`
    select md5(string_agg(line, ';' order by line)) as digest
    from (select concat_ws('|', customer_id, session_id, event_type, product_id, search_query,
                           device) as line
          from user_behavior) x`;
  return { ...t!, byType: byType.map((r) => ({ ...r })), behaviorDigest: b!.digest };
}

Deno.test(
  "generate: --count 10000 writes exactly that, ~70/30, consistent and in UTC",
  opts,
  async () => {
    const ns = await createTestNamespace("gen");
    try {
      const before = Date.now();
      // A process time zone far from UTC must not shift any stored time.
      const run = await generate(ns, ["--count", "10000", "--rate", "0", "--seed", "11"], {
        TZ: "Asia/Kolkata",
      });
      const after = Date.now();
      assert.match(run.stdout, /🚀 Starting realistic data generation: 10,000 events/);
      assert.match(run.stdout, /📊 Initial state: 50 customers, 100 buyers, 200 products/);
      assert.match(run.stdout, /📈 Progress: 10,000 events generated \(\d[\d,]* transactions, /);
      assert.match(run.stdout, /✅ Done \(count reached\): 10,000 events/);

      await withDatabases(ns, async (shop, crm) => {
        const [counts] = await shop`
        select (select count(*)::int from customers) as customers,
               (select count(*)::int from buyers) as buyers,
               (select count(*)::int from products) as products,
               (select count(distinct category)::int from products) as categories,
               (select count(*)::int from transactions) as transactions`;
        const [{ behaviors }] = await crm`select count(*)::int as behaviors from user_behavior`;
        assert.deepEqual(
          { ...counts },
          {
            customers: 50,
            buyers: 100,
            products: 200,
            categories: 8,
            transactions: counts!.transactions,
          },
        );
        assert.equal(counts!.transactions + behaviors, 10_000, "exactly --count events");
        const share = counts!.transactions / 10_000;
        assert.ok(Math.abs(share - 0.7) < 0.03, `transaction share ${share}`);

        const [iphone] =
          await shop`select category, price_cents from products where name = 'iPhone 15'`;
        assert.deepEqual({ ...iphone }, { category: "Electronics", price_cents: 79900 });
        const perCustomer = await shop`
        select count(*)::int as n from buyers group by customer_id having count(*) not between 1 and 3`;
        assert.equal(perCustomer.length, 0, "every customer has 1 to 3 buyers");

        const [bad] = await shop`
        with sums as (
          select transaction_id, sum(quantity * unit_price_cents) as total
          from transaction_details group by transaction_id
        )
        select
          count(*) filter (where s.transaction_id is null)::int as without_items,
          count(*) filter (where s.total <> t.total_cents)::int as wrong_total,
          count(*) filter (where b.id is null)::int as foreign_buyer,
          count(*) filter (where t.status <> 'completed'
            or not (t.payment_method = any(${[...PAYMENT_METHODS]}::text[])))::int as bad_fields,
          count(*) filter (where t.created_at < to_timestamp(${before / 1000 - 1})
            or t.created_at > to_timestamp(${after / 1000 + 1}))::int as out_of_run
        from transactions t
        left join sums s on s.transaction_id = t.id
        left join buyers b on b.id = t.buyer_id and b.customer_id = t.customer_id`;
        assert.deepEqual({ ...bad }, {
          without_items: 0,
          wrong_total: 0,
          foreign_buyer: 0,
          bad_fields: 0,
          out_of_run: 0,
        });
        const [prices] = await shop`
        select count(*)::int as n from transaction_details d join products p on p.id = d.product_id
        where d.unit_price_cents <> p.price_cents or d.quantity < 1`;
        assert.equal(prices!.n, 0, "items are real products at their price");

        const customerIds = new Set(
          (await shop`select id::int from customers`).map((r) => r.id as number),
        );
        const productIds = new Set(
          (await shop`select id::int from products`).map((r) => r.id as number),
        );
        const rows = await crm`
        select customer_id::int, product_id::int, event_type, search_query, device, session_id,
               extract(epoch from created_at)::float8 as at
        from user_behavior`;
        const vocabulary = new Set(
          CATALOGUE.flatMap((p) => [...searchWords(p.name), ...searchWords(p.category)]),
        );
        for (const r of rows) {
          assert.ok(customerIds.has(r.customer_id), `customer ${r.customer_id} exists`);
          const hasProduct = r.event_type !== "page_view" && r.event_type !== "search";
          assert.equal(r.product_id !== null, hasProduct, r.event_type);
          if (hasProduct) assert.ok(productIds.has(r.product_id), `product ${r.product_id} exists`);
          assert.equal(r.search_query !== null, r.event_type === "search");
          for (const word of r.search_query?.split(" ") ?? []) {
            assert.ok(vocabulary.has(word), word);
          }
          assert.ok(["mobile", "desktop", "tablet"].includes(r.device));
          assert.match(r.session_id, /^sess-[0-9a-f]{12}$/);
          assert.ok(
            r.at >= before / 1000 - 1 && r.at <= after / 1000 + 1,
            "UTC instant of the run",
          );
        }
      });
    } finally {
      await ns.cleanup();
    }
  },
);

Deno.test(
  "generate: the same seed and count give the same data in another namespace",
  opts,
  async () => {
    const a = await createTestNamespace("gen_a");
    const b = await createTestNamespace("gen_b");
    try {
      // Different batch sizes: batching must not change the data.
      await generate(a, ["--count", "3000", "--rate", "0", "--seed", "42"]);
      await generate(b, ["--count", "3000", "--rate", "0", "--seed", "42", "--batch-size", "250"]);
      const fa = await withDatabases(a, fingerprint);
      const fb = await withDatabases(b, fingerprint);
      assert.deepEqual(fb, fa);
      assert.equal(fa.transactions + fa.byType.reduce((n, r) => n + r.n, 0), 3000);
    } finally {
      await Promise.all([a.cleanup(), b.cleanup()]);
    }
  },
);

Deno.test(
  "generate: a second run continues on existing data, hand-inserted rows too",
  opts,
  async () => {
    const ns = await createTestNamespace("gen_again");
    try {
      await generate(ns, ["--count", "500", "--rate", "0", "--seed", "1"]);
      const handId = await withDatabases(ns, async (shop, crm) => {
        // Rows inserted by hand with explicit ids, ahead of the sequences.
        const [{ id }] = await shop`select max(id)::int + 1000 as id from transactions`;
        await shop`insert into products (id, name, category, price_cents) values
                 (5000, 'Hand-made Mug', 'Home & Kitchen', 1500)`;
        await shop`insert into transactions (id, customer_id, total_cents, payment_method)
                 values (${id}, 1, 1500, 'paypal')`;
        await shop`insert into transaction_details (transaction_id, product_id, quantity,
                 unit_price_cents) values (${id}, 5000, 1, 1500)`;
        await crm`insert into user_behavior (id, customer_id, session_id, event_type, device)
                values (100000, 1, 'by-hand', 'page_view', 'desktop')`;
        return id as number;
      });
      // The paced path this time: --rate with --count.
      const second = await generate(ns, ["--count", "40", "--rate", "200", "--seed", "2"]);
      assert.match(second.stdout, /📊 Initial state: 50 customers, 100 buyers, 201 products/);
      assert.doesNotMatch(second.stdout, /Base data created/);
      // And one bounded by --duration only.
      const third = await generate(ns, ["--duration", "1s", "--rate", "20", "--seed", "3"]);
      const [, thirdEvents] = third.stdout.match(/Done \(duration reached\): (\d+) events/) ?? [];
      assert.ok(Number(thirdEvents) > 0, third.stdout);

      await withDatabases(ns, async (shop, crm) => {
        const [t] = await shop`
        select count(*)::int as n, count(*) filter (where id > ${handId})::int as after_hand,
               (select count(*)::int from customers) as customers,
               (select count(*)::int from buyers) as buyers
        from transactions`;
        const [u] = await crm`
        select count(*)::int as n, count(*) filter (where id > 100000)::int as after_hand
        from user_behavior`;
        assert.equal(
          t!.n + u!.n,
          500 + 40 + Number(thirdEvents) + 2,
          "every run's events, no loss",
        );
        assert.equal(
          t!.after_hand + u!.after_hand,
          40 + Number(thirdEvents),
          "ids past the hand rows",
        );
        assert.deepEqual([t!.customers, t!.buyers], [50, 100], "base data inserted once");
      });
    } finally {
      await ns.cleanup();
    }
  },
);

Deno.test("generate: bad flags print the usage and exit 2", opts, async () => {
  for (
    const args of [["--bogus"], ["--count", "1.5"], ["--rate=-3"], ["--transaction-share", "7"]]
  ) {
    const result = await runTask("generate", args, {
      ...childEnv(),
      PIPELINE_NAMESPACE: "unused",
    });
    assert.equal(result.code, 2, args.join(" "));
    assert.match(result.stderr, /Usage: deno task generate/);
    assert.doesNotMatch(result.stderr, /\n\s+at /, "no stack trace");
  }
});

Deno.test(
  "generate: PostgreSQL unreachable: retries, then one clear line, exit 1",
  opts,
  async () => {
    const result = await runTask("generate", ["--count", "1"], {
      ...childEnv(),
      PIPELINE_NAMESPACE: "unused",
      INSTASHOP_DATABASE_URL: "postgres://postgres@127.0.0.1:1/instashop",
    });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /attempt 1\/6/);
    const errors = result.stderr.split("\n").filter((l) => l.startsWith("error:"));
    assert.equal(errors.length, 1);
    assert.match(errors[0]!, /Cannot reach PostgreSQL at postgres:\/\/postgres@127\.0\.0\.1:1\//);
    assert.doesNotMatch(result.stderr, /\n\s+at /, "no stack trace");
  },
);
