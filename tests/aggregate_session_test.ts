/**
 * The aggregator's Kafka session under a slow flush, on the real Kafka and
 * Redis, in process: each `eachBatch` waits for its flush, and a flush held
 * longer than the session timeout (the fault hook `afterWrite`, standing for
 * a slow Redis) must not cost the session; the drain ends exact.
 */

import assert from "node:assert/strict";
import { createRedis } from "../lib/redis.ts";
import type { Logger } from "../lib/log.ts";
import { sleep } from "../lib/retry.ts";
import { createAggregator } from "../services/aggregate/aggregator.ts";
import {
  expectedTotals,
  produce,
  services,
  T0,
  totalsOf,
  transaction,
} from "./_aggregate_support.ts";
import { createTestNamespace } from "./_support.ts";

/** Longer than the aggregator's session timeout (services/aggregate/aggregator.ts, 10 s). */
const HOLD_MS = 14_000;

Deno.test(
  "aggregate: a flush that outlasts the session timeout keeps the session; the drain is exact",
  services,
  async () => {
    const ns = await createTestNamespace("aggslow", { topics: true });
    const redis = createRedis(ns.config);
    try {
      const events = Array.from({ length: 30 }, (_, i) => transaction(i + 1, T0 + i * 1000, [250]));
      await produce(ns, events);
      const lines: string[] = [];
      const log: Logger = {
        info: (l) => lines.push(l),
        warn: (l) => lines.push(`WARN ${l}`),
        error: (l) => lines.push(`ERROR ${l}`),
      };
      let held = false;
      const aggregator = createAggregator({ config: ns.config, log }, {
        drain: true,
        afterWrite: async (added) => {
          if (held || added === 0) return;
          held = true;
          await sleep(HOLD_MS);
        },
      });
      await aggregator.run(AbortSignal.timeout(120_000));
      assert.ok(held, lines.join("\n"));
      const warnings = lines.filter((l) => /^WARN .*(commit|Kafka consumer)/.test(l));
      assert.deepEqual(warnings, [], lines.join("\n"));
      const totals = await totalsOf(redis, ns);
      for (const [field, value] of Object.entries(expectedTotals(events))) {
        assert.equal(totals[field], value, field);
      }
    } finally {
      redis.disconnect();
      await ns.cleanup();
    }
  },
);
