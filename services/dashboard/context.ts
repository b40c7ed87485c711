/**
 * What a route handler receives: the request and the dashboard's parts.
 *
 * @module
 */

import type { Hub } from "./hub.ts";
import type { StateReader } from "./state.ts";

/** The dashboard's shared parts, built once by `createDashboard`. */
export interface AppContext {
  state: StateReader;
  hub: Hub;
  maxStreams: number;
  /** The `static/` folder. */
  staticRoot: URL;
  /** Whether `static/build/islands.js` exists (else the page is server-rendered only). */
  hasIslands: () => Promise<boolean>;
  namespace: string;
}

export interface RouteContext {
  req: Request;
  url: URL;
  /** From Deno.serve; `completed` settles when the response ended or the client left. */
  info?: Deno.ServeHandlerInfo;
  app: AppContext;
  /** The token the request was authorized with, to carry into the page's URLs. */
  token: string | undefined;
}

export type Handler = (ctx: RouteContext) => Response | Promise<Response>;
