import assert from "node:assert/strict";
import { childEnv, loadConfig } from "../lib/config.ts";
import { names } from "../lib/contracts.ts";
import { connect } from "../lib/db.ts";
import {
  createConsumer,
  createKafka,
  createProducer,
  type KafkaMessage,
  topicMessageCount,
} from "../lib/kafka.ts";
import { createRedis } from "../lib/redis.ts";
import {
  newClusterId,
  planBrokers,
  replicationFor,
  serverProperties,
} from "../services/stack/kafka_config.ts";
import { stackDown, stackUp, startedBy } from "../services/stack/mod.ts";
import { pingRedis } from "../services/stack/redis.ts";
import { cleanupNamespace, createTestNamespace, runTask } from "./_support.ts";

const services = { sanitizeResources: false, sanitizeOps: false };

interface StatusJson {
  postgres: { owner: string; pid?: number; databases: string[]; missingDatabases: string[] };
  redis: { owner: string; pid?: number };
  kafka: {
    owner: string;
    brokerIds: number[];
    brokers: { nodeId: number; pid?: number }[];
    topics: string[];
    missingTopics: string[];
  };
}

async function status(env?: Record<string, string>): Promise<StatusJson> {
  const result = await runTask("stack", ["status", "--json"], env);
  return JSON.parse(result.stdout) as StatusJson;
}

function pidsOf(s: StatusJson): unknown[] {
  return [s.postgres.pid, s.redis.pid, ...s.kafka.brokers.map((b) => b.pid)];
}

// ------------------------------------------------------------- pure parts

Deno.test("stack: three brokers get 9092/9094/9096 with controllers on port + 1", () => {
  const plan = planBrokers(["127.0.0.1:9092"], 3);
  assert.deepEqual(plan, [
    { nodeId: 1, port: 9092, controllerPort: 9093 },
    { nodeId: 2, port: 9094, controllerPort: 9095 },
    { nodeId: 3, port: 9096, controllerPort: 9097 },
  ]);
  assert.deepEqual(planBrokers(["localhost:9192", "localhost:9292"], 2).map((b) => b.port), [
    9192,
    9292,
  ]);
  assert.throws(() => planBrokers(["kafka1:9092"], 1), /127\.0\.0\.1 only/);
  assert.throws(() => planBrokers(["127.0.0.1:9092", "127.0.0.1:9093"], 2), /port 9093/);
});

Deno.test("stack: three brokers replicate 3 ways with min ISR 2, one broker 1 way", () => {
  assert.deepEqual(replicationFor(1), { replicationFactor: 1, minInsync: 1 });
  assert.deepEqual(replicationFor(3), { replicationFactor: 3, minInsync: 2 });
  const layout = {
    clusterId: newClusterId(),
    version: "4.3.1",
    brokers: planBrokers(["127.0.0.1:9092"], 3),
  };
  const text = serverProperties(layout, layout.brokers[1]!, { dataDir: "/d", partitions: 6 });
  const props = new Map(
    text.split("\n").filter((l) => l.includes("=")).map((l) => l.split("=", 2) as [string, string]),
  );
  assert.equal(props.get("node.id"), "2");
  assert.equal(
    props.get("controller.quorum.voters"),
    "1@127.0.0.1:9093,2@127.0.0.1:9095,3@127.0.0.1:9097",
  );
  assert.equal(props.get("listeners"), "PLAINTEXT://127.0.0.1:9094,CONTROLLER://127.0.0.1:9095");
  assert.equal(props.get("advertised.listeners"), "PLAINTEXT://127.0.0.1:9094");
  for (const key of ["default.replication.factor", "offsets.topic.replication.factor"]) {
    assert.equal(props.get(key), "3", key);
  }
  assert.equal(props.get("transaction.state.log.replication.factor"), "3");
  assert.equal(props.get("share.coordinator.state.topic.replication.factor"), "3");
  for (const key of ["min.insync.replicas", "transaction.state.log.min.isr"]) {
    assert.equal(props.get(key), "2", key);
  }
  assert.equal(props.get("share.coordinator.state.topic.min.isr"), "2");
  assert.match(layout.clusterId, /^[A-Za-z0-9_-]{22}$/);
});

