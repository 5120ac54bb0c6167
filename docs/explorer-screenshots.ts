// Retakes the web explorer's screenshots in the README: docs/explorer-runs.png (the runs list),
// docs/explorer-run.png (a run: proof panel and step timeline) and docs/explorer-verify.png (a
// bundle checked in the browser).
//
//   npm run screenshots        (needs Debian's chromium: apt-get install -y chromium)
//
// As docs/screenshot.ts does for Ruru: a throwaway embedded Postgres, migrated; a tenant, an API
// key and an agent; a real worker executes a few runs; one finished run is then rewritten by a
// superuser with the guards off (so the list shows a TAMPERED badge); the GraphQL server serves the
// explorer, and headless Chromium (puppeteer-core) signs in and captures the pages.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { exportBundle } from "../src/lib/bundle.ts";
import { loadConfig } from "../src/lib/config.ts";
import { createDatabaseIfMissing, databaseUrlWithName, REPO_ROOT } from "../src/lib/database.ts";
import { startEmbeddedPostgres } from "../src/lib/embedded.ts";
import { migrateDatabase } from "../src/lib/migrate.ts";
import { startServer } from "../src/server.ts";
import { startWorker } from "../src/worker.ts";
import { explorerUrl, findChromium, launchBrowser, signIn, waitForText } from "../test/helpers/browser.ts";
import { asAttacker } from "../test/helpers/ledger.ts";

const WIDTH = 1400;
const HEIGHT = 900;
const out = (name: string) => path.join(REPO_ROOT, "docs", name);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const step = (skill: string, input: object) => ({ skill, input });
const PLANS: Array<{ goal: string; origin: string; plan: object }> = [
  {
    goal: "summarise yesterday's support tickets",
    origin: "support-digest",
    plan: {
      version: 1,
      steps: [
        step("noop", { note: "fetch tickets" }),
        step("json_transform", {
          expression: "tickets[priority = 'high'].subject",
          data: {
            tickets: [
              { subject: "refund", priority: "high" },
              { subject: "login", priority: "low" },
            ],
          },
        }),
        step("wait", { ms: 120 }),
        step("memory_put", { key: "digest", value: { high: 1 } }),
        step("wait", { ms: 80 }),
        step("memory_get", { key: "digest" }),
        step("noop", { note: "publish" }),
      ],
    },
  },
  {
    goal: "pick the items over 10",
    origin: "billing-service",
    plan: {
      version: 1,
      steps: [
        step("json_transform", {
          expression: "items[price > 10].name",
          data: { items: [{ name: "b", price: 20 }] },
        }),
        step("wait", { ms: 50 }),
      ],
    },
  },
  {
    goal: "reconcile the ledger export",
    origin: "finance-batch",
    plan: { version: 1, steps: [step("noop", {}), step("wait", { ms: 60 }), step("noop", {})] },
  },
  {
    goal: "a transform that cannot run",
    origin: "runproof-cli",
    plan: { version: 1, steps: [step("noop", {}), step("json_transform", { expression: "$$$(", data: {} })] },
  },
];

