/**
 * Operations: the supervisor (prefixes, restarts, clean stop), `deno task
 * start` end to end, `status` and `verify` against a real namespace.
 */

import assert from "node:assert/strict";
import postgres from "postgres";
import { childEnv, loadConfig } from "../lib/config.ts";
import { names, REDIS_KEYS } from "../lib/contracts.ts";
import { createRedis } from "../lib/redis.ts";
import { sleep } from "../lib/retry.ts";
import { sendSignal } from "../lib/signal.ts";
import { denoExecutable, taskCommand } from "../lib/tasks.ts";
import { forEachLine, stagePrefix } from "../services/ops/lines.ts";
import { dashboardUrl, stageChildren } from "../services/ops/start.ts";
import { claimFileOf } from "../services/ops/start_claim.ts";
import { heartbeatStatus } from "../services/ops/status_collect.ts";
import { createSupervisor, restartDelay } from "../services/ops/supervisor.ts";
import { renderTable } from "../services/ops/table.ts";
import { type Beat, createWatchdog, hung } from "../services/ops/watchdog.ts";
import { type Facts, reconcile } from "../services/ops/verify_checks.ts";
import { createTestNamespace, runTask, taskArgv } from "./_support.ts";

const ROOT = new URL("..", import.meta.url);
const slow = { sanitizeResources: false, sanitizeOps: false };

// ------------------------------------------------------------------ pure parts

Deno.test("restartDelay doubles from 1 s up to 30 s", () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map((n) => restartDelay(n)), [
    1000,
    2000,
    4000,
    8000,
    16000,
    30000,
    30000,
  ]);
  assert.equal(restartDelay(3, { initialMs: 10, maxMs: 25 }), 25);
});

Deno.test("taskCommand splits a task's prelude from its deno run argv", () => {
  const tasks = {
    dashboard: "deno task build && deno run --allow-net=x --allow-read=. services/dashboard/cli.ts",
    produce: "deno run --no-prompt services/produce/cli.ts",
    odd: "echo hi && deno run x.ts",
    shell: "ls",
  };
  assert.deepEqual(taskCommand("dashboard", tasks), {
    prelude: ["build"],
    argv: ["run", "--allow-net=x", "--allow-read=.", "services/dashboard/cli.ts"],
  });
  assert.deepEqual(taskCommand("produce", tasks).prelude, []);
  assert.throws(() => taskCommand("odd", tasks), /is not `deno task X`/);
  assert.throws(() => taskCommand("shell", tasks), /does not end in `deno run`/);
  assert.throws(() => taskCommand("nope", tasks), /Cannot find task nope/);
  // The test helper still answers the same argv as before.
  assert.deepEqual(taskArgv("produce"), taskCommand("produce").argv);
});

Deno.test("stageChildren: flags to the generator, drains for produce, consume, aggregate", () => {
  const children = stageChildren({ rate: "100", duration: "2m" });
  assert.deepEqual(children.map((c) => c.name), [
    "generate",
    "produce",
    "consume",
    "aggregate",
    "dashboard",
  ]);
  assert.deepEqual(children[0]!.argv.slice(-4), ["--rate", "100", "--duration", "2m"]);
  assert.equal(children[1]!.argv.at(-1), "services/produce/cli.ts");
  assert.deepEqual(children[4]!.prelude, [["task", "--quiet", "build"]]);
  assert.deepEqual(children.map((c) => c.drain ?? null), [
    null,
    ["--drain"],
    ["--drain"],
    ["--drain"],
    null,
  ]);
  assert.deepEqual(stageChildren({ generate: false }).map((c) => c.name), [
    "produce",
    "consume",
    "aggregate",
    "dashboard",
  ]);
});

Deno.test("dashboardUrl points a wildcard host at localhost", () => {
  assert.equal(dashboardUrl(loadConfig({ PORT: "9000" })), "http://127.0.0.1:9000/");
  assert.equal(dashboardUrl(loadConfig({ HOST: "0.0.0.0" })), "http://localhost:8501/");
});

