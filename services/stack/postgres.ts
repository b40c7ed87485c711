/**
 * PostgreSQL for the stack: the configured server when it answers, else a
 * cluster of the system's PostgreSQL binaries, `initdb`-ed in
 * `<stateDir>/postgres/data` and started on the configured port. Then the
 * namespace's three databases are created when missing. When we run as root
 * the cluster runs as the `postgres` user (PostgreSQL refuses root).
 *
 * @module
 */

import { ServiceError } from "../../lib/cli.ts";
import type { Config } from "../../lib/config.ts";
import type { DatabaseName } from "../../lib/contracts.ts";
import { connect, ensureDatabase } from "../../lib/db.ts";
import type { Logger } from "../../lib/log.ts";
import {
  isLocalHost,
  isRoot,
  livePid,
  portOpen,
  run,
  stateDirOf,
  stopProcess,
  tail,
  within,
  writePid,
} from "./process.ts";

/** What `up` or `status` found about PostgreSQL. */
export interface PostgresState {
  address: string;
  owner: "stack" | "external" | "none";
  pid?: number;
  /** Data folder and log of the cluster the stack runs. */
  dataDir?: string;
  logFile?: string;
  /** The namespace's databases that exist, and those missing. */
  databases: string[];
  missingDatabases: string[];
  started: boolean;
  createdDatabases: string[];
}

const DATABASES: DatabaseName[] = ["instashop", "crm", "dwh"];

function paths(config: Config) {
  const dir = `${stateDirOf(config)}/postgres`;
  return { dir, data: `${dir}/data`, log: `${dir}/postgres.log`, pidFile: `${dir}/postgres.pid` };
}

function serverOf(url: string): { host: string; port: number; user: string; address: string } {
  const u = new URL(url);
  const port = Number(u.port || 5432);
  const host = u.hostname;
  return {
    host,
    port,
    user: decodeURIComponent(u.username) || "postgres",
    address: `${host}:${port}`,
  };
}

/** The one server the three URLs name (the stack runs at most one). */
function theServer(config: Config) {
  const servers = new Set(DATABASES.map((d) => serverOf(config.serverUrls[d]).address));
  return { ...serverOf(config.serverUrls.instashop), count: servers.size };
}

/** Names of the databases on the server of `serverUrl`; undefined when it does not answer. */
async function listDatabases(serverUrl: string): Promise<string[] | undefined> {
  const { host, port } = serverOf(serverUrl);
  if (!(await portOpen(host, port))) return undefined;
  const admin = new URL(serverUrl);
  admin.pathname = "/postgres";
  const sql = connect(admin.toString(), { max: 1 });
  try {
    const rows = await within(sql<{ datname: string }[]>`select datname from pg_database`, 5000);
    return rows?.map((r) => r.datname);
  } catch {
    return undefined;
  } finally {
    await within(sql.end({ timeout: 1 }), 2000);
  }
}

/** Makes PostgreSQL answer and creates the namespace's databases. Idempotent. */
export async function postgresUp(
  config: Config,
  { log }: { log?: Logger } = {},
): Promise<PostgresState> {
  const server = theServer(config);
  let existing = await listDatabases(config.serverUrls.instashop);
  let started = false;
  if (!existing) {
    if (server.count > 1) {
      throw new ServiceError(
        "Cannot reach PostgreSQL: the three database URLs name different servers and not all " +
          "answer; the stack starts one local server, so point them at one host:port",
      );
    }
    if (!isLocalHost(server.host)) {
      throw new ServiceError(
        `Cannot reach PostgreSQL at ${server.address}; the stack starts PostgreSQL on 127.0.0.1 ` +
          "only. Start that server, or point INSTASHOP_DATABASE_URL at 127.0.0.1",
      );
    }
    await startLocal(config, server, log);
    started = true;
    existing = await listDatabases(config.serverUrls.instashop);
    if (!existing) {
      throw new ServiceError(`PostgreSQL started but does not answer at ${server.address}`);
    }
  }
  const createdDatabases: string[] = [];
  for (const name of DATABASES) {
    const db = new URL(config.databases[name]).pathname.slice(1);
    const had = existing.includes(db) ||
      (server.count > 1 && (await listDatabases(config.serverUrls[name]))?.includes(db));
    await ensureDatabase(config.serverUrls[name], config.databases[name]);
    if (!had) createdDatabases.push(db);
  }
  return { ...(await postgresStatus(config)), started, createdDatabases };
}

