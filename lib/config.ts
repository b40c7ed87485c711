/**
 * The one place that reads the environment. Every stage calls {@link loadConfig}
 * once at start and passes the typed result down; nothing else touches
 * `Deno.env`.
 *
 * @module
 */

import { type DatabaseName, namespaceDatabase, validateNamespace } from "./contracts.ts";

/** Typed, validated configuration of one pipeline namespace. */
export interface Config {
  /** `PIPELINE_NAMESPACE`; empty gives the seed's plain names. */
  readonly namespace: string;
  /** Final connection URLs, database names already namespaced. */
  readonly databases: Readonly<Record<DatabaseName, string>>;
  /** The URLs as configured, before namespacing (the stack creates databases through them). */
  readonly serverUrls: Readonly<Record<DatabaseName, string>>;
  readonly kafka: {
    readonly brokers: readonly string[];
    readonly partitions: number;
  };
  readonly redisUrl: string;
  readonly dashboard: {
    readonly host: string;
    readonly port: number;
    /** `DASHBOARD_TOKEN`; when set, every dashboard route requires it. */
    readonly token: string | undefined;
    readonly maxStreams: number;
  };
  /** Where the stack keeps its data, logs and pid files (`INSTASHOP_STATE_DIR`). */
  readonly stateDir: string;
  /** `INSTASHOP_DEBUG`: print stack traces of unexpected errors. */
  readonly debug: boolean;
}

/** A bad environment value; CLIs print `message` and exit with {@link ConfigError.exitCode}. */
export class ConfigError extends Error {
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

const DEFAULTS = {
  INSTASHOP_DATABASE_URL: "postgres://postgres@127.0.0.1:5432/instashop",
  CRM_DATABASE_URL: "postgres://postgres@127.0.0.1:5432/crm_db",
  DWH_DATABASE_URL: "postgres://postgres@127.0.0.1:5432/dwh_db",
  KAFKA_BROKERS: "127.0.0.1:9092",
  KAFKA_PARTITIONS: "6",
  REDIS_URL: "redis://127.0.0.1:6379",
  PIPELINE_NAMESPACE: "",
  HOST: "127.0.0.1",
  PORT: "8501",
  DASHBOARD_MAX_STREAMS: "100",
  INSTASHOP_STATE_DIR: ".stack",
  INSTASHOP_DEBUG: "",
} as const;

/** Every variable the project reads, for docs and `--allow-env` lists. */
export const ENV_VARS: readonly string[] = [...Object.keys(DEFAULTS), "DASHBOARD_TOKEN"];

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Variables a child `deno` needs to run at all (its cache, PATH for `deno
 * task`, the terminal, the certificates it trusts when it downloads a
 * package) and that the programs the stack starts expect; passed on beside
 * {@link ENV_VARS}, and nothing else. Without `NODE_EXTRA_CA_CERTS` (which Deno
 * honours) the dashboard's first `deno task build` under `start`, on a machine
 * that reaches the npm registry through a certificate authority of its own,
 * could not fetch esbuild.
 */
export const PASS_THROUGH: readonly string[] = [
  "HOME",
  "PATH",
  "DENO_DIR",
  "XDG_CACHE_HOME",
  "TMPDIR",
  "NO_COLOR",
  "TERM",
  "NODE_EXTRA_CA_CERTS",
  "DENO_CERT",
  "DENO_TLS_CA_STORE",
  "SSL_CERT_FILE",
  "SSL_CERT_DIR",
];

/**
 * The environment a parent (`deno task start`, the bench, the tests) hands to
 * the stages it spawns: {@link ENV_VARS} and {@link PASS_THROUGH} that are set,
 * so that it needs `--allow-env` for those names only, never the whole
 * environment.
 *
 * @example
 * ```ts ignore
 * import { childEnv } from "./config.ts";
 * new Deno.Command("deno", { env: { ...childEnv(), PIPELINE_NAMESPACE: "demo" }, clearEnv: true });
 * ```
 */
export function childEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of [...ENV_VARS, ...PASS_THROUGH]) {
    const value = Deno.env.get(name);
    if (value !== undefined) env[name] = value;
  }
  return env;
}

/**
 * Reads and validates the configuration.
 *
 * @example
 * ```ts
 * import { loadConfig } from "./config.ts";
 * const config = loadConfig({ PIPELINE_NAMESPACE: "demo" });
 * console.log(config.databases.instashop); // postgres://postgres@127.0.0.1:5432/demo_instashop
 * ```
 * @throws {ConfigError} naming the variable and its value.
 */
