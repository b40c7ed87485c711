/**
 * `GET /api/metrics`: the current state as JSON, the same document one SSE
 * frame carries. 503 when Redis cannot be read (the numbers would be stale).
 *
 * @module
 */

import type { Handler } from "../../services/dashboard/context.ts";
import { json } from "../../services/dashboard/http.ts";

export const handler: Handler = async ({ app }) => {
  const state = await app.state.read();
  const redis = app.state.redis();
  if (!redis.ok) {
    return json(
      { error: `Cannot read metrics as Redis is unreachable: ${redis.error}`, state },
      { status: 503, headers: { "retry-after": "5" } },
    );
  }
  return json(state);
};
