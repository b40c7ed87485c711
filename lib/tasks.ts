/**
 * The tasks of deno.json as commands: the supervisor (`deno task start`) and
 * the tests run a stage's own `deno run` process with the task's own
 * permission flags, so that a signal or a kill -9 hits the stage itself and
 * not a task shell.
 *
 * @module
 */

/** A task split into the tasks it runs first (`deno task build && ...`) and its `deno run` argv. */
export interface TaskCommand {
  /** Names of tasks run before, e.g. `["build"]` for the dashboard. */
  prelude: string[];
  /** Arguments after the `deno` executable, e.g. `["run", "--allow-net=...", "main.ts"]`. */
  argv: string[];
}

const DENO_JSON = new URL("../deno.json", import.meta.url);

/**
 * The `deno` to spawn: this very executable when `--allow-run` covers it,
 * else `deno` from PATH. A `--allow-run=deno` entry names the PATH one
 * (e.g. /usr/bin/deno), while Deno.execPath() is the symlink's target
 * (e.g. /usr/lib/node_modules/deno/deno), which that entry does not cover.
 *
 * @example
 * ```ts ignore
 * import { denoExecutable, taskArgv } from "./tasks.ts";
 * new Deno.Command(denoExecutable(), { args: taskArgv("produce") });
 * ```
 */
export function denoExecutable(): string {
  const self = Deno.execPath();
  const state = Deno.permissions.querySync({ name: "run", command: self }).state;
  return state === "granted" ? self : "deno";
}

/**
 * Reads `task` from deno.json. Only the shape the project uses is accepted:
 * any number of `deno task <name>` steps joined by `&&`, then one `deno run`.
 *
 * @example
 * ```ts ignore
 * import { taskCommand } from "./tasks.ts";
 * taskCommand("dashboard"); // { prelude: ["build"], argv: ["run", ..., "services/dashboard/cli.ts"] }
 * ```
 * @throws {Error} when the task is missing or has another shape.
 */
export function taskCommand(
  task: string,
  tasks: Record<string, string> = readTasks(),
): TaskCommand {
  const steps = splitSteps(task, tasks);
  const argv = runArgv(task, steps.pop()!);
  const prelude = steps.map((step) => {
    if (step[0] !== "deno" || step[1] !== "task" || step.length !== 3) {
      throw new Error(
        `Cannot run task ${task} as a stage: its step "${step.join(" ")}" is not \`deno task X\``,
      );
    }
    return step[2]!;
  });
  return { prelude, argv };
}

/**
 * The argv of a task's final `deno run` command (without the `deno` itself).
 *
 * @example
 * ```ts ignore
 * import { taskArgv } from "./tasks.ts";
 * new Deno.Command(Deno.execPath(), { args: [...taskArgv("produce"), "--drain"] });
 * ```
 */
export function taskArgv(task: string, tasks: Record<string, string> = readTasks()): string[] {
  return runArgv(task, lastStep(task, tasks));
}

function splitSteps(task: string, tasks: Record<string, string>): string[][] {
  const command = tasks[task];
  if (command === undefined) throw new Error(`Cannot find task ${task} in deno.json`);
  return command.split("&&").map((step) => step.trim().split(/\s+/));
}

function lastStep(task: string, tasks: Record<string, string>): string[] {
  return splitSteps(task, tasks).at(-1)!;
}

function runArgv(task: string, step: string[]): string[] {
  if (step[0] !== "deno" || step[1] !== "run") {
    throw new Error(`Cannot run task ${task} as a stage: it does not end in \`deno run\``);
  }
  return step.slice(1);
}

function readTasks(): Record<string, string> {
  return (JSON.parse(Deno.readTextFileSync(DENO_JSON)) as { tasks: Record<string, string> })
    .tasks;
}