Deno.test("heartbeatStatus: stale only for a stage that beat, and beat too long ago", () => {
  const now = Date.parse("2026-01-01T00:01:00Z");
  const fresh = heartbeatStatus("consume", { at: "2026-01-01T00:00:50Z", events: "7" }, 15000, now);
  assert.equal(fresh.stale, false);
  assert.equal(fresh.age_s, 10);
  assert.equal(fresh.events, 7);
  assert.equal(heartbeatStatus("consume", { at: "2026-01-01T00:00:40Z" }, 15000, now).stale, true);
  assert.equal(heartbeatStatus("consume", { at: "garbage" }, 15000, now).stale, true);
  const never = heartbeatStatus("generate", {}, 15000, now);
  assert.equal(never.present, false);
  assert.equal(never.stale, false);
});

Deno.test("watchdog: a stage whose own beat is too old twice in a row is killed, no other", async () => {
  assert.equal(hung({ pid: 7, at: 1000 }, 7, 62_000, 60_000), true);
  assert.equal(hung({ pid: 7, at: 1000 }, 7, 61_000, 60_000), false);
  assert.equal(hung({ pid: 6, at: 1000 }, 7, 99_000, 60_000), false, "a beat of another pid");
  assert.equal(hung(null, 7, 99_000, 60_000), false, "never beat: maybe starting");
  const now = 100_000;
  const beats: Record<string, Beat | null | "error"> = {
    generate: { pid: 1, at: now - 1000 }, // fresh
    produce: { pid: 2, at: 0 }, // hung
    consume: { pid: 30, at: 0 }, // old, but of an earlier process
    aggregate: "error", // Redis cannot say
    dashboard: null, // never beat
  };
  const killed: number[] = [];
  const lines: string[] = [];
  let checks = 0;
  const stop = new AbortController();
  let running = ["generate", "produce", "consume", "aggregate", "dashboard"].map((name, i) => ({
    name,
    pid: i + 1,
  }));
  const watchdog = createWatchdog({
    lastBeat: (stage) => {
      if (stage === "generate") checks++;
      const beat = beats[stage]!;
      return beat === "error" ? Promise.reject(new Error("down")) : Promise.resolve(beat);
    },
    staleMs: 60_000,
    checkMs: 5,
    kill: (pid) => {
      killed.push(pid);
      // As the supervisor reports it: the killed child is gone (a restart has a new pid).
      watchdog.update(running = running.filter((c) => c.pid !== pid));
    },
    say: (line) => lines.push(line),
    signal: stop.signal,
    now: () => now,
  });
  watchdog.update(running);
  while (checks < 1) await sleep(2);
  assert.deepEqual(killed, [], "one old beat is not enough");
  while (checks < 4) await sleep(2);
  stop.abort();
  await watchdog.done;
  assert.deepEqual(killed, [2], "produce alone, once");
  assert.match(lines.join("\n"), /produce \(pid 2\) has not written its heartbeat for 100 s/);
});

Deno.test("renderTable aligns columns and right-aligns numbers", () => {
  assert.deepEqual(renderTable(["check", "n"], [["rows", 1200], ["x", 5]]), [
    "check  n",
    "-----  -----",
    "rows   1,200",
    "x          5",
  ]);
});

