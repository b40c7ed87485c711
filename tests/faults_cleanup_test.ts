/**
 * The fault tests' cleanup leaves no namespace behind (their `t_flt_brk1_*`
 * and `t_flt_brk3_*` databases used to stay): a private stack whose Kafka
 * does not come up has already created the namespace's databases, and a
 * cleanup that cannot reach Kafka still drops the databases and Redis keys.
 */

import assert from "node:assert/strict";
import postgres from "postgres";
import { type Config, loadConfig } from "../lib/config.ts";
import { names } from "../lib/contracts.ts";
import { createRedis } from "../lib/redis.ts";
import { io } from "./_faults.ts";
import { freePorts, type PrivateStack, privateStack, teardown } from "./_faults_stack.ts";
import { cleanupNamespace, createTestNamespace } from "./_support.ts";

async function databasesOf(config: Config): Promise<string[]> {
  const server = new URL(config.serverUrls.instashop);
  server.pathname = "/postgres";
  const sql = postgres(server.toString(), { max: 1, onnotice: () => {} });
  try {
    const rows = await sql<{ datname: string }[]>`
      select datname from pg_database where datname like ${config.namespace + "\\_%"}`;
    return rows.map((r) => r.datname);
  } finally {
    await sql.end();
  }
}

Deno.test(
  "faults cleanup: a private Kafka that never came up leaves no database behind",
  io,
  async () => {
    const ns = await createTestNamespace("flt_clean");
    const port = freePorts(2);
    const taken = Deno.listen({ hostname: "127.0.0.1", port });
    let stack: PrivateStack | undefined;
    let failed: unknown;
    try {
      try {
        stack = await privateStack(ns.env, { KAFKA_BROKERS: `127.0.0.1:${port}` });
      } catch (error) {
        failed = error;
      } finally {
        taken.close();
      }
      assert.match(String(failed), /port is taken/);
      // The stack made the databases before it gave up on Kafka.
      assert.equal((await databasesOf(ns.config)).length, 3);
    } finally {
      await teardown({ ns, stack });
    }
    assert.deepEqual(await databasesOf(ns.config), []);
  },
);

Deno.test(
  "faults cleanup: a cleanup that cannot reach Kafka still drops the databases and Redis keys",
  io,
  async () => {
    const ns = await createTestNamespace("flt_clean");
    const redis = createRedis(ns.config);
    const server = new URL(ns.config.serverUrls.instashop);
    server.pathname = "/postgres";
    const sql = postgres(server.toString(), { max: 1, onnotice: () => {} });
    try {
      await sql.unsafe(`create database "${new URL(ns.config.databases.dwh).pathname.slice(1)}"`);
      await redis.set(names(ns.namespace).redis("metrics:totals"), "1");
      const nowhere = loadConfig({ ...ns.env, KAFKA_BROKERS: `127.0.0.1:${freePorts(1)}` });
      await assert.rejects(cleanupNamespace(nowhere), /Kafka topics and groups/);
      assert.deepEqual(await databasesOf(ns.config), []);
      assert.deepEqual(await redis.keys(names(ns.namespace).redis("*")), []);
    } finally {
      await sql.end();
      redis.disconnect();
      await ns.cleanup();
    }
  },
);
