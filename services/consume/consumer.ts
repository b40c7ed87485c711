/**
 * The warehouse consumer: reads the four input topics with a stable consumer
 * group, stores every event once in `dwh_db`, sends the enriched
 * `transaction_items`, dead-letters what is invalid, and commits offsets by
 * hand only after all of that (./flush.ts has the order of steps, ./loop.ts
 * the Kafka session, ./heartbeat.ts what `deno task status` reads).
 *
 * @module
 */

import { ServiceError } from "../../lib/cli.ts";
import type { Config } from "../../lib/config.ts";
import { names } from "../../lib/contracts.ts";
import { openDatabase, type Sql } from "../../lib/db.ts";
import { type Admin, createKafka, DRAIN_FETCH_WAIT_MS, ensureTopics } from "../../lib/kafka.ts";
import { CommitError } from "../../lib/kafka_session.ts";
import type { Logger } from "../../lib/log.ts";
import { createRedis, type Redis } from "../../lib/redis.ts";
import { sleep } from "../../lib/retry.ts";
import { createBatcher, releasedAfter } from "./batcher.ts";
import { createFlush, type Part, type Prepared } from "./flush.ts";
import { createHeartbeat, type Progress } from "./heartbeat.ts";
import { consumeLoop } from "./loop.ts";
import { advance, caughtUp, fetchTracker, lagOf, type PartitionEnds } from "./offsets.ts";
import { errorText, persist } from "./persist.ts";
import { recordBatch, type Totals } from "./report.ts";
import { createItemsSender, type Sender } from "./sender.ts";
import { INPUT_TOPICS, type InputTopic } from "./rows.ts";

/**
 * The first flush's messages at most, doubling up to `maxBatchMessages`: the
 * process runs its first flush in code not yet optimised (about twice as
 * slow), and a small one hands the warehouse its first COPY sooner.
 */
const FIRST_FLUSH = 2_500;

export interface ConsumerDeps {
  config: Config;
  log: Logger;
}

export interface ConsumerOptions {
  /** Consumer group below the namespace (default `instashop-warehouse`). */
  group?: string;
  /** Reprocess from the earliest offset: a fresh replay group, or `group` reset. */
  fromBeginning?: boolean;
  /** Stop once caught up with the end offsets seen at start. */
  drain?: boolean;
  /** Fault injection: after the first warehouse commit that stored rows, wait to be killed. */
  holdAfterWrite?: boolean;
  /** Fault injection (tests): runs after each warehouse commit, before items and offsets. */
  afterWrite?: (stored: number) => Promise<void>;
  heartbeatMs?: number;
  /** Largest flush, in messages. */
  maxBatchMessages?: number;
  /** Flushes in flight at once (see ./batcher.ts). */
  concurrency?: number;
}

export interface ConsumerSummary extends Totals {
  group: string;
  ms: number;
}

export interface WarehouseConsumer {
  /** The full (namespaced) consumer group id. */
  readonly group: string;
  /** Consumes until `signal` aborts (or, with `drain`, until caught up). */
  run(signal: AbortSignal): Promise<ConsumerSummary>;
}

/**
 * @example
 * ```ts ignore
 * const consumer = createWarehouseConsumer({ config, log }, { drain: true });
 * const summary = await consumer.run(AbortSignal.timeout(60_000));
 * ```
 */
