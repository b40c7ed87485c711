/**
 * lib/db.ts against the real PostgreSQL: a handle from connect() survives
 * its pool being replaced (what the cut-connection repairs rely on).
 */

import assert from "node:assert/strict";
import { loadConfig } from "../lib/config.ts";
import { connect, renewPool } from "../lib/db.ts";

Deno.test("db: renewPool moves a handle to a fresh pool; the holder's next query works on a new session", async () => {
  const url = new URL(loadConfig().serverUrls.instashop);
  url.pathname = "/postgres";
  const sql = connect(url.toString(), { max: 1 });
  try {
    const [before] = await sql<{ pid: number }[]>`select pg_backend_pid() as pid`;
    renewPool(sql);
    const [after] = await sql<{ pid: number }[]>`select pg_backend_pid() as pid`;
    assert.notEqual(after!.pid, before!.pid, "the query after renewPool ran on the old session");
    // The old pool ends within its 5 s grace: its session is gone from the server.
    let alive = true;
    for (let i = 0; i < 40 && alive; i++) {
      await new Promise((r) => setTimeout(r, 250));
      const rows = await sql`select 1 from pg_stat_activity where pid = ${before!.pid}`;
      alive = rows.length > 0;
    }
    assert.equal(alive, false, `session ${before!.pid} of the old pool is still open`);
    await sql.begin(async (tx) => {
      const [row] = await tx<{ n: number }[]>`select 41 + 1 as n`;
      assert.equal(row!.n, 42);
    });
  } finally {
    await sql.end({ timeout: 5 });
  }
});
