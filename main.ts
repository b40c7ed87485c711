/**
 * `deno task start`: the whole pipeline in one command. See docs/operations.md.
 *
 * @module
 */

import { durationFlag, numberFlag, parseFlags, runMain, UsageError } from "./lib/cli.ts";
import { childEnv, loadConfig } from "./lib/config.ts";
import { validateNamespace } from "./lib/contracts.ts";
import { runPipeline } from "./services/ops/start.ts";
import { stackDown, type StackState, stackUp, startedBy } from "./services/stack/mod.ts";

await runMain(async (signal) => {
  const flags = parseFlags(
    "start",
    "Bring the stack up and run generate, produce, consume, aggregate and dashboard, supervised.",
    Deno.args,
    {
      rate: { type: "string", help: "generator events per second (0 = as fast as possible)" },
      duration: { type: "string", help: "how long the generator runs, e.g. 10m" },
      "no-generate": { type: "boolean", help: "run every stage but the generator" },
      brokers: { type: "string", help: "Kafka brokers to start when none answer: 1 or 3" },
      namespace: { type: "string", help: "pipeline namespace (default PIPELINE_NAMESPACE)" },
      "stall-timeout": {
        type: "string",
        help: "restart a stage whose heartbeat is older than this, e.g. 60s (0: never)",
      },
    },
  );
  if (flags.rate !== undefined) numberFlag("rate", flags.rate, 0);
  if (flags.duration !== undefined) durationFlag("duration", flags.duration);
  const stallTimeoutMs = flags["stall-timeout"] === undefined
    ? undefined
    : durationFlag("stall-timeout", flags["stall-timeout"]);
  if (stallTimeoutMs !== undefined && stallTimeoutMs !== 0 && stallTimeoutMs < 5000) {
    // Stages beat every 2 s: less would restart healthy ones.
    throw new UsageError(
      `Cannot use --stall-timeout as less than 5s (or 0 for never): current value is "${
        flags["stall-timeout"]
      }"`,
    );
  }
  const brokers = flags.brokers === undefined ? undefined : numberFlag("brokers", flags.brokers, 1);
  if (brokers !== undefined && brokers !== 1 && brokers !== 3) {
    throw new UsageError(`Cannot use --brokers as 1 or 3: current value is "${flags.brokers}"`);
  }
  // The project's variables and what a child deno needs; never the whole environment.
  const env = childEnv();
  if (flags.namespace !== undefined) {
    const problem = validateNamespace(flags.namespace);
    if (problem) {
      throw new UsageError(
        `Cannot use --namespace as ${problem}: current value is "${flags.namespace}"`,
      );
    }
    env.PIPELINE_NAMESPACE = flags.namespace;
  }
  const config = loadConfig(env);
  // A closed terminal stops the pipeline like Ctrl-C does, instead of orphaning the stages.
  // (Deno.kill of its own pid needs no permission; any other pid needs unscoped --allow-run.)
  Deno.addSignalListener("SIGHUP", () => Deno.kill(Deno.pid, "SIGTERM"));

  let upState: StackState | undefined;
  return await runPipeline({
    config,
    env,
    signal,
    stack: {
      up: async (c, options) => {
        upState = await stackUp(c, options);
        return { started: startedBy(upState) };
      },
      // Only what this run started, and only while it is the process it started: a broker an
      // earlier `deno task stack up` started stays for whoever uses it (docs/stack.md).
      down: async (c, options) => upState ? await stackDown(c, { ...options, only: upState }) : [],
    },
  }, {
    rate: flags.rate,
    duration: flags.duration,
    generate: !flags["no-generate"],
    brokers,
    stallTimeoutMs,
  });
});
