/**
 * Stage and store faults (issue 10) on the real services, each case ending
 * with `deno task verify` exact: kill -9 of produce, consume and aggregate in
 * the middle of 20,000 events, each restarted; PostgreSQL connections cut
 * while produce and consume work, and while generate and produce start;
 * Redis restarted empty (a private redis-server on a free port, since the
 * shared one serves the teammates), then `aggregate --rebuild`. Kafka faults are in faults_broker_test.ts.
 */

import assert from "node:assert/strict";
import { names, REDIS_KEYS } from "../lib/contracts.ts";
import { createKafka, topicMessageCount } from "../lib/kafka.ts";
import { createRedis } from "../lib/redis.ts";
import { sleep } from "../lib/retry.ts";
import { sendSignal } from "../lib/signal.ts";
import { denoExecutable, taskArgv } from "../lib/tasks.ts";
import {
  assertRunning,
  caughtUp,
  io,
  keepLogs,
  type LivePipeline,
  redisEvents,
  runOk,
  sourceEvents,
  sqlNumber,
  type Stage,
  startPipeline,
  startStage,
  stopAll,
  verifyExact,
  waitFor,
  warehouseEvents,
} from "./_faults.ts";
import {
  cutConnections,
  freePorts,
  type PrivateStack,
  privateStack,
  teardown,
} from "./_faults_stack.ts";
import { createTestNamespace, runTask, type TestNamespace } from "./_support.ts";

/**
 * Waits until consume owes no transaction_items (its outbox is empty) and
 * aggregate counted every item sold in the shop.
 */
async function itemsCaughtUp(ns: TestNamespace): Promise<void> {
  const sold = await sqlNumber(
    ns.config.databases.instashop,
    "select coalesce(sum(quantity), 0) from transaction_details",
  );
  const redis = createRedis(ns.config);
  try {
    const key = names(ns.namespace).redis(REDIS_KEYS.totals);
    await waitFor(
      "the transaction_items to catch up",
      60_000,
      async () =>
        await sqlNumber(
            ns.config.databases.dwh,
            "select count(*) from transaction_items_outbox",
          ) ===
          0 && Number(await redis.hget(key, "items_sold") ?? 0) === sold,
    );
  } finally {
    redis.disconnect();
  }
}

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
      // consume's first fetch after a restart may take every event left (up to 4 MiB per
      // partition), so its held write may complete the warehouse: what matters is that it
      // wrote past the first kill and was killed before committing its offsets.
      assert.ok(stored2 > stored, `the held consume wrote nothing new: ${stored2} <= ${stored}`);
      assert.ok(counted2 < events, `Redis held all ${counted2} events at the second kill`);

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
      // Events are in; the items of a flush that a cut failed after its warehouse commit come
      // from the outbox once its batch is redelivered, a little later. Wait for them too.
      await itemsCaughtUp(ns);
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
  "faults: transactions whose connections are cut do not kill the process (postgres.js #1154 contained)",
  io,
  async () => {
    const ns = await createTestNamespace("flt_pgprobe");
    const server = new URL(ns.config.serverUrls.instashop);
    server.pathname = "/postgres";
    try {
      // consume's own `deno run` flags, with the probe in place of its entry. A probe that does
      // not end within 60 s has hung (docs/reliability.md, bug 15): killed, and the test fails.
      const out = await new Deno.Command(denoExecutable(), {
        args: [
          ...taskArgv("consume").slice(0, -1),
          "tests/fixtures/pg_cut_probe.ts",
          server.toString(),
        ],
        cwd: new URL("..", import.meta.url),
        stdin: "null",
        signal: AbortSignal.timeout(60_000),
      }).output();
      assert.equal(out.signal, null, "the probe hung after the cuts and was killed after 60 s");
      const stdout = new TextDecoder().decode(out.stdout);
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, `the probe died:\n${stderr.slice(-2000)}`);
      const result = JSON.parse(stdout.trim().split("\n").at(-1)!);
      assert.ok(result.cuts > 0 && result.failed > 0, stdout);
      assert.ok(result.committed > 0, stdout);
      assert.equal(result.answer, 42);
      const contained = stderr.split("\n").filter((l) => l.includes("postgres.js #1154")).length;
      console.log(`${stdout.trim()}; ${contained} null-socket writes contained`);
    } finally {
      await ns.cleanup();
    }
  },
);

/** A task's stderr from its first error line on (the retry lines before it are noise). */
function fromError(stderr: string): string {
  const at = stderr.search(/^(error|Uncaught|.*❌)/m);
  return stderr.slice(Math.max(0, at), Math.max(0, at) + 4000);
}

/**
 * Cuts the namespace's sessions every `everyMs`, from the first session seen
 * for `forMs` (a burst over a stage's start-up) or until `done` settles;
 * resolves with how many it ended.
 */
async function cutBurst(
  ns: TestNamespace,
  done: Promise<unknown>,
  { everyMs = 150, forMs = 3000 } = {},
): Promise<number> {
  let finished = false;
  done.finally(() => finished = true);
  let ended = 0;
  let first: number | undefined;
  while (!finished && (first === undefined || Date.now() - first < forMs)) {
    const n = await cutConnections(ns.config);
    if (n > 0) first ??= Date.now();
    ended += n;
    await sleep(everyMs);
  }
  return ended;
}

Deno.test(
  "faults: PostgreSQL connections cut while generate and produce start (databases, migrations, base data)",
  io,
  async () => {
    // A fresh namespace: generate creates the databases, applies the migrations and inserts the
    // base data while every session of the namespace is cut every 150 ms for 3 s from the first
    // one seen; then produce
    // starts (migrations again, cursors, LISTEN) under the same burst. Both must retry, not exit
    // (a server that stays unusable longer than their ~8 s of retries ends them with one line).
    const ns = await createTestNamespace("flt_pgstart", { topics: true });
    try {
      const generating = runTask(
        "generate",
        ["--count", "3000", "--rate", "0", "--seed", "29"],
        ns.env,
      );
      const cutGenerate = await cutBurst(ns, generating);
      const generated = await generating;
      assert.equal(generated.code, 0, `generate gave up:\n${fromError(generated.stderr)}`);
      assert.equal(await sourceEvents(ns.config), 3000, "--count stays exact under cuts");
      const producing = runTask("produce", ["--drain"], ns.env);
      const cutProduce = await cutBurst(ns, producing);
      const produced = await producing;
      assert.equal(produced.code, 0, `produce gave up:\n${fromError(produced.stderr)}`);
      assert.ok(cutGenerate > 0 && cutProduce > 0, `cuts ended ${cutGenerate}, ${cutProduce}`);
      for (const task of ["consume", "aggregate"]) await runOk(task, ["--drain"], ns.env);
      const retries = (generated.stderr + produced.stderr).split("\n")
        .filter((l) => /attempt \d|unreachable/.test(l)).length;
      console.log(
        `cuts ended ${cutGenerate} sessions while generate ran, ${cutProduce} while produce ran; ` +
          `${retries} retry lines; ${await verifyExact(ns.env)}`,
      );
    } finally {
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
    let stack: PrivateStack | undefined;
    try {
      stack = await privateStack(ns.env, { REDIS_URL: redisUrl });
      const { env, config } = stack;
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
      await teardown({ ns, stack });
    }
  },
);
