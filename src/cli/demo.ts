// runproof demo: about a minute, narrated. A tenant and an agent; a worker in this process and
// a local HTTP service; a six-step run followed live; its proof; an UPDATE the guards refuse; a
// superuser who switches the guards off, edits a step and switches them back on; the proof that
// catches it; and the same verdicts from bundles verified offline.
import fs from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { loadConfig } from "../lib/config.ts";
import { createLogger } from "../lib/log.ts";
import { CliError, EXIT, out, toJson, withDatabase } from "./common.ts";
import { proofTable } from "./proof.ts";
import { watchRun } from "./run.ts";

export async function demoCommand(opts: { pauseMs: number; outDir?: string }): Promise<void> {
  const config = loadConfig();
  let section = 0;
  const pause = (ms = opts.pauseMs) => new Promise((r) => setTimeout(r, ms));
  const title = async (text: string) => {
    if (section > 0) await pause();
    section++;
    out();
    out(`── ${section}. ${text} ${"─".repeat(Math.max(3, 72 - text.length))}`);
  };
  const say = (text: string) => out(`   ${text.replace(/\n/g, "\n   ")}`);
  const sqlLine = (text: string) => out(`   sql> ${text.replace(/\n/g, "\n        ")}`);

  await withDatabase(
    async ({ pool, url, embedded }) => {
      out("RunProof demo: a run ledger in Postgres whose every step is hash-chained and re-verified in SQL.");
      out(`database: ${embedded ? "embedded Postgres (.data/pg)" : "DATABASE_URL"}`);

      // ── 1. tenant and agent
      await title("A tenant and an agent");
      const stamp = new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
      const tenantName = `demo-${stamp}-${Math.random().toString(36).slice(2, 6)}`;
      sqlLine(`select runproof_private.create_tenant('${tenantName}', 500);`);
      const {
        rows: [tenant],
      } = await pool.query(`select id from runproof_private.create_tenant($1, 500)`, [tenantName]);
      const skills = ["http_call", "json_transform", "memory_put", "wait", "noop"];
      sqlLine(
        `select runproof.create_agent('demo-agent', ..., allowed_skills => '{${skills.join(",")}}', tenant_id => ...);`,
      );
      const {
        rows: [agent],
      } = await pool.query(
        `select id from runproof.create_agent('demo-agent', 'narrated demo agent', $1, $2)`,
        [skills, tenant.id],
      );
      say(`tenant ${tenantName}  ${tenant.id}  (daily budget 500 cents)`);
      say(`agent  demo-agent  ${agent.id}  (may call: ${skills.join(", ")})`);

      // ── 2. worker and a local service
      await title("A worker in this process, and a local HTTP service for http_call");
      const service = await startDemoService();
      const { startWorker } = await import("../worker.ts");
      const quiet = createLogger(
        { logLevel: process.env.RUNPROOF_LOG_LEVEL ? config.logLevel : "warn" },
        "demo-worker",
      );
      const worker = await startWorker({
        connectionString: url,
        logger: quiet,
        concurrency: 2,
        pollInterval: 500,
        config: { ...config, httpAllowedHosts: [...config.httpAllowedHosts, `127.0.0.1:${service.port}`] },
      });
      const listener = new pg.Client({ connectionString: url });
      listener.on("error", () => {});
      const cleanup = async () => {
        await listener.end().catch(() => {});
        await worker.stop();
        await service.close();
      };
      try {
        say(
          `worker ${worker.processId}: skills registered before it takes a job (${worker.registry.names().join(", ")})`,
        );
        say(`service ${service.url}  (GET /status, POST /audit)`);

        // ── 3. the run
        await title(
          "Enqueue a six-step run (runproof.enqueue_run is the only way to create one) and follow it live",
        );
        const orders = [
          { id: "A-1", amount: 1200 },
          { id: "A-2", amount: 350 },
          { id: "A-3", amount: 75 },
        ];
        const plan = {
          version: 1,
          planner: "demo",
          steps: [
            {
              skill: "http_call",
              title: "check the payments service",
              input: { method: "GET", url: `${service.url}/status` },
            },
            {
              skill: "json_transform",
              title: "total today's orders",
              input: {
                expression: "{ 'total_cents': $sum(orders.amount), 'count': $count(orders) }",
                data: { orders },
              },
            },
            {
              skill: "memory_put",
              title: "remember the total",
              input: { key: "orders_total_cents", value: 1625 },
            },
            { skill: "wait", title: "let the books settle", input: { ms: 800 } },
            {
              skill: "http_call",
              title: "file the audit record",
              input: { method: "POST", url: `${service.url}/audit`, json: { total_cents: 1625, orders: 3 } },
            },
            { skill: "noop", title: "done", input: { note: "daily close complete" } },
          ],
        };
        await listener.connect();
        await listener.query("begin");
        const {
          rows: [run],
        } = await listener.query(
          `select id from runproof.enqueue_run($1, $2, 'close the books for today', 'runproof-demo', $3)`,
          [tenant.id, agent.id, plan],
        );
        await listener.query(`listen ${listener.escapeIdentifier(`runproof:run:${run.id}`)}`);
        await listener.query("commit");
        sqlLine(
          `select id from runproof.enqueue_run(tenant, agent, 'close the books for today', 'runproof-demo', plan);  -- ${run.id}`,
        );
        sqlLine(`listen "runproof:run:${run.id}";  -- issued in the same transaction: no step can be missed`);
        const final = await watchRun({
          pool,
          client: listener,
          tenantId: tenant.id,
          runId: run.id,
          print: (l) => out(`   ${l}`),
          timeoutMs: 120_000,
        });
        if (final.status !== "succeeded")
          throw new CliError(`the demo run ended ${final.status}: ${final.error ?? ""}`);

        // ── 4. proof
        await title("The proof: run_proof recomputes every hash in PL/pgSQL from the stored columns");
        sqlLine(`select * from runproof.run_proof('${tenant.id}', '${run.id}');`);
        const before = await proof(pool, tenant.id, run.id);
        out(indent(proofTable(before)));
        const dir = opts.outDir ?? (await fs.mkdtemp(path.join(os.tmpdir(), "runproof-demo-")));
        await fs.mkdir(dir, { recursive: true });
        const { exportBundle } = await import("../lib/bundle.ts");
        const { verifyBundle } = await import("../lib/offline-verify.ts");
        const { nodeSha256 } = await import("../lib/sha256-node.ts");
        const beforeFile = path.join(dir, "bundle-before.json");
        await fs.writeFile(beforeFile, `${toJson(await exportBundle(pool, tenant.id, run.id))}\n`);
        const offlineBefore = await verifyBundle(JSON.parse(await fs.readFile(beforeFile, "utf8")), {
          sha256: nodeSha256,
        });
        say(`exported ${beforeFile}`);
        say(
          `offline check of that file (no database, SHA-256 only): ${offlineBefore.verification_status}, root ${offlineBefore.root_hash}`,
        );
        say(`keep that root somewhere the database's superuser cannot write.`);

        // ── 5. guards
        await title("Rewrite history with an UPDATE: the guard trigger refuses");
        // Step 1's output (what json_transform computed) lives in runproof.step_payloads; the step's
        // hash covers it through a salted commitment.
        const {
          rows: [step1],
        } = await pool.query(
          `select trace_id, step_index, output from runproof.step_payloads where tenant_id = $1 and run_id = $2 and step_index = 1`,
          [tenant.id, run.id],
        );
        const forged = { result: { total_cents: 162500, count: 3 } };
        const update = `update runproof.step_payloads set output = '${JSON.stringify(forged)}' where trace_id = '${step1.trace_id}' and step_index = 1`;
        sqlLine(`${update};`);
        say(`(step 1 recorded ${JSON.stringify(step1.output)})`);
        try {
          await pool.query(update);
          throw new CliError(
            "the UPDATE went through: the immutability guard is not in place (runproof_private.guards)",
          );
        } catch (e) {
          if (e instanceof CliError) throw e;
          const pe = e as pg.DatabaseError;
          say(`ERROR ${pe.code}: ${pe.message}`);
          if (pe.hint) say(`HINT: ${pe.hint}`);
          if (!/S6_IMMUTABILITY_VIOLATION/.test(pe.message)) throw e;
        }

        // ── 6. superuser
        await title("A superuser switches the guards off, edits step 1's output, and switches them back on");
        const { rows: triggers } = await pool.query<{ tgname: string }>(
          `select tgname from pg_trigger where tgrelid = 'runproof.step_payloads'::regclass and not tgisinternal order by tgname`,
        );
        const c = await pool.connect();
        try {
          const run1 = async (sql: string) => {
            sqlLine(`${sql};`);
            await c.query(sql);
          };
          await run1("begin");
          for (const t of triggers)
            await run1(`alter table runproof.step_payloads disable trigger ${t.tgname}`);
          await run1(update);
          for (const t of triggers)
            await run1(`alter table runproof.step_payloads enable always trigger ${t.tgname}`);
          await run1("commit");
        } catch (e) {
          await c.query("rollback").catch(() => {});
          throw e;
        } finally {
          c.release();
        }
        const { rows: guards } = await pool.query(
          `select trigger_name, enabled from runproof_private.guards where trigger_name = any ($1) order by trigger_name`,
          [triggers.map((x) => x.tgname)],
        );
        say(`runproof_private.guards now: ${guards.map((g) => `${g.trigger_name} ${g.enabled}`).join(", ")}`);
        say("every trigger is back to ENABLE ALWAYS; nothing in the catalog shows what happened.");

        // ── 7. caught
        await title("run_proof again: step 1's output no longer matches the commitment its hash covers");
        sqlLine(`select * from runproof.run_proof('${tenant.id}', '${run.id}');`);
        const after = await proof(pool, tenant.id, run.id);
        out(indent(proofTable(after)));
        if (after.verification_status !== "TAMPERED")
          throw new CliError(`expected TAMPERED, the proof says ${after.verification_status}`);

        // ── 8. offline
        await title("The auditor's view: bundles verified offline");
        const afterFile = path.join(dir, "bundle-after.json");
        await fs.writeFile(afterFile, `${toJson(await exportBundle(pool, tenant.id, run.id))}\n`);
        const offlineAfter = await verifyBundle(JSON.parse(await fs.readFile(afterFile, "utf8")), {
          sha256: nodeSha256,
        });
        say(`exported ${afterFile}`);
        say(
          `offline: ${offlineAfter.verification_status} at attempt ${offlineAfter.first_bad_attempt}, step ${offlineAfter.first_bad_step_index}`,
        );
        say(`reason: ${offlineAfter.reason}`);
        say(
          `the earlier bundle still verifies (root ${offlineBefore.root_hash?.slice(0, 16)}…): it is the evidence of what step 1 said.`,
        );
        say(`check them yourself: npx runproof proof verify ${beforeFile}`);
        say(`                     npx runproof proof verify ${afterFile}`);
        if (
          offlineAfter.verification_status !== "TAMPERED" ||
          offlineAfter.first_bad_step_index !== after.first_bad_step_index
        ) {
          throw new CliError(
            `the offline verifier disagrees with run_proof: ${offlineAfter.verification_status} at ${offlineAfter.first_bad_step_index}`,
          );
        }
        out();
        out(
          `Done. The tampered run ${run.id} stays in this database on purpose: npx runproof verify-all reports it.`,
        );
      } finally {
        await cleanup();
      }
    },
    { skills: true },
  );
  process.exitCode = EXIT.OK;
}

async function proof(pool: pg.Pool, tenantId: string, runId: string): Promise<Record<string, unknown>> {
  const {
    rows: [p],
  } = await pool.query(`select * from runproof.run_proof($1, $2)`, [tenantId, runId]);
  return p;
}

const indent = (s: string) =>
  s
    .split("\n")
    .map((l) => `   ${l}`)
    .join("\n");

/** The service http_call talks to: 127.0.0.1, a random port, a little latency to watch. */
async function startDemoService(): Promise<{ url: string; port: number; close(): Promise<void> }> {
  const server = http.createServer(async (req, res) => {
    let body = "";
    for await (const chunk of req) body += chunk;
    await new Promise((r) => setTimeout(r, 150));
    const send = (status: number, value: unknown) =>
      res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(value));
    if (req.url === "/status" && req.method === "GET")
      return send(200, { service: "payments", status: "ok" });
    if (req.url === "/audit" && req.method === "POST") {
      return send(201, {
        filed: true,
        idempotency_key: req.headers["idempotency-key"] ?? null,
        received: body ? JSON.parse(body) : null,
      });
    }
    send(404, { error: "not found" });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