Deno.test("stack: bad commands and --brokers values are usage errors (exit 2)", async () => {
  const bad = await runTask("stack", ["up", "--brokers", "2"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /Cannot use --brokers as 1 or 3: current value is "2"/);
  const unknown = await runTask("stack", ["restart"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /use up, down or status/);
});

// ------------------------------------------------------- real services

Deno.test({
  name: "stack: up twice with the default config starts nothing the second time",
  ...services,
  async fn() {
    const first = await runTask("stack", ["up"]);
    assert.equal(first.code, 0, first.stderr);
    const before = await status();
    const second = await runTask("stack", ["up"]);
    assert.equal(second.code, 0, second.stderr);
    assert.doesNotMatch(second.stdout + second.stderr, /Started/);
    assert.match(second.stdout, /nothing to start, everything was running/);
    const after = await status();
    assert.deepEqual(pidsOf(after), pidsOf(before));
    assert.deepEqual(after.kafka.missingTopics, []);
    assert.deepEqual(after.postgres.missingDatabases, []);
  },
});

Deno.test({
  name: "stack: up in a namespace creates its three databases and six topics",
  ...services,
  async fn() {
    const ns = await createTestNamespace("stk");
    try {
      const up = await runTask("stack", ["up"], ns.env);
      assert.equal(up.code, 0, up.stderr);
      const dbs = Object.values(ns.config.databases).map((u) => new URL(u).pathname.slice(1));
      assert.deepEqual(dbs, [
        `${ns.namespace}_instashop`,
        `${ns.namespace}_crm_db`,
        `${ns.namespace}_dwh_db`,
      ]);
      const server = new URL(ns.config.serverUrls.instashop);
      server.pathname = "/postgres";
      const sql = connect(server.toString(), { max: 1 });
      try {
        const rows = await sql<{ datname: string }[]>`
          select datname from pg_database where datname = any(${dbs}) order by datname`;
        assert.deepEqual(rows.map((r) => r.datname), [...dbs].sort());
      } finally {
        await sql.end();
      }
      const admin = createKafka(ns.config, { clientId: "stack-test" }).admin();
      await admin.connect();
      try {
        const topics = Object.values(names(ns.namespace).topics);
        const meta = await admin.fetchTopicMetadata({ topics });
        const partitions = Object.fromEntries(
          meta.topics.map((t) => [t.name, t.partitions.length]),
        );
        const n = names(ns.namespace).topics;
        assert.deepEqual(partitions, {
          [n.transactions]: ns.config.kafka.partitions,
          [n.userBehavior]: ns.config.kafka.partitions,
          [n.searches]: ns.config.kafka.partitions,
          [n.cartEvents]: ns.config.kafka.partitions,
          [n.transactionItems]: ns.config.kafka.partitions,
          [n.deadLetters]: 1,
        });
      } finally {
        await admin.disconnect();
      }
      const seen = await status(ns.env);
      assert.deepEqual(seen.postgres.missingDatabases, []);
      assert.deepEqual(seen.kafka.missingTopics, []);
    } finally {
      await ns.cleanup();
    }
  },
});

Deno.test({
  name: "stack: Redis answers",
  ...services,
  async fn() {
    const ns = await createTestNamespace("stk");
    const redis = createRedis(ns.config);
    try {
      assert.equal(await redis.ping(), "PONG");
      const key = names(ns.namespace).redis("metrics:totals");
      await redis.hset(key, "transaction_count", "3");
      assert.equal(await redis.hget(key, "transaction_count"), "3");
    } finally {
      redis.disconnect();
      await ns.cleanup();
    }
  },
});

Deno.test({
  name: "stack: a message produced with kafkajs to a namespaced topic is consumed back",
  ...services,
  async fn() {
    const ns = await createTestNamespace("stk");
    const kafka = createKafka(ns.config, { clientId: "stack-test" });
    const producer = createProducer(kafka);
    const n = names(ns.namespace);
    const consumer = createConsumer(kafka, { groupId: n.group("consume", "stack-test") });
    try {
      // Topics through `stack up`, which waits for their leaders (see docs/stack.md).
      const up = await runTask("stack", ["up"], ns.env);
      assert.equal(up.code, 0, up.stderr);
      await producer.connect();
      const value = JSON.stringify({ event_id: "txn-1", total_cents: 1999 });
      await producer.send({
        topic: n.topics.transactions,
        acks: -1,
        messages: [{ key: "42", value, headers: { source: "stack-test" } }],
      });
      await consumer.connect();
      await consumer.subscribe({ topic: n.topics.transactions, fromBeginning: true });
      const received = new Promise<KafkaMessage>((resolve) => {
        consumer.run({ eachMessage: ({ message }) => Promise.resolve(resolve(message)) });
      });
      let timer: ReturnType<typeof setTimeout> | undefined;
      const message = await Promise.race([
        received,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error("no message within 60 s")), 60_000);
        }),
      ]).finally(() => clearTimeout(timer));
      assert.equal(message.key?.toString(), "42");
      assert.equal(message.value?.toString(), value);
      assert.equal(message.headers?.source?.toString(), "stack-test");
    } finally {
      await consumer.disconnect();
      await producer.disconnect();
      await ns.cleanup();
    }
  },
});

