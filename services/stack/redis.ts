/**
 * Redis for the stack: the configured server when it answers PING, else
 * `redis-server` on the configured port with its data in `<stateDir>/redis`.
 *
 * @module
 */

import { ServiceError } from "../../lib/cli.ts";
import type { Config } from "../../lib/config.ts";
import type { Logger } from "../../lib/log.ts";
import { sleep } from "../../lib/retry.ts";
import {
  hasCommand,
  isLocalHost,
  launchDetached,
  livePid,
  portOpen,
  stateDirOf,
  stopProcess,
  tail,
} from "./process.ts";

/** What `up` or `status` found about Redis. */
export interface RedisState {
  address: string;
  owner: "stack" | "external" | "none";
  pid?: number;
  dataDir?: string;
  logFile?: string;
  started: boolean;
}

function paths(config: Config) {
  const dir = `${stateDirOf(config)}/redis`;
  return { dir, log: `${dir}/redis.log`, pidFile: `${dir}/redis.pid`, conf: `${dir}/redis.conf` };
}

/**
 * The pid of the redis-server the stack runs. Redis replaces its command line
 * with "redis-server <bind>:<port>", so the check is that title, with the
 * port read back from the config file the stack wrote.
 */
async function ourPid(config: Config): Promise<number | undefined> {
  const { pidFile, conf } = paths(config);
  const port = (await Deno.readTextFile(conf).catch(() => "")).match(/^port (\d+)$/m)?.[1];
  return port ? await livePid(pidFile, `redis-server 127.0.0.1:${port}`) : undefined;
}

function serverOf(config: Config) {
  const url = new URL(config.redisUrl);
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const port = Number(url.port || 6379);
  return { host, port, password: decodeURIComponent(url.password), address: `${host}:${port}` };
}

/**
 * Sends PING over a raw connection: "pong" for a Redis (also one that wants
 * a password), "other" for any other program, "closed" when nothing listens.
 */
export async function pingRedis(
  host: string,
  port: number,
  timeoutMs = 2000,
): Promise<"pong" | "other" | "closed"> {
  if (!(await portOpen(host, port, timeoutMs))) return "closed";
  let conn: Deno.TcpConn | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    conn = await Deno.connect({ hostname: host, port });
    await conn.write(new TextEncoder().encode("PING\r\n"));
    const buffer = new Uint8Array(64);
    const n = await Promise.race([
      conn.read(buffer),
      new Promise<null>((resolve) => {
        timer = setTimeout(() => resolve(null), timeoutMs);
      }),
    ]);
    const reply = new TextDecoder().decode(buffer.subarray(0, n ?? 0));
    return /^(\+PONG|-NOAUTH)/.test(reply) ? "pong" : "other";
  } catch {
    return "other";
  } finally {
    clearTimeout(timer);
    try {
      conn?.close();
    } catch { /* closed by the peer */ }
  }
}

/** Makes Redis answer; idempotent. */
export async function redisUp(config: Config, { log }: { log?: Logger } = {}): Promise<RedisState> {
  const server = serverOf(config);
  const answer = await pingRedis(server.host, server.port);
  if (answer === "pong") return await redisStatus(config);
  if (!isLocalHost(server.host)) {
    throw new ServiceError(
      `Cannot reach Redis at ${server.address}; the stack starts Redis on 127.0.0.1 only. ` +
        "Start that server, or point REDIS_URL at 127.0.0.1",
    );
  }
  if (answer === "other") {
    throw new ServiceError(
      `Cannot start Redis on 127.0.0.1:${server.port}: the port is taken by a program that ` +
        "does not answer as Redis. Free it, set REDIS_URL to another port, or use `docker compose up -d`",
    );
  }
  if (!(await hasCommand("redis-server"))) {
    throw new ServiceError(
      `Cannot start Redis on 127.0.0.1:${server.port}: nothing answers there and redis-server ` +
        "is not installed. Install it (apt-get install redis-server) or use `docker compose up -d`",
    );
  }
  const { dir, log: logFile, pidFile, conf } = paths(config);
  await Deno.mkdir(dir, { recursive: true });
  const lines = [
    `port ${server.port}`,
    "bind 127.0.0.1",
    `dir ${dir}`,
    "daemonize no",
    "save 60 1",
    "appendonly no",
    ...(server.password ? [`requirepass ${server.password}`] : []),
  ];
  await Deno.writeTextFile(conf, lines.join("\n") + "\n", { mode: 0o600 });
  const pid = await launchDetached(["redis-server", conf], { pidFile, logFile, cwd: dir });
  for (let i = 0; i < 100; i++) {
    if (await pingRedis("127.0.0.1", server.port) === "pong") {
      log?.info(`🚀 Started Redis on 127.0.0.1:${server.port}, pid ${pid}, data ${dir}`);
      return { ...(await redisStatus(config)), started: true };
    }
    if ((await livePid(pidFile, "redis-server")) === undefined) break;
    await sleep(100);
  }
  throw new ServiceError(
    `Redis did not start on 127.0.0.1:${server.port}; see ${logFile}: ${await tail(logFile, 1)}`,
  );
}

/** What runs now. */
export async function redisStatus(config: Config): Promise<RedisState> {
  const server = serverOf(config);
  const { dir, log } = paths(config);
  const pid = await ourPid(config);
  const answers = await pingRedis(server.host, server.port) === "pong";
  return {
    address: server.address,
    owner: pid !== undefined && answers ? "stack" : answers ? "external" : "none",
    pid,
    ...(pid !== undefined ? { dataDir: dir, logFile: log } : {}),
    started: false,
  };
}

/**
 * Stops the redis-server the stack started (SIGTERM saves and exits), with
 * `pid` only while it is that process; true when it ran.
 */
export async function redisDown(
  config: Config,
  { log, pid: only }: { log?: Logger; pid?: number } = {},
): Promise<boolean> {
  const { pidFile } = paths(config);
  const pid = await ourPid(config);
  if (pid === undefined || (only !== undefined && pid !== only)) return false;
  await stopProcess(pid, "redis-server", { graceMs: 15_000 });
  await Deno.remove(pidFile).catch(() => {});
  log?.info(`🛑 Stopped Redis (pid ${pid})`);
  return true;
}
