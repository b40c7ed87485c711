/**
 * Serves `static/` under `/static/`: read-only, no directory listings, no
 * path outside the folder, a fixed set of content types.
 *
 * @module
 */

const TYPES: Record<string, string> = {
  css: "text/css; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  map: "application/json; charset=utf-8",
  svg: "image/svg+xml",
  png: "image/png",
  ico: "image/x-icon",
  txt: "text/plain; charset=utf-8",
};

/**
 * The file for `/static/<rest>`, or undefined (404) when it is missing or
 * the path tries to leave the folder.
 *
 * @example
 * ```ts ignore
 * const res = await serveStatic(new URL("../../static/", import.meta.url), "/static/dashboard.css");
 * ```
 */
export async function serveStatic(root: URL, pathname: string): Promise<Response | undefined> {
  const rest = pathname.replace(/^\/static\//, "");
  let decoded: string;
  try {
    decoded = decodeURIComponent(rest);
  } catch {
    return undefined;
  }
  const parts = decoded.split("/");
  if (parts.some((p) => p === "" || p === "." || p === ".." || p.includes("\\"))) return undefined;
  const type = TYPES[decoded.split(".").at(-1)?.toLowerCase() ?? ""];
  if (!type) return undefined;
  try {
    const body = await Deno.readFile(new URL(parts.map(encodeURIComponent).join("/"), root));
    return new Response(body, { headers: { "content-type": type, "cache-control": "no-cache" } });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.IsADirectory) {
      return undefined;
    }
    throw error;
  }
}
