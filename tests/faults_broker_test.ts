/**
 * Kafka faults (issue 10), on a private cluster on free ports so that the
 * shared broker on 127.0.0.1:9092 is never touched: the only broker killed
 * with SIGKILL and restarted while every stage runs; and, with three
 * brokers (RF 3, min ISR 2), one broker killed while traffic flows. Each
 * case ends with `deno task verify` exact.
 */

import assert from "node:assert/strict";
import type { Config } from "../lib/config.ts";
import { names } from "../lib/contracts.ts";
import { createKafka } from "../lib/kafka.ts";
import { sleep } from "../lib/retry.ts";
import {
  assertRunning,
  caughtUp,
  io,
  type LivePipeline,
  redisEvents,
  startPipeline,
  stopAll,
  verifyExact,
  waitFor,
  warehouseEvents,
} from "./_faults.ts";
import { freePorts, type PrivateStack, privateStack, teardown } from "./_faults_stack.ts";
import { createTestNamespace } from "./_support.ts";

const EVENTS = 12_000;

Deno.test(
  "faults: the only Kafka broker killed -9 and restarted while every stage runs; verify exact",
  io,
  async () => {
    const ns = await createTestNamespace("flt_brk1");
    let stack: PrivateStack | undefined;
    let pipeline: LivePipeline | undefined;
    try {
      const kafka = stack = await privateStack(ns.env, {
        KAFKA_BROKERS: `127.0.0.1:${freePorts(2)}`,
      });
      pipeline = startPipeline(
        ["--rate", "800", "--count", String(EVENTS), "--seed", "11"],
        kafka.env,
      );
      await waitFor("events in Redis", 60_000, async () => await redisEvents(kafka.config) > 0);

      const before = await warehouseEvents(kafka.config);
      await kafka.kill(1);
      await sleep(3000);
      await kafka.start(1);

      assert.equal((await pipeline.generate.status).code, 0, pipeline.generate.tail());
      const source = await caughtUp(kafka.config, pipeline.stages, 120_000, kafka.env);
      assert.ok(source === EVENTS && before < source, `source ${source}, before ${before}`);
      assertRunning(pipeline.stages, "the broker's death");
      await stopAll(pipeline.stages);
      await verifyExact(kafka.env);
    } finally {
      await teardown({ ns, stages: pipeline?.all(), stack });
    }
  },
);

/** The broker that leads most partitions of the namespace's input topics. */
async function busiestBroker(config: Config): Promise<number> {
  const admin = createKafka(config, { clientId: "faults-meta" }).admin();
  await admin.connect();
  try {
    const n = names(config.namespace);
    const { topics } = await admin.fetchTopicMetadata({
      topics: [n.topics.transactions, n.topics.userBehavior, n.topics.transactionItems],
    });
    const led = new Map<number, number>();
    for (const t of topics) {
      for (const p of t.partitions) {
        assert.equal(p.replicas.length, 3, `${t.name} is not replicated 3 times`);
        led.set(p.leader, (led.get(p.leader) ?? 0) + 1);
      }
    }
    return [...led.entries()].sort((a, b) => b[1] - a[1])[0]![0];
  } finally {
    await admin.disconnect();
  }
}

Deno.test(
  "faults: three brokers (RF 3, min ISR 2), one killed -9 while traffic flows: no stop, no loss",
  io,
  async () => {
    const ns = await createTestNamespace("flt_brk3");
    const port = freePorts(6);
    const brokers = [0, 2, 4].map((i) => `127.0.0.1:${port + i}`).join(",");
    let stack: PrivateStack | undefined;
    let pipeline: LivePipeline | undefined;
    try {
      const kafka = stack = await privateStack(ns.env, { KAFKA_BROKERS: brokers }, { brokers: 3 });
      const { config } = kafka;
      const victim = await busiestBroker(config);
      pipeline = startPipeline(
        ["--rate", "800", "--count", String(EVENTS), "--seed", "13"],
        kafka.env,
      );
      await waitFor("events in Redis", 60_000, async () => await redisEvents(config) > 0);

      await kafka.kill(victim);
      const warehouse = await warehouseEvents(config);
      const redis = await redisEvents(config);
      // No stop: with two brokers of three left, both stores keep growing while it is down.
      await waitFor(
        "the warehouse and Redis to grow with a broker down",
        60_000,
        async () =>
          await warehouseEvents(config) > warehouse + 1000 &&
          await redisEvents(config) > redis + 1000,
      );

      assert.equal((await pipeline.generate.status).code, 0, pipeline.generate.tail());
      assert.equal(await caughtUp(config, pipeline.stages, 120_000, kafka.env), EVENTS);
      assertRunning(pipeline.stages, "a broker's death");
      await stopAll(pipeline.stages);
      // Still with the broker down: nothing was lost on the two that remained.
      await verifyExact(kafka.env);
    } finally {
      await teardown({ ns, stages: pipeline?.all(), stack });
    }
  },
);
