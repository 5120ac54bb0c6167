// Postgres restarted under a running worker, shared by test/reliability-pg-restart.test.ts (one
// restart, npm test) and test/stress/pg-restart.test.ts (several): a dedicated throwaway cluster
// on a fixed port is stopped in the middle of runs (every connection dies), stays down ~2 s, and
// comes back on the same data directory and port. The worker process must survive, and every
// run must finish: steps complete, none recorded twice, side effects applied once, VERIFIED.
import type { ExecutionContext } from "ava";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { createDatabaseIfMissing, databaseUrlWithName } from "../../src/lib/database.ts";
import { findFreePort, startEmbeddedPostgres, type EmbeddedPostgresHandle } from "../../src/lib/embedded.ts";
import { migrateDatabase } from "../../src/lib/migrate.ts";
import { builtinSkills, registerSkillsInDatabase, SkillRegistry } from "../../src/skills/registry.ts";
import { sleep, spawnWorker, startEffectServer, stopWorker, waitUntilFinished } from "./reliability.ts";
import { until } from "./cli.ts";
import { tenantWithAgent } from "./worker.ts";

export async function pgRestart(
  t: ExecutionContext,
  o: { runs: number; steps: number; restarts: number; downMs: number },
): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "runproof-pg-restart-"));
  const dataDir = path.join(dir, "pg");
  const port = await findFreePort();
  let server: EmbeddedPostgresHandle | undefined = await startEmbeddedPostgres({
    dataDir,
    port,
    persistent: true,
  });
  const url = databaseUrlWithName(server.rootUrl, "restart");
  await createDatabaseIfMissing(server.rootUrl, "restart");
  await migrateDatabase(url, { withCurrent: true });
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  pool.on("error", () => {}); // the restart kills idle clients too
  const effects = await startEffectServer(() => 250);
  const worker = spawnWorker(url, {
    concurrency: 4,
    env: { RUNPROOF_HEARTBEAT_MS: "300", RUNPROOF_STALE_WORKER_MS: "3000", RUNPROOF_RETRY_BASE_MS: "300" },
  });
  t.teardown(async () => {
    await stopWorker(worker, 5000);
    await effects.close();
    await pool.end().catch(() => {});
    await server?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  await registerSkillsInDatabase(pool, new SkillRegistry(builtinSkills()));
  const f = await tenantWithAgent(pool, { budgetCents: 1_000_000 });
  await worker.ready;
  const STEPS = o.steps;
  const RUNS = o.runs;
  const runIds: string[] = [];
  for (let i = 0; i < RUNS; i++) {
    const {
      rows: [r],
    } = await pool.query(`select id from runproof.enqueue_run($1, $2, $3, 'reliability-pg-restart', $4)`, [
      f.tenantId,
      f.agentId,
      `restart run ${i}`,
      JSON.stringify({
        version: 1,
        steps: Array.from({ length: STEPS }, (_, s) => ({
          skill: "http_call",
          input: { method: "POST", url: `${effects.url}/effect`, json: { i, s } },
        })),
      }),
    ]);
    runIds.push(r.id);
  }
  // Stop Postgres while the runs are under way (some steps recorded, none finished), o.restarts times.
  const stoppedAt = Date.now();
  for (let i = 1; i <= o.restarts; i++) {
    const target = Math.ceil((RUNS * STEPS * i) / (o.restarts + 1));
    await until(
      async () =>
        (await pool.query(`select count(*)::int as n from runproof.trace_steps where status = 'succeeded'`))
          .rows[0].n >= target,
      60_000,
      `the runs to record ${target} steps`,
    );
    const {
      rows: [mid],
    } = await pool.query(
      `select count(*)::int as steps, count(distinct run_id)::int as runs from runproof.trace_steps`,
    );
    const down = Date.now();
    await server.stop();
    server = undefined;
    await sleep(o.downMs);
    server = await startEmbeddedPostgres({ dataDir, port, persistent: true });
    t.log(
      `restart ${i}: Postgres down for ${Date.now() - down} ms (stop, ${o.downMs} ms, start), with ${mid.steps} of ${RUNS * STEPS} steps recorded across ${mid.runs} runs`,
    );
    t.is(
      worker.child.exitCode,
      null,
      `the worker process is still running after losing every connection\n${worker.stderr().slice(-3000)}`,
    );
  }
  const finished = await waitUntilFinished(pool, runIds, 120_000);
  t.true(finished, "every run finished after Postgres came back");
  t.is(worker.child.exitCode, null, `and the worker is still running\n${worker.stderr().slice(-3000)}`);
  const recoveredMs = Date.now() - stoppedAt;

  const { rows: statuses } = await pool.query(
    `select status, count(*)::int as n from runproof.runs group by status`,
  );
  t.deepEqual(statuses, [{ status: "succeeded", n: RUNS }]);
  const { rows: perStep } = await pool.query(
    `select r.id, p.plan_step, count(s.*) filter (where s.status = 'succeeded')::int as n
       from runproof.runs r cross join generate_series(0, $1 - 1) p(plan_step)
       left join runproof.trace_steps s on s.run_id = r.id and s.plan_step = p.plan_step group by 1, 2 having count(s.*) filter (where s.status = 'succeeded') <> 1`,
    [STEPS],
  );
  t.deepEqual(
    perStep,
    [],
    "every plan step of every run succeeded exactly once: nothing lost, nothing twice",
  );
  t.is(effects.applied.size, RUNS * STEPS, "one side effect per plan step");
  const repeats = effects.requests.length - effects.applied.size;
  const { rows: proofs } = await pool.query(
    `select p.verification_status, p.guard_status, count(*)::int as n from runproof.runs r cross join lateral runproof.run_proof(r.tenant_id, r.id) p group by 1, 2`,
  );
  t.deepEqual(proofs, [{ verification_status: "VERIFIED", guard_status: "GUARDED", n: RUNS }]);
  t.deepEqual((await pool.query(`select * from runproof.verify_all()`)).rows, []);
  const {
    rows: [jobs],
  } = await pool.query(`select count(*)::int as n from graphile_worker.jobs`);
  t.is(jobs.n, 0, "no job left behind (locked or not)");
  const {
    rows: [tr],
  } = await pool.query(
    `select count(*)::int as traces, count(*) filter (where status = 'aborted')::int as aborted, count(*) filter (where status = 'failed')::int as failed from runproof.traces`,
  );
  t.log(
    `all ${RUNS} runs done ${recoveredMs} ms after the first stop; ${tr.traces} attempts (${tr.aborted} aborted by the outage, ${tr.failed} failed), ` +
      `${repeats} side-effect request(s) repeated with the same key and deduplicated`,
  );
  t.log(
    `worker errors logged during the outage: ${
      worker
        .stderr()
        .split("\n")
        .filter((l) => /"level":50/.test(l)).length
    }`,
  );
}
