/**
 * A small router: exact paths and `prefix/*` patterns, GET and HEAD only (the
 * dashboard never writes). Routes live one per file under `routes/`.
 *
 * @module
 */

/** A route: `path` is exact (`/api/health`) or a prefix ending in `/*` (`/static/*`). */
export interface Route<H> {
  path: string;
  handler: H;
}

/**
 * Finds the handler of a path; exact routes win over prefixes, longer
 * prefixes over shorter ones.
 *
 * @example
 * ```ts
 * import { createRouter } from "./router.ts";
 * const match = createRouter([{ path: "/", handler: "index" }, { path: "/static/*", handler: "static" }]);
 * match("/static/app.css"); // "static"
 * match("/nope"); // undefined
 * ```
 */
export function createRouter<H>(routes: readonly Route<H>[]): (pathname: string) => H | undefined {
  const exact = new Map<string, H>();
  const prefixes: { prefix: string; handler: H }[] = [];
  for (const { path, handler } of routes) {
    if (path.endsWith("/*")) prefixes.push({ prefix: path.slice(0, -1), handler });
    else exact.set(path, handler);
  }
  prefixes.sort((a, b) => b.prefix.length - a.prefix.length);
  return function match(pathname: string): H | undefined {
    return exact.get(pathname) ??
      prefixes.find(({ prefix }) => pathname.startsWith(prefix) && pathname.length > prefix.length)
        ?.handler;
  };
}

/** Methods the dashboard answers; anything else is 405. */
export const READ_METHODS = new Set(["GET", "HEAD"]);
