/**
 * Child output as whole lines with a stage prefix, so that five stages can
 * share one terminal without their lines cutting into each other.
 *
 * @module
 */

/** Where prefixed lines go: `stderr` lines stay on stderr. */
export type LineSink = (line: string, stream: "stdout" | "stderr") => void;

/**
 * The `[stage]` prefix, padded so that the text after it lines up.
 *
 * @example
 * ```ts
 * import { stagePrefix } from "./lines.ts";
 * stagePrefix("produce"); // "[produce]   "
 * ```
 */
export function stagePrefix(name: string, width = 11): string {
  return `[${name}]`.padEnd(width + 1);
}

/**
 * Reads `stream` to its end and hands every line (without its newline) to
 * `onLine`; a last line without a newline is handed over too.
 *
 * @example
 * ```ts ignore
 * await forEachLine(child.stdout, (line) => console.log(`[produce] ${line}`));
 * ```
 */
export async function forEachLine(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
): Promise<void> {
  let pending = "";
  const decoder = new TextDecoder();
  for await (const chunk of stream) {
    pending += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = pending.indexOf("\n")) >= 0) {
      onLine(pending.slice(0, end).replace(/\r$/, ""));
      pending = pending.slice(end + 1);
    }
  }
  pending += decoder.decode();
  if (pending !== "") onLine(pending);
}

const encoder = new TextEncoder();

/** A sink writing each line whole to this process's stdout or stderr. */
export const consoleSink: LineSink = (line, stream) => {
  const target = stream === "stdout" ? Deno.stdout : Deno.stderr;
  const bytes = encoder.encode(`${line}\n`);
  let written = 0;
  try {
    while (written < bytes.length) written += target.writeSync(bytes.subarray(written));
  } catch {
    // A closed terminal or pipe must not take the supervisor down while it stops the stages.
  }
};