Deno.test({
  name: "stack: two namespaces do not see each other's topics, databases or keys",
  ...services,
  async fn() {
    const a = await createTestNamespace("stka");
    const b = await createTestNamespace("stkb");
    let aCleaned = false;
    try {
      for (const ns of [a, b]) {
        const up = await runTask("stack", ["up"], ns.env);
        assert.equal(up.code, 0, up.stderr);
      }
      const kafka = createKafka(a.config, { clientId: "stack-test" });
      const producer = createProducer(kafka);
      await producer.connect();
      await producer.send({
        topic: names(a.namespace).topics.transactions,
        acks: -1,
        messages: [{ key: "1", value: "a-only" }],
      });
      await producer.disconnect();
      const sqlA = connect(a.config.databases.instashop, { max: 1 });
      await sqlA`create table only_in_a (id int)`;
      await sqlA.end();
      const redis = createRedis(a.config);
      await redis.set(names(a.namespace).redis("metrics:transactions"), "a-only");

      const admin = kafka.admin();
      await admin.connect();
      const sqlB = connect(b.config.databases.instashop, { max: 1 });
      try {
        const tb = names(b.namespace).topics.transactions;
        assert.equal(await topicMessageCount(admin, names(a.namespace).topics.transactions), 1);
        assert.equal(await topicMessageCount(admin, tb), 0);
        const [row] = await sqlB`select to_regclass('only_in_a') as t`;
        assert.equal(row!.t, null);
        assert.equal(await redis.get(names(b.namespace).redis("metrics:transactions")), null);
        assert.deepEqual(await redis.keys(`${b.namespace}:*`), []);
        await redis.set(names(b.namespace).redis("metrics:transactions"), "b-only");

        // Cleaning up A leaves every bit of B in place.
        await a.cleanup();
        aCleaned = true;
        const topics = new Set(await admin.listTopics());
        for (const t of Object.values(names(b.namespace).topics)) assert.ok(topics.has(t), t);
        for (const t of Object.values(names(a.namespace).topics)) assert.ok(!topics.has(t), t);
        const [alive] = await sqlB`select 1 as one`;
        assert.equal(alive!.one, 1);
        assert.equal(await redis.get(names(b.namespace).redis("metrics:transactions")), "b-only");
      } finally {
        redis.disconnect();
        await sqlB.end();
        await admin.disconnect();
      }
    } finally {
      if (!aCleaned) await a.cleanup();
      await b.cleanup();
    }
  },
});

/** A port p with p and p + 1 free (a broker and its controller). */
function freePortPair(): number {
  for (;;) {
    const port = 20000 + 2 * Math.floor(Math.random() * 10000);
    try {
      Deno.listen({ hostname: "127.0.0.1", port }).close();
      Deno.listen({ hostname: "127.0.0.1", port: port + 1 }).close();
      return port;
    } catch {
      // taken; try another
    }
  }
}

Deno.test({
  name: "stack: a port taken by another program gets one clear line and exit 1",
  ...services,
  async fn() {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const conns: Deno.Conn[] = [];
    const accepting = (async () => {
      for await (const conn of listener) conns.push(conn); // accept, never answer
    })().catch(() => {});
    const stateDir = await Deno.makeTempDir({ prefix: "stack-test-" });
    try {
      const port = (listener.addr as Deno.NetAddr).port;
      const result = await runTask("stack", ["up"], {
        ...childEnv(),
        KAFKA_BROKERS: `127.0.0.1:${port}`,
        INSTASHOP_STATE_DIR: stateDir,
      });
      assert.equal(result.code, 1);
      const lines = result.stderr.trim().split("\n");
      assert.equal(lines.length, 1, result.stderr);
      assert.match(lines[0]!, new RegExp(`127\\.0\\.0\\.1:${port}: the port is taken`));
      assert.match(lines[0]!, /docker compose up -d/);
      assert.ok(!(await Deno.stat(`${stateDir}/kafka-1`).then(() => true, () => false)));
    } finally {
      listener.close();
      for (const conn of conns) conn.close();
      await accepting;
      await Deno.remove(stateDir, { recursive: true });
    }
  },
});

