/**
 * `deno task setup`: installs what the project needs on a fresh machine, and
 * does nothing for what is already there (idempotent):
 *
 * - the Apache Kafka jars from Maven Central into `~/.cache/instashop`;
 * - Debian's `chromium` (dashboard tests) and `kcat` (troubleshooting) with
 *   apt-get when missing and running as root; otherwise one line on how;
 * - the npm packages of the import map, cached by `deno install`.
 *
 * A missing tool that only some paths need (Java, Maven, redis-server, the
 * PostgreSQL server; Docker users need none of them) is reported, not fatal;
 * an install that was attempted and failed exits 1.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { parseFlags, runMain, ServiceError } from "../../lib/cli.ts";
import { createLogger } from "../../lib/log.ts";
import { denoExecutable } from "../../lib/tasks.ts";
import { ensureKafkaJars, requireJava } from "./kafka_jars.ts";
import { hasCommand, isRoot, run } from "./process.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const APT_PACKAGES = [
  { command: "chromium", pkg: "chromium", why: "dashboard browser tests" },
  { command: "kcat", pkg: "kcat", why: "looking into topics" },
];

await runMain(async () => {
  parseFlags("setup", "Install what the project needs (idempotent).", Deno.args, {});
  const log = createLogger();
  let failed = 0;

  try {
    await requireJava();
    const { dir, version, fetched } = await ensureKafkaJars({ log });
    log.info(`✅ Apache Kafka ${version} jars ${fetched ? "fetched into" : "cached in"} ${dir}`);
  } catch (error) {
    if (!(error instanceof ServiceError)) throw error;
    log.warn(`${error.message} (needed only to run Kafka without Docker)`);
    if (/with Maven/.test(error.message)) failed++;
  }

  const missing = [];
  for (const p of APT_PACKAGES) {
    if (await hasCommand(p.command)) log.info(`✅ ${p.command} is installed`);
    else missing.push(p);
  }
  if (missing.length > 0) {
    const names = missing.map((p) => p.pkg).join(" ");
    if ((await isRoot()) && (await hasCommand("apt-get"))) {
      log.info(`📦 Installing ${names} with apt-get`);
      const env = { DEBIAN_FRONTEND: "noninteractive" };
      await run(["apt-get", "update", "-qq"], { env });
      const result = await run(
        [
          "apt-get",
          "install",
          "-y",
          "-qq",
          "--no-install-recommends",
          ...missing.map((p) => p.pkg),
        ],
        { env },
      );
      if (result?.code === 0) log.info(`✅ Installed ${names}`);
      else {
        log.error(`Cannot install ${names} with apt-get: ${lastLine(result?.stderr)}`);
        failed++;
      }
    } else {
      for (const p of missing) {
        log.warn(
          `${p.command} is missing (${p.why}); install it as root: apt-get install ${p.pkg}`,
        );
      }
    }
  }

  for (const tool of ["redis-server", "pg_ctl"]) {
    const found = await hasCommand(tool) || (tool === "pg_ctl" && await debianPostgres());
    if (!found) {
      log.warn(
        `${tool} is not installed: \`deno task stack up\` needs it only when nothing answers ` +
          "on the configured port (or use `docker compose up -d`)",
      );
    }
  }

  const install = await run([denoExecutable(), "install", "--quiet"], { cwd: ROOT });
  if (install?.code === 0) log.info("✅ npm packages cached (deno install)");
  else {
    log.error(`Cannot cache the npm packages with deno install: ${lastLine(install?.stderr)}`);
    failed++;
  }
  return failed > 0 ? 1 : 0;
});

async function debianPostgres(): Promise<boolean> {
  const result = await run(["sh", "-c", "ls /usr/lib/postgresql/*/bin/pg_ctl"]);
  return result?.code === 0;
}

function lastLine(text: string | undefined): string {
  return (text ?? "").trim().split("\n").at(-1) ?? "";
}
