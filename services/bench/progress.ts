/**
 * The progress line: on a terminal one line rewritten in place, elsewhere
 * (CI, a pipe) one line per message. Always on stderr, so that `--json`
 * keeps stdout clean.
 *
 * @module
 */

export interface Progress {
  /** Replaces the current line (a terminal) or prints one (not a terminal). */
  update(message: string): void;
  /** Prints a line that stays (a phase result). */
  note(message: string): void;
  /** Clears the line before the final output. */
  done(): void;
}

const encoder = new TextEncoder();

/** @param quiet print nothing (tests of the pure parts). */
export function createProgress(
  { quiet = false, terminal = Deno.stderr.isTerminal() }: { quiet?: boolean; terminal?: boolean } =
    {},
): Progress {
  const started = performance.now();
  let lastPrinted = -Infinity;
  const write = (text: string) => {
    if (!quiet) Deno.stderr.writeSync(encoder.encode(text));
  };
  const stamp = () => `[${((performance.now() - started) / 1000).toFixed(0).padStart(4)}s]`;
  return {
    update(message) {
      const line = `${stamp()} ${message}`;
      if (terminal) {
        write(`\r\x1b[2K${line.slice(0, 150)}`);
      } else if (performance.now() - lastPrinted >= 5000) {
        // Not a terminal: a line every few seconds is a progress log, not a flood.
        write(`${line}\n`);
        lastPrinted = performance.now();
      }
    },
    note(message) {
      lastPrinted = -Infinity;
      write(terminal ? `\r\x1b[2K${stamp()} ${message}\n` : `${stamp()} ${message}\n`);
    },
    done() {
      if (terminal) write("\r\x1b[2K");
    },
  };
}
