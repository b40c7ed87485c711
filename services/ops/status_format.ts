/**
 * The one screen `deno task status` prints.
 *
 * @module
 */

import type { StatusReport } from "./status_collect.ts";
import { renderTable } from "./table.ts";

/**
 * Renders a {@link StatusReport} as text lines.
 *
 * @example
 * ```ts ignore
 * for (const line of formatStatusReport(await collectStatus(config))) console.log(line);
 * ```
 */
export function formatStatusReport(report: StatusReport): string[] {
  const { kafka, warehouse, redis } = report;
  const lines: string[] = [
    `InstaShop pipeline status${
      report.namespace ? ` (namespace ${report.namespace})` : ""
    } at ${report.at}`,
    "",
    "Kafka topics",
  ];
  if (!kafka.ok) lines.push(`  ❌ ${kafka.error}`);
  else {
    lines.push(...indent(renderTable(
      ["topic", "partitions", "messages", "end offsets"],
      kafka.topics.map((t) => [
        t.topic,
        t.exists ? t.partitions : null,
        t.exists ? t.messages : null,
        t.exists ? t.end_offsets.join(" ") : "missing",
      ]),
    )));
    lines.push("", "Consumer groups");
    lines.push(...indent(renderTable(
      ["group", "state", "members", "lag", "lag by partition"],
      kafka.groups.map((g) => [
        g.group,
        g.state,
        g.members,
        g.lag,
        g.partitions.filter((p) => p.lag > 0).map((p) => `${p.topic}/${p.partition}:${p.lag}`)
          .join(" ") || (g.partitions.length > 0 ? "none" : "no offsets committed"),
      ]),
    )));
  }

  lines.push("", `Warehouse (${warehouse.database})`);
  if (!warehouse.ok) lines.push(`  ❌ ${warehouse.error}`);
  else if (!warehouse.exists) lines.push("  not created yet: nothing consumed in this namespace");
  else {
    lines.push(
      `  realtime_events ${warehouse.realtime_events.toLocaleString("en-US")} rows, ` +
        `fact_sales ${warehouse.fact_sales.toLocaleString("en-US")} rows; latest events:`,
    );
    lines.push(...indent(renderTable(
      ["event_id", "event_type", "customer", "timestamp", "processed_at"],
      warehouse.last_events.map((e) => [
        e.event_id,
        e.event_type,
        e.customer_id,
        e.timestamp,
        e.processed_at,
      ]),
    )));
  }

  lines.push("", "Redis metrics");
  if (!redis.ok) lines.push(`  ❌ ${redis.error}`);
  else {
    lines.push(...formatTotals(redis.totals));
    lines.push(`  metrics:transactions: ${JSON.stringify(redis.transactions)}`);
    lines.push(`  metrics:behavior: ${JSON.stringify(redis.behavior)}`);
    for (const [category, value] of Object.entries(redis.products)) {
      lines.push(`  metrics:products:${category}: ${JSON.stringify(value)}`);
    }
    lines.push(`  metrics:windows: ${redis.windows.count} windows`);
    for (const w of redis.windows.latest) {
      const fields = Object.entries(w.fields).map(([k, v]) => `${k}=${v}`).join(" ");
      lines.push(`    ${w.start}: ${fields}`);
    }
    for (const other of redis.other_keys) {
      const value = other.type === "hash" && other.value !== null && typeof other.value === "object"
        ? Object.entries(other.value).map(([k, v]) => `${k}=${v}`).join(" ")
        : JSON.stringify(other.value);
      lines.push(`  ${other.key} (${other.type}): ${value}`);
    }

    lines.push("", `Heartbeats (stale after ${report.stale_after_s} s)`);
    lines.push(...indent(renderTable(
      ["stage", "age s", "state", "pid", "events", "events/s", "dead letters"],
      redis.heartbeats.map((h) => [
        h.stage,
        h.age_s,
        !h.present ? "never beat" : h.stale ? "STALE" : "ok",
        h.pid,
        h.events,
        h.events_per_s,
        h.dead_letters,
      ]),
    )));

    const deadTopic = kafka.topics.find((t) => t.topic.endsWith("dead_letters"));
    const bySource = Object.entries(redis.dead_letters.by_source)
      .map(([k, v]) => `${k}=${v}`).join(" ");
    lines.push(
      "",
      `Dead letters: ${redis.dead_letters.total}${bySource ? ` (${bySource})` : ""}` +
        (deadTopic?.exists ? `; ${deadTopic.messages} on ${deadTopic.topic}` : ""),
    );
  }

  lines.push(
    "",
    report.healthy ? "✅ healthy" : `❌ ${report.problems.length} problem(s):`,
    ...report.problems.map((p) => `  - ${p}`),
  );
  return lines;
}

/** `metrics:totals` in three parts: the counts, the behaviour types, a table per category. */
function formatTotals(totals: Record<string, number>): string[] {
  const entries = Object.entries(totals);
  if (entries.length === 0) return ["  metrics:totals: empty"];
  const pairs = (list: [string, number][]) => list.map(([k, v]) => `${k}=${v}`).join(" ");
  const plain = entries.filter(([k]) => !k.includes(":"));
  const behavior = entries.filter(([k]) => k.startsWith("behavior:"));
  const categories = new Map<string, { units?: number; revenue?: number }>();
  const other: [string, number][] = [];
  for (const [field, value] of entries) {
    const match = field.match(/^category:(.+):(units|revenue_cents)$/);
    if (match) {
      const entry = categories.get(match[1]!) ?? {};
      if (match[2] === "units") entry.units = value;
      else entry.revenue = value;
      categories.set(match[1]!, entry);
    } else if (field.includes(":") && !field.startsWith("behavior:")) other.push([field, value]);
  }
  const lines = [`  metrics:totals: ${pairs([...plain, ...other])}`];
  if (behavior.length > 0) lines.push(`    ${pairs(behavior)}`);
  if (categories.size > 0) {
    lines.push(...indent(indent(renderTable(
      ["category", "units", "revenue_cents"],
      [...categories].map(([name, c]) => [name, c.units, c.revenue]),
    ))));
  }
  return lines;
}

function indent(lines: string[]): string[] {
  return lines.map((l) => `  ${l}`);
}
