// Retakes docs/ruru.png: the Ruru explorer (GET /graphql in a browser) running a
// runs-with-proof query against a demo database with one finished run.
//
//   npm run docs:screenshot        (needs Debian's chromium: apt-get install -y chromium)
//
// What it does: boots a throwaway embedded Postgres, migrates it, creates a tenant,
// an API key and an agent, lets a real worker execute a three-step run, starts the
// GraphQL server, then drives headless Chromium over the DevTools protocol (Node's
// built-in WebSocket; no Playwright): the API key and the query are put where Ruru
// (GraphiQL) looks for them on first load (localStorage graphiql:headers and
// graphiql:query), the Run button is clicked, and once the result shows VERIFIED the
// page is captured.
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { loadConfig } from "../src/lib/config.ts";
import { createDatabaseIfMissing, databaseUrlWithName, REPO_ROOT } from "../src/lib/database.ts";
import { startEmbeddedPostgres } from "../src/lib/embedded.ts";
import { migrateDatabase } from "../src/lib/migrate.ts";
import { startServer } from "../src/server.ts";
import { startWorker } from "../src/worker.ts";

const OUT = path.join(REPO_ROOT, "docs", "ruru.png");
const WIDTH = 1600;
const HEIGHT = 1000;

const QUERY = `# A run with its proof: every hash recomputed by the database now.
query RunsWithProof {
  runs(first: 5) {
    nodes {
      goal
      status
      originSystemId
      planStepCount
      traces {
        nodes {
          attempt
          status
          steps { totalCount }
        }
      }
      proof {
        integrityModel
        verificationStatus
        traceCount
        stepCount
        rootHash
      }
    }
  }
}
`;

