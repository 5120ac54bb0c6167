/// <reference lib="dom" />
// (DOM types: the page.evaluate callbacks below run in the browser.)
// The web explorer's two budgets (issue 15), measured in headless Chromium:
//   - the JavaScript of the first load (the entry and its static imports; the verifier is a chunk
//     loaded on the Verify page only), raw and gzip, from the build and as the browser decoded it;
//   - a 1,000-step run's timeline: from navigating to the run's page (signed in) until the SVG holds
//     all 1,000 bars and a frame was painted, split into fetching the steps and rendering them.
//
//   npm run bench:explorer [-- --steps 1000 --trials 7]     (needs apt-get install -y chromium)
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { explorerBuild } from "../src/explorer.ts";
import { exportBundle } from "../src/lib/bundle.ts";
import { loadConfig } from "../src/lib/config.ts";
import { createDatabaseIfMissing, databaseUrlWithName } from "../src/lib/database.ts";
import { startEmbeddedPostgres } from "../src/lib/embedded.ts";
import { migrateDatabase } from "../src/lib/migrate.ts";
import { startServer } from "../src/server.ts";
import { explorerUrl, findChromium, launchBrowser, signIn } from "../test/helpers/browser.ts";
import { completedRun } from "../test/helpers/ledger.ts";

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const STEPS = arg("steps", 1000);
const TRIALS = arg("trials", 7);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const kb = (n: number) => `${(n / 1024).toFixed(1)} kB`;

