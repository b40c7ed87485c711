/**
 * What a bench run measured, raw: the input of the report (`report.ts`).
 *
 * @module
 */

import type { CopyAnchorResult, KafkaAnchors } from "./anchors.ts";
import type { BrokerWarmUp } from "./broker_warmup.ts";
import type { ClientComparison } from "./clients.ts";
import type { FreshnessSample } from "./freshness.ts";

/** The machine a run ran on. */
export interface Machine {
  nproc: number;
  memory_gb: number;
  cpu: string;
  os: string;
  deno: string;
}

/** One timed run of a stage process. */
export interface StageRun {
  /** Source events (transactions + behaviour rows) the run handled. */
  events: number;
  wallMs: number;
  /** Wall time of the same command with nothing to do (process start, connect, group join). */
  idleMs?: number;
  peakRssMb: number;
  /** CPU seconds of the run's process (all threads); PostgreSQL and Kafka not included. */
  cpuSeconds?: number;
  /** CPU seconds of the namespace's PostgreSQL backends meanwhile. */
  pgCpuSeconds?: number;
}

export interface Measurements {
  machine: Machine;
  namespace: string;
  options: { events: number; rate: number; seconds: number };
  generate: StageRun;
  produce: StageRun & { messages: number };
  /** `messages`: what the stage read (consume: the four source topics). */
  consume: StageRun & { rows: number; messages: number };
  /** `messages`: transactions + user_behavior + transaction_items read. */
  aggregate: StageRun & { messages: number };
  /** `cpuSeconds`: by stage process and `postgres`, during the phase. */
  endToEnd: {
    events: number;
    ms: number;
    cpuSeconds?: Record<string, number>;
    /** Busy CPU of the whole machine during the phase, the bench included. */
    machineCpuSeconds?: number;
  };
  steady?: {
    targetRate: number;
    seconds: number;
    events: number;
    generateMs: number;
    redis: FreshnessSample;
    sse?: FreshnessSample;
    toKafka?: FreshnessSample;
    kafkaToRedis?: FreshnessSample;
    updates: number;
    frames: number;
    /** Peak RSS of the long-running stage processes (e2e + steady). */
    rss: Record<"produce" | "consume" | "aggregate" | "dashboard", number>;
  };
  anchors: { kafka?: KafkaAnchors; copy?: CopyAnchorResult };
  /** The broker's warm-up before the timed phases (./broker_warmup.ts). */
  warmUp?: { kafka: BrokerWarmUp };
  reconcile: Reconcile;
  clients?: ClientComparison;
}

/** Counts that must agree for the numbers to mean anything. */
export interface Reconcile {
  generated: number;
  transactions: number;
  behavior: number;
  /** Messages on transactions + user_behavior (one per event). */
  published_events: number;
  warehouse_rows: number;
  metrics_events: number;
  /** Units in transaction_details, and `items_sold` in Redis. */
  items_in_shop: number;
  metrics_items_sold: number;
  ok: boolean;
}
