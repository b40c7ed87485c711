/**
 * One stream's PostgreSQL side: its cursor, its gated pages, replay pages and
 * the counts the logs and heartbeat show. Thin: the SQL is in `queries.ts`.
 *
 * @module
 */

import { assertRowsIntact, type Sql } from "../../lib/db.ts";
import { type Cursor, cursorOf, cursorParams, formatCursor } from "./cursor.ts";
import {
  CURSOR_READ,
  CURSOR_WRITE,
  heldSql,
  pageSql,
  pendingSql,
  replaySql,
  type StreamTable,
} from "./queries.ts";

/** A page row: the stream's columns plus its `txid` (text) and `id`. */
export interface PageRow {
  id: number | bigint | string;
  txid: string;
  [column: string]: unknown;
}

export interface Page<R extends PageRow = PageRow> {
  rows: R[];
  /** Cursor of the last row (undefined when empty). */
  last: Cursor | undefined;
  /** The gate the page was read under (undefined when empty). */
  upto: bigint | undefined;
}

/** Rows after the cursor that an open transaction of this database holds back. */
export interface Held {
  held: number;
  upto: bigint;
  blocker: { pid: number; xid: string; since: string } | null;
}

/** A stored cursor that is ahead of ours: two producers publish one namespace. */
export class CursorConflictError extends Error {
  constructor(stream: string, ours: Cursor, theirs: Cursor | undefined) {
    super(
      `Cannot store the ${stream} cursor at ${formatCursor(ours)} as it already is at ${
        theirs ? formatCursor(theirs) : "nothing"
      }: another producer publishes this namespace; run one producer per namespace`,
    );
    this.name = "CursorConflictError";
  }
}

export interface Source<R extends PageRow = PageRow> {
  readonly stream: string;
  readCursor(): Promise<Cursor | undefined>;
  /** Moves the durable cursor forward to `cursor`; throws {@link CursorConflictError}. */
  storeCursor(cursor: Cursor): Promise<void>;
  page(after: Cursor, limit: number, ceiling?: bigint): Promise<Page<R>>;
  replayPage(since: Date, after: Cursor, upto: Cursor, limit: number): Promise<Page<R>>;
  held(after: Cursor): Promise<Held>;
  pending(after: Cursor): Promise<number>;
}

/** The {@link Source} of `table` in the database behind `sql`. */
export function createSource<R extends PageRow>(sql: Sql, table: StreamTable): Source<R> {
  const text = {
    page: pageSql(table),
    replay: replaySql(table),
    held: heldSql(table),
    pending: pendingSql(table),
  };
  const stream = table.table;
  // Prepared once per connection; these run thousands of times in a backlog.
  const run = <T>(query: string, params: unknown[]) =>
    sql.unsafe(query, params as never[], { prepare: true }) as unknown as Promise<T[]>;

  async function readCursor(): Promise<Cursor | undefined> {
    const [row] = await run<{ txid: string; last_id: number | bigint }>(CURSOR_READ, [stream]);
    return row ? cursorOf(row.txid, row.last_id) : undefined;
  }

  async function storeCursor(cursor: Cursor): Promise<void> {
    const moved = await run(CURSOR_WRITE, [stream, ...cursorParams(cursor)]);
    if (moved.length > 0) return;
    // Not moved: already there (a retried write that had committed), or ahead.
    const stored = await readCursor();
    if (stored && stored.txid === cursor.txid && stored.id === cursor.id) return;
    throw new CursorConflictError(stream, cursor, stored);
  }

  async function page(after: Cursor, limit: number, ceiling?: bigint): Promise<Page<R>> {
    const rows = await run<R & { upto: string }>(text.page, [
      ceiling === undefined ? null : ceiling.toString(),
      ...cursorParams(after),
      limit,
    ]);
    return toPage(assertRowsIntact(rows, `read a page of ${stream}`));
  }

  async function replayPage(since: Date, after: Cursor, upto: Cursor, limit: number) {
    const rows = await run<R>(text.replay, [
      since.toISOString(),
      ...cursorParams(after),
      ...cursorParams(upto),
      limit,
    ]);
    return toPage(assertRowsIntact(rows, `read a replay page of ${stream}`));
  }

  async function held(after: Cursor): Promise<Held> {
    const [row] = await run<{ upto: string; held: number | bigint; blocker: Held["blocker"] }>(
      text.held,
      cursorParams(after),
    );
    return { held: Number(row!.held), upto: BigInt(row!.upto), blocker: row!.blocker };
  }

  async function pending(after: Cursor): Promise<number> {
    const [row] = await run<{ pending: number | bigint }>(text.pending, cursorParams(after));
    return Number(row!.pending);
  }

  return { stream, readCursor, storeCursor, page, replayPage, held, pending };
}

function toPage<R extends PageRow>(rows: (R & { upto?: string })[]): Page<R> {
  const last = rows.at(-1);
  return {
    rows,
    last: last ? cursorOf(last.txid, last.id) : undefined,
    upto: last?.upto === undefined ? undefined : BigInt(last.upto),
  };
}
