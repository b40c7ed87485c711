/**
 * The stack's programmatic API, for `deno task start` (main.ts), the
 * benchmark and fault tests. See docs/stack.md.
 *
 * @example
 * ```ts ignore
 * import { loadConfig } from "../../lib/config.ts";
 * import { killBroker, stackDown, stackUp, startBroker } from "./services/stack/mod.ts";
 * const config = loadConfig();
 * await stackUp(config, { brokers: 3 });
 * await killBroker(config, 2); // kill -9
 * await startBroker(config, 2); // back on its old data
 * await stackDown(config);
 * ```
 *
 * @module
 */

export {
  formatStatus,
  stackDown,
  type StackDownOptions,
  stackHealthy,
  type StackState,
  stackStatus,
  stackUp,
  type StackUpOptions,
  startedBy,
} from "./stack.ts";
export { type BrokerState, type KafkaState, killBroker, startBroker } from "./kafka.ts";
export { ensureKafkaJars, kafkaJarsDir, kafkaVersion } from "./kafka_jars.ts";
export type { PostgresState } from "./postgres.ts";
export type { RedisState } from "./redis.ts";
