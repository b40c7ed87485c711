/**
 * Runs the stages as child processes: each in its own process group (a
 * Ctrl-C in the terminal reaches only the supervisor, which then stops them
 * in order), each output line prefixed with its stage, a crash restarted
 * with exponential backoff, and a stop that leaves no process behind
 * (SIGTERM to the group, SIGKILL after a timeout; SIGKILL to every group if
 * the supervisor itself exits early).
 *
 * The stop goes in pipeline order, and a stage with a `drain` command is
 * drained after it stopped, while the stages after it still run: what was in
 * flight reaches the end, so the stores reconcile after a stop.
 *
 * @module
 */

import { sleep } from "../../lib/retry.ts";
import { sendSignal, sendSignalSync } from "../../lib/signal.ts";
import { denoExecutable } from "../../lib/tasks.ts";
import { consoleSink, forEachLine, type LineSink, stagePrefix } from "./lines.ts";

/** One supervised child: `argv` follows the `deno` executable. */
export interface ChildSpec {
  name: string;
  argv: string[];
  /** Commands (argv after `deno`) run once, before the first start, e.g. `["task", "build"]`. */
  prelude?: string[][];
  /** Arguments that make the stage process its backlog and exit (`["--drain"]`), run at stop. */
  drain?: string[];
}

export interface BackoffOptions {
  /** First restart delay (default 1 s), doubled per consecutive crash. */
  initialMs?: number;
  /** Longest delay (default 30 s). */
  maxMs?: number;
  /** A run at least this long resets the delay (default 60 s). */
  stableMs?: number;
}

export interface SupervisorOptions {
  children: ChildSpec[];
  cwd: string | URL;
  env: Record<string, string>;
  sink?: LineSink;
  backoff?: BackoffOptions;
  /** How long a stage may take to stop after SIGTERM before SIGKILL (default 10 s). */
  stopTimeoutMs?: number;
  /** How long a drain at stop may take before it is stopped (default 120 s). */
  drainTimeoutMs?: number;
  /** The `deno` to run (default: {@link denoExecutable}). */
  execPath?: string;
  /** Called with the children running now, each time one starts or exits. */
  onChange?: (running: RunningChild[]) => void;
}

/** A child process running now. */
export interface RunningChild {
  name: string;
  pid: number;
  argv: string[];
}

/** Why the supervisor ended by itself (a stop() ends it too, with `stopped`). */
export type SupervisorEnd =
  | { kind: "stopped" }
  | { kind: "finished" }
  | { kind: "fatal"; name: string; code: number };

export interface Supervisor {
  /** Pids of the children running now. */
  pids(): number[];
  /** Every pid ever started (tests check that none is left). */
  allPids(): number[];
  /** Resolves when every child finished, one failed fatally, or stop() completed. */
  readonly done: Promise<SupervisorEnd>;
  /**
   * Stops the children in order (SIGTERM, then SIGKILL), draining those with a
   * `drain` command, and waits for every exit. Idempotent.
   */
  stop(): Promise<void>;
}

/** Exit code of a stage refusing its flags or configuration: restarting cannot help. */
const FATAL_EXIT_CODE = 2;

/**
 * The delay before restart number `crashes` (1-based).
 *
 * @example
 * ```ts
 * import { restartDelay } from "./supervisor.ts";
 * restartDelay(1); // 1000
 * restartDelay(3); // 4000
 * restartDelay(99); // 30000
 * ```
 */
export function restartDelay(
  crashes: number,
  { initialMs = 1000, maxMs = 30_000 }: BackoffOptions = {},
): number {
  return Math.min(maxMs, initialMs * 2 ** Math.max(0, crashes - 1));
}

/**
 * Starts every child at once and keeps them running.
 *
 * @example
 * ```ts ignore
 * const supervisor = createSupervisor({
 *   children: [{ name: "produce", argv: taskArgv("produce") }],
 *   cwd: Deno.cwd(),
 *   env: childEnv(),
 * });
 * await supervisor.stop();
 * ```
 */
