/**
 * Response helpers: JSON and error bodies, and the security headers every
 * response carries.
 *
 * @module
 */

/**
 * Only same-origin scripts, styles and connections; no inline script can run,
 * so even an escaping bug could not execute injected markup.
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

/** Adds the security headers to `response` (in place) and returns it. */
export function secure(response: Response): Response {
  const headers = response.headers;
  headers.set("content-security-policy", CONTENT_SECURITY_POLICY);
  headers.set("x-content-type-options", "nosniff");
  // The token may travel in URLs (EventSource cannot send headers): never leak it as a referrer.
  headers.set("referrer-policy", "no-referrer");
  headers.set("x-frame-options", "DENY");
  return response;
}

/** A JSON response that is never cached. */
export function json(body: unknown, init: ResponseInit = {}): Response {
  const headers = new Headers(init.headers);
  headers.set("content-type", "application/json; charset=utf-8");
  headers.set("cache-control", "no-store");
  return new Response(JSON.stringify(body), { ...init, headers });
}

/**
 * An error as JSON under `/api/`, plain text elsewhere.
 *
 * @example
 * ```ts
 * import { errorResponse } from "./http.ts";
 * const res = errorResponse(404, "Cannot find /x", "/x");
 * res.headers.get("content-type"); // "text/plain; charset=utf-8"
 * ```
 */
export function errorResponse(
  status: number,
  message: string,
  pathname: string,
  headers: HeadersInit = {},
): Response {
  if (pathname.startsWith("/api/")) return json({ error: message }, { status, headers });
  const all = new Headers(headers);
  all.set("content-type", "text/plain; charset=utf-8");
  all.set("cache-control", "no-store");
  return new Response(`${message}\n`, { status, headers: all });
}
