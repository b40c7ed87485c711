/**
 * The optional `DASHBOARD_TOKEN`: `Authorization: Bearer <token>` or
 * `?token=<token>` (EventSource cannot set headers, so the page puts it in the
 * stream URL).
 *
 * @module
 */

const encoder = new TextEncoder();

/**
 * The token the request presents, or undefined.
 *
 * @example
 * ```ts
 * import { presentedToken } from "./auth.ts";
 * presentedToken(new Request("http://x/?token=abc")); // "abc"
 * ```
 */
export function presentedToken(request: Request, url = new URL(request.url)): string | undefined {
  const header = request.headers.get("authorization");
  const bearer = header?.match(/^Bearer\s+(.+)$/i)?.[1]?.trim();
  return bearer ?? url.searchParams.get("token") ?? undefined;
}

/**
 * Whether `request` may proceed: always when no token is configured.
 *
 * @example
 * ```ts
 * import { authorized } from "./auth.ts";
 * authorized(new Request("http://x/"), undefined); // true
 * authorized(new Request("http://x/?token=no"), "yes"); // false
 * ```
 */
export function authorized(request: Request, token: string | undefined, url?: URL): boolean {
  if (token === undefined) return true;
  const presented = presentedToken(request, url);
  return presented !== undefined && constantTimeEqual(presented, token);
}

/** Compares without an early exit, so response time does not reveal a matching prefix. */
function constantTimeEqual(a: string, b: string): boolean {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  let difference = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) difference |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return difference === 0;
}
