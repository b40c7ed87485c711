/**
 * Signals to processes by pid with the `kill` program. `Deno.kill` needs
 * `--allow-run` without a list (Deno 2 checks it as "run anything"), while
 * spawning `kill` needs only `--allow-run=kill`; children we hold a handle to
 * are signalled with `ChildProcess.kill()`, which needs nothing.
 *
 * @module
 */

/** `SIGTERM` → `TERM`, as `kill -s` wants it. */
function signalName(signal: Deno.Signal): string {
  return signal.replace(/^SIG/, "");
}

function killArgs(pid: number, signal: Deno.Signal): string[] {
  // `--` so that a negative pid (a process group) is not read as an option.
  return ["-s", signalName(signal), "--", String(pid)];
}

/**
 * Sends `signal` to `pid`, or to process group `-pid` when `pid` is negative.
 * Returns false when no such process exists (or it is not ours to signal).
 *
 * @example
 * ```ts ignore
 * import { sendSignal } from "./signal.ts";
 * await sendSignal(-stagePid, "SIGTERM"); // the stage and everything in its group
 * ```
 */
export async function sendSignal(pid: number, signal: Deno.Signal): Promise<boolean> {
  const out = await new Deno.Command("kill", {
    args: killArgs(pid, signal),
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).output();
  return out.success;
}

/** {@link sendSignal} for places that cannot wait, such as an `unload` handler. */
export function sendSignalSync(pid: number, signal: Deno.Signal): boolean {
  return new Deno.Command("kill", {
    args: killArgs(pid, signal),
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).outputSync().success;
}
