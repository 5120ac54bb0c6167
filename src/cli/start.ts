// npx runproof start: everything in one process for a laptop: the database (embedded Postgres
// unless DATABASE_URL), migrations, a worker and the GraphQL server. Makes sure a tenant
// 'demo' with an agent 'demo-agent' exists and prints a fresh API key for it.
//
// Before it starts or writes anything it checks its ports (the embedded Postgres's, unless that
// server is already running for this data directory, and the GraphQL port), so a start that
// cannot listen leaves nothing behind: no data directory, worker or API key. Ctrl-C stops the
// worker, then the server, then the embedded Postgres (which runs in its own process group, so
// the terminal's SIGINT reaches only this process), and exits 0.
import net from "node:net";
import path from "node:path";
import type pg from "pg";
import { loadConfig } from "../lib/config.ts";
import { DEFAULT_EMBEDDED_PORT, embeddedDataDir, embeddedPort } from "../lib/database.ts";
import { createLogger } from "../lib/log.ts";
import { CliError, EXIT, err, out, printJson, withDatabase } from "./common.ts";

export const DEMO_TENANT = "demo";
export const DEMO_AGENT = "demo-agent";

/** The demo tenant and agent, created on first use (concurrent starts race harmlessly). */
export async function ensureDemoTenant(pool: pg.Pool): Promise<{ tenantId: string; agentId: string }> {
  let {
    rows: [t],
  } = await pool.query(`select id from runproof.tenants where name = $1`, [DEMO_TENANT]);
  if (!t) {
    try {
      ({
        rows: [t],
      } = await pool.query(`select id from runproof_private.create_tenant($1, 10000)`, [DEMO_TENANT]));
    } catch (e) {
      ({
        rows: [t],
      } = await pool.query(`select id from runproof.tenants where name = $1`, [DEMO_TENANT]));
      if (!t) throw e;
    }
  }
  let {
    rows: [a],
  } = await pool.query(`select id from runproof.agents where tenant_id = $1 and name = $2`, [
    t.id,
    DEMO_AGENT,
  ]);
  if (!a) {
    try {
      ({
        rows: [a],
      } = await pool.query(
        `select id from runproof.create_agent($1, 'the demo agent of runproof start', null, $2)`,
        [DEMO_AGENT, t.id],
      ));
    } catch (e) {
      ({
        rows: [a],
      } = await pool.query(`select id from runproof.agents where tenant_id = $1 and name = $2`, [
        t.id,
        DEMO_AGENT,
      ]));
      if (!a) throw e;
    }
  }
  return { tenantId: t.id, agentId: a.id };
}

export interface StartOptions {
  port?: number;
  host?: string;
  concurrency?: number;
  json?: boolean;
}

/** Whether something already listens on host:port (EADDRINUSE when we try). */
export function portInUse(port: number, host: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.unref();
    probe.once("error", (e: NodeJS.ErrnoException) => (e.code === "EADDRINUSE" ? resolve(true) : reject(e)));
    probe.listen({ port, host, exclusive: true }, () => probe.close(() => resolve(false)));
  });
}

/** Fails (exit 1, naming the port and how to pick another) when a port start needs is taken. */
async function checkPorts(graphqlPort: number, host: string): Promise<void> {
  if (!process.env.DATABASE_URL) {
    const pgPort = embeddedPort();
    const { livePostmaster } = await import("../lib/embedded.ts");
    const running = await livePostmaster(embeddedDataDir());
    // A postmaster already running on this data dir is shared (another command, or a second start).
    if (!running && (await portInUse(pgPort, "127.0.0.1"))) {
      throw new CliError(
        `port ${pgPort} (the embedded Postgres) is already in use by another program`,
        EXIT.ERROR,
        `pick another port: RUNPROOF_PG_PORT=${pgPort === DEFAULT_EMBEDDED_PORT ? pgPort + 1 : DEFAULT_EMBEDDED_PORT} npm start (and the same RUNPROOF_PG_PORT for npx runproof in other terminals), or use your own Postgres with DATABASE_URL`,
      );
    }
  }
  if (graphqlPort !== 0 && (await portInUse(graphqlPort, host))) {
    throw new CliError(
      `port ${graphqlPort} (GraphQL) is already in use: is another npm start (npx runproof start) running?`,
      EXIT.ERROR,
      `stop it with Ctrl-C in its terminal, or pick another port: npx runproof start --port ${graphqlPort + 1}, or RUNPROOF_PORT=${graphqlPort + 1} npm start (0 picks a free one)`,
    );
  }
}

