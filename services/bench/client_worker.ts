/**
 * One client-comparison run in its own process (so that the two clients never
 * share a heap, a JIT or a GC): `deno run ... client_worker.ts <client>
 * <produce|consume> <topic> <count> [batch inflight | group]`. Prints one JSON
 * line: the {@link ClientTiming}; the parent samples the process' peak RSS.
 *
 * @module
 */

import { loadConfig } from "../../lib/config.ts";
import { runMain, UsageError } from "../../lib/cli.ts";
import {
  type ClientName,
  type ClientTiming,
  consumeKafkajs,
  consumePlatformatic,
  produceKafkajs,
  producePlatformatic,
} from "./client_runs.ts";
import { sampleMessages } from "./payload.ts";

await runMain(async () => {
  const [client, path, topic, countRaw, a, b] = Deno.args;
  const count = Number(countRaw);
  if (
    (client !== "kafkajs" && client !== "platformatic") ||
    (path !== "produce" && path !== "consume") || !topic || !(count > 0)
  ) {
    throw new UsageError(`Cannot run the client worker with ${JSON.stringify(Deno.args)}`);
  }
  const config = loadConfig();
  const name = client as ClientName;
  let timing: ClientTiming;
  if (path === "produce") {
    const run = {
      messages: sampleMessages(count, 1),
      topic,
      batch: Number(a ?? 1000),
      inflight: Number(b ?? 1),
    };
    timing = name === "kafkajs"
      ? await produceKafkajs(config, run)
      : await producePlatformatic(config, run);
  } else {
    const run = { topic, count, group: a ?? `${config.namespace}.clients-${client}` };
    timing = name === "kafkajs"
      ? await consumeKafkajs(config, run)
      : await consumePlatformatic(config, run);
  }
  console.log(JSON.stringify({ client, path, ...timing }));
});
