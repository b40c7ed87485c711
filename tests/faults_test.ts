/**
 * Stage and store faults (issue 10) on the real services, each case ending
 * with `deno task verify` exact: kill -9 of produce, consume and aggregate in
 * the middle of 20,000 events, each restarted; PostgreSQL connections cut
 * while produce and consume work; Redis restarted empty (a private
 * redis-server on a free port, since the shared one serves the teammates),
 * then `aggregate --rebuild`. Kafka faults are in faults_broker_test.ts.
 */

import assert from "node:assert/strict";
import { names, REDIS_KEYS } from "../lib/contracts.ts";
import { createKafka, topicMessageCount } from "../lib/kafka.ts";
import { createRedis } from "../lib/redis.ts";
import { sleep } from "../lib/retry.ts";
import { sendSignal } from "../lib/signal.ts";
import {
  assertRunning,
  caughtUp,
  io,
  keepLogs,
  type LivePipeline,
  redisEvents,
  runOk,
  type Stage,
  startPipeline,
  startStage,
  stopAll,
  verifyExact,
  waitFor,
  warehouseEvents,
} from "./_faults.ts";
import { cutConnections, freePorts, privateStack } from "./_faults_stack.ts";
import { createTestNamespace, runTask, type TestNamespace } from "./_support.ts";

/** Messages on the namespace's transactions and user_behavior topics now. */
async function published(ns: TestNamespace): Promise<number> {
  const admin = createKafka(ns.config, { clientId: "faults-count" }).admin();
  await admin.connect();
  try {
    const n = names(ns.namespace);
    return await topicMessageCount(admin, n.topics.transactions) +
      await topicMessageCount(admin, n.topics.userBehavior);
  } finally {
    await admin.disconnect();
  }
}

/**
 * kill -9 `stage` once `line` shows and `progress()` is above zero; returns
 * what `progress()` says right after the kill.
 */
async function killMidStream(
  stage: Stage,
  line: RegExp,
  progress: () => Promise<number>,
): Promise<number> {
  await stage.waitLine(line);
  await waitFor(`${stage.name} to make progress`, 60_000, async () => await progress() > 0);
  const status = await stage.kill("SIGKILL");
  assert.equal(status.signal, "SIGKILL", `${stage.name} was not killed:\n${stage.tail()}`);
  return await progress();
}

Deno.test(
  "faults: kill -9 of produce, consume and aggregate in the middle of 20,000 events; verify exact",
  io,
  async () => {
    const ns = await createTestNamespace("flt_kill", { topics: true });
    const killed: Stage[] = [];
    const start = (task: string, args: string[]) => {
      const stage = startStage(task, args, ns.env);
      killed.push(stage);
      return stage;
    };
    const events = 20_000;
    try {
      await runOk("generate", ["--count", String(events), "--rate", "0", "--seed", "21"], ns.env);

      // Small pages, so the kill lands between acknowledged pages: part of the stream is out.
      const sent = await killMidStream(
        start("produce", ["--batch", "500"]),
        /Sending \d+/,
        () => published(ns),
      );
      assert.ok(sent > 0 && sent < events, `produce had sent ${sent} at the kill`);

      // consume and aggregate see only that part, so each kill is in the middle of the 20,000.
      const stored = await killMidStream(
        start("consume", []),
        /events stored/,
        () => warehouseEvents(ns.config),
      );
      assert.ok(stored > 0 && stored < events, `warehouse held ${stored} at the kill`);
      const counted = await killMidStream(
        start("aggregate", ["--fetch-bytes", "65536"]),
        /Batch \d+:/,
        () => redisEvents(ns.config),
      );
      assert.ok(counted > 0 && counted < events, `Redis held ${counted} events at the kill`);

      // The worst moment: the store has committed, the Kafka offsets have not.
      await runOk("produce", ["--drain"], ns.env);
      const stored2 = await killMidStream(
        start("consume", ["--hold-after-write"]),
        /Fault injection/,
        () => warehouseEvents(ns.config),
      );
      const counted2 = await killMidStream(
        start("aggregate", ["--hold-after-write", "--fetch-bytes", "65536"]),
        /Fault injection/,
        () => redisEvents(ns.config),
      );
      assert.ok(stored2 < events && counted2 < events, `${stored2}, ${counted2}`);

      await runOk("consume", ["--drain"], ns.env);
      await runOk("aggregate", ["--drain"], ns.env);
      console.log(
        `killed -9: produce after ${sent} messages; consume at ${stored}, then at ${stored2} ` +
          `rows (held after its write); aggregate at ${counted}, then at ${counted2} events ` +
          `(held after its write); ${await verifyExact(ns.env)}`,
      );
    } finally {
      for (const stage of killed) await stage.kill();
      await keepLogs(ns.namespace, killed);
      await ns.cleanup();
    }
  },
);

