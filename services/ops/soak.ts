/**
 * `deno task soak`: the whole pipeline at a steady rate (1,000 events/s) for
 * a long while (10 minutes), in a namespace of its own, reporting each
 * stage's resident memory at the start (after a warm-up) and at the end, and
 * failing when one grew beyond the bound or when `verify` is not exact
 * afterwards. Not part of `deno task test`. See docs/reliability.md.
 *
 * @module
 */

import { durationFlag, numberFlag, parseFlags, runMain, UsageError } from "../../lib/cli.ts";
import { childEnv } from "../../lib/config.ts";
import { createLogger } from "../../lib/log.ts";
import { sleep } from "../../lib/retry.ts";
import { taskArgv } from "../../lib/tasks.ts";
import { createBenchNamespace } from "../bench/namespace.ts";
import { forEachLine } from "./lines.ts";
import {
  type Counts,
  formatMb,
  type MemoryTrack,
  memoryVerdict,
  readCounts,
  rssMb,
} from "./soak_watch.ts";
import { renderTable } from "./table.ts";

const SUMMARY = "Run generate, produce, consume and aggregate at a steady rate for a long " +
  "while and report each stage's memory at start and end (not part of the tests).";

const FLAGS = {
  rate: { type: "string", default: "1000", help: "generator events per second" },
  minutes: { type: "string", default: "10", help: "how long the generator runs" },
  sample: { type: "string", default: "30s", help: "how often memory and counts are read" },
  warmup: {
    type: "string",
    default: "60s",
    help: "memory at this point is the start the bound is measured from",
  },
  "bound-mb": {
    type: "string",
    default: "64",
    help: "most a stage's memory may grow from the start to the end, in MB",
  },
  keep: { type: "boolean", help: "keep the soak namespace (databases, topics, keys)" },
} as const;

const STAGES = ["generate", "produce", "consume", "aggregate"] as const;
const ROOT = new URL("../../", import.meta.url);

interface Running {
  stage: string;
  child: Deno.ChildProcess;
  tail: string[];
  exited?: Deno.CommandStatus;
}

