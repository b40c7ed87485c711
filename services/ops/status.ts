/**
 * `deno task status [--json]`: one screen instead of the seed's monitoring
 * commands. Exits 1 when a stage's heartbeat is stale or a store cannot be
 * read. See docs/operations.md.
 *
 * @module
 */

import { durationFlag, parseFlags, runMain } from "../../lib/cli.ts";
import { loadConfig } from "../../lib/config.ts";
import { collectStatus, DEFAULT_STALE_MS } from "./status_collect.ts";
import { formatStatusReport } from "./status_format.ts";

await runMain(async () => {
  const flags = parseFlags(
    "status",
    "Topics, consumer lag, warehouse, Redis metrics, heartbeats and dead letters of a namespace.",
    Deno.args,
    {
      json: { type: "boolean", help: "print the report as JSON" },
      stale: {
        type: "string",
        help: "heartbeat age that counts as stale",
        default: `${DEFAULT_STALE_MS / 1000}s`,
      },
    },
  );
  const staleMs = durationFlag("stale", flags.stale);
  const report = await collectStatus(loadConfig(), { staleMs });
  if (flags.json) console.log(JSON.stringify(report, null, 2));
  else for (const line of formatStatusReport(report)) console.log(line);
  return report.healthy ? 0 : 1;
});