function cleanFacts(): Facts {
  return {
    source: {
      transactions: 2,
      total_cents: 3500,
      item_rows: 3,
      units: 4,
      item_revenue_cents: 3500,
      categories: {
        Books: { units: 3, revenue_cents: 1500 },
        Toys: { units: 1, revenue_cents: 2000 },
      },
      behavior: { search: 2, add_to_cart: 1, page_view: 1 },
    },
    topics: {
      transactions: 2,
      userBehavior: 4,
      searches: 2,
      cartEvents: 1,
      transactionItems: 3,
    },
    warehouse: {
      events: { transaction: 2, search: 2, add_to_cart: 1, page_view: 1 },
      sales_rows: 3,
      sales_units: 4,
      sales_revenue_cents: 3500,
      categories: {
        Books: { units: 3, revenue_cents: 1500 },
        Toys: { units: 1, revenue_cents: 2000 },
      },
    },
    redis: {
      totals: {
        events: 6,
        transaction_count: 2,
        revenue_cents: 3500,
        items_sold: 4,
        late_events: 1,
        "behavior:search": 2,
        "behavior:add_to_cart": 1,
        "behavior:page_view": 1,
        "category:Books:units": 3,
        "category:Books:revenue_cents": 1500,
        "category:Toys:units": 1,
        "category:Toys:revenue_cents": 2000,
      },
      windowSums: {
        events: 5,
        transaction_count: 2,
        revenue_cents: 3500,
        items_sold: 3,
        "behavior:search": 1,
        "behavior:add_to_cart": 1,
        "behavior:page_view": 1,
        "category:Books:units": 3,
        "category:Books:revenue_cents": 1500,
        "category:Toys:units": 1,
        "category:Toys:revenue_cents": 2000,
        final: 3,
      },
      late: { events: 1, "behavior:search": 1, late_events: 1 },
      expired: { items_sold: 1 },
    },
  };
}

Deno.test("reconcile agrees on consistent facts and names each difference", () => {
  const checks = reconcile(cleanFacts());
  assert.deepEqual(checks.filter((c) => !c.ok), []);
  assert.ok(checks.length > 30);

  const lost = cleanFacts();
  lost.warehouse.events.search = 1;
  assert.deepEqual(reconcile(lost).filter((c) => !c.ok).map((c) => c.check), [
    "warehouse realtime_events: search",
  ]);

  const doubled = cleanFacts();
  doubled.redis.totals.revenue_cents = 7000;
  assert.deepEqual(reconcile(doubled).filter((c) => !c.ok), [
    { check: "redis totals: revenue_cents", expected: 3500, actual: 7000, ok: false },
    {
      check: "redis windows + late + expired = totals: revenue_cents",
      expected: 7000,
      actual: 3500,
      ok: false,
    },
  ]);

  const stray = cleanFacts();
  stray.redis.totals["category:Ghosts:units"] = 1;
  stray.topics.searches = 3;
  assert.deepEqual(reconcile(stray).filter((c) => !c.ok).map((c) => c.check), [
    "kafka searches: distinct event ids",
    "redis totals: category:Ghosts:units",
    "redis windows + late + expired = totals: category:Ghosts:units",
  ]);
});

// ------------------------------------------------------------------ supervisor

function evalChild(name: string, code: string) {
  return { name, argv: ["eval", code] };
}

/**
 * Whether `pid` runs (and is not a zombie), asked of `ps`: Deno refuses /proc
 * reads without --allow-all, which would make every "not alive" pass.
 */
async function alive(pid: number): Promise<boolean> {
  const out = await new Deno.Command("ps", { args: ["-o", "stat=", "-p", String(pid)] }).output();
  if (!out.success && out.stdout.length === 0 && out.code !== 1) {
    throw new Error(`Cannot ask ps about pid ${pid}: exit ${out.code}`);
  }
  const state = new TextDecoder().decode(out.stdout).trim();
  return state !== "" && !state.startsWith("Z");
}

async function waitFor(what: string, ms: number, test: () => boolean | Promise<boolean>) {
  const deadline = Date.now() + ms;
  while (!(await test())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(100);
  }
}