async function main(): Promise<void> {
  const chromium = findChromium();
  if (!chromium) throw new Error("no Chromium: apt-get install -y chromium");
  const build = await explorerBuild();
  console.log(
    `first-load JS (build): ${kb(build.firstLoadJsBytes)} raw, ${kb(build.firstLoadJsGzipBytes)} gzip; all JS incl. the lazy verifier chunk ${kb(build.totalJsBytes)}`,
  );

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runproof-bench-explorer-"));
  const cleanups: Array<() => Promise<unknown> | unknown> = [
    () => fs.rmSync(tmp, { recursive: true, force: true }),
  ];
  try {
    const pgServer = await startEmbeddedPostgres({ dataDir: path.join(tmp, "pg"), persistent: false });
    cleanups.unshift(() => pgServer.stop());
    await createDatabaseIfMissing(pgServer.rootUrl, "runproof_bench");
    const url = databaseUrlWithName(pgServer.rootUrl, "runproof_bench");
    await migrateDatabase(url, { withCurrent: true });
    const pool = new pg.Pool({ connectionString: url, max: 2 });
    pool.on("error", () => {}); // the embedded server stopping at the end
    cleanups.unshift(() => pool.end());
    const {
      rows: [tenant],
    } = await pool.query(`select id from runproof_private.create_tenant('bench')`);
    const {
      rows: [key],
    } = await pool.query(`select api_key from runproof_private.create_api_key($1, 'bench')`, [tenant.id]);
    await pool.query(
      `insert into runproof.skills (name, description) values ('noop', 'noop') on conflict do nothing`,
    );
    const {
      rows: [agent],
    } = await pool.query(`select id from runproof.create_agent('bench', tenant_id => $1)`, [tenant.id]);
    const t0 = performance.now();
    const { runId } = await completedRun(
      pool,
      { tenantId: tenant.id, agentId: agent.id },
      { stepsPerTrace: STEPS },
    );
    console.log(`a ${STEPS}-step run recorded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    const config = loadConfig({ RUNPROOF_LOG_LEVEL: "warn" });
    const server = await startServer({ connectionString: url, config, port: 0 });
    cleanups.unshift(() => server.stop());
    const base = explorerUrl(server.url);
    const browser = await launchBrowser(chromium);
    cleanups.unshift(() => browser.close());
    const page = await browser.newPage();
    await signIn(page, base, key.api_key);
    const js = (await page.evaluate(() =>
      performance
        .getEntriesByType("resource")
        .filter((e) => e.name.endsWith(".js"))
        .map((e) => (e as PerformanceResourceTiming).decodedBodySize),
    )) as number[];
    console.log(
      `first-load JS (browser): ${js.length} file(s), ${kb(js.reduce((a, b) => a + b, 0))} decoded; Verify page not opened, so no verifier chunk`,
    );

    const total: number[] = [];
    const fetchMs: number[] = [];
    const renderMs: number[] = [];
    for (let i = 0; i < TRIALS; i++) {
      await page.goto(`${base}#/runs`, { waitUntil: "load" });
      await page.waitForSelector("table.runs");
      const start = await page.evaluate(() => {
        performance.clearMarks();
        const t = performance.now();
        location.hash = `#/runs/${(document.querySelector("tr[data-run-id]") as HTMLElement).dataset.runId}`;
        return t;
      });
      await page.waitForFunction(
        (n: number) =>
          document.querySelector(`svg.timeline[data-steps="${n}"]`) &&
          performance.getEntriesByName("runproof:timeline-painted").length > 0,
        { polling: 10, timeout: 30_000 },
        STEPS,
      );
      const m = await page.evaluate(() => ({
        fetched: performance.getEntriesByName("runproof:steps-fetched")[0]!.startTime,
        painted: performance.getEntriesByName("runproof:timeline-painted")[0]!.startTime,
        bars: Array.from(document.querySelectorAll("svg.timeline .bars")).reduce(
          (n, p) => n + (p.getAttribute("d") ?? "").split("z").length - 1,
          0,
        ),
      }));
      if (m.bars !== STEPS) throw new Error(`${m.bars} bars, expected ${STEPS}`);
      total.push(m.painted - start);
      fetchMs.push(m.fetched - start);
      renderMs.push(m.painted - m.fetched);
    }
    console.log(
      `${STEPS}-step timeline, ${TRIALS} trials, median: ${median(total).toFixed(0)} ms from navigation to painted ` +
        `(fetching the run and its steps ${median(fetchMs).toFixed(0)} ms, rendering ${median(renderMs).toFixed(0)} ms); ` +
        `all: ${total.map((x) => x.toFixed(0)).join(", ")} ms; load ${os
          .loadavg()
          .map((x) => x.toFixed(2))
          .join(" ")}; run ${runId}`,
    );
    // The same run's bundle, verified in the browser (the verifier chunk loads first).
    const file = path.join(tmp, "bundle.json");
    fs.writeFileSync(file, JSON.stringify(await exportBundle(pool, tenant.id, runId)));
    const verifyMs: number[] = [];
    for (let i = 0; i < 3; i++) {
      await page.goto(`${base}#/verify`, { waitUntil: "load" });
      const input = await page.waitForSelector("#bundle-file");
      await (input as unknown as { uploadFile(f: string): Promise<void> }).uploadFile(file);
      await page.waitForSelector('[data-testid=local-verdict][data-verdict="VERIFIED"]', { timeout: 60_000 });
      const text = await page.$eval("[data-testid=local-verdict]", (e) => e.textContent ?? "");
      verifyMs.push(Number(/checked in (\d+) ms/.exec(text)?.[1]));
    }
    const chunk = [...build.assets.values()].find((a) => a.path.includes("/verify-"));
    const { gzipSync } = await import("node:zlib");
    console.log(
      `its bundle (${kb(fs.statSync(file).size)}) verified VERIFIED in the browser in ${median(verifyMs)} ms (median of 3; Web Crypto); ` +
        `the verifier chunk is ${kb(chunk?.body.length ?? 0)} raw, ${kb(chunk ? gzipSync(chunk.body).length : 0)} gzip`,
    );
  } finally {
    for (const cleanup of cleanups) {
      try {
        await cleanup();
      } catch (err) {
        console.error("cleanup failed:", err);
      }
    }
  }
}

let code = 0;
try {
  await main();
} catch (err) {
  console.error(err);
  code = 1;
}
process.exit(code);
