/**
 * Server-Sent Events framing (HTML Living Standard, "server-sent events"):
 * each frame is UTF-8 lines ending in `\n`, terminated by an empty line.
 *
 * @module
 */

const encoder = new TextEncoder();

/**
 * One event: an `id:` line, then one `data:` line per line of `data`.
 *
 * @example
 * ```ts
 * import { formatEvent } from "./sse.ts";
 * formatEvent(7, '{"a":1}'); // 'id: 7\ndata: {"a":1}\n\n'
 * ```
 */
export function formatEvent(id: number, data: string): string {
  const lines = data.split(/\r\n|\r|\n/).map((line) => `data: ${line}\n`).join("");
  return `id: ${id}\n${lines}\n`;
}

/**
 * A comment line; clients ignore it, proxies see traffic.
 *
 * @example
 * ```ts
 * import { formatComment } from "./sse.ts";
 * formatComment("keep-alive"); // ": keep-alive\n\n"
 * ```
 */
export function formatComment(text: string): string {
  return `: ${text.replace(/[\r\n]+/g, " ")}\n\n`;
}

/**
 * How long the browser waits before reconnecting.
 *
 * @example
 * ```ts
 * import { formatRetry } from "./sse.ts";
 * formatRetry(2000); // "retry: 2000\n\n"
 * ```
 */
export function formatRetry(ms: number): string {
  return `retry: ${Math.max(0, Math.round(ms))}\n\n`;
}

/** UTF-8 bytes of a frame. */
export function encode(frame: string): Uint8Array {
  return encoder.encode(frame);
}
