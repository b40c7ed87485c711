/**
 * `deno task dashboard`: serves the live dashboard on HOST:PORT (default
 * 127.0.0.1:8501).
 *
 * @module
 */

import { parseFlags, runMain, ServiceError } from "../../lib/cli.ts";
import { loadConfig, redact } from "../../lib/config.ts";
import { createLogger } from "../../lib/log.ts";
import { createDashboard } from "./app.ts";

const SUMMARY = "Serve the live dashboard on HOST:PORT (default 127.0.0.1:8501). " +
  "Environment: PORT, HOST, DASHBOARD_TOKEN, DASHBOARD_MAX_STREAMS, REDIS_URL, DWH_DATABASE_URL.";

if (import.meta.main) {
  await runMain(async (signal) => {
    parseFlags("dashboard", SUMMARY, Deno.args, {});
    const config = loadConfig();
    const log = createLogger();
    const { host, port, token, maxStreams } = config.dashboard;
    const dashboard = createDashboard({ config, log });
    // A first read logs at once when Redis or the warehouse cannot be reached.
    await dashboard.state.read();

    let server: Deno.HttpServer;
    try {
      server = Deno.serve({
        hostname: host,
        port,
        signal,
        onListen: ({ hostname, port }) => {
          const shown = hostname === "0.0.0.0" ? "localhost" : hostname;
          log.info(`📊 Dashboard on http://${shown}:${port}/`);
          log.info(
            `   namespace ${JSON.stringify(config.namespace)}, Redis ${
              redact(config.redisUrl)
            }, warehouse ${redact(config.databases.dwh)}`,
          );
          log.info(
            `   ${token ? "token required" : "no token (set DASHBOARD_TOKEN to require one)"}, ` +
              `at most ${maxStreams} live streams`,
          );
        },
      }, dashboard.fetch);
    } catch (error) {
      await dashboard.close();
      if (error instanceof Deno.errors.AddrInUse) {
        throw new ServiceError(
          `Cannot listen on ${host}:${port} as the port is in use: set PORT to another one`,
        );
      }
      throw error;
    }
    // Open SSE responses would hold a graceful shutdown forever: end them first.
    signal.addEventListener("abort", () => {
      log.info("🛑 Dashboard stopping");
      dashboard.hub.close();
    }, { once: true });
    await server.finished;
    await dashboard.close();
  });
}
