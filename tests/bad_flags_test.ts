/**
 * Bad flags and bad environment values of every task (issue 10): one clear
 * line, exit 2, no stack trace; a password in a bad URL is never printed.
 * Each case is a `deno task` run as a user types it.
 */

import assert from "node:assert/strict";
import { childEnv } from "../lib/config.ts";
import { denoExecutable } from "../lib/tasks.ts";
import { io } from "./_faults.ts";

/** `deno task <task> ...args` as a user runs it, killed after `ms` if it does not end. */
async function runBounded(
  task: string,
  args: string[],
  env: Record<string, string>,
  ms = 90_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(denoExecutable(), {
    args: ["task", "--quiet", task, ...args],
    cwd: new URL("..", import.meta.url),
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), ms);
  try {
    const out = await child.output();
    const text = new TextDecoder();
    return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
  } finally {
    clearTimeout(timer);
  }
}

// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;

/** The program's own stderr lines: without colours and without deno task's `Task x` echo. */
function errorLines(stderr: string): string[] {
  return stderr.replace(ANSI, "").split("\n")
    .filter((l) => l.trim() !== "" && !/^Task \w+ /.test(l));
}

/** Runs `cases` a few at a time (each is a separate deno process). */
async function inBatches<T>(cases: T[], size: number, fn: (c: T) => Promise<void>) {
  for (let i = 0; i < cases.length; i += size) await Promise.all(cases.slice(i, i + size).map(fn));
}

/** Every task with project flags or configuration (`build` and `test` have neither). */
const BAD_ENV: [task: string, args: string[], variable: string, value: string][] = [
  ["generate", [], "INSTASHOP_DATABASE_URL", "mysql://shop:s3cret@127.0.0.1/instashop"],
  ["produce", ["--drain"], "PIPELINE_NAMESPACE", "Bad-Namespace"],
  ["consume", ["--drain"], "KAFKA_BROKERS", "127.0.0.1"],
  ["aggregate", ["--drain"], "REDIS_URL", "http://127.0.0.1:6379"],
  ["dashboard", [], "PORT", "99999"],
  ["status", [], "DWH_DATABASE_URL", "not a url"],
  ["verify", [], "CRM_DATABASE_URL", "postgres://127.0.0.1:5432/Bad-Name"],
  ["stack", ["status"], "KAFKA_PARTITIONS", "0"],
  ["start", [], "DASHBOARD_MAX_STREAMS", "-1"],
  ["bench", [], "KAFKA_PARTITIONS", "zero"],
  ["soak", [], "REDIS_URL", "redis://[::1"],
];

Deno.test("bad input: a bad environment value gets one line naming it, exit 2", io, async () => {
  const base = childEnv();
  await inBatches(BAD_ENV, 4, async ([task, args, variable, value]) => {
    const result = await runBounded(task, args, { ...base, [variable]: value });
    const lines = errorLines(result.stderr);
    const what = `deno task ${task} with ${variable}=${value}`;
    assert.equal(result.code, 2, `${what}: exit ${result.code}\n${result.stderr}`);
    assert.equal(lines.length, 1, `${what}: not one line:\n${result.stderr}`);
    assert.match(lines[0]!, new RegExp(`^error: Cannot use ${variable} as `), what);
    assert.ok(!result.stderr.includes("s3cret"), `${what}: the password was printed`);
  });
});

const BAD_FLAGS: [task: string, args: string[], says: RegExp][] = [
  ...["generate", "produce", "consume", "aggregate", "dashboard", "status", "verify", "start"]
    .map((t): [string, string[], RegExp] => [t, ["--bogus"], /Unknown option '--bogus'/]),
  ...["bench", "setup", "soak"]
    .map((t): [string, string[], RegExp] => [t, ["--bogus"], /Unknown option '--bogus'/]),
  ["stack", ["sideways"], /Cannot run stack command "sideways"/],
  ["stack", ["up", "--brokers", "2"], /--brokers/],
  ["generate", ["--rate", "fast"], /Cannot use --rate as a number/],
  ["generate", ["stray"], /Unexpected argument 'stray'/],
  ["produce", ["--interval", "10ms"], /--interval/],
  ["aggregate", ["--window", "0"], /--window/],
  ["status", ["--stale", "soon"], /--stale/],
  ["start", ["--brokers", "2"], /--brokers as 1 or 3/],
  ["start", ["--stall-timeout", "2s"], /--stall-timeout as less than 5s/],
  ["start", ["--stall-timeout", "soon"], /--stall-timeout as a duration/],
  ["bench", ["--warm-up", "-1"], /--warm-up/],
  ["bench", ["--events", "0"], /--events/],
  ["soak", ["--rate", "fast"], /--rate/],
  ["soak", ["--minutes", "0"], /--minutes/],
];

Deno.test(
  "bad input: a bad flag gets a clear error line first, exit 2, no stack trace",
  io,
  async () => {
    const base = childEnv();
    await inBatches(BAD_FLAGS, 4, async ([task, args, says]) => {
      const result = await runBounded(task, args, base);
      const lines = errorLines(result.stderr);
      const what = `deno task ${task} ${args.join(" ")}`;
      assert.equal(result.code, 2, `${what}: exit ${result.code}\n${result.stderr}`);
      assert.match(lines[0] ?? "", /^error: /, `${what}:\n${result.stderr}`);
      assert.match(lines[0]!, says, what);
      assert.ok(!lines.some((l) => /^\s+at /.test(l)), `${what}: a stack trace\n${result.stderr}`);
    });
  },
);
