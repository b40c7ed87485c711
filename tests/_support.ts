/**
 * Shared helpers for tests against the real services: a fresh namespace per
 * test (its own databases, topics, consumer groups and Redis keys), cleaned up
 * afterwards, and a way to run a task as the user would.
 *
 * @module
 */

import postgres from "postgres";
import { childEnv, type Config, loadConfig } from "../lib/config.ts";
import { names } from "../lib/contracts.ts";
import { createKafka, deleteTopics, ensureTopics } from "../lib/kafka.ts";
import { createRedis } from "../lib/redis.ts";
import { denoExecutable, taskArgv } from "../lib/tasks.ts";

/** A unique namespace like `t_gen_k3x9` (lower-case, valid everywhere). */
export function uniqueNamespace(prefix: string): string {
  const random = crypto.getRandomValues(new Uint32Array(1))[0]!.toString(36);
  return `t_${prefix}_${random}`.slice(0, 40);
}

/**
 * The environment of a test namespace, for subprocesses and loadConfig: the
 * project's variables and what a child deno needs (lib/config.ts childEnv),
 * so that the tests too run with an --allow-env list.
 */
export function namespaceEnv(namespace: string): Record<string, string> {
  return { ...childEnv(), PIPELINE_NAMESPACE: namespace };
}

export interface TestNamespace {
  namespace: string;
  config: Config;
  env: Record<string, string>;
  /** Drops the namespace's databases, topics and Redis keys. */
  cleanup(): Promise<void>;
}

/**
 * Creates a namespace; with `topics`, also creates its topics.
 *
 * @example
 * ```ts ignore
 * const ns = await createTestNamespace("gen");
 * try { ... } finally { await ns.cleanup(); }
 * ```
 */
export async function createTestNamespace(
  prefix: string,
  { topics = false }: { topics?: boolean } = {},
): Promise<TestNamespace> {
  const namespace = uniqueNamespace(prefix);
  const env = namespaceEnv(namespace);
  const config = loadConfig(env);
  if (topics) {
    const admin = createKafka(config, { clientId: "test-admin" }).admin();
    await admin.connect();
    try {
      await ensureTopics(admin, namespace, { partitions: config.kafka.partitions });
    } finally {
      await admin.disconnect();
    }
  }
  return { namespace, config, env, cleanup: () => cleanupNamespace(config) };
}

/**
 * Drops everything a namespace owns on the shared stack: its topics and
 * groups, its databases and its Redis keys. Each part is tried even when
 * another fails (an unreachable broker must not leave the databases
 * behind), and the databases are checked to be gone; what failed is thrown
 * at the end, naming the leftovers.
 */
export async function cleanupNamespace(config: Config): Promise<void> {
  if (!config.namespace) throw new Error("refusing to clean up the default namespace");
  const failed: string[] = [];
  const attempt = async (what: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (error) {
      failed.push(`${what}: ${(error as Error).message}`);
    }
  };
  await attempt("Kafka topics and groups", () => dropKafka(config));
  await attempt("PostgreSQL databases", () => dropDatabases(config));
  await attempt("Redis keys", async () => {
    const redis = createRedis(config);
    try {
      const keys = await redis.keys(`${names(config.namespace).redis("*")}`);
      if (keys.length > 0) await redis.del(...keys);
    } finally {
      redis.disconnect();
    }
  });
  if (failed.length > 0) {
    throw new Error(`Cannot clean up namespace ${config.namespace}: ${failed.join("; ")}`);
  }
}

async function dropKafka(config: Config): Promise<void> {
  const admin = createKafka(config, { clientId: "test-cleanup" }).admin();
  await admin.connect();
  try {
    await deleteTopics(admin, config.namespace);
    const groups = (await admin.listGroups()).groups
      .map((g) => g.groupId)
      .filter((g) => g.startsWith(`${config.namespace}.`));
    if (groups.length > 0) await admin.deleteGroups(groups).catch(() => {});
  } finally {
    await admin.disconnect();
  }
}

/** Drops the namespace's three databases (a few tries: a session can outlive FORCE briefly). */
async function dropDatabases(config: Config): Promise<void> {
  const server = new URL(config.serverUrls.instashop);
  server.pathname = "/postgres";
  const sql = postgres(server.toString(), { max: 1, onnotice: () => {} });
  const wanted = Object.values(config.databases).map((url) => new URL(url).pathname.slice(1));
  try {
    for (let attempt = 1;; attempt++) {
      const errors: string[] = [];
      for (const db of wanted) {
        await sql.unsafe(`drop database if exists "${db}" with (force)`).catch((error) =>
          errors.push(`${db}: ${error.message}`)
        );
      }
      const left = (await sql<{ datname: string }[]>`
        select datname from pg_database where datname = any(${wanted})`).map((r) => r.datname);
      if (left.length === 0) return;
      if (attempt >= 3) {
        throw new Error(`still there: ${left.join(", ")} (${errors.join("; ") || "no error"})`);
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  } finally {
    await sql.end();
  }
}

export interface TaskResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `deno task <task> ...args` in the project root with `env`, as the user would. */
export async function runTask(
  task: string,
  args: string[] = [],
  env: Record<string, string> = childEnv(),
): Promise<TaskResult> {
  const out = await new Deno.Command(denoExecutable(), {
    args: ["task", "--quiet", task, ...args],
    cwd: new URL("..", import.meta.url),
    env,
    clearEnv: true,
    stdin: "null",
  }).output();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

/**
 * The argv of a task's final `deno run` command, read from deno.json, so that a
 * test can run (and kill -9) the stage process itself rather than the task shell.
 */
export { taskArgv };

/**
 * Starts a task's stage process in the background, with the task's own
 * permissions; returns the child (its pid is the stage's, so kill -9 works).
 */
export function spawnTask(
  task: string,
  args: string[] = [],
  env: Record<string, string> = childEnv(),
): Deno.ChildProcess {
  return new Deno.Command(denoExecutable(), {
    args: [...taskArgv(task), ...args],
    cwd: new URL("..", import.meta.url),
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}