export function createSupervisor(options: SupervisorOptions): Supervisor {
  const {
    children,
    cwd,
    env,
    sink = consoleSink,
    backoff = {},
    stopTimeoutMs = 10_000,
    drainTimeoutMs = 120_000,
    execPath = denoExecutable(),
    onChange = () => {},
  } = options;
  const { stableMs = 60_000 } = backoff;
  const stopping = new AbortController();
  const running = new Map<
    number,
    { name: string; argv: string[]; status: Promise<Deno.CommandStatus> }
  >();
  const changed = () =>
    onChange([...running].map(([pid, { name, argv }]) => ({ name, pid, argv })));
  const started: number[] = [];
  let fatal: SupervisorEnd | undefined;
  let stopPromise: Promise<void> | undefined;
  const say = (line: string, stream: "stdout" | "stderr" = "stdout") =>
    sink(`${stagePrefix("start")}${line}`, stream);
  // If the supervisor exits before its stop finished (a second Ctrl-C, an uncaught error),
  // the stages must not outlive it: they are in their own groups, so nobody else would stop them.
  const killAll = () => {
    for (const pid of running.keys()) sendSignalSync(-pid, "SIGKILL");
  };
  globalThis.addEventListener("unload", killAll);

  const runs = children.map((child) => supervise(child));
  const done = Promise.all(runs).then((): SupervisorEnd =>
    fatal ?? (stopping.signal.aborted ? { kind: "stopped" } : { kind: "finished" })
  );

  async function supervise(child: ChildSpec): Promise<void> {
    let crashes = 0;
    for (const argv of child.prelude ?? []) {
      while (!stopping.signal.aborted) {
        const status = await spawnOnce(child.name, argv);
        if (status.success || stopping.signal.aborted) break;
        crashes++;
        await pause(child.name, `\`deno ${argv.join(" ")}\``, status, crashes);
      }
    }
    while (!stopping.signal.aborted) {
      const startedAt = Date.now();
      const status = await spawnOnce(child.name, child.argv, { announce: true });
      if (stopping.signal.aborted) return;
      if (status.success) {
        say(`🏁 ${child.name} finished (exit 0); not restarted`);
        return;
      }
      if (status.code === FATAL_EXIT_CODE) {
        say(`❌ ${child.name} refused its flags or configuration (exit 2); stopping`, "stderr");
        fatal ??= { kind: "fatal", name: child.name, code: status.code };
        void stop();
        return;
      }
      crashes = Date.now() - startedAt >= stableMs ? 1 : crashes + 1;
      await pause(child.name, child.name, status, crashes);
    }
  }

  async function pause(name: string, what: string, status: Deno.CommandStatus, crashes: number) {
    const delay = restartDelay(crashes, backoff);
    const how = status.signal
      ? `was killed by ${status.signal}`
      : `exited with code ${status.code}`;
    say(
      `💥 ${what} ${how}; restart #${crashes} of ${name} in ${(delay / 1000).toFixed(1)} s`,
      "stderr",
    );
    await sleep(delay, stopping.signal);
  }

  async function spawnOnce(
    name: string,
    argv: string[],
    { announce = false, duringStop = false, onSpawn = (_pid: number) => {} } = {},
  ): Promise<Deno.CommandStatus> {
    const process = new Deno.Command(execPath, {
      args: argv,
      cwd,
      env,
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      // Its own process group: the terminal's Ctrl-C reaches only the supervisor,
      // and a stop signals the stage together with anything it spawned.
      detached: true,
    }).spawn();
    const prefix = stagePrefix(name);
    const pipes = Promise.all([
      forEachLine(process.stdout, (line) => sink(`${prefix}${line}`, "stdout")),
      forEachLine(process.stderr, (line) => sink(`${prefix}${line}`, "stderr")),
    ]);
    const status = process.status;
    running.set(process.pid, { name, argv, status });
    changed();
    started.push(process.pid);
    onSpawn(process.pid);
    if (announce) say(`▶️  ${name} started (pid ${process.pid})`);
    if (stopping.signal.aborted && !duringStop) void signalGroup(process.pid, "SIGTERM");
    try {
      const result = await status;
      await pipes.catch(() => {});
      return result;
    } finally {
      running.delete(process.pid);
      changed();
    }
  }

  function stop(): Promise<void> {
    stopPromise ??= (async () => {
      stopping.abort();
      const draining = children.some((c) => c.drain);
      say(
        `🛑 Stopping the stages in pipeline order${
          draining ? ", draining what is in flight (Ctrl-C again to stop at once)" : ""
        }`,
      );
      for (const child of children) {
        const live = [...running.entries()].filter(([, c]) => c.name === child.name);
        await Promise.all(live.map(([pid, c]) => stopChild(pid, c, stopTimeoutMs)));
        if (child.drain) await drain(child, child.drain);
      }
      await Promise.all(runs);
      globalThis.removeEventListener("unload", killAll);
    })();
    return stopPromise;
  }

  async function drain(child: ChildSpec, args: string[]): Promise<void> {
    say(`⏳ Draining ${child.name} (${args.join(" ")})`);
    let pid = 0;
    const run = spawnOnce(child.name, [...child.argv, ...args], {
      duringStop: true,
      onSpawn: (spawned) => (pid = spawned),
    });
    const limit = new AbortController();
    const finished = await Promise.race([
      run.then(() => true),
      sleep(drainTimeoutMs, limit.signal).then(() => false),
    ]);
    limit.abort();
    if (!finished) {
      say(`⚠️  ${child.name} did not drain within ${drainTimeoutMs} ms; stopping it`, "stderr");
      await stopChild(pid, { name: `${child.name} drain`, status: run }, stopTimeoutMs);
      return;
    }
    const status = await run;
    if (status.success) say(`✅ ${child.name} drained`);
    else say(`⚠️  ${child.name} drain ended with code ${status.code}`, "stderr");
  }

  async function stopChild(
    pid: number,
    child: { name: string; status: Promise<unknown> },
    timeoutMs: number,
  ) {
    await signalGroup(pid, "SIGTERM");
    const timeout = new AbortController();
    const exited = await Promise.race([
      child.status.then(() => true),
      sleep(timeoutMs, timeout.signal).then(() => false),
    ]);
    timeout.abort();
    if (exited) {
      say(`⏹️  ${child.name} stopped`);
    } else {
      say(`⚠️  ${child.name} did not stop within ${timeoutMs} ms; sending SIGKILL`, "stderr");
      await signalGroup(pid, "SIGKILL");
      await child.status;
    }
    // Anything the stage spawned and left in its group goes too.
    await signalGroup(pid, "SIGKILL");
  }

  return {
    pids: () => [...running.keys()],
    allPids: () => [...started],
    done,
    stop,
  };
}

/** Signals the stage's whole process group (false when it is already gone). */
async function signalGroup(pid: number, signal: Deno.Signal): Promise<boolean> {
  return await sendSignal(-pid, signal);
}
