/**
 * Least privilege (issue 10): every task runs with explicit permission
 * lists, never -A; the few unscoped flags left are named here with their
 * reason, so a new one fails this test. A probe run with exactly each
 * stage's flags shows what the stage is denied, and a real stage pointed at
 * a non-loopback database is refused by Deno itself.
 */

import assert from "node:assert/strict";
import { childEnv } from "../lib/config.ts";
import { denoExecutable, taskArgv } from "../lib/tasks.ts";
import { io, startStage } from "./_faults.ts";
import { freePorts } from "./_faults_stack.ts";
import { createTestNamespace, runTask } from "./_support.ts";

const ROOT = new URL("..", import.meta.url);
const TASKS = (JSON.parse(Deno.readTextFileSync(new URL("deno.json", ROOT))) as {
  tasks: Record<string, string>;
}).tasks;

const PERMISSIONS = ["net", "env", "read", "write", "run", "ffi", "sys", "import"] as const;

/**
 * Unscoped flags that remain, and why (docs/reliability.md says the same).
 * Everything else must carry a list.
 */
const UNSCOPED: Record<string, string[]> = {};

/** The permission flags of every `deno run|test` step of `task`. */
function flagsOf(task: string): string[][] {
  return TASKS[task]!.split("&&").map((s) => s.trim().split(/\s+/))
    .filter((step) => step[0] === "deno" && (step[1] === "run" || step[1] === "test"))
    .map((step) => step.filter((a) => a.startsWith("-")));
}

Deno.test("privilege: no task has -A, and every permission flag has a list but the named ones", () => {
  for (const task of Object.keys(TASKS)) {
    for (const flags of flagsOf(task)) {
      assert.ok(!flags.includes("-A") && !flags.includes("--allow-all"), `${task} has -A`);
      assert.ok(flags.includes("--no-prompt"), `${task} may prompt`);
      const unscoped = PERMISSIONS.filter((p) => flags.includes(`--allow-${p}`));
      assert.deepEqual(unscoped, UNSCOPED[task] ?? [], `${task}: unscoped ${unscoped}`);
      for (const p of ["ffi", "sys", "import"]) {
        assert.ok(!flags.some((f) => f.startsWith(`--allow-${p}`)), `${task} has --allow-${p}`);
      }
    }
  }
  // The stages and the read-only tools get no write, no run, and network on loopback only.
  for (const task of ["generate", "produce", "consume", "aggregate", "dashboard", "status"]) {
    const [flags] = flagsOf(task).slice(-1);
    assert.ok(!flags!.some((f) => /^--allow-(write|run)/.test(f)), `${task} may write or run`);
    const net = flags!.find((f) => f.startsWith("--allow-net="))!.split("=")[1]!.split(",");
    assert.ok(net.every((h) => ["127.0.0.1", "localhost", "0.0.0.0"].includes(h)), task);
  }
});

type Outcome = "denied" | "allowed";

/**
 * What each task's flags must allow (everything else the probe tries must be
 * denied, Deno.kill included: it needs --allow-run without a list, which no
 * task has).
 */
const ALLOWED: Record<string, string[]> = {
  generate: [],
  produce: [],
  consume: [],
  aggregate: [],
  status: [],
  verify: [],
  // Serves static/ only.
  dashboard: [],
  // Reads deno.json for the stages' commands; passes HOME, PATH... on to them.
  soak: ["read deno.json", "env HOME"],
  // The stack runs its programs (id, ps, setsid, java...) and writes only its state folder.
  stack: ["read deno.json", "run id"],
  // start is the stack plus the supervisor: passes HOME, PATH... on to the stages.
  start: ["read deno.json", "env HOME", "run id"],
  setup: ["read deno.json", "env HOME", "run id"],
  bench: ["read deno.json", "env HOME"],
};

Deno.test(
  "privilege: a probe with exactly each stage's flags is denied what the stage was not given",
  io,
  async () => {
    const probe = "tests/fixtures/privilege_probe.ts";
    // A file no task may write (the stack writes only ./.stack, its jar cache and the temp
    // folders), and the only one the test task may: not the project root, which may itself lie
    // below /tmp (CI clones there).
    const target = `${Deno.env.get("HOME")}/.instashop-privilege-probe`;
    await Deno.remove(target).catch(() => {});
    const redisPort = new URL(Deno.env.get("REDIS_URL") ?? "redis://127.0.0.1:6379").port || "6379";
    try {
      for (const [task, allowed] of Object.entries(ALLOWED)) {
        // The task's own `deno run` flags, with the probe in place of the stage's entry.
        const argv = [...taskArgv(task).slice(0, -1), probe, redisPort, target];
        const out = await new Deno.Command(denoExecutable(), {
          args: argv,
          cwd: ROOT,
          env: { ...childEnv(), PIPELINE_NAMESPACE: "t_privilege" },
          clearEnv: true,
          stdin: "null",
        }).output();
        const text = new TextDecoder().decode(out.stdout).trim();
        assert.equal(out.code, 0, `${task}: ${new TextDecoder().decode(out.stderr)}`);
        const outcomes = JSON.parse(text.split("\n").at(-1)!) as Record<string, Outcome>;
        // Controls: the probe really ran with working grants.
        assert.equal(outcomes["net 127.0.0.1 (Redis)"], "allowed", task);
        assert.equal(outcomes["env PIPELINE_NAMESPACE"], "allowed", task);
        for (const [what, outcome] of Object.entries(outcomes)) {
          if (what.startsWith("net 127.0.0.1") || what === "env PIPELINE_NAMESPACE") continue;
          const expected = allowed.includes(what) ? "allowed" : "denied";
          assert.equal(outcome, expected, `${task}: ${what} was ${outcome}`);
        }
        assert.equal(
          await Deno.stat(target).then(() => true, () => false),
          false,
          `${task} wrote a file`,
        );
      }
    } finally {
      await Deno.remove(target).catch(() => {});
    }
  },
);

