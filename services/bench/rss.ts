/**
 * Peak resident memory and CPU time of a process, from Linux'
 * `/proc/<pid>/status` (`VmHWM`, the high-water mark the kernel keeps for the
 * whole life of the process) and `/proc/<pid>/stat` (user + system time, all
 * threads). Sampled periodically: VmHWM only grows, so the last reading
 * before exit is the peak; CPU time misses at most one interval.
 *
 * @module
 */

/**
 * Reads a `kB` field of a `/proc/<pid>/status` text, in MB; undefined when absent.
 *
 * @example
 * ```ts
 * import { statusFieldMb } from "./rss.ts";
 * statusFieldMb("VmHWM:\t  204800 kB\n", "VmHWM"); // 200
 * ```
 */
export function statusFieldMb(status: string, field: "VmHWM" | "VmRSS"): number | undefined {
  const m = status.match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"));
  return m ? Number(m[1]) / 1024 : undefined;
}

/**
 * User + system CPU seconds from a `/proc/<pid>/stat` line (fields 14 and 15,
 * in clock ticks of 1/100 s on Linux); the command name may hold spaces, so
 * fields are counted after its closing parenthesis.
 *
 * @example
 * ```ts
 * import { statCpuSeconds } from "./rss.ts";
 * statCpuSeconds("42 (deno run) S 1 42 42 0 -1 0 0 0 0 0 250 50 0 0"); // 3
 * ```
 */
export function statCpuSeconds(stat: string, ticksPerSecond = 100): number | undefined {
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // rest[0] is field 3 (state); utime is field 14, stime field 15.
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  return Number.isFinite(utime) && Number.isFinite(stime)
    ? (utime + stime) / ticksPerSecond
    : undefined;
}

export interface ProcessSample {
  peakRssMb?: number;
  cpuSeconds?: number;
}

/**
 * Samples `pid`, or nothing once it is gone. Read through `cat` because Deno
 * grants `/proc/<pid>` only with --allow-all, and the bench runs with
 * --allow-run rather than that.
 */
export async function sampleProcess(pid: number): Promise<ProcessSample> {
  try {
    const out = await new Deno.Command("cat", {
      args: [`/proc/${pid}/status`, `/proc/${pid}/stat`],
      stdout: "piped",
      stderr: "null",
    }).output();
    if (!out.success) return {};
    const text = new TextDecoder().decode(out.stdout);
    const statLine = text.split("\n").find((l) => /^\d+ \(/.test(l)) ?? "";
    return { peakRssMb: statusFieldMb(text, "VmHWM"), cpuSeconds: statCpuSeconds(statLine) };
  } catch {
    return {};
  }
}

/**
 * Samples `pid` every `everyMs` until stopped: the highest peak RSS and the
 * latest CPU time seen.
 */
export function watchRss(pid: number, everyMs = 200) {
  let peak = 0;
  let cpu = 0;
  const sample = async () => {
    const s = await sampleProcess(pid);
    if (s.peakRssMb !== undefined && s.peakRssMb > peak) peak = s.peakRssMb;
    if (s.cpuSeconds !== undefined && s.cpuSeconds > cpu) cpu = s.cpuSeconds;
  };
  const timer = setInterval(sample, everyMs);
  void sample();
  return {
    peak: () => peak,
    cpu: () => cpu,
    /** Takes a sample now: exact figures at the end of a phase, whatever `everyMs`. */
    async sampleNow(): Promise<number> {
      await sample();
      return cpu;
    },
    /** Takes a last sample (if the process is still there) and stops. */
    async stop(): Promise<number> {
      clearInterval(timer);
      await sample();
      return peak;
    },
  };
}