export async function startCommand(opts: StartOptions): Promise<void> {
  const config = loadConfig();
  const host = opts.host ?? "127.0.0.1";
  const port = opts.port ?? config.port;
  await checkPorts(port, host);
  const logger = createLogger(config, "runproof");
  await withDatabase(
    async ({ pool, url, embedded }) => {
      const { tenantId, agentId } = await ensureDemoTenant(pool);
      const { startWorker } = await import("../worker.ts");
      const { startServer } = await import("../server.ts");
      const worker = await startWorker({
        connectionString: url,
        config,
        concurrency: opts.concurrency,
        logger: logger.child({ component: "worker" }),
      });
      let server: Awaited<ReturnType<typeof startServer>>;
      try {
        server = await startServer({
          connectionString: url,
          config,
          port,
          host,
          logger: logger.child({ component: "graphql" }),
        });
      } catch (e) {
        await worker.stop();
        throw e;
      }

      // Listening from here on: a repeated SIGINT (npm passes the terminal's Ctrl-C on as well)
      // must not cut the shutdown short, so the handler stays until everything has stopped.
      let signalled: (s: NodeJS.Signals) => void = () => {};
      const stopSignal = new Promise<NodeJS.Signals>((resolve) => (signalled = resolve));
      const onSignal = (s: NodeJS.Signals) => signalled(s);
      process.on("SIGINT", onSignal);
      process.on("SIGTERM", onSignal);
      try {
        // The key is created once both are up: a start that failed leaves no key behind.
        const {
          rows: [key],
        } = await pool.query(
          `select key_id, api_key, key_prefix from runproof_private.create_api_key($1, 'start')`,
          [tenantId],
        );
        if (opts.json) {
          printJson({
            graphql_url: server.url,
            api_key: key.api_key,
            key_id: key.key_id,
            tenant_id: tenantId,
            agent_id: agentId,
            worker: worker.processId,
          });
        } else {
          printBanner({
            graphqlUrl: server.url,
            apiKey: key.api_key,
            tenantId,
            agentId,
            embedded,
            worker: worker.processId,
          });
        }
        const signal = await stopSignal;
        err(`${signal}: stopping`);
      } finally {
        await worker.stop();
        err("  stopped the worker");
        await server.stop();
        err("  stopped the GraphQL server");
      }
    },
    { migrate: "always", skills: true },
  );
  // withDatabase closed the pool and stopped the embedded Postgres (unless another process owns it).
  err(
    process.env.DATABASE_URL
      ? "stopped"
      : "  stopped the embedded Postgres (unless another command shares it)\nstopped",
  );
}

/** Relative to the working directory when it is inside it. */
const shownPath = (p: string) => {
  const rel = path.relative(process.cwd(), p);
  return rel && !rel.startsWith("..") ? rel : p;
};

/** Single-quoted for a POSIX shell. */
const sh = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`);

function printBanner(i: {
  graphqlUrl: string;
  apiKey: string;
  tenantId: string;
  agentId: string;
  embedded: boolean;
  worker: string;
}): void {
  const goal = "wait 500 ms, remember color = blue, then recall color";
  const sql = `select id, status from runproof.enqueue_run('${i.tenantId}', '${i.agentId}', '${goal}', 'psql')`;
  const mutation = `mutation { enqueueRun(input: {agentId: \\"${i.agentId}\\", goal: \\"${goal}\\", originSystemId: \\"curl\\"}) { run { id status } } }`;
  const query = `{ runs(first: 5, orderBy: CREATED_AT_DESC) { nodes { id status goal proof { verificationStatus rootHash stepCount } } } }`;
  const curl = (q: string) =>
    `curl -s ${i.graphqlUrl} -H 'Authorization: Bearer ${i.apiKey}' -H 'Content-Type: application/json' \\\n    -d '{"query": "${q}"}'`;
  // What another terminal needs to reach this instance: the URL and key, and whatever picks the
  // database the CLI uses, when it is not the default.
  const exports = [`RUNPROOF_GRAPHQL_URL=${sh(i.graphqlUrl)}`, `RUNPROOF_API_KEY=${i.apiKey}`];
  for (const name of ["RUNPROOF_DATA_DIR", "RUNPROOF_PG_PORT"]) {
    const v = process.env[name]?.trim();
    if (v && !process.env.DATABASE_URL)
      exports.push(`${name}=${sh(name === "RUNPROOF_DATA_DIR" ? path.resolve(v) : v)}`);
  }
  out(`RunProof is running.

  web       ${i.graphqlUrl.replace(/\/graphql$/, "/")}   (the run explorer: sign in with the API key below)
  GraphQL   ${i.graphqlUrl}   (Ruru, the GraphQL explorer, in a browser)
  API key   ${i.apiKey}
            (tenant '${DEMO_TENANT}', label 'start': a new key on every start; only its hash is stored)
  tenant    ${i.tenantId}
  agent     ${i.agentId}   (${DEMO_AGENT})
  database  ${i.embedded ? `embedded Postgres (${shownPath(embeddedDataDir())}, port ${embeddedPort()})` : "DATABASE_URL"}
  worker    ${i.worker}

In another terminal (in this directory${i.embedded ? "" : ", with the same DATABASE_URL"}), paste this line, then follow the README's tour:

  export ${exports.join(" ")}

Or try it right away:

  # enqueue a run in SQL: runproof.enqueue_run is the one way every interface creates runs
  npx runproof sql "${sql}"

  # the same through GraphQL, with the key above
  ${curl(mutation)}

  # the runs and their proofs
  ${curl(query)}

  # or from the CLI, following it live
  npx runproof run --tenant-id ${i.tenantId} --agent ${DEMO_AGENT} --goal "${goal}" --wait

  # psql on the same database: npx runproof psql

Ctrl-C stops it.`);
}
