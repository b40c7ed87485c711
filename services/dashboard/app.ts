/**
 * The dashboard as a fetch handler: routes, token check, SSE hub, Redis and
 * warehouse readers. `cli.ts` serves it; tests serve it in-process.
 *
 * @module
 */

import type { Config } from "../../lib/config.ts";
import { names, REDIS_KEYS } from "../../lib/contracts.ts";
import { connect, type Sql } from "../../lib/db.ts";
import { type Logger, silentLogger } from "../../lib/log.ts";
import { createRedis, type Redis } from "../../lib/redis.ts";
import { handler as history } from "../../routes/api/history.ts";
import { handler as health } from "../../routes/api/health.ts";
import { handler as metrics } from "../../routes/api/metrics.ts";
import { handler as stream } from "../../routes/api/stream.ts";
import { handler as index } from "../../routes/index.tsx";
import { handler as statics } from "../../routes/static.ts";
import { authorized, presentedToken } from "./auth.ts";
import type { AppContext, Handler } from "./context.ts";
import { errorResponse, secure } from "./http.ts";
import { createHub, type Hub } from "./hub.ts";
import { createRouter, READ_METHODS } from "./router.ts";
import { createStateReader, describe, type StateReader } from "./state.ts";

const ROUTES = [
  { path: "/", handler: index },
  { path: "/api/stream", handler: stream },
  { path: "/api/metrics", handler: metrics },
  { path: "/api/history", handler: history },
  { path: "/api/health", handler: health },
  { path: "/static/*", handler: statics },
] as const satisfies { path: string; handler: Handler }[];

export interface DashboardDeps {
  config: Config;
  log?: Logger;
  /** Reads metrics; created (fail-fast) from `config` when absent, and then closed by `close()`. */
  redis?: Redis;
  /** Subscribes to `metrics:updates`; created like `redis`. */
  subscriber?: Redis;
  /** The warehouse pool; created from `config.databases.dwh` when absent. */
  warehouse?: Sql;
}

export interface DashboardOptions {
  /** Required by every route when set (default `config.dashboard.token`). */
  token?: string;
  /** Concurrent SSE streams (default `config.dashboard.maxStreams`). */
  maxStreams?: number;
  /** The folder served under `/static/` (default the project's `static/`). */
  staticRoot?: URL;
  coalesceMs?: number;
  keepAliveMs?: number;
  refreshMs?: number;
  retryMs?: number;
  historyTtlMs?: number;
  queryTimeoutMs?: number;
}

export interface Dashboard {
  /** The handler for `Deno.serve`; pass its `info` so that streams end with their connection. */
  fetch(request: Request, info?: Deno.ServeHandlerInfo): Promise<Response>;
  hub: Hub;
  state: StateReader;
  /** Ends every stream and closes the connections the dashboard opened. */
  close(): Promise<void>;
}

/**
 * @example
 * ```ts ignore
 * const dashboard = createDashboard({ config: loadConfig() });
 * Deno.serve({ port: 8501 }, dashboard.fetch);
 * ```
 */
export function createDashboard(deps: DashboardDeps, options: DashboardOptions = {}): Dashboard {
  const { config, log = silentLogger } = deps;
  const {
    token = config.dashboard.token,
    maxStreams = config.dashboard.maxStreams,
    staticRoot = new URL("../../static/", import.meta.url),
    coalesceMs,
    keepAliveMs,
    refreshMs,
    retryMs,
    historyTtlMs,
    queryTimeoutMs,
  } = options;
  const n = names(config.namespace);
  const owned: (() => Promise<void> | void)[] = [];
  const redis = deps.redis ?? own(watch(createRedis(config, { failFast: true }), "reader"));
  const subscriber = deps.subscriber ??
    own(watch(createRedis(config, { failFast: true }), "subscriber"));
  const warehouse = deps.warehouse ?? connect(config.databases.dwh, { max: 2 });
  if (!deps.warehouse) owned.push(() => warehouse.end({ timeout: 1 }));

  const state = createStateReader({
    redis,
    warehouse,
    names: n,
    log,
    historyTtlMs,
    queryTimeoutMs,
  });
  const hub = createHub({
    subscriber,
    channel: n.redis(REDIS_KEYS.updates),
    read: state.read,
    maxClients: maxStreams,
    log,
    coalesceMs,
    keepAliveMs,
    refreshMs,
    retryMs,
  });
  const bundle = new URL("build/islands.js", staticRoot);
  const app: AppContext = {
    state,
    hub,
    maxStreams,
    staticRoot,
    namespace: config.namespace,
    hasIslands: () => Deno.stat(bundle).then((s) => s.isFile, () => false),
  };
  const match = createRouter<Handler>(ROUTES);

  function own(client: Redis): Redis {
    owned.push(() => client.disconnect());
    return client;
  }

  /** ioredis reports each failed reconnect as an error event; one log line per outage is enough. */
  function watch(client: Redis, role: string): Redis {
    let up = true;
    client.on("error", (error: Error) => {
      if (up) log.warn(`Redis ${role} connection lost: ${describe(error)}; reconnecting`);
      up = false;
    });
    client.on("ready", () => {
      if (!up) log.info(`✅ Redis ${role} reconnected`);
      up = true;
    });
    return client;
  }

  async function fetch(request: Request, info?: Deno.ServeHandlerInfo): Promise<Response> {
    const url = new URL(request.url);
    const { pathname } = url;
    if (!authorized(request, token, url)) {
      return secure(errorResponse(
        401,
        "Cannot serve this page as it requires the dashboard token: " +
          "send `Authorization: Bearer <token>` or add `?token=<token>` to the URL",
        pathname,
        { "www-authenticate": 'Bearer realm="instashop-dashboard"' },
      ));
    }
    const handler = match(pathname);
    if (!handler) return secure(errorResponse(404, `Cannot find ${pathname}`, pathname));
    if (!READ_METHODS.has(request.method)) {
      return secure(errorResponse(
        405,
        `Cannot ${request.method} ${pathname} as the dashboard is read-only: use GET`,
        pathname,
        { allow: "GET, HEAD" },
      ));
    }
    try {
      const response = await handler({
        req: request,
        url,
        info,
        app,
        token: token === undefined ? undefined : presentedToken(request, url),
      });
      if (request.method !== "HEAD") return secure(response);
      await response.body?.cancel();
      return secure(new Response(null, response));
    } catch (error) {
      log.error(`Cannot serve ${pathname}: ${describe(error)}`);
      return secure(errorResponse(500, `Cannot serve ${pathname}: internal error`, pathname));
    }
  }

  async function close(): Promise<void> {
    hub.close();
    for (const step of owned) await step();
  }

  return { fetch, hub, state, close };
}
