/**
 * When did each source row become visible to readers, i.e. when did its
 * transaction commit? PostgreSQL sends NOTIFY only at commit, so the bench
 * LISTENs on the channels the shop's triggers use (`instashop_rows`,
 * `crm_rows`) and, on each notification, reads the rows that became visible
 * since the last read: those rows committed at or before that notification. The
 * time it gives is at most one query late, never early relative to the
 * commit (a row committing between the notification and the query gets the
 * notification's time, which makes its freshness look worse, not better).
 *
 * @module
 */

import type { Sql } from "../../lib/db.ts";

/** One committed source row: its event id and the time its commit was seen (epoch ms). */
export interface CommitStamp {
  eventId: string;
  at: number;
}

interface Source {
  sql: Sql;
  channel: string;
  table: string;
  prefix: string;
}

/**
 * Starts watching both source databases. Rows already present count as the
 * baseline and get no stamp. `stop()` returns every stamp in commit order.
 */
export async function watchCommits(
  { instashop, crm }: { instashop: Sql; crm: Sql },
): Promise<{ stamps(): CommitStamp[]; stop(): Promise<CommitStamp[]> }> {
  const stamps: CommitStamp[] = [];
  const sources: Source[] = [
    { sql: instashop, channel: "instashop_rows", table: "transactions", prefix: "txn-" },
    { sql: crm, channel: "crm_rows", table: "user_behavior", prefix: "ub-" },
  ];
  const stops: Array<() => Promise<void>> = [];
  for (const source of sources) stops.push(await watchSource(source, stamps));
  return {
    stamps: () => stamps,
    async stop() {
      await Promise.all(stops.map((s) => s()));
      return stamps.sort((a, b) => a.at - b.at);
    },
  };
}

async function watchSource(
  { sql, channel, table, prefix }: Source,
  stamps: CommitStamp[],
): Promise<() => Promise<void>> {
  // Rows are read by their writing transaction (xid8 `txid`), not by id: a
  // transaction with lower ids can commit after one with higher ids. Every
  // transaction below the snapshot's xmin had ended at the previous read, so
  // each read only looks at txid >= that xmin and skips the ids it stamped.
  const [{ xmin }] = await sql.unsafe<{ xmin: string }[]>(
    "select pg_snapshot_xmin(pg_current_snapshot())::text as xmin",
  ) as unknown as [{ xmin: string }];
  let from = xmin;
  const baseline = new Set(
    (await sql.unsafe<{ id: number }[]>(
      `select id from ${table} where txid >= $1::xid8`,
      [from],
    )).map((r) => Number(r.id)),
  );
  const stamped = new Set<number>();
  // Coalesces notifications: at most one read in flight, and one queued with the oldest time.
  let queuedAt: number | undefined;
  let reading: Promise<void> | undefined;
  const read = async (at: number) => {
    const [{ next }] = await sql.unsafe<{ next: string }[]>(
      "select pg_snapshot_xmin(pg_current_snapshot())::text as next",
    ) as unknown as [{ next: string }];
    const rows = await sql.unsafe<{ id: number }[]>(
      `select id from ${table} where txid >= $1::xid8 order by txid, id`,
      [from],
    );
    for (const row of rows) {
      const id = Number(row.id);
      if (baseline.has(id) || stamped.has(id)) continue;
      stamped.add(id);
      stamps.push({ eventId: `${prefix}${id}`, at });
    }
    from = next;
  };
  const pump = () => {
    if (reading || queuedAt === undefined) return;
    const at = queuedAt;
    queuedAt = undefined;
    reading = read(at).catch(() => {}).finally(() => {
      reading = undefined;
      pump();
    });
  };
  const listener = await sql.listen(channel, () => {
    queuedAt ??= Date.now();
    pump();
  });
  return async () => {
    await listener.unlisten();
    await reading;
    // Rows whose notification raced the unlisten: stamp them now (late, so conservative).
    queuedAt ??= Date.now();
    pump();
    await reading;
  };
}