async function startLocal(
  config: Config,
  server: { port: number; user: string; address: string },
  log?: Logger,
): Promise<void> {
  const { dir, data, log: logFile, pidFile } = paths(config);
  if (await portOpen("127.0.0.1", server.port)) {
    throw new ServiceError(
      `Cannot start PostgreSQL on 127.0.0.1:${server.port}: the port is taken by a program that ` +
        "does not answer as PostgreSQL. Free it, set INSTASHOP_DATABASE_URL (and CRM_, DWH_) " +
        "to another port, or use `docker compose up -d`",
    );
  }
  const bin = await findBinaries();
  if (!bin) {
    throw new ServiceError(
      `Cannot start PostgreSQL on 127.0.0.1:${server.port}: nothing answers there and the ` +
        "PostgreSQL server is not installed. Install it (apt-get install postgresql) " +
        "or use `docker compose up -d`",
    );
  }
  const asUser = await runAs(dir);
  if (!(await Deno.stat(`${data}/PG_VERSION`).then(() => true, () => false))) {
    const init = await run([
      ...asUser,
      `${bin}/initdb`,
      "-D",
      data,
      "-U",
      server.user,
      "--auth=trust",
      "-E",
      "UTF8",
      "--no-locale",
    ]);
    if (init?.code !== 0) {
      throw new ServiceError(`Cannot initdb ${data}: ${lastLine(init?.stderr || init?.stdout)}`);
    }
    // Clients connect over TCP only; no socket folder that may not exist or be writable.
    await Deno.writeTextFile(
      `${data}/postgresql.conf`,
      "\n# instashop stack\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n" +
        "max_connections = 200\n",
      { append: true },
    );
    log?.info(`🗄️  Created a PostgreSQL cluster in ${data}`);
  }
  const start = await run([
    ...asUser,
    `${bin}/pg_ctl`,
    "-D",
    data,
    "-l",
    logFile,
    "-w",
    "-t",
    "60",
    "-o",
    `-p ${server.port}`,
    "start",
  ]);
  if (start?.code !== 0) {
    throw new ServiceError(
      `Cannot start PostgreSQL from ${data}: ${lastLine(await tail(logFile, 1) || start?.stderr)}`,
    );
  }
  const pid = Number((await Deno.readTextFile(`${data}/postmaster.pid`)).split("\n")[0]);
  await writePid(pidFile, pid);
  log?.info(`🚀 Started PostgreSQL on 127.0.0.1:${server.port}, pid ${pid}, log ${logFile}`);
}

/**
 * The command prefix that runs PostgreSQL's tools: as root, `runuser -u
 * postgres --`, with `dir` owned by that user; for a normal user a plain
 * `sh` exec, because the tools' versioned path (/usr/lib/postgresql/15/bin)
 * cannot be named in deno.json's --allow-run list, while `sh` is in it anyway.
 */
async function runAs(dir: string): Promise<string[]> {
  await Deno.mkdir(dir, { recursive: true });
  if (!(await isRoot())) return ["sh", "-c", 'exec "$0" "$@"'];
  const uid = Number((await run(["id", "-u", "postgres"]))?.stdout.trim() || NaN);
  const gid = Number((await run(["id", "-g", "postgres"]))?.stdout.trim() || NaN);
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) {
    throw new ServiceError(
      "Cannot start PostgreSQL as root: it must run as the `postgres` user, which does not " +
        "exist. Install the server package (apt-get install postgresql), or use `docker compose up -d`",
    );
  }
  await Deno.chown(dir, uid, gid);
  await Deno.chmod(dir, 0o700);
  const reach = await run(["runuser", "-u", "postgres", "--", "test", "-w", dir]);
  if (reach?.code !== 0) {
    throw new ServiceError(
      `Cannot start PostgreSQL in ${dir}: the \`postgres\` user cannot reach that folder ` +
        "(a parent is private). Set INSTASHOP_STATE_DIR to a folder it can reach, " +
        "e.g. /var/tmp/instashop-stack",
    );
  }
  return ["runuser", "-u", "postgres", "--"];
}

/** The folder of the newest installed PostgreSQL server binaries. */
async function findBinaries(): Promise<string | undefined> {
  const found: { version: number; dir: string }[] = [];
  try {
    for await (const entry of Deno.readDir("/usr/lib/postgresql")) {
      const dir = `/usr/lib/postgresql/${entry.name}/bin`;
      if (await Deno.stat(`${dir}/pg_ctl`).then(() => true, () => false)) {
        found.push({ version: Number(entry.name) || 0, dir });
      }
    }
  } catch { /* not Debian's layout */ }
  found.sort((a, b) => b.version - a.version);
  if (found[0]) return found[0].dir;
  const which = await run(["sh", "-c", "command -v pg_ctl"]);
  const path = which?.code === 0 ? which.stdout.trim() : "";
  return path ? path.replace(/\/pg_ctl$/, "") : undefined;
}

function lastLine(text: string | undefined): string {
  return (text ?? "").trim().split("\n").at(-1) ?? "";
}

/** What runs now and which of the namespace's databases exist. */
export async function postgresStatus(config: Config): Promise<PostgresState> {
  const { data, log, pidFile } = paths(config);
  const server = theServer(config);
  const pid = await livePid(pidFile, data);
  const existing = await listDatabases(config.serverUrls.instashop);
  const wanted = DATABASES.map((d) => new URL(config.databases[d]).pathname.slice(1));
  return {
    address: server.address,
    owner: pid !== undefined && existing ? "stack" : existing ? "external" : "none",
    pid,
    ...(pid !== undefined ? { dataDir: data, logFile: log } : {}),
    databases: wanted.filter((d) => existing?.includes(d)),
    missingDatabases: wanted.filter((d) => !existing?.includes(d)),
    started: false,
    createdDatabases: [],
  };
}

/**
 * Stops the cluster the stack started (fast shutdown), with `pid` only while
 * it is that process; true when it ran.
 */
export async function postgresDown(
  config: Config,
  { log, pid: only }: { log?: Logger; pid?: number } = {},
): Promise<boolean> {
  const { data, pidFile } = paths(config);
  const pid = await livePid(pidFile, data);
  if (pid === undefined || (only !== undefined && pid !== only)) return false;
  // SIGINT is PostgreSQL's "fast" shutdown: it ends sessions instead of waiting for them.
  await stopProcess(pid, data, { signal: "SIGINT", graceMs: 30_000 });
  await Deno.remove(pidFile).catch(() => {});
  log?.info(`🛑 Stopped PostgreSQL (pid ${pid})`);
  return true;
}
