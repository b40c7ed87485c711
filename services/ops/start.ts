/**
 * `deno task start`: the namespace claimed (a pid file; stages a killed start
 * left behind are stopped first), the stack, then the five stages under the
 * supervisor, the dashboard URL once it answers, and on Ctrl-C or SIGTERM the
 * stages stopped first, then the services this very run started (not those an
 * earlier `stack up` started, which others may use).
 *
 * @module
 */

import type { Config } from "../../lib/config.ts";
import type { Stage } from "../../lib/contracts.ts";
import type { Logger } from "../../lib/log.ts";
import { sleep } from "../../lib/retry.ts";
import { taskCommand } from "../../lib/tasks.ts";
import { consoleSink, type LineSink, stagePrefix } from "./lines.ts";
import { claimNamespace } from "./start_claim.ts";
import { type BackoffOptions, type ChildSpec, createSupervisor } from "./supervisor.ts";
import { STALL_TIMEOUT_MS, startWatchdog } from "./watchdog.ts";

/** What `deno task start` passes on; strings are already validated by main.ts. */
export interface StartOptions {
  /** `--rate` for the generator (events/s). */
  rate?: string;
  /** `--duration` for the generator. */
  duration?: string;
  /** `--no-generate` sets this false: run the pipeline over data that is already there. */
  generate?: boolean;
  /** `--brokers`: Kafka brokers to start when none answer. */
  brokers?: number;
  /** `--stall-timeout`: a stage whose heartbeat is older is killed and restarted (0: never). */
  stallTimeoutMs?: number;
}

/** The stack's API as start uses it (services/stack/mod.ts; a stub in unit tests). */
export interface StackControl {
  up(config: Config, options: { brokers?: number; log?: Logger }): Promise<{ started: string[] }>;
  /** Stops what the last `up` started (only that), returning what it stopped. */
  down(config: Config, options: { log?: Logger }): Promise<string[]>;
}

export interface StartDeps {
  config: Config;
  /** The environment every stage gets (PIPELINE_NAMESPACE included). */
  env: Record<string, string>;
  signal: AbortSignal;
  stack: StackControl;
  sink?: LineSink;
  cwd?: string | URL;
  backoff?: BackoffOptions;
  stopTimeoutMs?: number;
}

const ROOT = new URL("../../", import.meta.url);

/** Stages drained at stop, so that what was in flight reaches Redis (`verify` agrees after). */
const DRAINED: readonly Stage[] = ["produce", "consume", "aggregate"];

/**
 * The children of `start`, in pipeline order, with each task's own permissions.
 *
 * @example
 * ```ts ignore
 * import { stageChildren } from "./start.ts";
 * stageChildren({ rate: "100" })[0]; // { name: "generate", argv: ["run", ..., "--rate", "100"] }
 * ```
 */
export function stageChildren(
  { rate, duration, generate = true }: StartOptions,
  tasks?: Record<string, string>,
): ChildSpec[] {
  const stages: Stage[] = generate
    ? ["generate", "produce", "consume", "aggregate", "dashboard"]
    : ["produce", "consume", "aggregate", "dashboard"];
  return stages.map((stage) => {
    const { prelude, argv } = taskCommand(stage, tasks);
    const args = stage === "generate"
      ? [
        ...(rate !== undefined ? ["--rate", rate] : []),
        ...(duration !== undefined ? ["--duration", duration] : []),
      ]
      : [];
    return {
      name: stage,
      argv: [...argv, ...args],
      prelude: prelude.map((task) => ["task", "--quiet", task]),
      ...(DRAINED.includes(stage) ? { drain: ["--drain"] } : {}),
    };
  });
}

/**
 * Where the dashboard can be reached from this machine.
 *
 * @example
 * ```ts ignore
 * dashboardUrl(loadConfig({ HOST: "0.0.0.0", PORT: "8501" })); // "http://localhost:8501/"
 * ```
 */
export function dashboardUrl(config: Config): string {
  const host = config.dashboard.host;
  const local = host === "0.0.0.0" || host === "::" || host === "" ? "localhost" : host;
  const shown = local.includes(":") && !local.startsWith("[") ? `[${local}]` : local;
  return `http://${shown}:${config.dashboard.port}/`;
}

/**
 * Runs the whole pipeline until `signal` aborts (or every stage ends by
 * itself, or one refuses its configuration); returns the exit code.
 */
