/**
 * Catch-up: a backlog of `events` in PostgreSQL, then each stage alone
 * drains it (`--drain`), timed on the stage's own process. Each stage also
 * runs once with nothing to do before (creating its databases, groups and
 * schema, so that none of that is timed) and once after (its fixed cost:
 * process start, connections, group join), which the report subtracts.
 *
 * @module
 */

import type { Progress } from "./progress.ts";
import type { StageRun } from "./measurements.ts";
import { runStage, type StageExit } from "./stage_process.ts";
import { watchPostgresCpu } from "./pg_cpu.ts";
import { checkpoint } from "./checkpoint.ts";
import { loadConfig } from "../../lib/config.ts";

export type DrainStage = "produce" | "consume" | "aggregate";

export interface CatchUpResult {
  generate: StageRun;
  drains: Record<DrainStage, StageRun>;
}

const DRAIN_ARGS: Record<DrainStage, string[]> = {
  produce: ["--drain"],
  consume: ["--drain"],
  aggregate: ["--drain"],
};

/** `generate` arguments for `count` events as fast as possible, reproducibly. */
export function generateArgs(count: number, { rate = 0, seed = 9 } = {}): string[] {
  return ["--rate", String(rate), "--count", String(count), "--seed", String(seed)];
}

async function timed(
  task: string,
  args: string[],
  env: Record<string, string>,
  progress: Progress,
  label: string,
  events = 0,
): Promise<StageExit & { pgCpuSeconds: number }> {
  progress.update(label);
  // A backlog's phase starts from a fresh checkpoint (./checkpoint.ts); an idle run needs none.
  if (events > 0) await checkpoint(loadConfig(env).databases.dwh);
  const pg = watchPostgresCpu(env.PIPELINE_NAMESPACE ?? "");
  try {
    // Generous (2 minutes plus 1 ms per event): only a stage that hangs hits it.
    const exit = await runStage(task, args, env, { timeoutMs: 120_000 + events });
    return { ...exit, pgCpuSeconds: await pg.stop() };
  } catch (error) {
    await pg.stop();
    throw error;
  }
}

/** Runs every stage once on an empty namespace so that set-up is never timed. */
export async function warmUp(env: Record<string, string>, progress: Progress): Promise<void> {
  await timed("generate", generateArgs(0), env, progress, "warm-up: generate (schema, base data)");
  for (const stage of ["produce", "consume", "aggregate"] as const) {
    await timed(stage, DRAIN_ARGS[stage], env, progress, `warm-up: ${stage} --drain (empty)`);
  }
}

/** Generates `events` unthrottled, then drains them stage by stage. */
export async function catchUp(
  env: Record<string, string>,
  events: number,
  progress: Progress,
): Promise<CatchUpResult> {
  const gen = await timed(
    "generate",
    generateArgs(events),
    env,
    progress,
    `catch-up: generate --rate 0 --count ${events}`,
    events,
  );
  const genIdle = await timed("generate", generateArgs(0), env, progress, "generate (idle)");
  progress.note(`generate: ${events} events in ${(gen.ms / 1000).toFixed(2)} s (wall)`);
  const drains = {} as Record<DrainStage, StageRun>;
  for (const stage of ["produce", "consume", "aggregate"] as const) {
    const label = `catch-up: ${stage} --drain`;
    const run = await timed(stage, DRAIN_ARGS[stage], env, progress, label, events);
    const idle = await timed(stage, DRAIN_ARGS[stage], env, progress, `${stage} --drain (idle)`);
    progress.note(
      `${stage}: drained in ${(run.ms / 1000).toFixed(2)} s wall, ${
        (idle.ms / 1000).toFixed(2)
      } s of it fixed cost`,
    );
    drains[stage] = {
      events,
      wallMs: run.ms,
      idleMs: idle.ms,
      peakRssMb: run.peakRssMb,
      cpuSeconds: run.cpuSeconds,
      pgCpuSeconds: run.pgCpuSeconds,
    };
  }
  return {
    generate: {
      events,
      wallMs: gen.ms,
      idleMs: genIdle.ms,
      peakRssMb: gen.peakRssMb,
      cpuSeconds: gen.cpuSeconds,
      pgCpuSeconds: gen.pgCpuSeconds,
    },
    drains,
  };
}
