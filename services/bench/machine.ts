/**
 * The machine a run measured: cores, memory and CPU model from Linux' /proc
 * (read through `cat`: Deno grants /proc files only with --allow-all), and
 * the Deno version.
 *
 * @module
 */

import type { Machine } from "./measurements.ts";

/** Parses /proc/cpuinfo and /proc/meminfo texts (pure, for tests). */
export function parseMachine(cpuinfo: string, meminfo: string, nproc: number): Omit<
  Machine,
  "os" | "deno"
> {
  const name = cpuinfo.match(/^model name\s*:\s*(.+)$/m)?.[1]?.trim() ?? "unknown";
  // A virtual machine's model name can be as vague as "AMD EPYC" for CPUs two generations
  // apart (session 3's and session 4's differed 1.8x in CPU per event): family and model tell.
  const family = cpuinfo.match(/^cpu family\s*:\s*(\d+)$/m)?.[1];
  const model = cpuinfo.match(/^model\s*:\s*(\d+)$/m)?.[1];
  const cpu = family && model ? `${name} (family ${family}, model ${model})` : name;
  const kb = Number(meminfo.match(/^MemTotal:\s+(\d+) kB/m)?.[1] ?? 0);
  return { nproc, memory_gb: Math.round((kb / 1024 / 1024) * 10) / 10, cpu };
}

export async function describeMachine(): Promise<Machine> {
  const read = async (path: string) => {
    try {
      const out = await new Deno.Command("cat", { args: [path], stdout: "piped", stderr: "null" })
        .output();
      return new TextDecoder().decode(out.stdout);
    } catch {
      return "";
    }
  };
  return {
    ...parseMachine(
      await read("/proc/cpuinfo"),
      await read("/proc/meminfo"),
      navigator.hardwareConcurrency,
    ),
    os: `${Deno.build.os} ${Deno.build.arch}`,
    deno: Deno.version.deno,
  };
}