export async function runPipeline(deps: StartDeps, options: StartOptions): Promise<number> {
  const { config, env, signal, stack, sink = consoleSink, cwd = ROOT } = deps;
  const say = (line: string, stream: "stdout" | "stderr" = "stdout") =>
    sink(`${stagePrefix("start")}${line}`, stream);
  const stackLog = prefixedLogger(sink, "stack");

  say(
    `🚀 Starting the InstaShop pipeline${
      config.namespace ? ` in namespace ${config.namespace}` : ""
    }`,
  );
  const claim = await claimNamespace(config, say);
  let state: { started: string[] };
  try {
    state = await stack.up(config, { brokers: options.brokers, log: stackLog });
  } catch (error) {
    await claim.release();
    throw error;
  }
  say(
    state.started.length > 0
      ? `📦 Stack up; this run started ${state.started.join(", ")}`
      : "📦 Stack up; every service was already running (it will be left running)",
  );

  const watching = new AbortController();
  const watchdog = startWatchdog(config, options.stallTimeoutMs ?? STALL_TIMEOUT_MS, {
    say: (line) => say(line, "stderr"),
    signal: watching.signal,
  });
  const supervisor = signal.aborted ? undefined : createSupervisor({
    children: stageChildren(options),
    cwd,
    env,
    sink,
    backoff: deps.backoff,
    stopTimeoutMs: deps.stopTimeoutMs,
    // The pid file names every stage, so that the next start can stop them if this one is
    // killed with -9; the entry file in its command line tells a stage from a recycled pid.
    onChange: (running) => {
      watchdog?.update(running);
      void claim.update(running.map(({ name, pid, argv }) => ({
        name,
        pid,
        marker: argv.find((a) => a.endsWith(".ts")) ?? argv.join(" "),
      })));
    },
  });
  let code = 0;
  try {
    if (supervisor) {
      const aborted = new Promise<void>((resolve) => {
        if (signal.aborted) resolve();
        signal.addEventListener("abort", () => resolve(), { once: true });
      });
      void announceDashboard(config, say, AbortSignal.any([signal, watching.signal]));
      const end = await Promise.race([aborted.then(() => undefined), supervisor.done]);
      // Stopping stages stop beating: the watchdog must not take them for hung.
      watching.abort();
      if (end?.kind === "fatal") code = end.code;
      if (end?.kind === "finished") say("🏁 Every stage finished by itself");
      if (!end) say("🛑 Stopping (signal received)");
      await supervisor.stop();
    }
  } finally {
    watching.abort();
    await watchdog?.close();
    await supervisor?.stop();
    if (state.started.length > 0) {
      const stopped = await stack.down(config, { log: stackLog });
      say(`📦 Stopped ${stopped.join(", ") || "nothing"}`);
    }
    await claim.release();
  }
  say(
    code === 0
      ? "✅ Pipeline stopped; no stage left running"
      : `❌ Pipeline stopped (exit ${code})`,
  );
  return code;
}

/** Prints the dashboard URL once `GET /api/health` answers 200. */
async function announceDashboard(
  config: Config,
  say: (line: string) => void,
  signal: AbortSignal,
): Promise<void> {
  const url = dashboardUrl(config);
  const probe = new URL("api/health", url.replace("//localhost:", "//127.0.0.1:"));
  const headers: HeadersInit = config.dashboard.token
    ? { authorization: `Bearer ${config.dashboard.token}` }
    : {};
  while (!signal.aborted) {
    try {
      const response = await fetch(probe, {
        headers,
        signal: AbortSignal.any([signal, AbortSignal.timeout(2000)]),
      });
      await response.body?.cancel();
      if (response.ok) {
        const note = config.dashboard.token ? " (add ?token=<DASHBOARD_TOKEN>)" : "";
        say(`🌐 Dashboard: ${url}${note}`);
        say("✅ Pipeline running; Ctrl-C to stop");
        return;
      }
    } catch {
      // Not listening yet.
    }
    await sleep(500, signal);
  }
}

function prefixedLogger(sink: LineSink, name: string): Logger {
  const prefix = stagePrefix(name);
  const stamp = () => new Date().toISOString();
  return {
    info: (message) => sink(`${prefix}${stamp()} ${message}`, "stdout"),
    warn: (message) => sink(`${prefix}${stamp()} ⚠️  ${message}`, "stderr"),
    error: (message) => sink(`${prefix}${stamp()} ❌ ${message}`, "stderr"),
  };
}
