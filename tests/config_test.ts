import assert from "node:assert/strict";
import { childEnv, ConfigError, loadConfig, redact } from "../lib/config.ts";
import { names } from "../lib/contracts.ts";
import { runTask } from "./_support.ts";

Deno.test("config: defaults are the seed's plain names", () => {
  const config = loadConfig({});
  assert.equal(config.namespace, "");
  assert.equal(config.databases.instashop, "postgres://postgres@127.0.0.1:5432/instashop");
  assert.equal(config.databases.crm, "postgres://postgres@127.0.0.1:5432/crm_db");
  assert.equal(config.databases.dwh, "postgres://postgres@127.0.0.1:5432/dwh_db");
  assert.deepEqual(config.kafka, { brokers: ["127.0.0.1:9092"], partitions: 6 });
  assert.equal(config.redisUrl, "redis://127.0.0.1:6379");
  assert.equal(config.dashboard.port, 8501);
  assert.equal(config.dashboard.token, undefined);
});

Deno.test("config: a namespace renames databases, topics, groups and keys exactly", () => {
  const config = loadConfig({ PIPELINE_NAMESPACE: "demo" });
  assert.equal(config.databases.instashop, "postgres://postgres@127.0.0.1:5432/demo_instashop");
  assert.equal(config.databases.crm, "postgres://postgres@127.0.0.1:5432/demo_crm_db");
  assert.equal(config.databases.dwh, "postgres://postgres@127.0.0.1:5432/demo_dwh_db");
  assert.equal(config.serverUrls.dwh, "postgres://postgres@127.0.0.1:5432/dwh_db");
  const n = names("demo");
  assert.deepEqual(n.topics, {
    transactions: "demo.transactions",
    userBehavior: "demo.user_behavior",
    searches: "demo.searches",
    cartEvents: "demo.cart_events",
    transactionItems: "demo.transaction_items",
    deadLetters: "demo.dead_letters",
  });
  assert.equal(n.group("consume"), "demo.instashop-warehouse");
  assert.equal(n.group("aggregate", "mine"), "demo.mine");
  assert.equal(n.redis("metrics:totals"), "demo:metrics:totals");
  assert.equal(n.redis("metrics:updates"), "demo:metrics:updates");
  assert.equal(n.heartbeat("consume"), "demo:pipeline:heartbeat:consume");
  assert.equal(names("").topics.transactions, "transactions");
  assert.equal(names("").redis("metrics:totals"), "metrics:totals");
});

const BAD_VALUES: [string, string][] = [
  ["PIPELINE_NAMESPACE", "Bad-Name"],
  ["PIPELINE_NAMESPACE", "1abc"],
  ["KAFKA_PARTITIONS", "zero"],
  ["KAFKA_PARTITIONS", "0"],
  ["KAFKA_BROKERS", "localhost"],
  ["REDIS_URL", "http://127.0.0.1:6379"],
  ["INSTASHOP_DATABASE_URL", "mysql://root@127.0.0.1/shop"],
  ["DWH_DATABASE_URL", "not a url"],
  ["PORT", "99999"],
];

for (const [name, value] of BAD_VALUES) {
  Deno.test(`config: ${name}=${JSON.stringify(value)} is rejected by name`, () => {
    assert.throws(() => loadConfig({ [name]: value }), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.exitCode, 2);
      assert.match(error.message, new RegExp(`Cannot use ${name} as .*current value is`));
      return true;
    });
  });
}

Deno.test("config: a password never appears in an error", () => {
  assert.throws(
    () => loadConfig({ CRM_DATABASE_URL: "mysql://u:s3cret@h/db" }),
    (error: Error) => !error.message.includes("s3cret"),
  );
  assert.equal(redact("postgres://u:s3cret@h:5432/db"), "postgres://u:***@h:5432/db");
});

Deno.test("config: a stage given a bad value prints one line and exits 2", async () => {
  const result = await runTask("generate", ["--count", "1"], {
    ...childEnv(),
    KAFKA_PARTITIONS: "lots",
  });
  assert.equal(result.code, 2);
  assert.match(result.stderr, /KAFKA_PARTITIONS/);
  assert.match(result.stderr, /"lots"/);
  assert.doesNotMatch(result.stderr, /\n\s+at /, "no stack trace");
});
