// runproof start: everything in one process for a laptop: the database (embedded Postgres
// unless DATABASE_URL), migrations, a worker and the GraphQL server. Makes sure a tenant
// 'demo' with an agent 'demo-agent' exists and prints a fresh API key for it.
import type pg from "pg";
import { loadConfig } from "../lib/config.ts";
import { createLogger } from "../lib/log.ts";
import { err, out, printJson, waitForSignal, withDatabase } from "./common.ts";

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

export async function startCommand(opts: {
  port?: number;
  host?: string;
  concurrency?: number;
  json?: boolean;
}): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config, "runproof");
  await withDatabase(
    async ({ pool, url, embedded }) => {
      const { tenantId, agentId } = await ensureDemoTenant(pool);
      const {
        rows: [key],
      } = await pool.query(
        `select key_id, api_key, key_prefix from runproof_private.create_api_key($1, 'start')`,
        [tenantId],
      );

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
          port: opts.port ?? config.port,
          host: opts.host,
          logger: logger.child({ component: "graphql" }),
        });
      } catch (e) {
        await worker.stop();
        throw e;
      }

      try {
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
            dbUrl: url,
            embedded,
            worker: worker.processId,
          });
        }
        const signal = await waitForSignal();
        err(`${signal}: stopping the GraphQL server and the worker`);
      } finally {
        await server.stop();
        await worker.stop();
      }
      err("stopped");
    },
    { migrate: "always", skills: true },
  );
}

function printBanner(i: {
  graphqlUrl: string;
  apiKey: string;
  tenantId: string;
  agentId: string;
  dbUrl: string;
  embedded: boolean;
  worker: string;
}): void {
  const psqlTarget = i.embedded ? `"${i.dbUrl}"` : `"$DATABASE_URL"`;
  const goal = "wait 500 ms, remember color = blue, then recall color";
  const sql = `select id, status from runproof.enqueue_run('${i.tenantId}', '${i.agentId}', '${goal}', 'psql')`;
  const mutation = `mutation { enqueueRun(input: {agentId: \\"${i.agentId}\\", goal: \\"${goal}\\", originSystemId: \\"curl\\"}) { run { id status } } }`;
  const query = `{ runs(first: 5) { nodes { id status goal proof { verificationStatus rootHash stepCount } } } }`;
  const curl = (q: string) =>
    `curl -s ${i.graphqlUrl} -H 'Authorization: Bearer ${i.apiKey}' -H 'Content-Type: application/json' \\\n    -d '{"query": "${q}"}'`;
  out(`RunProof is running.

  GraphQL   ${i.graphqlUrl}   (open it in a browser for the explorer)
  API key   ${i.apiKey}
            (tenant '${DEMO_TENANT}', label 'start': a new key on every start; only its hash is stored)
  tenant    ${i.tenantId}
  agent     ${i.agentId}   (${DEMO_AGENT})
  database  ${i.embedded ? "embedded Postgres (.data/pg)" : "DATABASE_URL"}
  worker    ${i.worker}

Try it:

  # enqueue a run in SQL: runproof.enqueue_run is the one way every interface creates runs
  psql ${psqlTarget} -c "${sql}"

  # the same through GraphQL, with the key above
  ${curl(mutation)}

  # the runs and their proofs
  ${curl(query)}

  # or from the CLI, with live progress
  npm run runproof -- run --tenant-id ${i.tenantId} --agent ${DEMO_AGENT} --goal "${goal}" --wait

Ctrl-C stops it.`);
}