const PLAN = {
  version: 1,
  steps: [
    { skill: "noop", input: { note: "hello" } },
    {
      skill: "json_transform",
      input: {
        expression: "items[price > 10].name",
        data: {
          items: [
            { name: "a", price: 5 },
            { name: "b", price: 20 },
          ],
        },
      },
    },
    { skill: "wait", input: { ms: 50 } },
  ],
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runproof-screenshot-"));
  const cleanups: Array<() => Promise<unknown> | unknown> = [
    () => fs.rmSync(tmp, { recursive: true, force: true }),
  ];
  try {
    const pgServer = await startEmbeddedPostgres({ dataDir: path.join(tmp, "pg"), persistent: false });
    cleanups.unshift(() => pgServer.stop());
    await createDatabaseIfMissing(pgServer.rootUrl, "runproof_demo");
    const url = databaseUrlWithName(pgServer.rootUrl, "runproof_demo");
    await migrateDatabase(url);
    const config = loadConfig({ RUNPROOF_LOG_LEVEL: "warn" });

    const worker = await startWorker({ connectionString: url, config, concurrency: 1 });
    cleanups.unshift(() => worker.stop());
    const pool = new pg.Pool({ connectionString: url, max: 2 });
    cleanups.unshift(() => pool.end());
    const {
      rows: [tenant],
    } = await pool.query(`select id from runproof_private.create_tenant('acme')`);
    const {
      rows: [key],
    } = await pool.query(`select api_key from runproof_private.create_api_key($1, 'screenshot')`, [
      tenant.id,
    ]);
    const {
      rows: [agent],
    } = await pool.query(
      `select id from runproof.create_agent('researcher', 'finds the expensive items', tenant_id => $1)`,
      [tenant.id],
    );
    const {
      rows: [run],
    } = await pool.query(
      `select id from runproof.enqueue_run(tenant_id => $1, agent_id => $2, goal => 'pick the items over 10', origin_system_id => 'docs-screenshot', plan => $3)`,
      [tenant.id, agent.id, PLAN],
    );
    for (let i = 0; ; i++) {
      const {
        rows: [r],
      } = await pool.query(`select status from runproof.runs where id = $1`, [run.id]);
      if (["succeeded", "failed", "halted", "cancelled"].includes(r.status)) {
        if (r.status !== "succeeded") throw new Error(`the demo run ended ${r.status}`);
        break;
      }
      if (i > 300) throw new Error("the demo run did not finish in 30 s");
      await sleep(100);
    }

    const server = await startServer({ connectionString: url, config, port: 0 });
    cleanups.unshift(() => server.stop());
    console.error(`GraphQL server at ${server.url}; demo run ${run.id} succeeded`);

    await screenshot(server.url, key.api_key, tmp);
    console.error(`wrote ${path.relative(REPO_ROOT, OUT)}`);
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

async function screenshot(pageUrl: string, apiKey: string, tmp: string): Promise<void> {
  const profile = fs.mkdtempSync(path.join(tmp, "chromium-profile-"));
  const chromium = spawn(
    "chromium",
    [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      `--user-data-dir=${profile}`,
      "--remote-debugging-address=127.0.0.1",
      "--remote-debugging-port=0",
      `--window-size=${WIDTH},${HEIGHT}`,
      "about:blank",
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  try {
    const browserWs = await new Promise<string>((resolve, reject) => {
      let buf = "";
      const timer = setTimeout(() => reject(new Error(`chromium did not start:\n${buf}`)), 20_000);
      chromium.stderr!.on("data", (d) => {
        buf += d;
        const m = /DevTools listening on (ws:\/\/\S+)/.exec(buf);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      chromium.once("exit", (code) => reject(new Error(`chromium exited (${code}):\n${buf}`)));
    });
    const { host } = new URL(browserWs);
    const targets = (await (await fetch(`http://${host}/json/list`)).json()) as Array<{
      type: string;
      webSocketDebuggerUrl: string;
    }>;
    const page = targets.find((t) => t.type === "page");
    if (!page) throw new Error("no page target in chromium");
    const cdp = await Cdp.connect(page.webSocketDebuggerUrl);
    try {
      await cdp.send("Page.enable");
      await cdp.send("Runtime.enable");
      await cdp.send("Emulation.setDeviceMetricsOverride", {
        width: WIDTH,
        height: HEIGHT,
        deviceScaleFactor: 1,
        mobile: false,
      });
      // Where GraphiQL looks for the first tab's query and headers when it has no saved tabs.
      const origin = new URL(pageUrl).origin;
      await cdp.send("Page.addScriptToEvaluateOnNewDocument", {
        source: `if (location.origin === ${JSON.stringify(origin)}) {
          localStorage.setItem("graphiql:query", ${JSON.stringify(QUERY)});
          localStorage.setItem("graphiql:headers", ${JSON.stringify(JSON.stringify({ Authorization: `Bearer ${apiKey}` }, null, 2))});
          localStorage.setItem("graphiql:theme", "light");
        }`,
      });
      const loaded = cdp.once("Page.loadEventFired");
      await cdp.send("Page.navigate", { url: pageUrl });
      await loaded;
      await waitFor(
        cdp,
        `!!document.querySelector(".graphiql-execute-button") && !document.querySelector(".graphiql-execute-button").disabled`,
        "the Run button",
      );
      await sleep(1500); // schema introspection, syntax highlighting
      await cdp.evaluate(`document.querySelector(".graphiql-execute-button").click()`);
      await waitFor(
        cdp,
        `(document.querySelector(".graphiql-response")?.innerText ?? "").includes("VERIFIED")`,
        "a VERIFIED result",
      );
      await sleep(800);
      const { data } = await cdp.send("Page.captureScreenshot", { format: "png" });
      fs.writeFileSync(OUT, Buffer.from(data as string, "base64"));
    } finally {
      cdp.close();
    }
  } finally {
    chromium.kill("SIGTERM");
    await new Promise((r) => (chromium.exitCode !== null ? r(null) : chromium.once("exit", r)));
  }
}

async function waitFor(cdp: Cdp, expression: string, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await cdp.evaluate(expression)) return;
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** A minimal Chrome DevTools Protocol client over Node's built-in WebSocket. */
class Cdp {
  private nextId = 1;
  private pending = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();
  private listeners = new Map<string, Array<(params: any) => void>>();

  private constructor(private readonly ws: WebSocket) {
    ws.addEventListener("message", (ev) => {
      const msg = JSON.parse(String(ev.data));
      if (msg.id !== undefined) {
        const p = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        if (msg.error) p?.reject(new Error(`${msg.error.message} (${msg.error.code})`));
        else p?.resolve(msg.result);
      } else if (msg.method) {
        for (const l of this.listeners.get(msg.method) ?? []) l(msg.params);
      }
    });
  }

  static connect(url: string): Promise<Cdp> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.addEventListener("open", () => resolve(new Cdp(ws)));
      ws.addEventListener("error", () => reject(new Error(`cannot connect to ${url}`)));
    });
  }

  send(method: string, params: Record<string, unknown> = {}): Promise<any> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  once(event: string): Promise<any> {
    return new Promise((resolve) => {
      const list = this.listeners.get(event) ?? [];
      const l = (params: any) => {
        list.splice(list.indexOf(l), 1);
        resolve(params);
      };
      list.push(l);
      this.listeners.set(event, list);
    });
  }

  async evaluate(expression: string): Promise<unknown> {
    const { result, exceptionDetails } = await this.send("Runtime.evaluate", {
      expression,
      returnByValue: true,
    });
    if (exceptionDetails) throw new Error(`page error: ${exceptionDetails.text}`);
    return result.value;
  }

  close(): void {
    this.ws.close();
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