Deno.test(
  "supervisor prefixes lines, restarts a crash with backoff, and stops every child",
  slow,
  async () => {
    const lines: string[] = [];
    const supervisor = createSupervisor({
      children: [
        evalChild("crasher", 'console.log("up"); console.error("going down"); Deno.exit(3)'),
        {
          ...evalChild(
            "steady",
            'if (Deno.args.includes("--drain")) console.log("drained");' +
              'else { console.log("steady up"); setInterval(() => {}, 1000); }',
          ),
          drain: ["--drain"],
        },
        // Ignores SIGTERM: must be SIGKILLed after the stop timeout.
        evalChild(
          "stubborn",
          'Deno.addSignalListener("SIGTERM", () => console.log("ignoring")); console.log("ready"); setInterval(() => {}, 1000)',
        ),
      ],
      cwd: ROOT,
      env: childEnv(),
      sink: (line) => lines.push(line),
      backoff: { initialMs: 100, maxMs: 400 },
      stopTimeoutMs: 1500,
    });
    try {
      await waitFor(
        "two restarts",
        30_000,
        () => lines.filter((l) => l.includes("restart #")).length >= 2,
      );
      await waitFor(
        "every child up",
        30_000,
        () =>
          lines.includes(`${stagePrefix("steady")}steady up`) &&
          lines.includes(`${stagePrefix("stubborn")}ready`),
      );
      assert.ok(lines.includes(`${stagePrefix("crasher")}up`));
      assert.ok(lines.includes(`${stagePrefix("crasher")}going down`));
      assert.ok(
        lines.some((l) =>
          /^\[start\] +💥 crasher exited with code 3; restart #1 of crasher in 0\.1 s$/.test(l)
        ),
        lines.join("\n"),
      );
      assert.ok(lines.some((l) => /restart #2 of crasher in 0\.2 s/.test(l)));
    } finally {
      await supervisor.stop();
    }
    assert.deepEqual(await supervisor.done, { kind: "stopped" });
    assert.deepEqual(supervisor.pids(), []);
    const all = supervisor.allPids();
    assert.ok(all.length >= 4);
    for (const pid of all) {
      assert.equal(await alive(pid), false, `pid ${pid} is still alive`);
    }
    assert.ok(
      lines.some((l) => l.includes("stubborn did not stop within 1500 ms; sending SIGKILL")),
    );
    // In order: steady stopped, then drained, then stubborn stopped.
    const at = (text: string) => lines.findIndex((l) => l.includes(text));
    assert.ok(at("steady stopped") >= 0);
    assert.ok(at("Draining steady (--drain)") > at("steady stopped"));
    assert.ok(at(`${stagePrefix("steady")}drained`) > at("Draining steady"));
    assert.ok(at("✅ steady drained") > at(`${stagePrefix("steady")}drained`));
    assert.ok(at("stubborn did not stop") > at("✅ steady drained"));
  },
);

Deno.test(
  "supervisor stops everything when a stage refuses its configuration (exit 2)",
  slow,
  async () => {
    const lines: string[] = [];
    const supervisor = createSupervisor({
      children: [
        evalChild("bad", "Deno.exit(2)"),
        evalChild("steady", 'console.log("steady up"); setInterval(() => {}, 1000)'),
      ],
      cwd: ROOT,
      env: childEnv(),
      sink: (line) => lines.push(line),
    });
    assert.deepEqual(await supervisor.done, { kind: "fatal", name: "bad", code: 2 });
    for (const pid of supervisor.allPids()) assert.equal(await alive(pid), false);
    assert.ok(lines.some((l) => l.includes("bad refused its flags or configuration (exit 2)")));
  },
);

Deno.test(
  "supervisor kills its stages when its own process exits before stopping them",
  slow,
  async () => {
    const script = `
      import { createSupervisor } from ${
      JSON.stringify(new URL("../services/ops/supervisor.ts", import.meta.url).href)
    };
      const s = createSupervisor({
        children: [{ name: "steady", argv: ["eval", "setInterval(() => {}, 1000)"] }],
        cwd: Deno.cwd(), env: Deno.env.toObject(), sink: () => {},
      });
      while (s.pids().length === 0) await new Promise((r) => setTimeout(r, 50));
      console.log(s.pids()[0]);
      Deno.exit(130);`;
    const out = await new Deno.Command(denoExecutable(), {
      args: ["eval", script],
      cwd: ROOT,
      stdin: "null",
    }).output();
    assert.equal(out.code, 130);
    const pid = Number(new TextDecoder().decode(out.stdout).trim());
    assert.ok(pid > 0);
    await waitFor("the orphan to die", 5000, async () => !(await alive(pid)));
  },
);

// ------------------------------------------------------------------ end to end

async function countRows(url: string, table: string): Promise<number> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const [row] = await sql.unsafe(`select count(*)::int as n from ${table}`);
    return row!.n as number;
  } catch {
    return 0;
  } finally {
    await sql.end();
  }
}

