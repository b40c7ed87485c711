/**
 * The HTML document around a page: head, body and the JSON the islands boot
 * from. Everything from the data goes through Preact (which escapes it); the
 * boot JSON is the one raw part, serialized by {@link safeJson} so that it
 * cannot close its script element.
 *
 * @module
 */

import type { VNode } from "preact";
import { renderToString } from "preact-render-to-string";
import type { Boot } from "../services/dashboard/model.ts";
import { BOOT_ELEMENT_ID } from "../islands/_registry.ts";

export interface DocumentOptions {
  title: string;
  body: VNode;
  /** The islands' boot data; without it (or without the bundle) the page is static. */
  boot?: Boot;
  /** Whether `static/build/islands.js` exists. */
  hasIslands: boolean;
  /** The token the request presented, carried into asset URLs. */
  token: string | undefined;
}

/**
 * JSON that is safe inside `<script type="application/json">`: `<`, `>`, `&`
 * and the two JS line separators become `\uXXXX` escapes, which JSON.parse
 * reads back unchanged.
 *
 * @example
 * ```ts
 * import { safeJson } from "./_document.tsx";
 * safeJson({ name: "</script>" }); // '{"name":"\\u003c/script\\u003e"}'
 * ```
 */
export function safeJson(value: unknown): string {
  return JSON.stringify(value).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/**
 * `path` with `?token=` when a token is in use (browsers cannot add headers
 * to stylesheet, script or EventSource requests).
 */
export function withToken(path: string, token: string | undefined): string {
  return token === undefined ? path : `${path}?token=${encodeURIComponent(token)}`;
}

function Head({ title, token, hasIslands }: Omit<DocumentOptions, "body" | "boot">) {
  return (
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      <meta name="color-scheme" content="light" />
      <title>{title}</title>
      <link rel="icon" href={withToken("/static/favicon.svg", token)} type="image/svg+xml" />
      <link rel="stylesheet" href={withToken("/static/dashboard.css", token)} />
      {hasIslands && <script type="module" src={withToken("/static/build/islands.js", token)} />}
    </head>
  );
}

/** The whole page as a string, starting with the doctype. */
export function renderDocument({ title, body, boot, hasIslands, token }: DocumentOptions): string {
  const head = renderToString(<Head title={title} token={token} hasIslands={hasIslands} />);
  const bootScript = boot && hasIslands
    ? `<script type="application/json" id="${BOOT_ELEMENT_ID}">${safeJson(boot)}</script>`
    : "";
  return `<!DOCTYPE html>\n<html lang="en">${head}<body>${
    renderToString(body)
  }${bootScript}</body></html>\n`;
}
