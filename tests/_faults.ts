/**
 * Helpers of the fault, bad-input and privilege tests (issue 10): stage
 * processes whose output is kept for assertions, `verify` as the final word,
 * counts read straight from the stores, PostgreSQL connections cut, and a
 * private Kafka (one or three brokers) or Redis on free ports, so that the
 * shared services are never stopped.
 *
 * @module
 */

import assert from "node:assert/strict";
import postgres from "postgres";
import type { Config } from "../lib/config.ts";
import { names, REDIS_KEYS } from "../lib/contracts.ts";
import { createRedis } from "../lib/redis.ts";
import { sleep } from "../lib/retry.ts";
import { forEachLine } from "../services/ops/lines.ts";
import { runTask, spawnTask, type TaskResult } from "./_support.ts";

/** npm clients leave timers and sockets behind; these tests check outcomes, not leaks. */
export const io = { sanitizeResources: false, sanitizeOps: false };

/** A stage running in the background, its lines kept (stdout and stderr together). */
export interface Stage {
  readonly name: string;
  readonly pid: number;
  readonly lines: string[];
  /** Resolves with the exit status; never rejects. */
  readonly status: Promise<Deno.CommandStatus>;
  /** Waits for a line matching `pattern` (or throws after `ms`). */
  waitLine(pattern: RegExp, ms?: number): Promise<string>;
  /** kill -9 (or another signal) and wait for the exit. */
  kill(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
  /** Whether the process is still running. */
  running(): boolean;
  /** The last lines, for assertion messages. */
  tail(n?: number): string;
}

/**
 * Starts `deno task <task> ...args` as the stage's own process (the task's
 * permission flags), so that a kill -9 hits the stage and not a task shell.
 */
export function startStage(task: string, args: string[], env: Record<string, string>): Stage {
  const child = spawnTask(task, args, env);
  const lines: string[] = [];
  const pipes = Promise.all([
    forEachLine(child.stdout, (l) => lines.push(l)),
    forEachLine(child.stderr, (l) => lines.push(l)),
  ]).catch(() => {});
  let exited = false;
  const status = child.status.then(async (s) => {
    exited = true;
    await pipes;
    return s;
  });
  return {
    name: task,
    pid: child.pid,
    lines,
    status,
    async waitLine(pattern, ms = 60_000) {
      let found: string | undefined;
      await waitFor(`a ${task} line matching ${pattern}`, ms, () => {
        found = lines.find((l) => pattern.test(l));
        if (found === undefined && exited) {
          throw new Error(`${task} exited before printing ${pattern}:\n${tailOf(lines)}`);
        }
        return found !== undefined;
      });
      return found!;
    },
    async kill(signal: Deno.Signal = "SIGKILL") {
      if (!exited) {
        try {
          child.kill(signal);
        } catch {
          // exited between the check and the kill
        }
      }
      return await status;
    },
    running: () => !exited,
    tail: (n = 30) => tailOf(lines, n),
  };
}

function tailOf(lines: string[], n = 30): string {
  return lines.slice(-n).join("\n");
}

/** Polls `test` every 100 ms until it holds; throws after `ms`. */
export async function waitFor(
  what: string,
  ms: number,
  test: () => boolean | Promise<boolean>,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await test())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(100);
  }
}

/** Runs a task to completion and asserts exit 0. */
export async function runOk(
  task: string,
  args: string[],
  env: Record<string, string>,
): Promise<TaskResult> {
  const result = await runTask(task, args, env);
  assert.equal(
    result.code,
    0,
    `deno task ${task} ${args.join(" ")} exited ${result.code}:\n${result.stdout.slice(-3000)}\n${
      result.stderr.slice(-3000)
    }`,
  );
  return result;
}

/** `deno task verify` must exit 0: every line of the reconciliation agrees exactly. */
export async function verifyExact(env: Record<string, string>): Promise<string> {
  const result = await runTask("verify", [], env);
  const differs = result.stdout.split("\n").filter((l) => l.includes("DIFFERS"));
  assert.equal(
    result.code,
    0,
    `verify is not exact (exit ${result.code}):\n${differs.join("\n")}\n${result.stderr}`,
  );
  const last = result.stdout.trim().split("\n").at(-1)!;
  assert.match(last, /✅ all \d+ checks agree/);
  return last;
}

