/**
 * CPU spent by other processes while a stage runs: PostgreSQL on behalf of the
 * bench namespace (the server processes whose title names one of its
 * databases, `postgres: ... <ns>_dwh_db ...`), the Kafka broker, Redis, and
 * the whole machine. Processes are found with `ps` and read from
 * `/proc/<pid>/stat`; a process that ends between two samples loses at most
 * one interval, so those figures are floors.
 *
 * @module
 */

import { statCpuSeconds } from "./rss.ts";

async function run(args: string[]): Promise<string> {
  try {
    const out = await new Deno.Command(args[0]!, {
      args: args.slice(1),
      stdout: "piped",
      stderr: "null",
    }).output();
    return new TextDecoder().decode(out.stdout);
  } catch {
    return "";
  }
}

/** Starts sampling; `stop()` returns the CPU seconds the namespace's backends used meanwhile. */
export function watchPostgresCpu(namespace: string, everyMs = 200): CpuWatch {
  return watchProcessesCpu((l) => l.includes("postgres:") && l.includes(` ${namespace}_`), everyMs);
}

/** A running CPU measurement; `stop()` returns the CPU seconds used since it started. */
export interface CpuWatch {
  stop(): Promise<number>;
}

/**
 * Samples every process whose `ps -eo pid=,args=` line passes `matches`
 * (the Kafka broker: `kafka.Kafka`; Redis: `redis-server`).
 */
export function watchProcessesCpu(matches: (psLine: string) => boolean, everyMs = 200): CpuWatch {
  // Backends present at the start count from their CPU then; later ones from zero.
  const baseline = new Map<number, number>();
  const last = new Map<number, number>();
  const sample = async (isFirst: boolean) => {
    const ps = await run(["ps", "-eo", "pid=,args="]);
    const pids = ps.split("\n")
      .filter(matches)
      .map((l) => Number(l.trim().split(/\s+/)[0]))
      .filter((pid) => pid > 0);
    if (pids.length === 0) return;
    const stats = await run(["cat", ...pids.map((pid) => `/proc/${pid}/stat`)]);
    for (const line of stats.split("\n")) {
      const pid = Number(line.split(" ")[0]);
      const cpu = statCpuSeconds(line);
      if (!pid || cpu === undefined) continue;
      if (isFirst) baseline.set(pid, cpu);
      last.set(pid, cpu);
    }
  };
  const started = sample(true);
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    started.then(() => sample(false)).finally(() => busy = false);
  }, everyMs);
  return {
    async stop(): Promise<number> {
      clearInterval(timer);
      await started;
      await sample(false);
      let total = 0;
      for (const [pid, cpu] of last) total += cpu - (baseline.get(pid) ?? 0);
      return total;
    },
  };
}

/**
 * Busy CPU seconds of the whole machine (every core, every process, the
 * bench's own included), from the first line of `/proc/stat`: all time but
 * idle and iowait.
 *
 * @example
 * ```ts
 * import { busySeconds } from "./pg_cpu.ts";
 * busySeconds("cpu  100 0 50 900 10 0 0 0 0 0"); // 1.5
 * ```
 */
export function busySeconds(procStat: string, ticksPerSecond = 100): number | undefined {
  const fields = procStat.split("\n")[0]!.trim().split(/\s+/);
  if (fields[0] !== "cpu") return undefined;
  const ticks = fields.slice(1, 9).map(Number);
  if (ticks.length < 5 || ticks.some((t) => !Number.isFinite(t))) return undefined;
  const all = ticks.reduce((a, b) => a + b, 0);
  return (all - ticks[3]! - ticks[4]!) / ticksPerSecond;
}

/** Starts measuring the machine's busy CPU; 0 when `/proc/stat` cannot be read. */
export function watchMachineCpu(): CpuWatch {
  const read = async () => busySeconds(await run(["cat", "/proc/stat"]));
  const first = read();
  return {
    async stop() {
      const [a, b] = [await first, await read()];
      return a === undefined || b === undefined ? 0 : b - a;
    },
  };
}