/** Pids of the live processes in process group `pgid` (`ps`; listing /proc needs --allow-all). */
async function groupMembers(pgid: number): Promise<number[]> {
  const out = await new Deno.Command("ps", { args: ["-e", "-o", "pid=,pgid=,stat="] }).output();
  return new TextDecoder().decode(out.stdout).split("\n")
    .map((line) => line.trim().split(/\s+/))
    .filter(([pid, group, stat]) => pid && Number(group) === pgid && !stat?.startsWith("Z"))
    .map(([pid]) => Number(pid));
}

Deno.test(
  "start runs the pipeline end to end, answers on the dashboard and stops clean on Ctrl-C",
  slow,
  async () => {
    const { ns, n, redis, port, child, out, pipes, stagePids, cleanup } = await startInNamespace(
      "ops_start",
      ["--rate", "100"],
    );
    let status: Deno.CommandStatus | undefined;
    try {
      const startedAt = Date.now();
      const left = () => 60_000 - (Date.now() - startedAt);
      await waitFor(
        "the dashboard URL",
        left(),
        () => out.some((l) => l.includes("🌐 Dashboard:")),
      );
      assert.ok(out.some((l) => l.includes(`http://127.0.0.1:${port}/`)));
      await waitFor(
        "events in the warehouse",
        left(),
        async () => await countRows(ns.config.databases.dwh, "realtime_events") > 0,
      );
      await waitFor(
        "events in the Redis totals",
        left(),
        async () => Number(await redis.hget(n.redis(REDIS_KEYS.totals), "events")) > 0,
      );
      const health = await fetch(`http://127.0.0.1:${port}/api/health`);
      assert.equal(health.status, 200);
      await health.body?.cancel();
      for (const stage of ["generate", "produce", "consume", "aggregate", "dashboard"]) {
        assert.ok(out.some((l) => l.startsWith(`[${stage}]`)), `no line from ${stage}`);
      }
      status = await stopAndVerify(child, pipes, ns.env);
    } finally {
      await cleanup(status);
    }
    const text = out.join("\n");
    assert.equal(status.code, 0, text);
    const pids = stagePids();
    assert.equal(pids.length >= 5, true, text);
    for (const pid of pids) {
      assert.equal(await alive(pid), false, `stage pid ${pid} outlived start`);
      assert.deepEqual(await groupMembers(pid), [], `stage group ${pid} outlived start`);
    }
    assert.deepEqual(await groupMembers(child.pid), [], "deno task or main.ts outlived Ctrl-C");
    assert.match(text, /every service was already running/);
    assert.doesNotMatch(text, /Stopped .*(Kafka|Redis|PostgreSQL)/);
    assert.match(text, /Stopping \(signal received\)/);
    for (const stage of ["produce", "consume", "aggregate"]) {
      assert.match(text, new RegExp(`✅ ${stage} drained`));
    }
    assert.match(text, /no stage left running/);
  },
);

