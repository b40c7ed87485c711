/**
 * `GET /api/stream`: Server-Sent Events, one `data:` frame (the whole state as
 * JSON) after each aggregator flush. 503 once `DASHBOARD_MAX_STREAMS` are open.
 *
 * @module
 */

import type { Handler } from "../../services/dashboard/context.ts";
import { json } from "../../services/dashboard/http.ts";

export const handler: Handler = ({ info, app }) => {
  const stream = app.hub.connect(info?.completed);
  if (!stream) {
    return json({
      error: `Cannot open a live stream as all ${app.maxStreams} allowed streams are in use ` +
        "(DASHBOARD_MAX_STREAMS); close another tab or try again later",
    }, { status: 503, headers: { "retry-after": "10" } });
  }
  return new Response(stream, {
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store, no-transform",
      // Reverse proxies (nginx) must pass frames through as they come.
      "x-accel-buffering": "no",
    },
  });
};