/**
 * CPU of long-lived processes (the Kafka broker, Redis): found once by `ps`,
 * read at the start and at `stop()`, nothing in between, so that measuring
 * them takes no CPU from the chain while it runs. When some matching lines
 * also pass `prefer`, only those count: with several brokers on the machine
 * (a helper's own next to the shared one), the one serving the bench.
 */
export function watchLongLivedCpu(
  matches: (psLine: string) => boolean,
  prefer?: (psLine: string) => boolean,
): CpuWatch {
  const read = async (pids: number[]) => {
    const byPid = new Map<number, number>();
    if (pids.length === 0) return byPid;
    const stats = await run(["cat", ...pids.map((pid) => `/proc/${pid}/stat`)]);
    for (const line of stats.split("\n")) {
      const cpu = statCpuSeconds(line);
      if (cpu !== undefined) byPid.set(Number(line.split(" ")[0]), cpu);
    }
    return byPid;
  };
  const first = findPids(matches, prefer).then(async (pids) => ({
    pids,
    before: await read(pids),
  }));
  return {
    async stop() {
      const { pids, before } = await first;
      let total = 0;
      for (const [pid, cpu] of await read(pids)) total += cpu - (before.get(pid) ?? cpu);
      return total;
    },
  };
}

/** Pids whose `ps` line passes `matches`; only those also passing `prefer` when there are some. */
async function findPids(
  matches: (psLine: string) => boolean,
  prefer?: (psLine: string) => boolean,
): Promise<number[]> {
  const all = (await run(["ps", "-eo", "pid=,args="])).split("\n").filter(matches);
  const preferred = prefer ? all.filter(prefer) : [];
  return (preferred.length > 0 ? preferred : all)
    .map((l) => Number(l.trim().split(/\s+/)[0])).filter((pid) => pid > 0);
}

/**
 * CPU of the threads named like `thread` (the JVM's `C1/C2 CompilerThread`s)
 * in the processes `watchLongLivedCpu` would pick, read at the start and at
 * `stop()` from `/proc/<pid>/task/<tid>/stat`. A thread that ended meanwhile
 * loses its share (the JVM ends idle compiler threads), so this is a floor.
 */
export function watchThreadsCpu(
  matches: (psLine: string) => boolean,
  prefer: ((psLine: string) => boolean) | undefined,
  thread: RegExp,
): CpuWatch & { ready: Promise<void> } {
  const read = async (pids: number[]) => {
    const byTid = new Map<string, number>();
    if (pids.length === 0) return byTid;
    const paths = pids.map((pid) => `/proc/${pid}/task/*/stat`).join(" ");
    for (const line of (await run(["sh", "-c", `cat ${paths} 2>/dev/null`])).split("\n")) {
      const name = line.slice(line.indexOf("(") + 1, line.lastIndexOf(")"));
      const cpu = statCpuSeconds(line);
      if (cpu !== undefined && thread.test(name)) byTid.set(line.split(" ")[0]!, cpu);
    }
    return byTid;
  };
  const first = findPids(matches, prefer).then(async (pids) => ({
    pids,
    before: await read(pids),
  }));
  return {
    /** Settles once the starting values are read. */
    ready: first.then(() => {}),
    async stop() {
      const { pids, before } = await first;
      let total = 0;
      for (const [tid, cpu] of await read(pids)) total += cpu - (before.get(tid) ?? 0);
      return total;
    },
  };
}

/**
 * CPU of the bench's own process and of the children it waited for (its
 * `ps` and `cat` samplers): fields 14 to 17 of `/proc/<pid>/stat`.
 */
export function watchBenchCpu(): CpuWatch {
  const read = async () => {
    const line = await run(["cat", `/proc/${Deno.pid}/stat`]);
    const rest = line.slice(line.lastIndexOf(")") + 2).split(" ").slice(11, 15).map(Number);
    return rest.length === 4 && rest.every(Number.isFinite)
      ? rest.reduce((a, b) => a + b, 0) / 100
      : undefined;
  };
  const first = read();
  return {
    async stop() {
      const [a, b] = [await first, await read()];
      return a === undefined || b === undefined ? 0 : b - a;
    },
  };
}