async function main(): Promise<void> {
  const chromium = findChromium();
  if (!chromium) throw new Error("no Chromium: apt-get install -y chromium");
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runproof-explorer-shots-"));
  const cleanups: Array<() => Promise<unknown> | unknown> = [
    () => fs.rmSync(tmp, { recursive: true, force: true }),
  ];
  try {
    const pgServer = await startEmbeddedPostgres({ dataDir: path.join(tmp, "pg"), persistent: false });
    cleanups.unshift(() => pgServer.stop());
    await createDatabaseIfMissing(pgServer.rootUrl, "runproof_demo");
    const url = databaseUrlWithName(pgServer.rootUrl, "runproof_demo");
    await migrateDatabase(url, { withCurrent: true });
    const config = loadConfig({ RUNPROOF_LOG_LEVEL: "warn" });
    const worker = await startWorker({ connectionString: url, config, concurrency: 1 });
    cleanups.unshift(() => worker.stop());
    const pool = new pg.Pool({ connectionString: url, max: 4 });
    pool.on("error", () => {}); // the embedded server stopping at the end
    cleanups.unshift(() => pool.end());
    const {
      rows: [tenant],
    } = await pool.query(`select id from runproof_private.create_tenant('acme')`);
    const {
      rows: [key],
    } = await pool.query(`select api_key from runproof_private.create_api_key($1, 'screenshots')`, [
      tenant.id,
    ]);
    const {
      rows: [agent],
    } = await pool.query(
      `select id from runproof.create_agent('researcher', 'digests and reconciles', tenant_id => $1)`,
      [tenant.id],
    );
    const ids: string[] = [];
    for (const p of PLANS) {
      const {
        rows: [run],
      } = await pool.query(
        `select id from runproof.enqueue_run(tenant_id => $1, agent_id => $2, goal => $3, origin_system_id => $4, plan => $5, max_attempts => 1)`,
        [tenant.id, agent.id, p.goal, p.origin, p.plan],
      );
      ids.push(run.id);
      for (let i = 0; ; i++) {
        const {
          rows: [r],
        } = await pool.query(`select status from runproof.runs where id = $1`, [run.id]);
        if (["succeeded", "failed", "halted", "cancelled"].includes(r.status)) break;
        if (i > 300) throw new Error(`run ${p.goal} did not finish in 30 s`);
        await sleep(100);
      }
    }
    // The reconciliation's step 1 is rewritten afterwards by a superuser with the guards off.
    await asAttacker(pool, (c) =>
      c.query(
        `update runproof.step_payloads set output = '{"waited_ms": 6}' where run_id = $1 and step_index = 1`,
        [ids[2]],
      ),
    );
    // One still waiting for a worker.
    await worker.stop();
    await pool.query(
      `select runproof.enqueue_run(tenant_id => $1, agent_id => $2, goal => 'nightly backfill', origin_system_id => 'scheduler', plan => $3)`,
      [tenant.id, agent.id, { version: 1, steps: [step("noop", {})] }],
    );

    const bundle = await exportBundle(pool, tenant.id, ids[1]!);
    const edited = structuredClone(bundle);
    edited.traces[0]!.steps[0]!.payload!.output!.text = '["a", "b"]';
    const editedFile = path.join(tmp, "bundle-edited.json");
    fs.writeFileSync(editedFile, JSON.stringify(edited, null, 2));

    const server = await startServer({ connectionString: url, config, port: 0 });
    cleanups.unshift(() => server.stop());
    const base = explorerUrl(server.url);
    const browser = await launchBrowser(chromium);
    cleanups.unshift(() => browser.close());
    const page = await browser.newPage();
    await page.setViewport({ width: WIDTH, height: HEIGHT, deviceScaleFactor: 1 });

    await signIn(page, base, key.api_key);
    await page.waitForSelector(`tr[data-run-id="${ids[2]}"] .verdict-tampered`);
    await sleep(300);
    await page.screenshot({ path: out("explorer-runs.png") });

    await page.goto(`${base}#/runs/${ids[0]}`);
    await waitForText(page, /VERIFIED/);
    await page.click('tr[data-step="3"] button');
    await waitForText(page, /Output \(redacted\)/);
    await page.evaluate(() => window.scrollTo(0, 0));
    await sleep(300);
    await page.screenshot({
      path: out("explorer-run.png"),
      clip: { x: 0, y: 0, width: WIDTH, height: 1500 },
    });

    await page.goto(`${base}#/verify`);
    const input = await page.waitForSelector("#bundle-file");
    await (input as unknown as { uploadFile(f: string): Promise<void> }).uploadFile(editedFile);
    await page.waitForSelector("[data-testid=local-verdict]");
    await sleep(300);
    await page.screenshot({ path: out("explorer-verify.png") });
    for (const f of ["explorer-runs.png", "explorer-run.png", "explorer-verify.png"])
      console.error(`wrote docs/${f}`);
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
