/**
 * `GET /api/health`: whether the dashboard and its dependencies answer. Always
 * 200 while the process serves; `status` is `degraded` when a dependency is
 * down (the page still works, with the last good numbers).
 *
 * @module
 */

import type { Handler } from "../../services/dashboard/context.ts";
import { json } from "../../services/dashboard/http.ts";

export const handler: Handler = async ({ app }) => {
  const state = await app.state.read();
  const redis = app.state.redis();
  const warehouse = app.state.warehouse();
  return json({
    status: redis.ok && warehouse.ok ? "ok" : "degraded",
    at: state.at,
    redis,
    warehouse,
    streams: { open: app.hub.clientCount, max: app.maxStreams },
    checks: state.status,
  });
};
