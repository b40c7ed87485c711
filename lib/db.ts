/**
 * PostgreSQL access: connections (postgres.js), database creation for
 * namespaces, and the migration runner. Schemas live as SQL files under
 * `migrations/<database>/NNN_name.sql`, applied once each, in order, under an
 * advisory lock so that concurrent stages cannot race.
 *
 * @module
 */

import "./sealed_env.ts";
// Before any connection: no 40 ms delayed-ACK waits on small writes.
import "./tcp_nodelay.ts";
import postgres from "postgres";
import type { Config } from "./config.ts";
import type { DatabaseName } from "./contracts.ts";
import { ServiceError } from "./cli.ts";
import { redact } from "./config.ts";
import { retry } from "./retry.ts";
import { createLogger, type Logger } from "./log.ts";
import {
  assertRowsIntact,
  isConnectionError,
  isCutTypeFetch,
  isCutWrite,
  isOrphanConnectTimeout,
  isOrphanServerCut,
} from "./db_errors.ts";

export { assertRowsIntact, isConnectionError };

export type Sql = postgres.Sql;

export interface ConnectOptions {
  max?: number;
  log?: Logger;
  signal?: AbortSignal;
  /** Connection attempts before giving up (default 6, about 10 s). */
  attempts?: number;
}

/**
 * Opens a pool to `url`; bigint columns come back as JS `BigInt` (callers convert ids, far below 2^53).
 *
 * The pool is behind a stable handle: when postgres.js hits its null-socket
 * bug on a cut connection (see {@link guardNullSocketWrites}), the handle
 * moves to a fresh pool and the old one is ended, so holders keep working.
 */
export function connect(
  url: string,
  { max = 4, settings = {} }: { max?: number; settings?: Record<string, string> } = {},
): Sql {
  guardNullSocketWrites();
  const pool: Pool = {
    name: new URL(url).pathname.slice(1),
    closes: 0,
    current: undefined as unknown as Sql,
    open: () =>
      postgres(url, {
        max,
        onnotice: () => {},
        onclose: () => void pool.closes++,
        // A local server answers in milliseconds; a connect that hangs is a half-closed socket.
        connect_timeout: 10,
        types: { bigint: postgres.BigInt },
        // `settings`: session GUCs sent at connect (e.g. the producer turns JIT off).
        connection: { application_name: "instashop-pipeline", TimeZone: "UTC", ...settings },
      }),
  };
  pool.current = pool.open();
  pools.add(pool);
  const end: Sql["end"] = (options) => {
    pools.delete(pool);
    return pool.current.end(options);
  };
  // An arrow target has no `prototype`, so the proxy keeps no invariant of its own.
  const handle = new Proxy((() => {}) as unknown as Sql, {
    apply: (_target, self, args) => Reflect.apply(pool.current, self, args),
    get: (_target, key) => key === "end" ? end : Reflect.get(pool.current, key),
    has: (_target, key) => Reflect.has(pool.current, key),
  });
  handles.set(handle, pool);
  return handle;
}

interface Pool {
  name: string;
  /** Connections of `current` closed since it opened. */
  closes: number;
  current: Sql;
  open(): Sql;
}

const pools = new Set<Pool>();
const handles = new WeakMap<object, Pool>();
let guarded = false;

/** Moves `pool` to a fresh postgres.js pool; the old one ends after 5 s (what hung on it rejects). */
function swap(pool: Pool): void {
  const old = pool.current;
  pool.current = pool.open();
  pool.closes = 0;
  old.end({ timeout: 5 }).catch(() => {});
}

/**
 * Moves the handle `sql` (from {@link connect}) to a fresh pool. For a caller
 * whose retry after a connection failure failed again the same way: a
 * postgres.js connection left half closed by a cut can time out on every
 * later query (CONNECT_TIMEOUT) without the process-level error that
 * {@link guardNullSocketWrites} repairs.
 *
 * @example
 * ```ts ignore
 * import { connect, renewPool } from "./db.ts";
 * const sql = connect("postgres://postgres@127.0.0.1:5432/dwh_db");
 * renewPool(sql);
 * ```
 */
export function renewPool(sql: Sql): void {
  const pool = handles.get(sql);
  if (pool && pools.has(pool)) swap(pool);
}

/**
 * postgres.js 3.4.9 writes to a connection's socket after the server cut it
 * when a transaction's next statement (or its ROLLBACK) follows the cut: the
 * write runs in a `setImmediate` callback (`nextWrite`), out of reach of any
 * `try`, and fails with `TypeError: Cannot read properties of null (reading
 * 'write')` once `closed()` has dropped the socket (porsager/postgres #1154,
 * #1208; fixes proposed upstream, none released), or, on Deno, with an
 * unhandled EPIPE "This socket has been ended by the other party" while the
 * socket is half closed. Left alone either kills the process; caught, the
 * TypeError leaves that connection unable to write again (each later query on
 * it times out). So this recognises those errors and nothing else, keeps the
 * process alive, and moves every pool that saw a connection close to a fresh
 * one; the old pool is ended after 5 s, which rejects what hung on it
 * (CONNECTION_DESTROYED), and the callers retry as after any cut. It also keeps
 * alive a process whose new connection was cut while postgres.js read the
 * array types ({@link isCutTypeFetch}), one whose connect timeout rejected
 * a promise nobody awaits ({@link isOrphanConnectTimeout}), and one told by
 * the server that it ended a session under such a promise
 * ({@link isOrphanServerCut}).
 */
