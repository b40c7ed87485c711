/**
 * Parsers for the summary lines of Kafka's own performance tools
 * (`org.apache.kafka.tools.ProducerPerformance` and `ConsumerPerformance`).
 * Pure, so that a format change shows up as a unit-test failure rather than a
 * silent zero in the report.
 *
 * @module
 */

/** The final line of ProducerPerformance. */
export interface ProducerPerfResult {
  records: number;
  records_per_s: number;
  mb_per_s: number;
  avg_latency_ms: number;
  max_latency_ms: number;
  p50_ms: number;
  p95_ms: number;
  p99_ms: number;
}

/** The data line of ConsumerPerformance. */
export interface ConsumerPerfResult {
  records: number;
  mb: number;
  /** Messages/s over the whole run, rebalance included (the tool's `nMsg.sec`). */
  records_per_s: number;
  rebalance_ms: number;
  fetch_ms: number;
  /** Messages/s while fetching, rebalance excluded (the tool's `fetch.nMsg.sec`). */
  fetch_records_per_s: number;
}

const PRODUCER_LINE = new RegExp(
  String
    .raw`(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, ` +
    String.raw`([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th`,
);

/**
 * Reads the last summary line of ProducerPerformance's output.
 *
 * @example
 * ```ts
 * import { parseProducerPerformance } from "./kafka_tools_output.ts";
 * const line = "1000 records sent, 500.0 records/sec (0.20 MB/sec), 3.0 ms avg latency, " +
 *   "9.00 ms max latency, 2 ms 50th, 7 ms 95th, 9 ms 99th, 9 ms 99.9th.";
 * parseProducerPerformance(line).records_per_s; // 500
 * ```
 * @throws {Error} when no summary line is present.
 */
export function parseProducerPerformance(output: string): ProducerPerfResult {
  const line = output.split("\n").reverse().find((l) => PRODUCER_LINE.test(l) && /99th/.test(l));
  const m = line?.match(PRODUCER_LINE);
  if (!m) {
    throw new Error(
      `Cannot read ProducerPerformance output as it has no summary line: current output ends ${
        JSON.stringify(output.slice(-300))
      }`,
    );
  }
  const n = m.slice(1).map(Number);
  return {
    records: n[0]!,
    records_per_s: n[1]!,
    mb_per_s: n[2]!,
    avg_latency_ms: n[3]!,
    max_latency_ms: n[4]!,
    p50_ms: n[5]!,
    p95_ms: n[6]!,
    p99_ms: n[7]!,
  };
}

/**
 * Reads ConsumerPerformance's CSV-like output (header line, then one data line).
 *
 * @throws {Error} when the header or the data line is missing.
 */
export function parseConsumerPerformance(output: string): ConsumerPerfResult {
  const lines = output.split("\n").map((l) => l.trim()).filter(Boolean);
  const headerAt = lines.findIndex((l) => l.startsWith("start.time"));
  const header = lines[headerAt]?.split(",").map((h) => h.trim());
  const data = lines[headerAt + 1]?.split(",").map((d) => d.trim());
  if (headerAt < 0 || !header || !data || data.length !== header.length) {
    throw new Error(
      `Cannot read ConsumerPerformance output as it has no stats line: current output ends ${
        JSON.stringify(output.slice(-300))
      }`,
    );
  }
  const field = (name: string) => {
    const value = Number(data[header.indexOf(name)]);
    if (!Number.isFinite(value)) {
      throw new Error(`Cannot read ConsumerPerformance field ${name}: current line is ${data}`);
    }
    return value;
  };
  return {
    records: field("data.consumed.in.nMsg"),
    mb: field("data.consumed.in.MB"),
    records_per_s: field("nMsg.sec"),
    rebalance_ms: field("rebalance.time.ms"),
    fetch_ms: field("fetch.time.ms"),
    fetch_records_per_s: field("fetch.nMsg.sec"),
  };
}
