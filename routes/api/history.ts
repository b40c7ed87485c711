/**
 * `GET /api/history?limit=20&hours=24`: the latest warehouse events and the
 * revenue by hour, read fresh. 400 on a bad parameter, 503 when the warehouse
 * does not answer.
 *
 * @module
 */

import type { Handler } from "../../services/dashboard/context.ts";
import { json } from "../../services/dashboard/http.ts";

export const handler: Handler = async ({ url, app }) => {
  const limit = param(url, "limit", 20, 1, 200);
  const hours = param(url, "hours", 24, 1, 24 * 14);
  const bad = [limit, hours].find((p) => typeof p === "string");
  if (bad !== undefined) return json({ error: bad }, { status: 400 });
  try {
    const history = await app.state.readHistory({
      limit: limit as number,
      hours: hours as number,
    });
    return json({ at: new Date().toISOString(), ...history });
  } catch (error) {
    return json({ error: (error as Error).message }, {
      status: 503,
      headers: { "retry-after": "5" },
    });
  }
};

/** The integer value, or an error message. */
function param(url: URL, name: string, fallback: number, min: number, max: number) {
  const raw = url.searchParams.get(name);
  if (raw === null) return fallback;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < min || value > max) {
    return `Cannot use ${name} as a whole number from ${min} to ${max}: current value is ${
      JSON.stringify(raw)
    }`;
  }
  return value;
}
