/**
 * The pid file of `deno task start`, `<stateDir>/start[-<namespace>].json`:
 * the supervisor's pid (main.ts) and its stages' while it runs. The stages
 * run in process groups of their own (a Ctrl-C must reach only the
 * supervisor, which stops them in order), so a start killed with -9 leaves
 * them running. The next start in that namespace finds them through this
 * file and stops them before it starts its own; while the recorded start is
 * still alive, the next one refuses instead. See docs/operations.md.
 *
 * @module
 */

import { ServiceError } from "../../lib/cli.ts";
import type { Config } from "../../lib/config.ts";
import { sleep } from "../../lib/retry.ts";
import { sendSignal } from "../../lib/signal.ts";
import { isOurs, stateDirOf, withLock } from "../stack/process.ts";

/** One stage process: `marker` is a part of its command line only it has (its entry file). */
export interface ClaimedStage {
  name: string;
  pid: number;
  marker: string;
}

interface ClaimFile {
  pid: number;
  stages: ClaimedStage[];
}

export interface Claim {
  /** Records the stages running now (writes are queued, the last one wins). */
  update(stages: ClaimedStage[]): Promise<void>;
  /** Removes the file if it is still ours (a clean exit). */
  release(): Promise<void>;
}

/** What identifies the supervisor's own process in `ps`. */
const START_MARKER = "main.ts";

/**
 * The pid file of `namespace` in `stateDir`.
 *
 * @example
 * ```ts
 * import { claimFileOf } from "./start_claim.ts";
 * claimFileOf("/p/.stack", ""); // "/p/.stack/start.json"
 * claimFileOf("/p/.stack", "demo"); // "/p/.stack/start-demo.json"
 * ```
 */
export function claimFileOf(stateDir: string, namespace: string): string {
  return `${stateDir}/start${namespace ? `-${namespace}` : ""}.json`;
}

/**
 * Takes the namespace for this process: refuses when another start runs it,
 * stops the stages a killed start left behind (reported through `say`), and
 * writes the file naming this process.
 *
 * @throws {ServiceError} when a start that is still running owns the namespace.
 */
export async function claimNamespace(
  config: Config,
  say: (line: string, stream?: "stdout" | "stderr") => void,
): Promise<Claim> {
  const dir = stateDirOf(config);
  const file = claimFileOf(dir, config.namespace);
  await withLock(dir, async () => {
    const previous = await readClaim(file);
    if (previous && previous.pid !== Deno.pid && await isOurs(previous.pid, START_MARKER)) {
      throw new ServiceError(
        `Cannot start the pipeline${
          config.namespace ? ` in namespace ${config.namespace}` : ""
        } as another \`deno task start\` runs it: current owner is pid ${previous.pid} ` +
          `(stop it with Ctrl-C or kill ${previous.pid}, or use another --namespace)`,
      );
    }
    const left = [];
    for (const stage of previous?.stages ?? []) {
      if (await isOurs(stage.pid, stage.marker)) left.push(stage);
    }
    if (left.length > 0) {
      say(
        `🧹 Stopping ${left.length} stage(s) left running by a start that was killed ` +
          `(pid ${previous!.pid}): ${left.map((s) => `${s.name} ${s.pid}`).join(", ")}`,
        "stderr",
      );
      await Promise.all(left.map(stopLeftover));
    }
    await writeClaim(file, { pid: Deno.pid, stages: [] });
  });
  let queue = Promise.resolve();
  return {
    update(stages) {
      queue = queue.then(() => writeClaim(file, { pid: Deno.pid, stages })).catch(() => {});
      return queue;
    },
    async release() {
      await queue;
      if ((await readClaim(file))?.pid === Deno.pid) await Deno.remove(file).catch(() => {});
    },
  };
}

/** SIGTERM to the stage's group (its clean shutdown), SIGKILL after 15 s. */
async function stopLeftover(stage: ClaimedStage): Promise<void> {
  await sendSignal(-stage.pid, "SIGTERM");
  const deadline = Date.now() + 15_000;
  while (await isOurs(stage.pid, stage.marker)) {
    if (Date.now() > deadline) {
      await sendSignal(-stage.pid, "SIGKILL");
      await sleep(200);
      break;
    }
    await sleep(200);
  }
  // Anything it spawned in its group goes too.
  await sendSignal(-stage.pid, "SIGKILL");
}

async function readClaim(file: string): Promise<ClaimFile | undefined> {
  try {
    const parsed = JSON.parse(await Deno.readTextFile(file)) as ClaimFile;
    return Number.isInteger(parsed.pid) && Array.isArray(parsed.stages) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

async function writeClaim(file: string, claim: ClaimFile): Promise<void> {
  await Deno.writeTextFile(`${file}.tmp`, JSON.stringify(claim) + "\n");
  await Deno.rename(`${file}.tmp`, file);
}
