/**
 * A stage as the user runs it: the task's own `deno run` command (permissions
 * included, read from deno.json) spawned directly, so that the pid is the
 * stage's and `/proc/<pid>/status` gives its memory. Output is drained (a
 * full pipe would stall the stage) and the tail kept for error messages.
 *
 * @module
 */

import { denoExecutable, taskArgv } from "../../lib/tasks.ts";
import { watchRss } from "./rss.ts";

export interface StageExit {
  task: string;
  code: number;
  /** Wall time from spawn to exit. */
  ms: number;
  peakRssMb: number;
  /** User + system CPU seconds of the process (all threads), to the last sample. */
  cpuSeconds: number;
  /** Last lines of stdout and stderr together, for error messages. */
  tail: string;
}

export interface StageProcess {
  task: string;
  pid: number;
  startedAt: number;
  /** CPU seconds used so far (last sample). */
  cpu(): number;
  /** CPU seconds used so far, sampled now. */
  cpuNow(): Promise<number>;
  /** Resolves when the process exits (whatever the code). */
  exited: Promise<StageExit>;
  /** Sends SIGTERM (the stages' clean shutdown) and waits; SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<StageExit>;
}

const ROOT = new URL("../../", import.meta.url);
const live = new Set<StageProcess>();

/** Stops every stage process this bench started and that still runs (Ctrl-C). */
export async function stopAllStages(): Promise<void> {
  await Promise.all([...live].map((stage) => stage.stop(5_000)));
}

/** Spawns `task` with `args` in `env` (the bench namespace's). */
export function spawnStage(
  task: string,
  args: string[],
  env: Record<string, string>,
  { onLine, sampleEveryMs = 200 }: {
    onLine?: (line: string) => void;
    /** How often peak RSS and CPU are read (each read spawns a `cat` beside the stages). */
    sampleEveryMs?: number;
  } = {},
): StageProcess {
  const startedAt = performance.now();
  const child = new Deno.Command(denoExecutable(), {
    args: [...taskArgv(task), ...args],
    cwd: ROOT,
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const rss = watchRss(child.pid, sampleEveryMs);
  const tail: string[] = [];
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    let rest = "";
    for await (const bytes of stream) {
      const parts = (rest + decoder.decode(bytes, { stream: true })).split("\n");
      rest = parts.pop()!;
      for (const line of parts) {
        onLine?.(line);
        tail.push(line);
        if (tail.length > 40) tail.shift();
      }
    }
    if (rest) tail.push(rest);
  };
  const drained = Promise.all([collect(child.stdout), collect(child.stderr)]);
  // Read the peak while the process still exists: the last sample before `status` reaps it.
  const exited = child.status.then(async (status) => {
    const ms = performance.now() - startedAt;
    const peakRssMb = await rss.stop();
    await drained.catch(() => {});
    return {
      task,
      code: status.code,
      ms,
      peakRssMb,
      cpuSeconds: rss.cpu(),
      tail: tail.join("\n"),
    };
  });
  const stage: StageProcess = {
    task,
    pid: child.pid,
    startedAt,
    exited,
    cpu: () => rss.cpu(),
    cpuNow: () => rss.sampleNow(),
    async stop(graceMs = 15_000) {
      try {
        child.kill("SIGTERM");
      } catch {
        // Already gone.
      }
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch {
          // Already gone.
        }
      }, graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
  live.add(stage);
  exited.finally(() => live.delete(stage));
  return stage;
}

/**
 * Runs `task` to completion; throws with its output tail when it fails or
 * when it is still running after `timeoutMs` (then it is stopped).
 */
export async function runStage(
  task: string,
  args: string[],
  env: Record<string, string>,
  { timeoutMs = 600_000 }: { timeoutMs?: number } = {},
): Promise<StageExit> {
  const stage = spawnStage(task, args, env);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((resolve) => {
    timer = setTimeout(() => resolve("late"), timeoutMs);
  });
  const first = await Promise.race([stage.exited, late]);
  clearTimeout(timer);
  const command = `\`deno task ${task} ${args.join(" ")}\``;
  if (first === "late") {
    const result = await stage.stop(5_000);
    throw new Error(
      `Cannot benchmark ${task} as ${command} was still running after ${
        Math.round(timeoutMs / 1000)
      } s (stopped); its last lines:\n${result.tail.split("\n").slice(-8).join("\n")}`,
    );
  }
  if (first.code !== 0) {
    throw new Error(
      `Cannot benchmark ${task} as ${command} exited ${first.code}:\n${
        first.tail.split("\n").slice(-8).join("\n")
      }`,
    );
  }
  return first;
}
