/**
 * A time limit on a read from a service, so that `status` and `verify`
 * answer with "unreachable" instead of hanging on a client's retry loop.
 *
 * @module
 */

/**
 * Resolves like `promise`, or rejects after `ms` with "Cannot <what> within N s".
 *
 * @example
 * ```ts
 * import { withDeadline } from "./deadline.ts";
 * await withDeadline(Promise.resolve(1), 1000, "count rows"); // 1
 * ```
 */
export async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`Cannot ${what} within ${Math.round(ms / 1000)} s`)),
      ms,
    );
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** The message of an error, for one line of a report. */
export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
