// The load run's assertions, shared by test/reliability-load.test.ts (500 runs, npm test) and
// test/stress/load.test.ts (10,000 runs).
import type { ExecutionContext } from "ava";
import type { TestDatabase } from "./db.ts";
import { loadRun, type LoadOptions } from "./reliability.ts";

export async function runLoad(t: ExecutionContext, db: TestDatabase, o: LoadOptions): Promise<void> {
  const r = await loadRun(db, { ...o, log: (m) => t.log(m) });
  t.deepEqual(r.enqueueErrors, [], "every enqueue succeeded");
  t.is(r.runIds.length, o.runs);
  t.true(r.finished, `every run finished within ${o.finishTimeoutMs} ms`);
  const { rows: statuses } = await db.pool.query(
    `select status, count(*)::int as n from runproof.runs group by status`,
  );
  t.deepEqual(statuses, [{ status: "succeeded", n: o.runs }], "all complete");
  const {
    rows: [s],
  } = await db.pool.query(
    `select count(*)::int as steps, count(distinct (run_id, plan_step))::int as distinct_steps,
            (select count(*)::int from runproof.traces) as traces from runproof.trace_steps`,
  );
  t.is(s.steps, r.steps, "one step row per plan step");
  t.is(s.distinct_steps, r.steps);
  t.is(s.traces, o.runs, "one attempt per run: nothing executed twice");
  t.is(r.deadlocksAfter - r.deadlocksBefore, 0, "pg_stat_database counted no deadlock");
  t.deepEqual(r.deadlockMessages, [], "no 40P01 reached a client or a worker's log");
  t.deepEqual(r.workerErrors, [], "no worker logged an error");
  const verifyStarted = Date.now();
  const { rows: bad } = await db.pool.query(`select * from runproof.verify_all()`);
  const verifySeconds = (Date.now() - verifyStarted) / 1000;
  t.deepEqual(bad, [], "verify_all is empty");
  const { rows: proofs } = await db.pool.query(
    `select p.verification_status, p.guard_status, count(*)::int as n
       from runproof.runs r cross join lateral runproof.run_proof(r.tenant_id, r.id) p group by 1, 2`,
  );
  t.deepEqual(
    proofs,
    [{ verification_status: "VERIFIED", guard_status: "GUARDED", n: o.runs }],
    "every run_proof VERIFIED",
  );
  const {
    rows: [jobs],
  } = await db.pool.query(`select count(*)::int as n from graphile_worker.jobs`);
  t.is(jobs.n, 0, "no job left");

  t.log(
    `${o.runs} runs (${r.steps} steps) enqueued by ${o.clients} SQL clients in ${r.enqueueSeconds.toFixed(1)} s ` +
      `(${(o.runs / r.enqueueSeconds).toFixed(0)} enqueues/s)`,
  );
  t.log(
    `executed by ${o.workers} worker processes x concurrency ${o.concurrency}: all done ${r.totalSeconds.toFixed(1)} s after the first enqueue: ` +
      `${(o.runs / r.totalSeconds).toFixed(1)} runs/s, ${(r.steps / r.totalSeconds).toFixed(1)} steps/s`,
  );
  t.log(
    `0 deadlocks (pg_stat_database ${r.deadlocksBefore} -> ${r.deadlocksAfter}); verify_all over ${o.runs} runs took ${verifySeconds.toFixed(1)} s and found nothing`,
  );
}