Deno.test(
  "privilege: the generate stage pointed at a non-loopback database is refused by Deno",
  io,
  async () => {
    // A namespace of its own: the stage still writes its heartbeat to Redis before it gives up.
    const ns = await createTestNamespace("priv");
    try {
      const result = await runTask("generate", ["--count", "1"], {
        ...ns.env,
        INSTASHOP_DATABASE_URL: "postgres://postgres@10.255.255.1:5432/instashop",
      });
      assert.equal(result.code, 1, result.stderr);
      const last = result.stderr.trim().split("\n").at(-1)!;
      assert.match(
        last,
        /^error: Cannot reach PostgreSQL at postgres:\/\/postgres@10\.255\.255\.1/,
      );
      assert.match(last, /Requires net access to "10\.255\.255\.1:5432"/);
    } finally {
      await ns.cleanup();
    }
  },
);

Deno.test(
  "privilege: no secret in any dashboard page or log line (database password, token)",
  io,
  async () => {
    const ns = await createTestNamespace("priv_dash");
    const port = freePorts(1);
    const token = "tok-7f3a9c-secret";
    const password = "pg-9d2e-secret";
    // PostgreSQL trusts local connections, so any password works and must still never show.
    const withPassword = (url: string) =>
      url.replace("postgres://postgres@", `postgres://postgres:${password}@`);
    const env = {
      ...ns.env,
      HOST: "127.0.0.1",
      PORT: String(port),
      DASHBOARD_TOKEN: token,
      INSTASHOP_DATABASE_URL: withPassword(ns.config.serverUrls.instashop),
      CRM_DATABASE_URL: withPassword(ns.config.serverUrls.crm),
      DWH_DATABASE_URL: withPassword(ns.config.serverUrls.dwh),
    };
    assert.ok(env.DWH_DATABASE_URL.includes(password));
    const dashboard = startStage("dashboard", [], env);
    try {
      await dashboard.waitLine(/Dashboard on http/);
      const bodies: { authorized: boolean; text: string }[] = [];
      const paths = ["/", "/api/metrics", "/api/history", "/api/health", "/static/dashboard.css"];
      for (const path of paths) {
        for (const authorized of [true, false]) {
          const headers: Record<string, string> = authorized
            ? { authorization: `Bearer ${token}` }
            : {};
          const response = await fetch(`http://127.0.0.1:${port}${path}`, { headers });
          bodies.push({ authorized, text: `${path} ${response.status} ${await response.text()}` });
        }
      }
      // The stream: its first frames, then the client leaves.
      const stream = await fetch(`http://127.0.0.1:${port}/api/stream`, {
        headers: { authorization: `Bearer ${token}` },
      });
      const reader = stream.body!.getReader();
      const first = await reader.read();
      bodies.push({ authorized: true, text: new TextDecoder().decode(first.value) });
      await reader.cancel();
      assert.ok(bodies.some((b) => b.text.startsWith("/ 200 ")), "the page was not served");
      for (const { authorized, text } of bodies) {
        const where = text.slice(0, 40);
        assert.ok(!text.includes(password), `the database password in ${where}`);
        // A page served to the token's holder links its stream and styles with it (EventSource
        // cannot send a header); nowhere else, and never to anyone without it.
        const bare = text.replaceAll(`token=${token}`, "token=…");
        assert.ok(!bare.includes(token), `the token outside a link in ${where}`);
        if (!authorized) assert.ok(!text.includes(token), `the token without auth in ${where}`);
      }
    } finally {
      await dashboard.kill("SIGTERM");
      await ns.cleanup();
    }
    const log = dashboard.lines.join("\n");
    assert.match(log, /warehouse postgres:\/\/postgres:\*\*\*@/);
    assert.ok(!log.includes(password), `the database password in the log:\n${log}`);
    assert.ok(!log.includes(token), `the token in the log:\n${log}`);
  },
);