Deno.test(
  "faults: PostgreSQL connections cut (pg_terminate_backend) during produce and consume",
  io,
  async () => {
    const ns = await createTestNamespace("flt_pgcut", { topics: true });
    let pipeline: LivePipeline | undefined;
    try {
      // A backlog, so produce and consume are busy when the cuts come. The live generator is
      // cut too, and must retry its writes rather than give up.
      await runOk("generate", ["--count", "6000", "--rate", "0", "--seed", "23"], ns.env);
      pipeline = startPipeline(["--count", "6000", "--rate", "600", "--seed", "24"], ns.env);
      const [produce, consume] = pipeline.stages;
      // Cut while they work, not while they start (a cut at start-up is another case).
      await produce!.waitLine(/Sending \d+/);
      await consume!.waitLine(/events stored/);
      let cuts = 0;
      let sessions = 0;
      for (let i = 0; i < 8; i++) {
        await sleep(1000);
        const n = await cutConnections(ns.config);
        sessions += n;
        if (n > 0) cuts++;
      }
      assertRunning(pipeline.stages, "a cut PostgreSQL connection");
      assert.ok(cuts >= 4, `only ${cuts} cuts found sessions to end`);
      const generated = await pipeline.generate.status;
      assert.equal(generated.code, 0, `generate gave up on a cut:\n${pipeline.generate.tail()}`);
      const source = await caughtUp(ns.config, pipeline.stages, 120_000, ns.env);
      assertRunning(pipeline.stages, "a cut PostgreSQL connection");
      await stopAll(pipeline.stages);
      console.log(
        `${cuts} cuts ended ${sessions} sessions; ${source} events; ` +
          await verifyExact(ns.env),
      );
    } finally {
      for (const stage of pipeline?.all() ?? []) await stage.kill();
      await keepLogs(ns.namespace, pipeline?.all() ?? []);
      await ns.cleanup();
    }
  },
);

Deno.test(
  "faults: Redis restarted empty (private redis-server, kill -9, no dump); --rebuild restores exact totals",
  io,
  async () => {
    const ns = await createTestNamespace("flt_redis");
    const redisUrl = `redis://127.0.0.1:${freePorts(1)}`;
    let stack = await privateStack(ns.env, { REDIS_URL: redisUrl });
    const { env, config } = stack;
    try {
      await runOk("generate", ["--count", "5000", "--rate", "0", "--seed", "27"], env);
      for (const task of ["produce", "consume", "aggregate"]) await runOk(task, ["--drain"], env);
      await verifyExact(env);

      // A crash that loses everything: kill -9, no dump file left, start again.
      const dir = `${stack.stateDir}/redis`;
      const pid = Number(await Deno.readTextFile(`${dir}/redis.pid`));
      assert.ok(await sendSignal(pid, "SIGKILL"), `cannot kill redis-server ${pid}`);
      await waitFor("redis-server to die", 10_000, async () => {
        const ps = await new Deno.Command("ps", { args: ["-o", "stat=", "-p", String(pid)] })
          .output();
        const state = new TextDecoder().decode(ps.stdout).trim();
        return state === "" || state.startsWith("Z");
      });
      await Deno.remove(`${dir}/dump.rdb`).catch(() => {});
      stack = await privateStack(ns.env, { REDIS_URL: redisUrl }, { stateDir: stack.stateDir });
      const redis = createRedis(config);
      try {
        assert.deepEqual(await redis.keys(names(ns.namespace).redis("*")), []);
      } finally {
        redis.disconnect();
      }
      const lost = await runTask("verify", [], env);
      assert.equal(lost.code, 1, "verify must see the lost metrics");
      assert.match(lost.stderr, /redis totals: transaction_count \(expected \d+, actual 0\)/);

      await runOk("aggregate", ["--rebuild", "--drain"], env);
      console.log(await verifyExact(env));
      const redisAgain = createRedis(config);
      try {
        const totals = await redisAgain.hgetall(names(ns.namespace).redis(REDIS_KEYS.totals));
        assert.equal(Number(totals.events), 5000);
      } finally {
        redisAgain.disconnect();
      }
    } finally {
      await stack.stop();
      await ns.cleanup();
    }
  },
);
