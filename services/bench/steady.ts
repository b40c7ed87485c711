/**
 * The running pipeline. End-to-end catch-up: with a second backlog of
 * `events` in PostgreSQL, produce, consume and aggregate start as they do in
 * production (no --drain) and the clock runs from their spawn until the
 * aggregator's `events` total covers every event. Steady state: with those
 * stages still running and a dashboard serving one SSE client, `generate`
 * writes at a fixed rate; each event's commit is stamped (LISTEN) and matched
 * with the flush (`metrics:updates`) and the SSE frame that first count it.
 *
 * @module
 */

import type { Config } from "../../lib/config.ts";
import { connect } from "../../lib/db.ts";
import { type CommitStamp, watchCommits } from "./commit_clock.ts";
import { generateArgs } from "./catchup.ts";
import { freshnessByCount, type FreshnessSample, type Observation } from "./freshness.ts";
import { kafkaTimestamps } from "./kafka_times.ts";
import type { Progress } from "./progress.ts";
import { runStage, spawnStage, type StageProcess } from "./stage_process.ts";
import { totalsReader, watchSse, watchUpdates } from "./watchers.ts";

export interface Pipeline {
  stages: StageProcess[];
  /** Stops every stage (SIGTERM) and returns peak RSS by task. */
  stop(): Promise<Record<string, number>>;
}

/** Spawns the three processing stages in their running (not --drain) mode. */
export function startPipeline(env: Record<string, string>): Pipeline {
  // Once a second: the running stages live through the whole phase (their CPU is read
  // exactly at its end), and every sample is a process spawned on the chain's 2 cores.
  const stages = ["produce", "consume", "aggregate"].map((task) =>
    spawnStage(task, [], env, { sampleEveryMs: 1000 })
  );
  return {
    stages,
    async stop() {
      const exits = await Promise.all(stages.map((s) => s.stop()));
      return Object.fromEntries(exits.map((e) => [e.task, e.peakRssMb]));
    },
  };
}

/** Fails fast when a stage died instead of waiting for a count that will never come. */
function watchForDeath(stages: StageProcess[]): Promise<never> {
  const death = new Promise<never>((_, reject) => {
    for (const stage of stages) {
      stage.exited.then((exit) =>
        reject(
          new Error(
            `Cannot benchmark the running pipeline as ${exit.task} exited ${exit.code}:\n${
              exit.tail.split("\n").slice(-8).join("\n")
            }`,
          ),
        )
      );
    }
  });
  // Stages exit on purpose at the end; only a race that still listens should see it.
  death.catch(() => {});
  return death;
}

/**
 * Times the running pipeline from spawn until the whole chain is done: Redis
 * counts `target` events and `items` items sold (items come through the
 * consumer's `transaction_items`), and the warehouse holds `target` rows.
 */
export async function endToEnd(
  config: Config,
  pipeline: Pipeline,
  options: ChainTarget,
): Promise<{ ms: number }> {
  const started = Math.min(...pipeline.stages.map((s) => s.startedAt));
  await Promise.race([waitForChain(config, options), watchForDeath(pipeline.stages)]);
  return { ms: performance.now() - started };
}

export interface ChainTarget {
  target: number;
  items: number;
  progress: Progress;
  signal?: AbortSignal;
  timeoutMs?: number;
  label?: string;
}

