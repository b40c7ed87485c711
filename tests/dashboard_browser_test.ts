/**
 * The dashboard in headless Chromium (Debian's `chromium` driven by
 * playwright-core): the page loads, goes live over SSE, shows a KPI change
 * after an aggregator-style update, draws every chart, logs no error, and
 * leaves screenshots in `out/`.
 *
 * playwright-core probes the host when it loads (`os.homedir()`,
 * `os.release()`, `/proc/sys/fs/binfmt_misc/WSLInterop`), which the test
 * permissions (`--allow-env --allow-read ...`, no `--allow-sys`, and
 * `/proc` needing `--allow-all` in Deno) refuse. The shim below answers
 * those probes when Deno refuses them, before playwright-core is imported.
 */

import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import { names, REDIS_KEYS } from "../lib/contracts.ts";
import { openDatabase } from "../lib/db.ts";
import { createRedis } from "../lib/redis.ts";
import {
  publishUpdate,
  seedMetrics,
  seedWarehouse,
  type Served,
  serveDashboard,
} from "./_dashboard_fixtures.ts";
import { createTestNamespace, runTask } from "./_support.ts";

const ROOT = new URL("../", import.meta.url);
const OUT = new URL("out/", ROOT);

/** Answers a refused host probe with a neutral value instead of throwing. */
function tolerate(module: object, name: string, fallback: (...args: unknown[]) => unknown) {
  const target = module as Record<string, (...args: unknown[]) => unknown>;
  const original = target[name]!;
  target[name] = (...args) => {
    try {
      return original(...args);
    } catch (error) {
      if (error instanceof Deno.errors.NotCapable) return fallback(...args);
      throw error;
    }
  };
}
tolerate(os, "homedir", () => Deno.env.get("HOME") ?? "/tmp");
tolerate(os, "release", () => "");
tolerate(fs, "existsSync", () => false);

const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
];

Deno.test({
  name: "dashboard in Chromium: live KPI change, charts drawn, no console errors",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const bundle = new URL("static/build/islands.js", ROOT);
    if (!await Deno.stat(bundle).then(() => true, () => false)) {
      const build = await runTask("build");
      assert.equal(build.code, 0, build.stderr);
    }
    const { chromium } = await import("playwright-core");
    const ns = await createTestNamespace("dashb");
    const n = names(ns.namespace);
    const redis = createRedis(ns.config);
    const sql = await openDatabase(ns.config, "dwh");
    let served: Served | undefined;
    let browser: Awaited<ReturnType<typeof chromium.launch>> | undefined;
    try {
      await seedMetrics(redis, n);
      await seedWarehouse(sql);
      served = serveDashboard(ns.config);
      browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM_ARGS });
      const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
      const problems: string[] = [];
      page.on("console", (m) => {
        if (m.type() === "error" || m.type() === "warning") {
          problems.push(`${m.type()}: ${m.text()}`);
        }
      });
      page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
      page.on(
        "dialog",
        (d) => problems.push(`dialog opened (injected script ran): ${d.message()}`),
      );
      page.on("response", (r) => {
        if (r.status() >= 400) problems.push(`HTTP ${r.status()} for ${r.url()}`);
      });

      await page.goto(`${served.base}/`, { waitUntil: "load" });
      const revenue = page.locator('[data-kpi="revenue"] .kpi-value');
      assert.equal(await revenue.textContent(), "$29,470.59");
      await page.waitForSelector('[data-connection="live"]');

      // What the aggregator does after a flush: update the keys, then publish.
      await redis.hset(n.redis(REDIS_KEYS.totals), {
        revenue_cents: 3_100_001,
        transaction_count: 1300,
        events: 5000,
      });
      await publishUpdate(redis, n);
      await page.waitForFunction(
        () =>
          document.querySelector('[data-kpi="revenue"] .kpi-value')?.textContent === "$31,000.01",
        undefined,
        { timeout: 10_000 },
      );
      assert.equal(await page.locator('[data-kpi="events"] .kpi-value').textContent(), "5,000");
      assert.equal(await page.locator('[data-kpi="aov"] .kpi-value').textContent(), "$23.85");

      // Every chart has drawn: count non-transparent pixels on each canvas.
      const drawn = await page.evaluate(() =>
        [...document.querySelectorAll("canvas")].map((canvas) => {
          const { data } = canvas.getContext("2d")!.getImageData(0, 0, canvas.width, canvas.height);
          let painted = 0;
          for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) painted++;
          return { label: canvas.getAttribute("aria-label"), painted };
        })
      );
      assert.equal(drawn.length, 4, JSON.stringify(drawn));
      for (const chart of drawn) {
        assert.ok(chart.painted > 500, `blank chart: ${JSON.stringify(chart)}`);
      }

      // Data text shows as text: the category and product names are in the page, not run.
      const bodyText = await page.locator("body").innerText();
      assert.ok(bodyText.includes("<img src=x onerror=alert('product')>"), "product name as text");
      assert.equal(await page.locator("img").count(), 0);

      await Deno.mkdir(OUT, { recursive: true });
      await page.screenshot({ path: new URL("dashboard.png", OUT).pathname, fullPage: true });
      await page.setViewportSize({ width: 390, height: 844 });
      await page.waitForTimeout(300); // let chart.js follow the resize before the picture
      await page.screenshot({ path: new URL("dashboard-phone.png", OUT).pathname, fullPage: true });

      assert.deepEqual(problems, []);

      // A server restart: EventSource reconnects by itself and numbers flow again.
      const port = Number(new URL(served.base).port);
      await served.close();
      served = serveDashboard(ns.config, {}, port);
      await page.waitForSelector('[data-connection="reconnecting"]');
      await page.waitForSelector('[data-connection="live"]', { timeout: 15_000 });
      await redis.hset(n.redis(REDIS_KEYS.totals), { revenue_cents: 3_200_000 });
      await publishUpdate(redis, n);
      await page.waitForFunction(
        () =>
          document.querySelector('[data-kpi="revenue"] .kpi-value')?.textContent === "$32,000.00",
        undefined,
        { timeout: 15_000 },
      );
    } finally {
      await browser?.close();
      await served?.close();
      redis.disconnect();
      await sql.end();
      await ns.cleanup();
    }
  },
});