export function loadConfig(env: Env = readEnv()): Config {
  const get = (name: keyof typeof DEFAULTS): string => {
    const value = env[name];
    return value === undefined || value === "" ? DEFAULTS[name] : value.trim();
  };

  const namespace = env.PIPELINE_NAMESPACE?.trim() ?? "";
  const namespaceProblem = validateNamespace(namespace);
  if (namespaceProblem) fail("PIPELINE_NAMESPACE", namespace, namespaceProblem);

  const serverUrls = {
    instashop: postgresUrl("INSTASHOP_DATABASE_URL", get("INSTASHOP_DATABASE_URL")),
    crm: postgresUrl("CRM_DATABASE_URL", get("CRM_DATABASE_URL")),
    dwh: postgresUrl("DWH_DATABASE_URL", get("DWH_DATABASE_URL")),
  };
  const databases = {
    instashop: withNamespacedDatabase(serverUrls.instashop, namespace),
    crm: withNamespacedDatabase(serverUrls.crm, namespace),
    dwh: withNamespacedDatabase(serverUrls.dwh, namespace),
  };

  return {
    namespace,
    databases,
    serverUrls,
    kafka: {
      brokers: brokerList(get("KAFKA_BROKERS")),
      partitions: integer("KAFKA_PARTITIONS", get("KAFKA_PARTITIONS"), 1, 1000),
    },
    redisUrl: redisUrl(get("REDIS_URL")),
    dashboard: {
      host: get("HOST"),
      port: integer("PORT", get("PORT"), 0, 65535),
      token: env.DASHBOARD_TOKEN || undefined,
      maxStreams: integer("DASHBOARD_MAX_STREAMS", get("DASHBOARD_MAX_STREAMS"), 1, 100_000),
    },
    stateDir: get("INSTASHOP_STATE_DIR"),
    debug: get("INSTASHOP_DEBUG") !== "",
  };
}

/**
 * Replaces Node's `process.env` with a copy holding only {@link ENV_VARS}, so
 * that npm packages see nothing else. ioredis' `debug` dependency enumerates
 * the whole environment at import, which would otherwise force an unscoped
 * `--allow-env`; sealed, every task runs with an explicit list.
 */
export function sealProcessEnv(process: { env: Record<string, string | undefined> }): void {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(readEnv())) {
    if (value !== undefined) env[name] = value;
  }
  process.env = env;
}

function readEnv(): Env {
  const env: Record<string, string | undefined> = {};
  for (const name of ENV_VARS) env[name] = Deno.env.get(name);
  return env;
}

function fail(name: string, value: string, why: string): never {
  throw new ConfigError(`Cannot use ${name} as ${why}: current value is ${JSON.stringify(value)}`);
}

function integer(name: string, raw: string, min: number, max: number): number {
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < min || value > max) {
    fail(name, raw, `it must be a whole number from ${min} to ${max}`);
  }
  return value;
}

function postgresUrl(name: string, raw: string): string {
  const url = parseUrl(name, raw);
  if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") {
    fail(name, redact(raw), "it must be a postgres:// URL");
  }
  const database = decodeURIComponent(url.pathname.replace(/^\//, ""));
  if (!/^[a-z_][a-z0-9_]{0,40}$/.test(database)) {
    fail(name, redact(raw), "its database name must be lower-case letters, digits or _");
  }
  return url.toString();
}

function withNamespacedDatabase(raw: string, namespace: string): string {
  const url = new URL(raw);
  const database = url.pathname.replace(/^\//, "");
  url.pathname = `/${namespaceDatabase(namespace, database)}`;
  return url.toString();
}

function redisUrl(raw: string): string {
  const url = parseUrl("REDIS_URL", raw);
  if (url.protocol !== "redis:" && url.protocol !== "rediss:") {
    fail("REDIS_URL", redact(raw), "it must be a redis:// URL");
  }
  return raw;
}

function brokerList(raw: string): string[] {
  const brokers = raw.split(",").map((b) => b.trim()).filter(Boolean);
  const bad = brokers.find((b) => !/^[A-Za-z0-9.\-\[\]:]+:\d{1,5}$/.test(b));
  if (brokers.length === 0 || bad !== undefined) {
    fail("KAFKA_BROKERS", raw, "it must be a comma-separated list of host:port");
  }
  return brokers;
}

function parseUrl(name: string, raw: string): URL {
  try {
    return new URL(raw);
  } catch {
    fail(name, redact(raw), "it is not a URL");
  }
}

/** Hides a password so that an error line never carries a credential. */
export function redact(raw: string): string {
  return raw.replace(/\/\/([^:/@]+):[^@/]*@/, "//$1:***@");
}
