/**
 * `deno task generate`: realistic shop activity into PostgreSQL (`instashop`
 * and `crm_db`), at a steady rate or as fast as possible. See docs/generate.md.
 *
 * @module
 */

import { runMain } from "../../lib/cli.ts";
import { type Config, loadConfig } from "../../lib/config.ts";
import { names } from "../../lib/contracts.ts";
import { isConnectionError, openDatabase } from "../../lib/db.ts";
import { createLogger, type Logger } from "../../lib/log.ts";
import { createRedis } from "../../lib/redis.ts";
import { retry } from "../../lib/retry.ts";
import { parseGenerateFlags } from "./flags.ts";
import { createGenerator } from "./generator.ts";
import { startHeartbeat } from "./heartbeat.ts";
import { createProgressBar, type ProgressBar } from "./progress.ts";
import { type Attempt, createShopStore, type ShopStore } from "./store.ts";

async function openStore(config: Config, log: Logger, signal: AbortSignal): Promise<ShopStore> {
  const instashop = await openDatabase(config, "instashop", { log, signal, max: 2 });
  try {
    const crm = await openDatabase(config, "crm", { log, signal, max: 2 });
    // A cut connection costs a retry, not the run; a server down for longer ends it.
    const attempt: Attempt = (what, statement) =>
      retry(statement, { what, attempts: 6, log, signal, retryIf: isConnectionError });
    return createShopStore({ instashop, crm, attempt });
  } catch (error) {
    await instashop.end({ timeout: 1 });
    throw error;
  }
}

await runMain(async (signal) => {
  const { rate, durationMs, count, seed, transactionShare, batchSize } = parseGenerateFlags(
    Deno.args,
  );
  const config = loadConfig();

  let log: Logger = createLogger();
  let bar: ProgressBar | undefined;
  if (count !== undefined && count > 0 && Deno.stdout.isTerminal()) {
    const encoder = new TextEncoder();
    bar = createProgressBar(count, log, (text) => Deno.stdout.writeSync(encoder.encode(text)));
    log = bar.log;
  }

  const redis = createRedis(config, { failFast: true });
  let redisWarned = false;
  const redisDown = (error: Error) => {
    if (!redisWarned) log.warn(`Redis unavailable (${error.message}); no heartbeat for status`);
    redisWarned = true;
  };
  redis.on("error", redisDown);

  const generator = createGenerator(
    {
      openStore: (signal) => openStore(config, log, signal),
      log,
      onProgress: bar?.update,
      retryable: isConnectionError,
    },
    { seed, rate, durationMs, count, transactionShare, batchSize },
  );
  // Beats are skipped until Redis is ready; a refused connection warns through "error".
  const beats = {
    hset: (key: string, fields: Record<string, string>) =>
      redis.status === "ready" ? redis.hset(key, fields) : Promise.resolve(0),
  };
  const stopHeartbeat = startHeartbeat(beats, {
    key: names(config.namespace).heartbeat("generate"),
    tally: generator.tally,
    detail: { seed, rate, count: count ?? null },
    onUnavailable: redisDown,
  });
  try {
    await generator.run(signal);
  } finally {
    stopHeartbeat();
    bar?.finish();
    redis.disconnect();
  }
});