/** Polls Redis and the warehouse until both hold everything (see {@link endToEnd}). */
export async function waitForChain(
  config: Config,
  { target, items, progress, signal, timeoutMs = 600_000, label = "end to end" }: ChainTarget,
): Promise<void> {
  const totals = totalsReader(config);
  const dwh = connect(config.databases.dwh, { max: 1 });
  const deadline = Date.now() + timeoutMs;
  const done = async () => {
    let rows = 0;
    while (!signal?.aborted) {
      const counts = await totals.fields();
      // count(*) scans the warehouse: every 100 ms that was a large share of the chain's
      // PostgreSQL CPU. Redis completes only after the consumer stored the transactions
      // (their items come through it), so the warehouse is counted once Redis is complete.
      if (counts.events >= target && counts.items >= items) {
        const [row] = await dwh<{ n: number }[]>`select count(*)::int as n from realtime_events`;
        rows = Number(row?.n ?? 0);
      }
      progress.update(
        `${label}: ${counts.events} / ${target} events and ${counts.items} / ${items} items ` +
          `in Redis${rows > 0 ? `, ${rows} warehouse rows` : ""}`,
      );
      if (counts.events >= target && counts.items >= items && rows >= target) return;
      if (Date.now() > deadline) {
        throw new Error(
          `Cannot finish the ${label} phase within ${timeoutMs} ms: ${counts.events}/${target} ` +
            `events, ${counts.items}/${items} items, ${rows}/${target} warehouse rows`,
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error("Cannot finish the benchmark: interrupted");
  };
  try {
    await done();
  } finally {
    totals.close();
    await dwh.end({ timeout: 2 });
  }
}

export interface SteadyResult {
  events: number;
  generateMs: number;
  redis: FreshnessSample;
  /** Commit to the producer's Kafka record timestamp, per event. */
  toKafka?: FreshnessSample;
  /** Kafka record timestamp to the Redis total that covers it (count-matched). */
  kafkaToRedis?: FreshnessSample;
  sse?: FreshnessSample;
  updates: number;
  frames: number;
}

/**
 * Generates `rate * seconds` events at `rate` while the pipeline runs, then
 * waits for all of them to be counted, and matches commits with flushes.
 */
export async function steadyState(
  config: Config,
  env: Record<string, string>,
  pipeline: Pipeline,
  { rate, seconds, sseUrl, progress, signal }: {
    rate: number;
    seconds: number;
    sseUrl?: string;
    progress: Progress;
    signal?: AbortSignal;
  },
): Promise<SteadyResult> {
  const events = Math.round(rate * seconds);
  const instashop = connect(config.databases.instashop, { max: 2 });
  const crm = connect(config.databases.crm, { max: 2 });
  const totals = totalsReader(config);
  const updates = await watchUpdates(config);
  const sse = sseUrl ? watchSse(sseUrl) : undefined;
  try {
    const base = await totals.count();
    const commits = await watchCommits({ instashop, crm });
    const death = watchForDeath(pipeline.stages);
    const started = performance.now();
    const ticker = setInterval(() => {
      const seen = (updates.observations().at(-1)?.count ?? base) - base;
      progress.update(
        `steady state: ${commits.stamps().length} committed, ${seen} counted ` +
          `(${rate}/s for ${seconds} s)`,
      );
    }, 500);
    let generateMs = 0;
    try {
      await Promise.race([
        runStage("generate", generateArgs(events, { rate, seed: 11 }), env, {
          timeoutMs: 120_000 + seconds * 2000,
        }),
        death,
      ]);
      generateMs = performance.now() - started;
      await Promise.race([
        totals.waitFor(base + events, { timeoutMs: 120_000, signal }),
        death,
      ]);
      // Let the last frame reach the dashboard client.
      await new Promise((r) => setTimeout(r, 1000));
    } finally {
      clearInterval(ticker);
    }
    const stamps = await commits.stop();
    const commitTimes = stamps.map((s) => s.at);
    const observed = updates.observations();
    progress.update("steady state: reading the producer's Kafka timestamps");
    const split = await splitAtKafka(config, stamps, observed, base, started, progress);
    return {
      events,
      generateMs,
      redis: freshnessByCount(commitTimes, observed, base),
      ...split,
      sse: sse ? freshnessByCount(commitTimes, sse.frames(), base) : undefined,
      updates: updates.messages(),
      frames: sse?.frames().length ?? 0,
    };
  } finally {
    updates.stop();
    await sse?.stop();
    totals.close();
    await Promise.all([instashop.end({ timeout: 2 }), crm.end({ timeout: 2 })]);
  }
}

/**
 * Splits freshness at Kafka: commit to the record's timestamp per event, then
 * Kafka to Redis by the same count matching in Kafka-time order. Best effort:
 * a failure here leaves the split out, never the run.
 */
async function splitAtKafka(
  config: Config,
  stamps: readonly CommitStamp[],
  observed: readonly Observation[],
  base: number,
  startedPerf: number,
  progress: Progress,
): Promise<Pick<SteadyResult, "toKafka" | "kafkaToRedis">> {
  try {
    const sinceMs = Math.floor(Date.now() - (performance.now() - startedPerf));
    const times = await kafkaTimestamps(config, { sinceMs, expected: stamps.length });
    const toKafka: number[] = [];
    let missing = 0;
    for (const s of stamps) {
      const at = times.get(s.eventId);
      if (at === undefined) missing++;
      else toKafka.push(Math.max(0, at - s.at));
    }
    const kafkaOrder = [...times.values()].sort((a, b) => a - b);
    return {
      toKafka: { latencies: toKafka, unseen: missing },
      kafkaToRedis: freshnessByCount(kafkaOrder, observed, base),
    };
  } catch (error) {
    progress.note(`no commit-to-Kafka split: ${(error as Error).message}`);
    return {};
  }
}

/** A free local port for the bench's own dashboard. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** Starts a dashboard on `port` and waits until `/api/health` answers. */
export async function startDashboard(
  env: Record<string, string>,
  port: number,
): Promise<StageProcess> {
  const { DASHBOARD_TOKEN: _token, ...rest } = env;
  const dashboard = spawnStage("dashboard", [], { ...rest, PORT: String(port), HOST: "127.0.0.1" });
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const ok = await fetch(`http://127.0.0.1:${port}/api/health`).then(async (r) => {
      await r.body?.cancel();
      return true;
    }, () => false);
    if (ok) return dashboard;
    await new Promise((r) => setTimeout(r, 200));
  }
  await dashboard.stop();
  throw new Error(`Cannot start the bench's dashboard on port ${port} within 30 s`);
}
