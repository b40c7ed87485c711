/**
 * `deno task verify [--json]`: reconciles a namespace end to end (source
 * rows, distinct event ids on Kafka, warehouse rows, Redis totals and
 * windows). Exits 0 only when every line agrees exactly; exit 1 names what
 * differs. Run it on a quiet pipeline (after the stages drained): events in
 * flight show as differences. See docs/operations.md.
 *
 * @module
 */

import { parseFlags, runMain } from "../../lib/cli.ts";
import { loadConfig } from "../../lib/config.ts";
import { scanTopics } from "./topic_scan.ts";
import { renderTable } from "./table.ts";
import { type Check, reconcile } from "./verify_checks.ts";
import { readRedis, readSource, readWarehouse } from "./verify_collect.ts";

await runMain(async () => {
  const flags = parseFlags(
    "verify",
    "Reconcile a namespace end to end: every store must agree with the source rows exactly.",
    Deno.args,
    { json: { type: "boolean", help: "print the checks as JSON" } },
  );
  const config = loadConfig();
  const reads = {
    source: readSource(config),
    warehouse: readWarehouse(config),
    redis: readRedis(config),
    scans: scanTopics(config, [
      "transactions",
      "userBehavior",
      "searches",
      "cartEvents",
      "transactionItems",
    ]),
  };
  // Settle all first: a failing read must not cut the topic scan short and leave its group.
  await Promise.allSettled(Object.values(reads));
  const [source, warehouse, redis, scans] = [
    await reads.source,
    await reads.warehouse,
    await reads.redis,
    await reads.scans,
  ];
  const topics = Object.fromEntries(
    Object.entries(scans).map(([key, scan]) => [key, scan.distinct]),
  );
  const checks = reconcile({ source, topics, warehouse, redis });
  const failed = checks.filter((c) => !c.ok);
  if (flags.json) {
    console.log(JSON.stringify(
      { namespace: config.namespace, ok: failed.length === 0, checks, topics: scans },
      null,
      2,
    ));
  } else {
    printTable(config.namespace, checks, Object.values(scans));
  }
  if (failed.length === 0) return 0;
  console.error(
    `❌ ${failed.length} of ${checks.length} checks differ: ` +
      failed.map((c) => `${c.check} (expected ${c.expected}, actual ${c.actual})`).join("; "),
  );
  return 1;
});

function printTable(
  namespace: string,
  checks: Check[],
  scans: { topic: string; invalid: number; messages: number; distinct: number }[],
): void {
  console.log(`InstaShop verify${namespace ? ` (namespace ${namespace})` : ""}`);
  for (
    const line of renderTable(
      ["check", "expected", "actual", "ok"],
      checks.map((c) => [c.check, c.expected, c.actual, c.ok ? "ok" : "DIFFERS"]),
    )
  ) console.log(line);
  const resent = scans.filter((s) => s.messages - s.invalid > s.distinct);
  for (const s of resent) {
    console.log(
      `note: ${s.topic} holds ${s.messages - s.invalid - s.distinct} re-sent message(s) ` +
        "with an event id seen before (counted once)",
    );
  }
  for (const s of scans.filter((s) => s.invalid > 0)) {
    console.log(`note: ${s.topic} holds ${s.invalid} invalid message(s), left to dead letters`);
  }
  if (checks.every((c) => c.ok)) console.log(`✅ all ${checks.length} checks agree`);
}