await runMain(async (signal) => {
  const flags = parseFlags("soak", SUMMARY, Deno.args, FLAGS);
  const rate = numberFlag("rate", flags.rate, 1, 100_000);
  const minutes = numberFlag("minutes", flags.minutes, 0.1, 24 * 60);
  const sampleMs = durationFlag("sample", flags.sample);
  const warmupMs = durationFlag("warmup", flags.warmup);
  const boundMb = numberFlag("bound-mb", flags["bound-mb"], 1);
  if (sampleMs < 1000) {
    throw new UsageError(`Cannot use --sample below 1s: current value is "${flags.sample}"`);
  }
  if (warmupMs >= minutes * 60_000) {
    throw new UsageError(
      `Cannot use --warmup ${flags.warmup} as it must be shorter than --minutes ${flags.minutes}`,
    );
  }
  const log = createLogger();
  const ns = await createBenchNamespace(childEnv(), "soak");
  log.info(
    `🧪 Soak: ${rate} events/s for ${minutes} min in namespace ${ns.namespace}; ` +
      `memory bound +${boundMb} MB per stage from ${flags.warmup} to the end`,
  );
  const running: Running[] = [];
  try {
    const startedAt = Date.now();
    const generateArgs = ["--rate", String(rate), "--duration", `${minutes}m`, "--seed", "42"];
    for (const stage of STAGES) {
      running.push(spawn(stage, stage === "generate" ? generateArgs : [], ns.env));
    }
    const tracks = new Map<string, MemoryTrack>(STAGES.map((s) => [s, { stage: s, peak: 0 }]));
    let counts: Counts = { source: 0, warehouse: 0, redis: 0 };
    const sample = async (phase: string) => {
      const elapsed = Date.now() - startedAt;
      const mbs: string[] = [];
      for (const r of running) {
        const mb = r.exited ? undefined : await rssMb(r.child.pid);
        const track = tracks.get(r.stage)!;
        if (mb !== undefined) {
          track.first ??= mb;
          if (elapsed >= warmupMs) track.warm ??= mb;
          if (r.stage !== "generate" || elapsed < minutes * 60_000) track.last = mb;
          track.peak = Math.max(track.peak, mb);
        }
        mbs.push(`${r.stage} ${formatMb(mb)}`);
      }
      counts = await readCounts(ns.config);
      log.info(
        `⏱️  ${phase} ${(elapsed / 1000).toFixed(0)} s | MB: ${mbs.join(", ")} | events: ` +
          `source ${counts.source}, warehouse ${counts.warehouse}, redis ${counts.redis}`,
      );
    };

    const generate = running[0]!;
    await sleep(Math.min(5000, sampleMs), signal);
    while (!signal.aborted && !generate.exited) {
      await sample("running");
      const crashed = running.find((r) => r.stage !== "generate" && r.exited);
      if (crashed) throw new Error(`${crashed.stage} exited:\n${crashed.tail.join("\n")}`);
      await sleepUntil(sampleMs, signal, () => generate.exited !== undefined);
    }
    if (signal.aborted) return 130;
    if (!generate.exited?.success) {
      throw new Error(`generate failed:\n${generate.tail.join("\n")}`);
    }
    const generatedMs = Date.now() - startedAt;
    // Catch up, then the end sample: the stages as they are with the whole run behind them.
    const deadline = Date.now() + 180_000;
    while (!signal.aborted && Date.now() < deadline) {
      await sample("catching up");
      if (counts.warehouse === counts.source && counts.redis === counts.source) break;
      await sleep(Math.min(sampleMs, 5000), signal);
    }
    const caughtUp = counts.warehouse === counts.source && counts.redis === counts.source;
    await stopAll(running);
    const verify = await runVerify(ns.env);

    const rows = [...tracks.values()].map((t) => {
      const verdict = memoryVerdict(t, boundMb);
      return [
        t.stage,
        ...[t.first, t.warm, t.last, t.peak, verdict.growthMb].map(roundMb),
        verdict.ok ? "ok" : "OVER",
      ];
    });
    console.log(
      renderTable(
        ["stage", "first MB", "start MB", "end MB", "peak MB", "growth MB", `<= ${boundMb} MB`],
        rows,
      ).join("\n"),
    );
    const achieved = counts.source / (generatedMs / 1000);
    log.info(
      `📊 ${counts.source} events in ${(generatedMs / 1000).toFixed(0)} s ` +
        `(${achieved.toFixed(0)} events/s); caught up: ${caughtUp ? "yes" : "NO"}; ` +
        `verify: ${verify.line}`,
    );
    const ok = caughtUp && verify.ok && rows.every((r) => r[6] === "ok");
    log.info(ok ? "✅ Soak passed" : "❌ Soak failed");
    return ok ? 0 : 1;
  } finally {
    await stopAll(running);
    if (!flags.keep) await ns.cleanup();
  }
});

/**
 * A stage as `deno task <stage>` runs it (the task's own permissions). `deno`
 * is found on PATH: --allow-run=deno names it, and Deno.execPath() may be the
 * symlink's target, which that grant does not cover.
 */
function spawn(stage: string, args: string[], env: Record<string, string>): Running {
  const child = new Deno.Command("deno", {
    args: [...taskArgv(stage), ...args],
    cwd: ROOT,
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const running: Running = { stage, child, tail: [] };
  const keep = (line: string) => {
    running.tail.push(line);
    if (running.tail.length > 20) running.tail.shift();
  };
  void Promise.all([forEachLine(child.stdout, keep), forEachLine(child.stderr, keep)])
    .catch(() => {});
  void child.status.then((status) => running.exited = status);
  return running;
}

async function stopAll(running: Running[]): Promise<void> {
  for (const r of running) {
    if (r.exited) continue;
    try {
      r.child.kill("SIGTERM");
    } catch {
      // already gone
    }
  }
  await Promise.all(running.map(async (r) => {
    const timer = setTimeout(() => {
      try {
        r.child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }, 15_000);
    await r.child.status;
    clearTimeout(timer);
  }));
}

async function runVerify(env: Record<string, string>): Promise<{ ok: boolean; line: string }> {
  const out = await new Deno.Command("deno", {
    args: taskArgv("verify"),
    cwd: ROOT,
    env,
    clearEnv: true,
    stdin: "null",
  }).output();
  const text = new TextDecoder();
  const last = (s: Uint8Array) => text.decode(s).trim().split("\n").at(-1) ?? "";
  return { ok: out.success, line: out.success ? last(out.stdout) : last(out.stderr) };
}

/** MB to one decimal, as a number so that the table right-aligns it. */
function roundMb(mb: number | undefined): number | undefined {
  return mb === undefined || Number.isNaN(mb) ? undefined : Math.round(mb * 10) / 10;
}

async function sleepUntil(ms: number, signal: AbortSignal, done: () => boolean): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline && !signal.aborted && !done()) await sleep(250, signal);
}
