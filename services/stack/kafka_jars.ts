/**
 * The real Apache Kafka broker and tools, as jars from Maven Central. The
 * versions live in `kafka/pom.xml`; the jars are copied once into a cache
 * outside the git tree (`~/.cache/instashop/kafka-<version>`) and reused.
 *
 * @module
 */

import { homedir } from "node:os";
import { fileURLToPath } from "node:url";
import { ServiceError } from "../../lib/cli.ts";
import type { Logger } from "../../lib/log.ts";
import { hasCommand, run } from "./process.ts";

const POM = fileURLToPath(new URL("./kafka/pom.xml", import.meta.url));
const DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1";

/** The Kafka version the pom pins (the one source of truth). */
export async function kafkaVersion(): Promise<string> {
  const pom = await Deno.readTextFile(POM);
  const version = pom.match(/<kafka\.version>([^<]+)<\/kafka\.version>/)?.[1];
  if (!version) throw new Error(`Cannot read <kafka.version> from ${POM}`);
  return version;
}

/**
 * Where the jars of `version` are cached.
 *
 * @example
 * ```ts ignore
 * const dir = await kafkaJarsDir(); // "/root/.cache/instashop/kafka-4.3.1"
 * // java -cp `${dir}/*` org.apache.kafka.tools.ProducerPerformance ...
 * ```
 */
export async function kafkaJarsDir(version?: string): Promise<string> {
  return `${await homeDir()}/.cache/instashop/kafka-${version ?? await kafkaVersion()}`;
}

/**
 * The user's home from the password database, like Java's `user.home` (and so
 * Maven's `~/.m2`); `os.homedir()` only where `getent` is missing, because
 * Deno grants it only with --allow-sys, which the tasks and tests lack.
 */
async function homeDir(): Promise<string> {
  const result = await run(["sh", "-c", 'getent passwd "$(id -u)" | cut -d: -f6']);
  const home = result?.code === 0 ? result.stdout.trim() : "";
  return home || homedir();
}

/** Whether `dir` holds a complete copy: broker, tools and the log binding. */
export async function jarsComplete(dir: string, version: string): Promise<boolean> {
  const names = new Set<string>();
  try {
    for await (const entry of Deno.readDir(dir)) names.add(entry.name);
  } catch {
    return false;
  }
  const has = (re: RegExp) => [...names].some((n) => re.test(n));
  return names.has(`kafka_2.13-${version}.jar`) && names.has(`kafka-tools-${version}.jar`) &&
    has(/^log4j-slf4j-impl-.+\.jar$/) && has(/^log4j-core-.+\.jar$/);
}

/**
 * Makes sure the jars are cached, fetching them with Maven when they are not.
 * The copy goes to a fresh folder that replaces the old one only when
 * complete: mixed Kafka versions in one folder fail with NoSuchMethodError.
 */
export async function ensureKafkaJars(
  { log }: { log?: Logger } = {},
): Promise<{ dir: string; version: string; fetched: boolean }> {
  const version = await kafkaVersion();
  const dir = await kafkaJarsDir(version);
  if (await jarsComplete(dir, version)) return { dir, version, fetched: false };
  if (!(await hasCommand("mvn"))) {
    throw new ServiceError(
      `Cannot fetch the Kafka ${version} jars: Maven is not installed. ` +
        "Install it (apt-get install maven) or use `docker compose up -d`.",
    );
  }
  log?.info(`📦 Fetching Apache Kafka ${version} from Maven Central into ${dir}`);
  const temp = `${dir}.tmp-${Deno.pid}`;
  await Deno.remove(temp, { recursive: true }).catch(() => {});
  const result = await run([
    "mvn",
    "-B",
    "-q",
    "--no-transfer-progress",
    "-Dstyle.color=never",
    "-f",
    POM,
    `${DEPENDENCY_PLUGIN}:copy-dependencies`,
    "-DincludeScope=runtime",
    `-DoutputDirectory=${temp}`,
  ]);
  if (!result || result.code !== 0 || !(await jarsComplete(temp, version))) {
    await Deno.remove(temp, { recursive: true }).catch(() => {});
    const why = (result?.stdout + "\n" + result?.stderr).trim().split("\n").slice(-3).join(" ");
    throw new ServiceError(
      `Cannot fetch the Kafka ${version} jars with Maven (is Maven Central reachable?): ${why}`,
    );
  }
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  await Deno.rename(temp, dir);
  return { dir, version, fetched: true };
}

/** One clear line when Java is missing; Kafka 4 needs 17 or newer. */
export async function requireJava(): Promise<void> {
  const result = await run(["java", "-version"]);
  const version = Number(
    (result?.stderr ?? "").match(/version "(\d+)(?:\.(\d+))?/)?.slice(1).find((v) => v !== "1") ??
      0,
  );
  if (!result || result.code !== 0) {
    throw new ServiceError(
      "Cannot start Kafka: Java is not installed. Install Java 17+ " +
        "(apt-get install openjdk-17-jre-headless) or use `docker compose up -d`.",
    );
  }
  if (version > 0 && version < 17) {
    throw new ServiceError(
      `Cannot start Kafka 4 with Java ${version}: it needs Java 17 or newer. ` +
        "Install it (apt-get install openjdk-17-jre-headless) or use `docker compose up -d`.",
    );
  }
}
