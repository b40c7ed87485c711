/**
 * `deno task stack up|down|status`: the local PostgreSQL, Redis and Kafka.
 *
 * @module
 */

import { numberFlag, parseFlags, runMain, UsageError } from "../../lib/cli.ts";
import { loadConfig } from "../../lib/config.ts";
import { createLogger } from "../../lib/log.ts";
import { BROKER_COUNTS } from "./kafka_config.ts";
import { formatStatus, stackDown, stackHealthy, stackStatus, stackUp, startedBy } from "./stack.ts";

const HELP = `Usage: deno task stack <up|down|status> [options]

  up       use the configured PostgreSQL, Redis and Kafka when they answer, start
           the missing ones, create the namespace's databases and topics
  down     stop what \`up\` started (never a service it found running)
  status   say what runs where; exit 1 when something is missing

Run \`deno task stack <command> --help\` for its options.`;

await runMain(async () => {
  const [command, ...args] = Deno.args;
  if (command === "--help" || command === "-h") {
    console.log(HELP);
    return 0;
  }
  if (command === "up") return await up(args);
  if (command === "down") return await down(args);
  if (command === "status") return await status(args);
  throw new UsageError(
    `Cannot run stack command ${JSON.stringify(command ?? "")}: use up, down or status\n\n${HELP}`,
  );
});

async function up(args: string[]): Promise<number> {
  const flags = parseFlags("stack up", "Bring the local stack up (idempotent).", args, {
    brokers: { type: "string", help: "Kafka brokers to start when none answer: 1 or 3" },
  });
  const brokers = flags.brokers === undefined
    ? undefined
    : numberFlag("brokers", flags.brokers, 1, 3);
  if (brokers !== undefined && !(BROKER_COUNTS as readonly number[]).includes(brokers)) {
    throw new UsageError(
      `Cannot use --brokers as ${BROKER_COUNTS.join(" or ")}: current value is "${flags.brokers}"`,
    );
  }
  const config = loadConfig();
  const log = createLogger();
  const state = await stackUp(config, { brokers, log });
  for (const line of formatStatus(state)) console.log(line);
  const started = startedBy(state);
  const created = [...state.postgres.createdDatabases, ...state.kafka.createdTopics];
  if (created.length > 0) console.log(`Created: ${created.join(", ")}`);
  console.log(
    started.length > 0
      ? `✅ Stack up; started ${started.join(", ")}`
      : "✅ Stack up; nothing to start, everything was running",
  );
  return 0;
}

async function down(args: string[]): Promise<number> {
  parseFlags("stack down", "Stop what `deno task stack up` started.", args, {});
  const stopped = await stackDown(loadConfig(), { log: createLogger() });
  console.log(
    stopped.length > 0
      ? `✅ Stack down; stopped ${stopped.join(", ")}`
      : "✅ Stack down; the stack had started nothing that runs",
  );
  return 0;
}

async function status(args: string[]): Promise<number> {
  const flags = parseFlags("stack status", "Say what runs where.", args, {
    json: { type: "boolean", help: "print the status as JSON" },
  });
  const state = await stackStatus(loadConfig());
  if (flags.json) console.log(JSON.stringify(state, null, 2));
  else for (const line of formatStatus(state)) console.log(line);
  return stackHealthy(state) ? 0 : 1;
}
