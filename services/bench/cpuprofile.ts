/**
 * Summarises a V8 `.cpuprofile` (from `deno run --cpu-prof ...`): the
 * functions with the most self time, self time by file, and inclusive time,
 * so that a stage's hot spots read in one screen (docs/benchmarks.md,
 * "Profiling").
 *
 * ```sh
 * deno run --cpu-prof --cpu-prof-dir=/tmp/prof ... services/consume/cli.ts --drain
 * deno run --allow-read services/bench/cpuprofile.ts /tmp/prof/*.cpuprofile --top 30
 * ```
 *
 * @module
 */

import { numberFlag, parseFlags, runMain, UsageError } from "../../lib/cli.ts";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

/** The parts of a `.cpuprofile` this reads. */
export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  /** Sampled time, ms (idle included). */
  totalMs: number;
  /** [name, ms], most first. */
  self: [string, number][];
  byFile: [string, number][];
  inclusive: [string, number][];
}

/** A file path without the cache or checkout prefix. */
export function shortFile(url: string): string {
  return url
    .replace(/^.*\/registry\.npmjs\.org\//, "npm:")
    .replace(/^.*\/node_modules\//, "npm:")
    .replace(/^file:\/\/.*?\/(services|lib|tests)\//, "$1/");
}

function nameOf(frame: CallFrame): string {
  const file = shortFile(frame.url);
  return file
    ? `${frame.functionName || "(anonymous)"} ${file}:${frame.lineNumber + 1}`
    : frame.functionName;
}

/**
 * @example
 * ```ts
 * import { summarize } from "./cpuprofile.ts";
 * const frame = (functionName: string) => ({ functionName, url: "", lineNumber: 0 });
 * summarize({
 *   nodes: [{ id: 1, callFrame: frame("(root)"), children: [2] }, { id: 2, callFrame: frame("f") }],
 *   samples: [2, 2],
 *   timeDeltas: [1000, 1000],
 * }).self; // [["f", 2]]
 * ```
 */
export function summarize(profile: CpuProfile): ProfileSummary {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfById = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    selfById.set(id, (selfById.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
  });
  const self = new Map<string, number>();
  const byFile = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);
  let totalMs = 0;
  for (const [id, ms] of selfById) {
    const frame = nodes.get(id)!.callFrame;
    totalMs += ms;
    add(self, nameOf(frame), ms);
    add(byFile, shortFile(frame.url) || frame.functionName, ms);
    // A recursive function counts once per sample.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const name = nameOf(nodes.get(cur)!.callFrame);
      if (!seen.has(name)) add(inclusive, name, ms);
      seen.add(name);
    }
  }
  const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]);
  return { totalMs, self: sorted(self), byFile: sorted(byFile), inclusive: sorted(inclusive) };
}

/** The summary as three short tables. */
export function renderSummary(s: ProfileSummary, top: number): string {
  const rows = (title: string, list: [string, number][]) => [
    title,
    ...list.slice(0, top).map(([name, ms]) =>
      `${ms.toFixed(0).padStart(8)} ms ${(100 * ms / s.totalMs).toFixed(1).padStart(5)}%  ${name}`
    ),
  ];
  return [
    `sampled ${(s.totalMs / 1000).toFixed(2)} s (idle included)`,
    ...rows("self time", s.self),
    ...rows("self time by file", s.byFile),
    ...rows("inclusive time", s.inclusive),
  ].join("\n");
}

if (import.meta.main) {
  await runMain(async () => {
    // The files are positional; parseFlags takes flags only.
    const files = Deno.args.filter((a, i) => !a.startsWith("-") && Deno.args[i - 1] !== "--top");
    const flags = parseFlags(
      "cpuprofile <file.cpuprofile>...",
      "Summarises .cpuprofile files.",
      Deno.args.filter((a) => !files.includes(a)),
      { top: { type: "string", help: "rows per table", default: "25" } },
    );
    const top = numberFlag("top", flags.top, 1);
    if (files.length === 0) throw new UsageError("Cannot summarise nothing: name a .cpuprofile");
    for (const file of files) {
      let profile: CpuProfile;
      try {
        profile = JSON.parse(await Deno.readTextFile(file));
      } catch (error) {
        throw new UsageError(
          `Cannot read ${file} as a .cpuprofile: ${(error as Error).message.split("\n")[0]}`,
        );
      }
      console.log(`${file}\n${renderSummary(summarize(profile), top)}`);
    }
    return 0;
  });
}
