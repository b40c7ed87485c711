/**
 * `deno task consume`: Kafka into the warehouse, with enriched
 * `transaction_items`. See docs/consume.md.
 *
 * @module
 */

import { parseFlags, runMain } from "../../lib/cli.ts";
import { loadConfig } from "../../lib/config.ts";
import { createLogger } from "../../lib/log.ts";
import { createWarehouseConsumer } from "./consumer.ts";

const SUMMARY = "Reads transactions, user_behavior, searches and cart_events into the warehouse " +
  "(dwh_db), once per event, and sends one transaction_item event per item.";

if (import.meta.main) {
  await runMain(async (signal) => {
    const flags = parseFlags("consume", SUMMARY, Deno.args, {
      drain: { type: "boolean", help: "consume until caught up with the end offsets, then exit 0" },
      group: {
        type: "string",
        help: "consumer group, namespaced as N.<group> (default instashop-warehouse)",
      },
      "from-beginning": {
        type: "boolean",
        help: "reprocess from the earliest offset: a new replay group, or --group reset",
      },
      "hold-after-write": {
        type: "boolean",
        help: "fault injection (tests): after the first warehouse commit, wait to be killed",
      },
    });
    const config = loadConfig();
    const consumer = createWarehouseConsumer({ config, log: createLogger() }, {
      group: flags.group,
      fromBeginning: flags["from-beginning"],
      drain: flags.drain,
      holdAfterWrite: flags["hold-after-write"],
    });
    await consumer.run(signal);
    return 0;
  });
}
