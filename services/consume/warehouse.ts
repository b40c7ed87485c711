/**
 * Writes to the warehouse: one transaction per batch, by the fast path
 * (`direct.ts`: new rows COPYed straight into the tables) or, when that fails,
 * the staging path (`staged.ts`: COPY into staging tables, then
 * `INSERT ... SELECT ... ON CONFLICT DO NOTHING`); the dimensions by one upsert
 * over `unnest` of column arrays. The outbox (`transaction_items_outbox`, one
 * row per warehouse transaction) says which stored transactions still owe
 * their `transaction_item` events.
 *
 * @module
 */

import type { Sql } from "../../lib/db.ts";
import { valueHash } from "./dead_letter.ts";
import { FastPathFailed, writeDirect } from "./direct.ts";
import {
  type Accepted,
  type Rejected,
  splitRows,
  type WarehouseRows,
  warehouseRows,
} from "./rows.ts";
import { writeStaged } from "./staged.ts";

export interface StoreResult {
  /** Rows added to `realtime_events`. */
  stored: number;
  /** Event ids of batch transactions whose items are still to be sent. */
  publish: Set<string>;
  /** Events the database refused (a value the schema let through); they go to dead letters. */
  rejected: Rejected[];
  /** What to clear from the outbox once the items of `publish` are acknowledged. */
  outbox: OutboxEntries;
  /** Batches the fast path handed to the staging path (a conflict or a refused value). */
  fallbacks: number;
}

/** Outbox entries a store left: its own rows, and transactions of older rows. */
export interface OutboxEntries {
  /** `batch_id`s of the rows this store added (all their transactions are in `publish`). */
  rows: string[];
  /** Transactions stored by an earlier store and still owed (listed by an older row). */
  earlier: string[];
}

/** A store in flight on this process: its event ids, and when it is over. */
interface Writer {
  ids: Set<string>;
  done: Promise<void>;
}

/** Per pool: the stores in flight, and whether the fast path probes every event id. */
interface PoolState {
  writing: Set<Writer>;
  probeAll: boolean;
}

const pools = new WeakMap<Sql, PoolState>();

/**
 * Stores `accepted` in one transaction, by the fast path, or the staging path
 * when the fast path fails. When PostgreSQL refuses a value (SQLSTATE class
 * 22, data exception), the batch is split in halves until the refused events
 * are isolated, so one bad value costs one dead letter, not a stuck
 * partition. Other errors are thrown for the caller to retry.
 *
 * A store sharing event ids with one still in flight on this process (two
 * flushes prepare at once; a behaviour event read on two topics may be in
 * both) writes its other events at once, in a transaction of their own, and
 * the shared ones once the other is over, in a second: its COPY would only
 * wait on the other's rows, then fail and fall back. The second transaction
 * finds what the other stored and writes the rest (the other failed, or
 * refused its copy), and makes the batch's dimension upserts. No transaction stays open while it waits, so the two
 * cannot wait on each other. Only events read twice are compared: a
 * session's flushes are over before the next session redelivers anything.
 *
 * @example
 * ```ts ignore
 * const { stored, publish, rejected } = await storeEvents(sql, accepted);
 * ```
 */
export async function storeEvents(sql: Sql, accepted: readonly Accepted[]): Promise<StoreResult> {
  let state = pools.get(sql);
  if (!state) pools.set(sql, state = { writing: new Set(), probeAll: false });
  // Only events read on two topics meet in two flushes in normal running; a replay's
  // others fall back (./direct.ts), as they would anyway. Every id cost 0.5 µs an event.
  const rows = warehouseRows(accepted);
  const ids = new Set(rows.readTwice);
  const shared = new Set<string>();
  const ahead = [...state.writing].filter((w) => addShared(shared, w.ids, ids)).map((w) => w.done);
  const done = Promise.withResolvers<void>();
  const me = { ids, done: done.promise };
  state.writing.add(me);
  try {
    if (shared.size === 0) return await store(sql, accepted, state, rows);
    // Waiting first, every second flush of a drain waited 110-300 ms, for the first, before
    // writing anything: two flushes preparing together share up to two thousand events.
    const [now, later] = splitRows(rows, shared);
    const first = await store(sql, accepted.filter((a) => !shared.has(a.id)), state, now);
    await Promise.all(ahead);
    return merge(first, await store(sql, accepted.filter((a) => shared.has(a.id)), state, later));
  } finally {
    state.writing.delete(me);
    done.resolve();
  }
}

/** Adds the ids `a` and `b` share to `shared`; whether there was any. */
function addShared(shared: Set<string>, a: Set<string>, b: Set<string>): boolean {
  const [small, large] = a.size < b.size ? [a, b] : [b, a];
  let any = false;
  for (const id of small) {
    if (large.has(id)) {
      shared.add(id);
      any = true;
    }
  }
  return any;
}

/** Two stores of one batch as one. */
function merge(a: StoreResult, b: StoreResult): StoreResult {
  return {
    stored: a.stored + b.stored,
    publish: new Set([...a.publish, ...b.publish]),
    rejected: [...a.rejected, ...b.rejected],
    outbox: {
      rows: [...a.outbox.rows, ...b.outbox.rows],
      earlier: [...a.outbox.earlier, ...b.outbox.earlier],
    },
    fallbacks: a.fallbacks + b.fallbacks,
  };
}

