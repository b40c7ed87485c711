/**
 * Which PostgreSQL failures are the connection's (worth a retry) and which
 * unhandled postgres.js errors are a cut connection's leftovers (the guard in
 * `db.ts` keeps the process alive for those alone). Pure, so unit-tested.
 *
 * @module
 */

/**
 * postgres.js reads the server's array types on each new connection
 * (`fetchArrayTypes`) without handling a failure of that query: a cut at that
 * moment is an unhandled rejection. Recognised by the query text and a
 * connection-level error code.
 */
export function isCutTypeFetch(error: unknown): boolean {
  const query = (error as { query?: unknown } | null)?.query;
  return error instanceof Error && typeof query === "string" &&
    /from pg_catalog\.pg_type a[\s\S]*a\.typcategory = 'A'/.test(query) && isConnectionError(error);
}

/**
 * postgres.js' connect timeout (`connectTimedOut`) rejecting a promise nobody
 * awaits any more: seen once under PostgreSQL cuts (CI-like load), where it
 * ended a process whose queries had all been answered or retried. Recognised
 * by its code and the frame that raised it.
 */
export function isOrphanConnectTimeout(error: unknown): boolean {
  return error instanceof Error && (error as { code?: unknown }).code === "CONNECT_TIMEOUT" &&
    /\bconnectTimedOut \([^)\n]*\bpostgres\b[^)\n]*connection\.js/.test(error.stack ?? "");
}

/**
 * The server's own word that it ended the session (SQLSTATE 57P01 from
 * `pg_terminate_backend`, or any connection-class code), as postgres.js reads
 * it in `ErrorResponse`, rejecting a promise nobody awaits: seen in 2 of 23
 * runs of tests/fixtures/pg_cut_probe.ts (a cut every 200 ms) once sockets
 * had TCP_NODELAY (lib/tcp_nodelay.ts), whose queries reach the server
 * sooner. Recognised by its code and the frame that raised it.
 */
export function isOrphanServerCut(error: unknown): boolean {
  return error instanceof Error && error.name === "PostgresError" && isConnectionError(error) &&
    /\bat ErrorResponse \([^)\n]*\bpostgres\b[^)\n]*connection\.js/.test(error.stack ?? "");
}

/** An error thrown by postgres.js' deferred socket write on a cut connection, and only that. */
export function isCutWrite(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (!/\bnextWrite \([^)\n]*\bpostgres\b[^)\n]*connection\.js/.test(error.stack ?? "")) {
    return false;
  }
  return (error instanceof TypeError &&
    error.message === "Cannot read properties of null (reading 'write')") ||
    error.message === "This socket has been ended by the other party";
}

/**
 * A failure of the connection, not of the statement: worth a retry. SQLSTATE
 * classes 08 (connection), 57 (operator intervention, e.g. 57P01 from
 * `pg_terminate_backend`) and 53 (resources), postgres.js' own CONNECT_* and
 * CONNECTION_* codes, and socket errors (ECONNREFUSED, ECONNRESET, EPIPE...).
 */
export function isConnectionError(error: unknown): boolean {
  const code = String((error as { code?: unknown })?.code ?? "");
  return /^(08|57|53)/.test(code) || /^(CONNECT|E[A-Z]+$)/.test(code);
}

/**
 * Throws a connection error (`CONNECTION_CLOSED`, which callers retry as after
 * any cut) when `rows` has a missing row. Seen in CI under PostgreSQL cuts: a
 * page of postgres.js 3.4.9 results held an `undefined` row, and reading it
 * ended the producer (`Cannot read properties of undefined (reading 'id')`).
 * postgres.js keeps its row index per connection and resets it only when a
 * statement completes (`CommandComplete`), not when the connection closes, so
 * a result read after a cut can start at a stale index; cheap to check, and a
 * retry reads the rows again.
 *
 * @example
 * ```ts
 * import { assertRowsIntact } from "./db_errors.ts";
 * assertRowsIntact([{ id: 1 }], "read a page"); // [{ id: 1 }]
 * ```
 */
export function assertRowsIntact<T>(rows: T[], what: string): T[] {
  for (let i = 0; i < rows.length; i++) {
    if (rows[i] === undefined || rows[i] === null) {
      throw Object.assign(
        new Error(
          `Cannot ${what} as row ${i} of ${rows.length} is missing from the result ` +
            "(postgres.js after a cut connection); reading it again",
        ),
        { code: "CONNECTION_CLOSED" },
      );
    }
  }
  return rows;
}
