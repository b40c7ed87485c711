/**
 * PostgreSQL access: connections (postgres.js), database creation for
 * namespaces, and the migration runner. Schemas live as SQL files under
 * `migrations/<database>/NNN_name.sql`, applied once each, in order, under an
 * advisory lock so that concurrent stages cannot race.
 *
 * @module
 */

import "./sealed_env.ts";
import postgres from "postgres";
import type { Config } from "./config.ts";
import type { DatabaseName } from "./contracts.ts";
import { ServiceError } from "./cli.ts";
import { redact } from "./config.ts";
import { retry } from "./retry.ts";
import type { Logger } from "./log.ts";

export type Sql = postgres.Sql;

export interface ConnectOptions {
  max?: number;
  log?: Logger;
  signal?: AbortSignal;
  /** Connection attempts before giving up (default 6, about 10 s). */
  attempts?: number;
}

/** Opens a pool to `url`; bigint columns come back as JS `BigInt` (callers convert ids, far below 2^53). */
export function connect(
  url: string,
  { max = 4, settings = {} }: { max?: number; settings?: Record<string, string> } = {},
): Sql {
  return postgres(url, {
    max,
    onnotice: () => {},
    types: { bigint: postgres.BigInt },
    // `settings`: session GUCs sent at connect (e.g. the producer turns JIT off).
    connection: { application_name: "instashop-pipeline", TimeZone: "UTC", ...settings },
  });
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
  await migrate(sql, name);
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
