/**
 * CPU spent by PostgreSQL on behalf of the bench namespace: the server
 * processes whose title names one of the namespace's databases
 * (`postgres: ... <ns>_dwh_db ...`), found with `ps` and read from
 * `/proc/<pid>/stat` while a stage runs. A connection that closes between two
 * samples loses at most one interval, so the figure is a floor.
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
export function watchPostgresCpu(namespace: string, everyMs = 200) {
  // Backends present at the start count from their CPU then; later ones from zero.
  const baseline = new Map<number, number>();
  const last = new Map<number, number>();
  const sample = async (isFirst: boolean) => {
    const ps = await run(["ps", "-eo", "pid=,args="]);
    const pids = ps.split("\n")
      .filter((l) => l.includes("postgres:") && l.includes(` ${namespace}_`))
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