async function store(
  sql: Sql,
  accepted: readonly Accepted[],
  state: PoolState | undefined,
  rows: WarehouseRows = warehouseRows(accepted),
): Promise<StoreResult> {
  const result: StoreResult = {
    stored: 0,
    publish: new Set(),
    rejected: [],
    outbox: { rows: [], earlier: [] },
    fallbacks: 0,
  };
  if (accepted.length === 0) return result;
  try {
    let written;
    if (!state) written = await writeStaged(sql, rows);
    else {
      try {
        const direct = await writeDirect(sql, accepted, rows, state.probeAll);
        // Probing every id pays while batches hold stored transactions (a replay).
        if (state.probeAll && direct.storedTransactions === 0) state.probeAll = false;
        written = direct;
      } catch (error) {
        if (!(error instanceof FastPathFailed)) throw error;
        state.probeAll = true;
        // A refused value with its reason: straight to the halving below.
        if (isDataError(error.cause)) throw error.cause;
        result.fallbacks++;
        written = await writeStaged(sql, rows);
      }
    }
    result.stored = written.stored;
    result.publish = written.publish;
    if (written.outboxRow !== undefined) result.outbox.rows.push(written.outboxRow);
    result.outbox.earlier.push(...written.earlier);
    return result;
  } catch (error) {
    if (!isDataError(error)) throw error;
    if (accepted.length === 1) {
      result.rejected.push({
        source: accepted[0]!.source,
        reason: `warehouse refused it: ${(error as Error).message}`,
      });
      return result;
    }
    const half = Math.ceil(accepted.length / 2);
    // The halves go through the staging path: it alone names the refused value.
    for (const part of [accepted.slice(0, half), accepted.slice(half)]) {
      const sub = await store(sql, part, undefined);
      result.stored += sub.stored;
      for (const id of sub.publish) result.publish.add(id);
      result.rejected.push(...sub.rejected);
      result.outbox.rows.push(...sub.outbox.rows);
      result.outbox.earlier.push(...sub.outbox.earlier);
    }
    return result;
  }
}

/**
 * Removes the outbox entries whose items Kafka acknowledged: the store's own
 * rows whole, and the earlier transactions from the older rows that list them
 * (a row left empty goes). The new array is computed from the row as the
 * update finds it, so two consumers clearing the same row lose neither's work.
 */
export async function clearOutbox(sql: Sql, entries: OutboxEntries): Promise<void> {
  if (entries.rows.length > 0) {
    await sql`delete from transaction_items_outbox where batch_id = any(${entries.rows}::int8[])`;
  }
  if (entries.earlier.length === 0) return;
  const ids = entries.earlier;
  await sql.begin(async (tx) => {
    await tx`
      update transaction_items_outbox o
      set event_ids = array(select unnest(o.event_ids) except select unnest(${ids}::text[]))
      where o.event_ids && ${ids}::text[]`;
    await tx`delete from transaction_items_outbox where cardinality(event_ids) = 0`;
  });
}

/**
 * The dead letters among `rejected` not yet sent: a redelivered or replayed
 * poison message is in `dead_letter_log` already and is skipped.
 */
export async function unloggedDeadLetters(
  sql: Sql,
  rejected: readonly Rejected[],
): Promise<Rejected[]> {
  if (rejected.length === 0) return [];
  const c = deadLetterColumns(rejected);
  const fresh = await sql<{ i: number }[]>`
    select u.i::int as i
    from unnest(${c.topic}::text[], ${c.partition}::int4[], ${c.offset}::int8[], ${c.hash}::text[])
      with ordinality as u(t, p, o, h, i)
    where not exists (select 1 from dead_letter_log d
      where d.source_topic = u.t and d.source_partition = u.p and d.source_offset = u.o
        and d.value_sha256 = decode(u.h, 'hex'))`;
  return fresh.map((r) => rejected[r.i - 1]!);
}

/** Records dead letters Kafka acknowledged, so that they are sent once. */
export async function logDeadLetters(
  sql: Sql,
  rejected: readonly Rejected[],
  failedAt: Date,
): Promise<void> {
  if (rejected.length === 0) return;
  const unique = new Map(
    rejected.map((r) => [`${r.source.topic}:${r.source.partition}:${r.source.offset}`, r]),
  );
  const c = deadLetterColumns([...unique.values()]);
  await sql`
    insert into dead_letter_log (source_topic, source_partition, source_offset, value_sha256,
      reason, failed_at)
    select t, p, o, decode(h, 'hex'), r, ${failedAt.toISOString()}::timestamptz
    from unnest(${c.topic}::text[], ${c.partition}::int4[], ${c.offset}::int8[], ${c.hash}::text[],
      ${c.reason}::text[]) as u(t, p, o, h, r)
    on conflict (source_topic, source_partition, source_offset) do update
      set value_sha256 = excluded.value_sha256, reason = excluded.reason,
        failed_at = excluded.failed_at`;
}

function deadLetterColumns(rejected: readonly Rejected[]) {
  return {
    topic: rejected.map((r) => r.source.topic),
    partition: rejected.map((r) => r.source.partition),
    offset: rejected.map((r) => r.source.offset),
    hash: rejected.map((r) => valueHash(r.source.value)),
    reason: rejected.map((r) => r.reason),
  };
}

/** PostgreSQL's data exceptions: a value that cannot be stored, not a passing fault. */
export function isDataError(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return typeof code === "string" && code.startsWith("22");
}
