/**
 * Peak resident memory of a process, from Linux' `/proc/<pid>/status`
 * (`VmHWM`, the high-water mark the kernel keeps for the whole life of the
 * process). Sampled periodically, its last reading before exit is the peak.
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
 * Peak RSS of `pid` in MB, or undefined once the process is gone. Read through
 * `cat` because Deno grants `/proc/<pid>` only with --allow-all, and the
 * bench runs with --allow-run rather than that.
 */
export async function peakRssMb(pid: number): Promise<number | undefined> {
  try {
    const out = await new Deno.Command("cat", {
      args: [`/proc/${pid}/status`],
      stdout: "piped",
      stderr: "null",
    }).output();
    return out.success ? statusFieldMb(new TextDecoder().decode(out.stdout), "VmHWM") : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Samples the peak RSS of `pid` every `everyMs` until stopped; `peak()` gives
 * the highest reading so far (VmHWM only grows, so this is the last one).
 */
export function watchRss(pid: number, everyMs = 200) {
  let peak = 0;
  const sample = async () => {
    const mb = await peakRssMb(pid);
    if (mb !== undefined && mb > peak) peak = mb;
  };
  const timer = setInterval(sample, everyMs);
  void sample();
  return {
    peak: () => peak,
    /** Takes a last sample (call before the process is reaped) and stops. */
    async stop(): Promise<number> {
      clearInterval(timer);
      await sample();
      return peak;
    },
  };
}
