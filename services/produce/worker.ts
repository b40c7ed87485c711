/**
 * Worker entry: runs one stream (`runner.ts`) on its own thread. Reading
 * rows, building messages and kafkajs' encoding are all CPU work on one
 * JavaScript thread; with a thread per stream the two streams use two cores.
 *
 * Protocol: the publisher posts {@link WorkerRequest}s, the worker answers
 * with {@link WorkerReport}s and ends with `done` or `fatal`.
 *
 * @module
 */

import type { Config } from "../../lib/config.ts";
import { createLogger } from "../../lib/log.ts";
import { runStream, type StreamReport } from "./runner.ts";
import { type StreamName, STREAMS } from "./streams.ts";

export interface RunRequest {
  type: "run";
  stream: StreamName;
  config: Config;
  options: { drain: boolean; batch: number; intervalMs: number; replaySince?: string };
}
export type WorkerRequest = RunRequest | { type: "stop" };

export type WorkerReport =
  | { type: "status"; report: StreamReport }
  | { type: "done"; report: StreamReport }
  | { type: "fatal"; message: string };

// Typed as a worker scope; the project compiles with the DOM lib.
const scope = self as unknown as {
  postMessage(message: WorkerReport): void;
  onmessage: ((event: MessageEvent<WorkerRequest>) => void) | null;
};
const controller = new AbortController();

scope.onmessage = ({ data }) => {
  if (data.type === "stop") controller.abort();
  else void run(data);
};

async function run({ stream, config, options }: RunRequest): Promise<void> {
  const log = createLogger();
  try {
    const report = await runStream(STREAMS[stream], config, log, {
      ...options,
      replaySince: options.replaySince ? new Date(options.replaySince) : undefined,
      signal: controller.signal,
      onStatus: (r) => scope.postMessage({ type: "status", report: r }),
    });
    scope.postMessage({ type: "done", report });
  } catch (error) {
    if (config.debug) console.error(error);
    scope.postMessage({
      type: "fatal",
      message: error instanceof Error ? error.message : String(error),
    });
  }
}
