/**
 * The snapshot-gated cursor queries, as SQL text (pure; `stream.ts` runs them).
 *
 * A row is publishable when no transaction that could still add a row before
 * it in `(txid, id)` order is open. PostgreSQL gives each writing transaction
 * an increasing `xid8` and the row stores it (`txid default
 * pg_current_xact_id()`); a snapshot lists the transactions in progress. Every
 * row whose `txid` is below the oldest transaction still in progress *in this
 * database* is final: committed and visible, or rolled back. So each page
 * reads `txid < gate` after the cursor, in one statement (one snapshot), and a
 * late commit is never skipped: its rows sort after the cursor because the
 * cursor never passed its txid while it was open. docs/produce.md has the proof.
 *
 * @module
 */

/** A stream: one source table, its cursor row, and the columns a page returns. */
export interface StreamTable {
  /** `pipeline_cursor.stream` and the table name. */
  readonly table: "transactions" | "user_behavior";
  /** Select list over alias `t` (without txid, which every query adds). */
  readonly columns: string;
}

/** Text of the event time as the contracts want it: ISO 8601 UTC, milliseconds, `Z`. */
const TS = `to_char(t.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as ts`;

export const TRANSACTIONS: StreamTable = {
  table: "transactions",
  // Items come from the same statement, hence the same snapshot as the row:
  // a transaction and its details commit together, so items are never missing.
  columns: `t.id, t.customer_id, t.buyer_id, t.total_cents, t.payment_method, t.status, ${TS},
    (select json_agg(json_build_array(d.id, d.product_id, p.name, p.category, d.quantity,
                                      d.unit_price_cents) order by d.id)
       from transaction_details d join products p on p.id = d.product_id
      where d.transaction_id = t.id) as items`,
};

export const USER_BEHAVIOR: StreamTable = {
  table: "user_behavior",
  columns:
    `t.id, t.customer_id, t.session_id, t.event_type, t.product_id, t.search_query, t.device, ${TS}`,
};

/**
 * The gate: the oldest transaction of the current snapshot that is still in
 * progress and not proven to belong to another database, else the snapshot's
 * xmax; capped by `ceiling` (a drain's bound). Transactions of other databases
 * cannot write our tables, so they must not hold our stream back (xids are
 * cluster-wide; one long transaction elsewhere would otherwise stall every
 * namespace). An xid we cannot place counts as ours, which only delays.
 */
function gateSql(ceiling: string): string {
  return `with snap as materialized (select pg_current_snapshot() as s),
  gate as materialized (
    select least(coalesce(
      (select min(x) from snap, pg_snapshot_xip(snap.s) as x
        where not exists (select 1 from pg_stat_activity a
                           where a.backend_xid = xid(x) and a.datname <> current_database())),
      (select pg_snapshot_xmax(s) from snap)), ${ceiling}) as upto)`;
}

/**
 * One page after the cursor, below the gate. Params: `$1` ceiling (xid8 text
 * or null), `$2` cursor txid, `$3` cursor id, `$4` limit. Each row also
 * carries `upto`, the gate it was read under.
 */
export function pageSql({ table, columns }: StreamTable): string {
  // The gate as a scalar subquery becomes an InitPlan parameter, so the
  // (txid, id) index serves the range, the order and the limit.
  return `${gateSql("$1::xid8")}
select ${columns}, t.txid::text as txid, (select upto from gate)::text as upto
  from ${table} t
 where t.txid < (select upto from gate) and (t.txid, t.id) > ($2::xid8, $3::int8)
 order by t.txid, t.id
 limit $4`;
}

/**
 * Why a page came back empty: rows after the cursor held back by an open
 * transaction, and the oldest open writing transaction of this database.
 * Params: `$1` cursor txid, `$2` cursor id.
 */
export function heldSql({ table }: StreamTable): string {
  return `${gateSql("null::xid8")}
select (select upto from gate)::text as upto,
  (select count(*) from ${table} t
    where (t.txid, t.id) > ($1::xid8, $2::int8) and t.txid >= (select upto from gate))::int8 as held,
  (select json_build_object('pid', a.pid, 'xid', a.backend_xid::text,
                            'since', to_char(a.xact_start at time zone 'UTC',
                                             'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
     from pg_stat_activity a
    where a.datname = current_database() and a.backend_xid is not null
      and a.pid <> pg_backend_pid()
    order by age(a.backend_xid) desc limit 1) as blocker`;
}

/**
 * Already published rows with `created_at >= since`, for `--replay-since`.
 * Params: `$1` since, `$2`/`$3` position, `$4`/`$5` the stored cursor (upper
 * bound, inclusive), `$6` limit. No gate: everything up to the cursor is final.
 */
export function replaySql({ table, columns }: StreamTable): string {
  return `select ${columns}, t.txid::text as txid
  from ${table} t
 where t.created_at >= $1::timestamptz
   and (t.txid, t.id) > ($2::xid8, $3::int8) and (t.txid, t.id) <= ($4::xid8, $5::int8)
 order by t.txid, t.id
 limit $6`;
}

/** Rows after the cursor (published or not yet publishable), capped. Params: `$1`, `$2` cursor. */
export function pendingSql({ table }: StreamTable): string {
  return `select count(*)::int8 as pending from (
  select 1 from ${table} t where (t.txid, t.id) > ($1::xid8, $2::int8) limit 10000000) r`;
}

/** The stored cursor of `$1`, if any. */
export const CURSOR_READ =
  `select txid::text as txid, last_id from pipeline_cursor where stream = $1`;

/**
 * Moves the cursor of `$1` forward to (`$2`, `$3`), never backwards; returns
 * the row only when it moved or was created.
 */
export const CURSOR_WRITE = `insert into pipeline_cursor as c (stream, txid, last_id, updated_at)
values ($1, $2::xid8, $3::int8, now())
on conflict (stream) do update
   set txid = excluded.txid, last_id = excluded.last_id, updated_at = excluded.updated_at
 where (c.txid, c.last_id) < (excluded.txid, excluded.last_id)
returning 1 as moved`;
