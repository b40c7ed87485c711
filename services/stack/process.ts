/**
 * Processes the stack starts and owns: detached launch (the service outlives
 * `deno task stack up`), pid files, liveness checks that guard against pid
 * reuse, graceful stop, and small helpers for commands and ports.
 *
 * @module
 */

import { resolve } from "node:path";
import { ServiceError } from "../../lib/cli.ts";
import type { Config } from "../../lib/config.ts";
import { sleep } from "../../lib/retry.ts";
import { sendSignal } from "../../lib/signal.ts";

/**
 * The absolute state folder (`INSTASHOP_STATE_DIR`, default `.stack`). The
 * tasks may write only below `./.stack`, /tmp and /var/tmp (deno.json's
 * --allow-write lists), so another folder is refused here in one line rather
 * than by a permission error halfway through starting a service.
 */
export function stateDirOf(config: Config): string {
  const dir = resolve(config.stateDir);
  const state = Deno.permissions.querySync({ name: "write", path: dir }).state;
  if (state !== "granted") {
    throw new ServiceError(
      `Cannot use INSTASHOP_STATE_DIR as a folder the stack may write (below ./.stack, /tmp or ` +
        `/var/tmp, the tasks' --allow-write list): current value is ${
          JSON.stringify(config.stateDir)
        }`,
    );
  }
  return dir;
}

/** Result of a finished command. */
export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `argv` to completion; `undefined` when the program is not installed.
 *
 * @example
 * ```ts ignore
 * const result = await run(["java", "-version"]);
 * if (!result) console.log("no java");
 * ```
 */
export async function run(
  argv: string[],
  { cwd, env }: { cwd?: string; env?: Record<string, string> } = {},
): Promise<CommandResult | undefined> {
  try {
    const out = await new Deno.Command(argv[0]!, {
      args: argv.slice(1),
      cwd,
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder();
    return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    // A program in the --allow-run list that is not installed is refused, not "not found".
    const name = argv[0]!;
    if (
      error instanceof Deno.errors.NotCapable && !name.includes("/") && name !== "sh" &&
      !(await hasCommand(name))
    ) return undefined;
    throw error;
  }
}

/** Whether `name` is a program on PATH. */
export async function hasCommand(name: string): Promise<boolean> {
  const result = await run(["sh", "-c", 'command -v "$1" >/dev/null', "sh", name]);
  return result?.code === 0;
}

/** Whether we run as root (then PostgreSQL runs as the `postgres` user). */
export async function isRoot(): Promise<boolean> {
  // `id -u` rather than Deno.uid(), which needs --allow-sys.
  return (await run(["id", "-u"]))?.stdout.trim() === "0";
}

/**
 * Starts `argv` in its own session (`setsid -f`), stdin from /dev/null and
 * stdout+stderr appended to `logFile`, so that it survives the caller and a
 * Ctrl-C in the caller's terminal. The launched shell writes its pid to
 * `pidFile` and then `exec`s the program, so the pid is the program's own.
 * Returns that pid.
 */
export async function launchDetached(
  argv: string[],
  { pidFile, logFile, cwd }: { pidFile: string; logFile: string; cwd?: string },
): Promise<number> {
  await Deno.remove(pidFile).catch(() => {});
  const script = 'echo $$ > "$1.tmp" && mv "$1.tmp" "$1"; log="$2"; shift 2; ' +
    'exec "$@" >> "$log" 2>&1 < /dev/null';
  const launched = await run([
    "setsid",
    "-f",
    "sh",
    "-c",
    script,
    "launch",
    pidFile,
    logFile,
    ...argv,
  ], {
    cwd,
  });
  if (!launched) {
    throw new ServiceError(
      "Cannot start services in the background: `setsid` (util-linux) is missing",
    );
  }
  for (let i = 0; i < 100; i++) {
    const pid = await readPid(pidFile);
    if (pid !== undefined) return pid;
    await sleep(50);
  }
  throw new ServiceError(`Cannot start ${argv[0]}: no pid appeared in ${pidFile}`);
}

/** The pid in `file`, or undefined when there is none. */
export async function readPid(file: string): Promise<number | undefined> {
  try {
    const pid = Number((await Deno.readTextFile(file)).trim().split("\n")[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

export async function writePid(file: string, pid: number): Promise<void> {
  await Deno.writeTextFile(`${file}.tmp`, `${pid}\n`);
  await Deno.rename(`${file}.tmp`, file);
}

/**
 * Whether `pid` is alive and its command line contains `marker` (a path only
 * our process has), so that a recycled pid is never mistaken for ours. Asks
 * `ps`: Deno grants /proc reads only with --allow-all.
 */
export async function isOurs(pid: number | undefined, marker: string): Promise<boolean> {
  if (pid === undefined) return false;
  const result = await run(["ps", "-o", "stat=", "-o", "args=", "-p", String(pid)]);
  const line = result?.code === 0 ? result.stdout.trim() : "";
  if (line === "" || line.startsWith("Z")) return false; // gone, or a zombie that has exited
  return line.includes(marker);
}

/** The live pid of `pidFile` when it is ours; removes a stale pid file. */
export async function livePid(pidFile: string, marker: string): Promise<number | undefined> {
  const pid = await readPid(pidFile);
  if (pid === undefined) return undefined;
  if (await isOurs(pid, marker)) return pid;
  await Deno.remove(pidFile).catch(() => {});
  return undefined;
}

/**
 * Sends `signal` and waits up to `graceMs` for the process to go, then kills
 * it. Returns false when it was not running.
 */
export async function stopProcess(
  pid: number,
  marker: string,
  { signal = "SIGTERM", graceMs = 30_000 }: { signal?: Deno.Signal; graceMs?: number } = {},
): Promise<boolean> {
  if (!(await isOurs(pid, marker))) return false;
  // `kill` rather than Deno.kill, which needs --allow-run without a list.
  if (!(await sendSignal(pid, signal))) return false;
  const deadline = Date.now() + graceMs;
  while (await isOurs(pid, marker)) {
    if (Date.now() > deadline) {
      await sendSignal(pid, "SIGKILL"); // false when it went meanwhile
      await sleep(200);
      break;
    }
    await sleep(100);
  }
  return true;
}

/** Whether something accepts TCP connections on host:port. */
export async function portOpen(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  let conn: Deno.TcpConn | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    conn = await Promise.race([
      Deno.connect({ hostname: host, port }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("timeout")), timeoutMs);
      }),
    ]);
    return true;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
    conn?.close();
  }
}

/** `promise`'s value, or undefined when it takes longer than `ms`. */
export async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<undefined>((resolve) => {
        timer = setTimeout(() => resolve(undefined), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** The last `lines` lines of a log file, for an error message. */
export async function tail(file: string, lines = 5): Promise<string> {
  try {
    const text = await Deno.readTextFile(file);
    return text.trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

/**
 * Holds an exclusive lock on `<dir>/stack.lock` while `fn` runs, so that two
 * `stack up` at once (two terminals, parallel tests) never start a service twice.
 */
export async function withLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  await Deno.mkdir(dir, { recursive: true });
  const file = await Deno.open(`${dir}/stack.lock`, { create: true, write: true });
  try {
    await file.lock(true);
    return await fn();
  } finally {
    file.close();
  }
}

/** Local addresses the stack may start a service on. */
export function isLocalHost(host: string): boolean {
  return host === "127.0.0.1" || host === "localhost";
}

/** Splits `host:port`. */
export function hostPort(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(":");
  return { host: address.slice(0, at), port: Number(address.slice(at + 1)) };
}