Deno.test({
  name: "stack: up starts its own Kafka broker on free ports, and down stops only it",
  ...services,
  async fn() {
    const port = freePortPair();
    const stateDir = await Deno.makeTempDir({ prefix: "stack-test-" });
    const ns = await createTestNamespace("stkown");
    const env = {
      ...ns.env,
      KAFKA_BROKERS: `127.0.0.1:${port}`,
      INSTASHOP_STATE_DIR: stateDir,
    };
    const config = loadConfig(env);
    let up = false;
    try {
      const first = await runTask("stack", ["up"], env);
      up = true;
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stdout, new RegExp(`Started Kafka broker 1 on 127\\.0\\.0\\.1:${port}`));
      const running = await status(env);
      assert.equal(running.kafka.owner, "stack");
      assert.deepEqual(running.kafka.brokerIds, [1]);
      assert.deepEqual(running.kafka.missingTopics, []);
      // PostgreSQL and Redis answered already, so this state folder owns neither.
      assert.equal(running.postgres.owner, "external");
      assert.equal(running.redis.owner, "external");
      const pid = running.kafka.brokers[0]!.pid!;
      assert.ok(pid > 0);

      await cleanupNamespace(config);
      const down = await runTask("stack", ["down"], env);
      assert.equal(down.code, 0, down.stderr);
      assert.match(down.stdout, /stopped Kafka broker 1$/m);
      up = false;
      const ps = await new Deno.Command("ps", { args: ["-o", "stat=", "-p", String(pid)] })
        .output();
      // Gone, or a zombie (exited; this container's pid 1 does not reap orphans).
      const state = new TextDecoder().decode(ps.stdout).trim();
      assert.ok(state === "" || state.startsWith("Z"), `broker pid ${pid} still runs: ${state}`);
      const after = await status(env);
      assert.equal(after.kafka.owner, "none");
      assert.equal(after.postgres.owner, "external");
      assert.equal(after.redis.owner, "external");
    } finally {
      if (up) {
        await cleanupNamespace(config).catch(() => {});
        await runTask("stack", ["down"], env);
      }
      await Deno.remove(stateDir, { recursive: true });
    }
  },
});

Deno.test({
  name: "stack: start's down stops only what its own up started; stack down stops the rest",
  ...services,
  async fn() {
    const port = freePortPair();
    const stateDir = await Deno.makeTempDir({ prefix: "stack-test-" });
    const ns = await createTestNamespace("stkonly");
    const config = loadConfig({
      ...ns.env,
      REDIS_URL: `redis://127.0.0.1:${port}`,
      INSTASHOP_STATE_DIR: stateDir,
    });
    try {
      // An earlier `deno task stack up` starts Redis on its port...
      const earlier = await stackUp(config);
      assert.deepEqual(startedBy(earlier), ["Redis"]);
      // ...then `deno task start` finds it running, and on exit leaves it to its owner.
      const start = await stackUp(config);
      assert.deepEqual(startedBy(start), []);
      assert.deepEqual(await stackDown(config, { only: start }), []);
      assert.equal(await pingRedis("127.0.0.1", port), "pong");
      // `deno task stack down` stops what the stack started, whoever asked for it.
      assert.deepEqual(await stackDown(config), ["Redis"]);
      assert.equal(await pingRedis("127.0.0.1", port), "closed");
      // A start that started Redis itself stops it on exit...
      const own = await stackUp(config);
      assert.deepEqual(startedBy(own), ["Redis"]);
      assert.deepEqual(await stackDown(config, { only: own }), ["Redis"]);
      assert.equal(await pingRedis("127.0.0.1", port), "closed");
      // ...but not a Redis someone started again after it (another pid), e.g. after a crash.
      const first = await stackUp(config);
      await stackDown(config);
      const again = await stackUp(config);
      assert.notEqual(again.redis.pid, first.redis.pid);
      assert.deepEqual(await stackDown(config, { only: first }), []);
      assert.equal(await pingRedis("127.0.0.1", port), "pong");
    } finally {
      await stackDown(config).catch(() => {});
      await ns.cleanup();
      await Deno.remove(stateDir, { recursive: true });
    }
  },
});