/** One value of a SQL query on `url` (0 when the table does not exist yet). */
export async function sqlNumber(url: string, query: string): Promise<number> {
  const sql = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 5 });
  try {
    const [row] = await sql.unsafe(query);
    return Number(Object.values(row ?? {})[0] ?? 0);
  } catch (error) {
    if ((error as { code?: string }).code === "42P01") return 0; // undefined table
    throw error;
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/** Source events: transactions plus behaviour rows (what the warehouse must hold). */
export async function sourceEvents(config: Config): Promise<number> {
  return await sqlNumber(config.databases.instashop, "select count(*) from transactions") +
    await sqlNumber(config.databases.crm, "select count(*) from user_behavior");
}

/** Rows in the warehouse's `realtime_events`. */
export function warehouseEvents(config: Config): Promise<number> {
  return sqlNumber(config.databases.dwh, "select count(*) from realtime_events");
}

/** `metrics:totals` `events` in Redis (0 when missing). */
export async function redisEvents(config: Config): Promise<number> {
  const redis = createRedis(config);
  try {
    const key = names(config.namespace).redis(REDIS_KEYS.totals);
    return Number(await redis.hget(key, "events") ?? 0);
  } finally {
    redis.disconnect();
  }
}

/**
 * With FAULTS_LOGS=<dir> set, writes each stage's lines to `<dir>/<label>-<stage>.log`
 * (for looking into a failure; the tests print only the last lines).
 */
export async function keepLogs(label: string, stages: Stage[]): Promise<void> {
  const dir = Deno.env.get("FAULTS_LOGS");
  if (!dir) return;
  await Deno.mkdir(dir, { recursive: true });
  for (const stage of stages) {
    await Deno.writeTextFile(`${dir}/${label}-${stage.name}.log`, stage.lines.join("\n") + "\n");
  }
}

/** The generator and the three live stages of one run. */
export interface LivePipeline {
  generate: Stage;
  /** produce, consume, aggregate: they run until stopped. */
  stages: Stage[];
  all(): Stage[];
}

/** Starts the generator (`generateArgs`) and produce, consume and aggregate, all live. */
export function startPipeline(
  generateArgs: string[],
  env: Record<string, string>,
): LivePipeline {
  const generate = startStage("generate", generateArgs, env);
  const stages = ["produce", "consume", "aggregate"].map((task) => startStage(task, [], env));
  return { generate, stages, all: () => [generate, ...stages] };
}

/**
 * Waits until the warehouse and Redis hold every source event, from the live
 * stages alone (no --drain); the message names the counts and the stages' last lines.
 */
export async function caughtUp(
  config: Config,
  stages: Stage[],
  ms: number,
  env?: Record<string, string>,
): Promise<number> {
  let source = 0;
  try {
    await waitFor("the live stages to catch up", ms, async () => {
      source = await sourceEvents(config);
      const dead = stages.find((s) => !s.running());
      if (dead) throw new Error(`${dead.name} exited before the pipeline caught up`);
      return source > 0 && await warehouseEvents(config) === source &&
        await redisEvents(config) === source;
    });
  } catch (error) {
    const tails = stages.map((s) => `--- ${s.name}\n${s.tail(15)}`).join("\n");
    const counts = `source ${source}, warehouse ${await warehouseEvents(config)}, ` +
      `redis ${await redisEvents(config)}`;
    throw new Error(
      `${(error as Error).message} (${counts})\n${tails}\n${env ? await diagnose(env) : ""}`,
    );
  }
  return source;
}

/** What verify and status say, for a failure message: the differing lines, lag, dead letters. */
export async function diagnose(env: Record<string, string>): Promise<string> {
  const verify = await runTask("verify", [], env);
  const status = await runTask("status", ["--json"], env);
  let groups = status.stdout;
  try {
    const report = JSON.parse(status.stdout);
    groups = JSON.stringify({
      groups: report.kafka?.groups,
      dead_letters: report.redis?.dead_letters,
    });
  } catch {
    // not JSON: keep the text
  }
  const differs = verify.stdout.split("\n").filter((l) => l.includes("DIFFERS"));
  return `--- verify (exit ${verify.code})\n${differs.join("\n")}\n--- status\n${groups}`;
}

/** SIGTERM every stage; each must stop cleanly (exit 0). */
export async function stopAll(stages: Stage[]): Promise<void> {
  for (const stage of stages) {
    const status = await stage.kill("SIGTERM");
    assert.equal(status.code, 0, `${stage.name} did not stop cleanly:\n${stage.tail()}`);
  }
}

/** Asserts that no live stage exited by itself (a fault must not stop the pipeline). */
export function assertRunning(stages: Stage[], fault: string): void {
  for (const stage of stages) {
    assert.ok(stage.running(), `${stage.name} stopped on ${fault}:\n${stage.tail()}`);
  }
}
