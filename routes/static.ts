/**
 * `GET /static/*`: the stylesheet, the icon and the islands bundle.
 *
 * @module
 */

import type { Handler } from "../services/dashboard/context.ts";
import { errorResponse } from "../services/dashboard/http.ts";
import { serveStatic } from "../services/dashboard/static_files.ts";

export const handler: Handler = async ({ url, app }) =>
  await serveStatic(app.staticRoot, url.pathname) ??
    errorResponse(404, `Cannot find ${url.pathname}`, url.pathname);
