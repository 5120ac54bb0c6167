// Stopping a worker: a graceful stop lets the running step finish; a forceful one abandons the
// attempt (aborted, not failed: it does not use up max_attempts) and the run resumes elsewhere.
import test from "ava";
import { createTestDatabase } from "./helpers/db.ts";
import { enqueue, startTestWorker, tenantWithAgent, waitForRun } from "./helpers/worker.ts";

let db: Awaited<ReturnType<typeof createTestDatabase>>;
test.before(async () => {
  db = await createTestDatabase("worker-shutdown");
});
test.after.always(async () => db?.drop());

async function untilStepRecorded(runId: string) {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const { rows } = await db.pool.query(`select 1 from runproof.trace_steps where run_id = $1`, [runId]);
    if (rows.length) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error("no step recorded");
}

test.serial("a graceful stop lets the running step finish", async (t) => {
  const w = await startTestWorker(db.url, { concurrency: 1 });
  const f = await tenantWithAgent(db.pool);
  const runId = await enqueue(db.pool, f, "short wait", {
    version: 1,
    steps: [{ skill: "noop" }, { skill: "wait", input: { ms: 600 } }],
  });
  await untilStepRecorded(runId);
  await w.stop();
  const {
    rows: [r],
  } = await db.pool.query(`select status from runproof.runs where id = $1`, [runId]);
  t.is(r.status, "succeeded");
});

test.serial(
  "a stop that outlasts its grace period aborts the step: the attempt is abandoned, not failed",
  async (t) => {
    const w = await startTestWorker(db.url, { concurrency: 1, shutdownAbortMs: 300 });
    const f = await tenantWithAgent(db.pool);
    const runId = await enqueue(
      db.pool,
      f,
      "long wait",
      { version: 1, steps: [{ skill: "noop" }, { skill: "wait", input: { ms: 20_000 } }] },
      { maxAttempts: 1 },
    );
    await untilStepRecorded(runId);
    const stopping = Date.now();
    await w.stop();
    t.true(Date.now() - stopping < 5000, "the 20 s step was aborted, not waited for");
    const {
      rows: [mid],
    } = await db.pool.query(`select status from runproof.runs where id = $1`, [runId]);
    t.is(mid.status, "retrying");
    const {
      rows: [tr],
    } = await db.pool.query(
      `select status, metadata from runproof.traces where run_id = $1 and attempt = 1`,
      [runId],
    );
    t.is(tr.status, "aborted");
    t.is(tr.metadata.aborted_because, "worker shutdown");
    const {
      rows: [step],
    } = await db.pool.query(
      `select s.status, p.error from runproof.trace_steps s join runproof.step_payloads p using (tenant_id, trace_id, step_index)
        where s.run_id = $1 and s.plan_step = 1`,
      [runId],
    );
    t.is(step.status, "failed");
    t.regex(step.error, /^ABORTED/);
    const { rows: inc } = await db.pool.query(`select kind from runproof.incidents where run_id = $1`, [
      runId,
    ]);
    t.deepEqual(inc, [], "a shutdown is not an incident");
    // max_attempts is 1, yet the run may try again: the aborted attempt did not count.
    const {
      rows: [again],
    } = await db.pool.query(`select count(*)::int n from graphile_worker.jobs where key = $1`, [
      `exec:${runId}`,
    ]);
    t.is(again.n, 1);
    await db.pool.query(`select runproof.cancel_run($1, 'done testing', $2)`, [runId, f.tenantId]);
    t.is((await waitForRun(db.pool, runId)).status, "cancelled");
  },
);