export function guardNullSocketWrites(): void {
  if (guarded) return;
  guarded = true;
  const onFault = (error: unknown, event: Event) => {
    // Nothing to repair for these: the connection is gone, and postgres.js opens a new one
    // (and fetches the array types again) for the next query.
    const passing = isCutTypeFetch(error)
      ? "PostgreSQL connection cut while postgres.js read the array types"
      : isOrphanServerCut(error)
      ? "PostgreSQL ended a session under a statement nobody awaits any more"
      : undefined;
    if (passing) {
      event.preventDefault();
      createLogger().warn(`${passing}: ${(error as Error).message}; postgres.js reconnects`);
      return;
    }
    if (!isCutWrite(error) && !isOrphanConnectTimeout(error)) return;
    event.preventDefault();
    const hit = [...pools].filter((p) => p.closes > 0);
    for (const pool of hit.length > 0 ? hit : [...pools]) swap(pool);
    createLogger().warn(
      `PostgreSQL connection cut under a write (postgres.js #1154: ${(error as Error).message}); ` +
        `opened a fresh pool for ${hit.map((p) => p.name).join(", ") || "every database"}`,
    );
  };
  globalThis.addEventListener("error", (event) => onFault(event.error, event));
  globalThis.addEventListener("unhandledrejection", (event) => onFault(event.reason, event));
}

/**
 * Opens the namespaced database `name`, creating it and applying its
 * migrations first. Retries while the server is unreachable, then throws a
 * {@link ServiceError} with one clear line.
 *
 * @example
 * ```ts ignore
 * import { loadConfig } from "./config.ts";
 * import { openDatabase } from "./db.ts";
 * const sql = await openDatabase(loadConfig(), "instashop");
 * await sql.end();
 * ```
 */
export async function openDatabase(
  config: Config,
  name: DatabaseName,
  { max = 4, log, signal, attempts = 6 }: ConnectOptions = {},
): Promise<Sql> {
  const url = config.databases[name];
  try {
    await retry(() => ensureDatabase(config.serverUrls[name], url), {
      what: `reach PostgreSQL at ${redact(url)}`,
      attempts,
      log,
      signal,
    });
  } catch (error) {
    throw new ServiceError(
      `Cannot reach PostgreSQL at ${redact(url)}: ${(error as Error).message}. ` +
        "Start it with `deno task stack up` (or `docker compose up -d`).",
    );
  }
  const sql = connect(url, { max });
  try {
    // A cut connection here is no reason to stop: migrations are one transaction each. Each
    // retry gets a fresh pool: a socket left half closed by a cut makes every later attempt on
    // it wait out the connect timeout (CONNECT_TIMEOUT), which used up the attempts.
    const attempt = () =>
      migrate(sql, name).catch((error) => {
        if (isConnectionError(error)) renewPool(sql);
        throw error;
      });
    await retry(attempt, {
      what: `apply the migrations of ${redact(url)}`,
      attempts,
      log,
      signal,
      retryIf: isConnectionError,
    });
  } catch (error) {
    await sql.end({ timeout: 1 });
    if (!isConnectionError(error)) throw error;
    throw new ServiceError(
      `Cannot apply the migrations of ${redact(url)}: ${(error as Error).message}. ` +
        "Start PostgreSQL with `deno task stack up` (or `docker compose up -d`).",
    );
  }
  return sql;
}

/** Creates the database of `url` through the server of `serverUrl` when it is missing. */
export async function ensureDatabase(serverUrl: string, url: string): Promise<void> {
  const database = new URL(url).pathname.slice(1);
  const admin = new URL(serverUrl);
  admin.pathname = "/postgres";
  const sql = postgres(admin.toString(), { max: 1, onnotice: () => {}, connect_timeout: 5 });
  try {
    const [row] = await sql`select 1 as present from pg_database where datname = ${database}`;
    if (row) return;
    try {
      await sql.unsafe(`create database "${database}"`);
    } catch (error) {
      // Another stage created it between our check and our create.
      const code = (error as { code?: string }).code;
      if (code !== "42P04" && code !== "23505") throw error;
    }
  } finally {
    await sql.end({ timeout: 1 });
  }
}

const MIGRATIONS = new URL("../migrations/", import.meta.url);

/** Applies the pending migrations of `name` in one transaction each; returns how many ran. */
export async function migrate(sql: Sql, name: DatabaseName): Promise<number> {
  const files = await migrationFiles(name);
  return await sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(hashtext('instashop.migrations'))`;
    await tx`create table if not exists schema_migrations (
      name text primary key, applied_at timestamptz not null default now())`;
    const done = new Set(
      (await tx<{ name: string }[]>`select name from schema_migrations`).map((r) => r.name),
    );
    let applied = 0;
    for (const file of files) {
      if (done.has(file)) continue;
      await tx.unsafe(await Deno.readTextFile(new URL(`${name}/${file}`, MIGRATIONS)));
      await tx`insert into schema_migrations (name) values (${file})`;
      applied++;
    }
    return applied;
  });
}

async function migrationFiles(name: DatabaseName): Promise<string[]> {
  const files: string[] = [];
  for await (const entry of Deno.readDir(new URL(`${name}/`, MIGRATIONS))) {
    if (entry.isFile && /^\d{3}_.+\.sql$/.test(entry.name)) files.push(entry.name);
  }
  return files.sort();
}