Deno.test(
  "start kills a stage whose heartbeat stopped, restarts it, and the stores still reconcile",
  slow,
  async () => {
    const { ns, n, redis, child, out, pipes, stagePids, cleanup } = await startInNamespace(
      "ops_stall",
      [
        "--rate",
        "100",
        "--stall-timeout",
        "6s",
      ],
    );
    const beatingPid = async () => Number((await redis.hget(n.heartbeat("consume"), "pid")) ?? 0);
    let status: Deno.CommandStatus | undefined;
    let hungPid = 0;
    try {
      const startedAt = Date.now();
      const left = () => 90_000 - (Date.now() - startedAt);
      await waitFor("consume's heartbeat", left(), async () => {
        hungPid = await beatingPid();
        return stagePids().includes(hungPid);
      });
      // Alive but running nothing: a frozen process, as far as its heartbeat can tell.
      await sendSignal(hungPid, "SIGSTOP");
      await waitFor(
        "the watchdog's kill",
        left(),
        () => out.some((l) => l.includes(`consume (pid ${hungPid}) has not written its heartbeat`)),
      );
      await waitFor("a new consume beating", left(), async () => {
        const pid = await beatingPid();
        return pid !== hungPid && stagePids().includes(pid);
      });
      assert.equal(await alive(hungPid), false, "the hung consume was killed");
      status = await stopAndVerify(child, pipes, ns.env);
    } finally {
      await cleanup(status);
    }
    const text = out.join("\n");
    assert.equal(status.code, 0, text);
    assert.match(text, /💥 consume was killed by SIGKILL; restart #1 of consume/);
    assert.equal(text.match(/has not written its heartbeat/g)?.length, 1, text);
  },
);

/**
 * `deno task start` in a new test namespace on a random dashboard port, in its own process group
 * so that a Ctrl-C can be sent to the group as a terminal does (deno task and main.ts both get it).
 */
async function startInNamespace(prefix: string, args: string[]) {
  const ns = await createTestNamespace(prefix);
  const port = 20000 + Math.floor(Math.random() * 20000);
  const { child, lines: out, pipes } = spawnStart({ ...ns.env, PORT: String(port) }, args);
  const stagePids = () =>
    out.flatMap((l) => [...l.matchAll(/started \(pid (\d+)\)/g)].map((m) => Number(m[1])));
  const redis = createRedis(ns.config);
  /** What a test leaves when it failed midway: start's group, unless it exited, and the stages. */
  async function cleanup(exited: Deno.CommandStatus | undefined) {
    if (!exited) {
      await sendSignal(-child.pid, "SIGKILL");
      await child.status;
    }
    for (const pid of stagePids()) await sendSignal(-pid, "SIGKILL");
    redis.disconnect();
    await ns.cleanup();
  }
  return { ns, n: names(ns.namespace), redis, port, child, out, pipes, stagePids, cleanup };
}

/** Ctrl-C to start's group, then `verify`: the stop drained what was in flight, so it must agree. */
async function stopAndVerify(
  child: Deno.ChildProcess,
  pipes: Promise<unknown>,
  env: Record<string, string>,
): Promise<Deno.CommandStatus> {
  await sendSignal(-child.pid, "SIGINT");
  const status = await child.status;
  await pipes;
  const verify = await runTask("verify", [], env);
  assert.equal(verify.code, 0, verify.stdout + verify.stderr);
  return status;
}

/** `deno task start` as a user types it, in its own process group, its lines collected. */
function spawnStart(env: Record<string, string>, args: string[]) {
  const child = new Deno.Command(denoExecutable(), {
    args: ["task", "--quiet", "start", ...args],
    cwd: ROOT,
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    detached: true,
  }).spawn();
  const lines: string[] = [];
  const pipes = Promise.all([
    forEachLine(child.stdout, (l) => lines.push(l)),
    forEachLine(child.stderr, (l) => lines.push(l)),
  ]);
  return { child, lines, pipes };
}

interface ClaimJson {
  pid: number;
  stages: { name: string; pid: number; marker: string }[];
}

async function readClaimJson(file: string): Promise<ClaimJson | undefined> {
  return JSON.parse(await Deno.readTextFile(file).catch(() => "null")) ?? undefined;
}

Deno.test(
  "start killed -9 leaves its stages; the next start stops them first, a running start refuses",
  slow,
  async () => {
    const ns = await createTestNamespace("ops_k9");
    const stateDir = await Deno.makeTempDir({ prefix: "ops-start-" });
    const port = 20000 + Math.floor(Math.random() * 20000);
    const env = { ...ns.env, INSTASHOP_STATE_DIR: stateDir, PORT: String(port) };
    const file = claimFileOf(stateDir, ns.namespace);
    const stageRuns = (claim?: ClaimJson) =>
      (claim?.stages ?? []).filter((s) => s.marker.endsWith("cli.ts"));
    const first = spawnStart(env, ["--no-generate"]);
    let second: ReturnType<typeof spawnStart> | undefined;
    let left: ClaimJson["stages"] = [];
    try {
      await waitFor(
        "four stages in the pid file",
        60_000,
        async () => stageRuns(await readClaimJson(file)).length === 4,
      );
      const claim = (await readClaimJson(file))!;
      left = stageRuns(claim);

      // While it runs, a second start in the namespace refuses in one line.
      const refused = await runTask("start", ["--no-generate"], env);
      assert.equal(refused.code, 1, refused.stdout + refused.stderr);
      assert.match(
        refused.stderr.trim().split("\n").at(-1)!,
        new RegExp(
          `^error: Cannot start the pipeline in namespace ${ns.namespace} as another ` +
            `\`deno task start\` runs it: current owner is pid ${claim.pid} `,
        ),
      );

      // kill -9 of the supervisor (main.ts): its stages, in their own groups, run on.
      assert.ok(await sendSignal(claim.pid, "SIGKILL"));
      await first.child.status;
      await first.pipes;
      // (A stage dies at its next log line, its pipe gone; a quiet one, the dashboard, runs on.)
      const orphans = [];
      for (const stage of left) if (await alive(stage.pid)) orphans.push(stage.name);
      assert.ok(orphans.length > 0, "every stage died with start");

      second = spawnStart(env, ["--no-generate"]);
      const lines = second.lines;
      await waitFor(
        "the leftovers stopped and new stages up",
        60_000,
        () => lines.filter((l) => l.includes(" started (pid ")).length >= 4,
      );
      const cleaned = lines.find((l) => l.includes("left running by a start that was killed"));
      assert.ok(cleaned, lines.join("\n"));
      assert.match(cleaned, new RegExp(`Stopping \\d stage\\(s\\) .*\\(pid ${claim.pid}\\)`));
      for (const stage of left) {
        assert.equal(await alive(stage.pid), false, `${stage.name} ${stage.pid} still runs`);
      }
      await sendSignal(-second.child.pid, "SIGINT");
      const status = await second.child.status;
      await second.pipes;
      assert.equal(status.code, 0, lines.join("\n"));
      assert.equal(await readClaimJson(file), undefined, "the pid file outlived a clean stop");
    } finally {
      for (const run of [first, second]) {
        if (run) await sendSignal(-run.child.pid, "SIGKILL");
      }
      const claim = await readClaimJson(file);
      for (const stage of [...left, ...(claim?.stages ?? [])]) {
        await sendSignal(-stage.pid, "SIGKILL");
      }
      await ns.cleanup();
      await Deno.remove(stateDir, { recursive: true });
    }
  },
);

Deno.test(
  "verify passes on a clean run and names an injected loss and double count",
  slow,
  async () => {
    const ns = await createTestNamespace("ops_verify", { topics: true });
    try {
      for (
        const [task, args] of [
          ["generate", ["--count", "400", "--rate", "0", "--seed", "8"]],
          ["produce", ["--drain"]],
          ["consume", ["--drain"]],
          ["aggregate", ["--drain"]],
        ] as const
      ) {
        const result = await runTask(task, [...args], ns.env);
        assert.equal(result.code, 0, `${task}: ${result.stderr}`);
      }

      const clean = await runTask("verify", ["--json"], ns.env);
      assert.equal(clean.code, 0, clean.stdout + clean.stderr);
      const report = JSON.parse(clean.stdout) as {
        ok: boolean;
        checks: { check: string; ok: boolean }[];
      };
      assert.equal(report.ok, true);
      assert.ok(report.checks.every((c) => c.ok));
      const table = await runTask("verify", [], ns.env);
      assert.equal(table.code, 0, table.stderr);
      assert.match(table.stdout, /check +expected +actual +ok/);
      assert.match(table.stdout, /✅ all \d+ checks agree/);

      const status = await runTask("status", ["--json"], ns.env);
      const parsed = JSON.parse(status.stdout) as { warehouse: { realtime_events: number } };
      assert.ok(parsed.warehouse.realtime_events > 0);

      // Loss: one warehouse row deleted.
      const sql = postgres(ns.config.databases.dwh, { max: 1, onnotice: () => {} });
      try {
        const [row] = await sql`delete from realtime_events where event_id = (
        select event_id from realtime_events where event_type = 'transaction' limit 1) returning *`;
        assert.ok(row);
        const lost = await runTask("verify", [], ns.env);
        assert.equal(lost.code, 1, lost.stdout);
        assert.match(lost.stdout, /warehouse realtime_events: transaction +\S+ +\S+ +DIFFERS/);
        assert.match(lost.stderr, /1 of \d+ checks differ: warehouse realtime_events: transaction/);
        await sql`insert into realtime_events ${sql(row)}`;
      } finally {
        await sql.end();
      }

      // Double count: a Redis total changed.
      const redis = createRedis(ns.config);
      try {
        await redis.hincrby(names(ns.namespace).redis(REDIS_KEYS.totals), "transaction_count", 1);
      } finally {
        redis.disconnect();
      }
      const doubled = await runTask("verify", ["--json"], ns.env);
      assert.equal(doubled.code, 1);
      const failed = (JSON.parse(doubled.stdout) as { checks: { check: string; ok: boolean }[] })
        .checks.filter((c) => !c.ok).map((c) => c.check);
      assert.deepEqual(failed, [
        "redis totals: transaction_count",
        "redis windows + late + expired = totals: transaction_count",
      ]);
    } finally {
      await ns.cleanup();
    }
  },
);

Deno.test("status exits 1 and names a stage whose heartbeat is stale", slow, async () => {
  const ns = await createTestNamespace("ops_status", { topics: true });
  const redis = createRedis(ns.config);
  try {
    const n = names(ns.namespace);
    await redis.hset(n.heartbeat("consume"), {
      stage: "consume",
      pid: "1",
      at: new Date(Date.now() - 60_000).toISOString(),
      events: "5",
      events_per_s: "0",
      dead_letters: "0",
      detail: "{}",
    });
    await redis.hset(n.heartbeat("aggregate"), { at: new Date().toISOString(), events: "5" });
    const result = await runTask("status", ["--json"], ns.env);
    assert.equal(result.code, 1, result.stderr);
    const report = JSON.parse(result.stdout) as {
      healthy: boolean;
      problems: string[];
      kafka: { topics: { topic: string; partitions: number }[] };
    };
    assert.equal(report.healthy, false);
    assert.equal(report.problems.length, 1);
    assert.match(report.problems[0]!, /^consume: last heartbeat 6\d(\.\d)? s ago/);
    assert.equal(report.kafka.topics.find((t) => t.topic === n.topics.transactions)?.partitions, 6);
    const text = await runTask("status", [], ns.env);
    assert.equal(text.code, 1);
    assert.match(text.stdout, /consume +6\d(\.\d)? +STALE/);
    assert.match(text.stdout, /aggregate +\d(\.\d)? +ok/);
  } finally {
    redis.disconnect();
    await ns.cleanup();
  }
});