export function createWarehouseConsumer(
  { config, log }: ConsumerDeps,
  options: ConsumerOptions = {},
): WarehouseConsumer {
  const {
    fromBeginning = false,
    drain = false,
    holdAfterWrite = false,
    heartbeatMs = 2000,
    maxBatchMessages = 20_000,
    concurrency = 2,
  } = options;
  const n = names(config.namespace);
  const replay = fromBeginning && options.group === undefined
    ? `instashop-warehouse-replay-${new Date().toISOString().replace(/\D/g, "").slice(0, 14)}`
    : options.group;
  const group = n.group("consume", replay);
  const topicKey = new Map<string, InputTopic>(INPUT_TOPICS.map((k) => [n.topics[k], k]));
  const topics = [...topicKey.keys()];
  // A script waiting on --drain wants an answer; a service waits for its services.
  const attempts = drain ? 6 : Infinity;
  const brokers = config.kafka.brokers.join(",");

  async function run(signal: AbortSignal): Promise<ConsumerSummary> {
    const started = performance.now();
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    signal.addEventListener("abort", onAbort, { once: true });
    const totals: Totals = {
      messages: 0,
      stored: 0,
      duplicates: 0,
      items: 0,
      deadLetters: 0,
      batches: 0,
    };
    const progress: Progress = { ends: [], committed: new Map() };
    let targets: PartitionEnds[] | undefined;
    const checkDrained = () => {
      if (drain && targets && caughtUp(targets, progress.committed)) stop.abort();
    };
    const pendingDeadLetters = new Map<string, number>();
    let fatal: unknown;
    let sql: Sql | undefined;
    let redis: Redis | undefined;
    let admin: Admin | undefined;
    let producer: Sender | undefined;
    let heartbeat: ReturnType<typeof createHeartbeat> | undefined;
    let beating: Promise<void> | undefined;
    // kafkajs' own lines repeat what the stage says once, clearly; INSTASHOP_DEBUG shows them.
    const kafka = createKafka(config, {
      clientId: "instashop-consume",
      log,
      level: config.debug ? "warn" : "nothing",
    });
    // kafkajs retries each connection for about 20 s itself; a drain gives up after that.
    const reach = <T>(what: string, fn: () => Promise<T>) =>
      persist(fn, { what, log, signal: stop.signal, attempts: drain ? 1 : Infinity }).catch(
        (error) => {
          throw new ServiceError(
            `Cannot ${what}: ${errorText(error)}. ` +
              "Start the stack with `deno task stack up` (or `docker compose up -d`).",
          );
        },
      );

    try {
      sql = await openWarehouse(stop.signal);
      redis = createRedis(config);
      admin = kafka.admin();
      await reach(`connect to Kafka at ${brokers}`, () => admin!.connect());
      await reach(
        "create the topics",
        () => ensureTopics(admin!, config.namespace, { partitions: config.kafka.partitions }),
      );
      if (fromBeginning && options.group !== undefined) await resetGroup(admin);
      heartbeat = createHeartbeat({
        redis,
        admin,
        names: n,
        group,
        topicKey,
        mode: drain ? "drain" : "run",
        totals,
        pendingDeadLetters,
        progress,
        log,
        onRefresh: checkDrained,
      });
      await reach("read the offsets", () => heartbeat!.refresh());
      targets = progress.ends;
      producer = createItemsSender(kafka);
      await reach(
        `connect a producer to Kafka at ${brokers}`,
        () => producer!.connect([n.topics.transactionItems, n.topics.deadLetters]),
      );

      const ns = config.namespace ? ` (namespace ${config.namespace})` : "";
      log.info(`🚀 Warehouse consumer started${ns}${drain ? ", draining" : ""}`);
      log.info(`🆔 Group ID: ${group}`);
      log.info("⚙️  Auto offset reset: earliest; offsets committed after the warehouse commit");
      log.info(`📥 ${topics.join(", ")} -> ${new URL(config.databases.dwh).pathname.slice(1)}`);
      if (drain) {
        log.info(`⏳ Draining ${lagOf(targets, progress.committed).total} messages`);
      }
      checkDrained();

      const flush = createFlush({
        sql,
        producer,
        topics: n.topics,
        log,
        signal: stop.signal,
        attempts,
        afterWrite: holdAfterWrite ? holdOnce() : options.afterWrite,
        onDeadLetters: (counts) => {
          for (const [t, c] of Object.entries(counts)) {
            pendingDeadLetters.set(t, (pendingDeadLetters.get(t) ?? 0) + c);
          }
        },
        onCommitted: (commits) => {
          advance(progress.committed, commits.map((c) => ({ ...c, offset: Number(c.offset) })));
          checkDrained();
        },
      });
      // A step that ran out of attempts ends a drain; a commit that failed ends only the
      // session (./loop.ts rejoins, the batch comes again and is found stored).
      const giveUp = (error: unknown) => {
        if (attempts !== Infinity && !stop.signal.aborted && !(error instanceof CommitError)) {
          fatal ??= error;
          stop.abort();
        }
        throw error;
      };
      const batcher = createBatcher<Part, Prepared>({
        prepare: (parts) => flush.prepare(parts).catch(giveUp),
        finish: async (prepared) =>
          recordBatch(log, totals, await flush.finish(prepared).catch(giveUp)),
      }, { maxSize: maxBatchMessages, firstSize: FIRST_FLUSH, concurrency });
      // A drain's last batches need not wait to grow: nothing comes after them.
      const fetched = fetchTracker(targets, progress.committed);
      const isLast = (p: Part) => fetched.add(p.topic, p.partition, Number(p.nextOffset));

      beating = heartbeat.loop(stop.signal, drain ? Math.min(heartbeatMs, 500) : heartbeatMs);
      await consumeLoop({
        kafka,
        group,
        topicKey,
        partitionCount: progress.ends.length,
        batcher: drain ? releasedAfter(batcher, isLast) : batcher,
        log,
        signal: stop.signal,
        attempts,
        brokers,
        fetchWaitMs: drain ? DRAIN_FETCH_WAIT_MS : undefined,
      }).catch((error) => {
        fatal ??= error;
      });
    } finally {
      signal.removeEventListener("abort", onAbort);
      stop.abort();
      await beating;
      await heartbeat?.beat(false, "stopped").catch((error) =>
        log.warn(`Cannot write the last heartbeat to Redis: ${errorText(error)}`)
      );
      await producer?.close();
      await admin?.disconnect().catch(() => {});
      await sql?.end({ timeout: 5 });
      redis?.disconnect();
    }
    if (fatal) throw new ServiceError(`Cannot finish the drain: ${errorText(fatal)}`);
    const ms = performance.now() - started;
    const done = drain && targets !== undefined && caughtUp(targets, progress.committed);
    log.info(
      `🏁 ${done ? "Drained" : "Stopped"} after ${(ms / 1000).toFixed(1)} s: ${totals.messages} ` +
        `messages, ${totals.stored} events stored (${totals.duplicates} duplicates skipped), ` +
        `${totals.items} transaction_item events sent, ${totals.deadLetters} dead letters`,
    );
    return { ...totals, group, ms };
  }

  function holdOnce() {
    let held = false;
    return async (stored: number) => {
      if (held || stored === 0) return;
      held = true;
      log.info(
        "🧪 Fault injection: warehouse committed; holding before transaction_items " +
          "and the offset commit until killed",
      );
      await new Promise<never>(() => {});
    };
  }

  async function openWarehouse(signal: AbortSignal): Promise<Sql> {
    for (let attempt = 1;; attempt++) {
      try {
        return await openDatabase(config, "dwh", { log, signal, max: 4 });
      } catch (error) {
        if (drain || signal.aborted) throw error;
        log.warn(`${errorText(error)} (attempt ${attempt}; trying again in 5 s)`);
        await sleep(5000, signal);
      }
    }
  }

  async function resetGroup(admin: Admin) {
    const offsets = await admin.fetchOffsets({ groupId: group, topics });
    if (!offsets.some((t) => t.partitions.some((p) => Number(p.offset) >= 0))) return;
    try {
      await admin.deleteGroups([group]);
      log.info(`⏮️  Group ${group} reset: it reads from the earliest offset`);
    } catch (error) {
      throw new ServiceError(
        `Cannot replay group ${group} from the beginning as Kafka refused to reset it ` +
          `(${errorText(error)}): stop its running consumers or pick another --group`,
      );
    }
  }

  return { group, run };
}
