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

/** Peak RSS of `pid` in MB, or undefined once the process is gone. */
export async function peakRssMb(pid: number | "self"): Promise<number | undefined> {
  try {
    return statusFieldMb(await Deno.readTextFile(`/proc/${pid}/status`), "VmHWM");
  } catch {
    return undefined;
  }
}

/** This process' own peak RSS in MB. */
export function selfPeakRssMb(): Promise<number | undefined> {
  return peakRssMb("self");
}

/**
 * Samples the peak RSS of `pid` every `everyMs` until stopped; `peak()` gives
 * the highest reading so far (VmHWM only grows, so this is the last one).
 */
export function watchRss(pid: number, everyMs = 250) {
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
