// Crash recovery has a limit, and reaching it ends the run instead of hanging it. A run whose
// attempts keep being abandoned before they record anything (a step that kills its worker, a
// fleet that cannot stay up) is failed by recover_orphan after 20 in a row, with an incident;
// attempts that make progress do not count, and the job has room for 1000 picks.
import test from "ava";
import { createTestDatabase } from "./helpers/db.ts";
import { appendStep, createTenant, insertRun, runProof, startAttempt } from "./helpers/ledger.ts";

let db: Awaited<ReturnType<typeof createTestDatabase>>;
test.before(async () => {
  db = await createTestDatabase("crash-limit");
});
test.after.always(async () => db?.drop());

/** One attempt that its worker abandons (the next worker recovers it), after recording `steps` steps. */
async function abandoned(f: { tenantId: string; agentId: string }, runId: string, steps = 0) {
  const trace = await startAttempt(db.pool, f, runId);
  for (let i = 0; i < steps; i++) await appendStep(db.pool, f, runId, trace, i);
  const {
    rows: [r],
  } = await db.pool.query(`select status, error from runproof_private.recover_orphan($1, $2, 'test')`, [
    f.tenantId,
    runId,
  ]);
  return r as { status: string; error: string | null };
}

test("20 attempts in a row abandoned before recording a step fail the run, with an incident; the proof verifies", async (t) => {
  const f = await createTenant(db.pool);
  const runId = await insertRun(db.pool, f, { steps: 3 });
  for (let i = 1; i < 20; i++) t.is((await abandoned(f, runId)).status, "retrying", `attempt ${i}`);
  const last = await abandoned(f, runId);
  t.is(last.status, "failed");
  t.is(last.error, "abandoned by its worker 20 times in a row before it recorded a step; giving up");
  const { rows: inc } = await db.pool.query(
    `select kind, count(*)::int as n from runproof.incidents where run_id = $1 group by kind order by kind`,
    [runId],
  );
  t.deepEqual(inc, [
    { kind: "run_failed", n: 1 },
    { kind: "worker_crashed", n: 19 },
  ]);
  const p = await runProof(db.pool, f.tenantId, runId);
  t.like(p, { verification_status: "VERIFIED", trace_count: 20 });
});

test("attempts that record steps do not count towards the limit", async (t) => {
  const f = await createTenant(db.pool);
  const runId = await insertRun(db.pool, f, { steps: 3 });
  for (let i = 0; i < 15; i++) await abandoned(f, runId);
  t.is((await abandoned(f, runId, 1)).status, "retrying", "progress resets the count");
  for (let i = 0; i < 15; i++) t.is((await abandoned(f, runId)).status, "retrying");
  const {
    rows: [r],
  } = await db.pool.query(`select status, attempts from runproof.runs where id = $1`, [runId]);
  t.deepEqual(r, { status: "retrying", attempts: 31 });
});

test("run jobs allow 1000 picks: crash recovery is not cut short by graphile-worker's default", async (t) => {
  const f = await createTenant(db.pool);
  const {
    rows: [r],
  } = await db.pool.query(`select id from runproof.enqueue_run($1, $2, 'g', 'ava', $3)`, [
    f.tenantId,
    f.agentId,
    JSON.stringify({ version: 1, steps: [{ skill: "noop" }] }),
  ]);
  const {
    rows: [j],
  } = await db.pool.query(`select max_attempts from graphile_worker.jobs where key = $1`, [`exec:${r.id}`]);
  t.is(j.max_attempts, 1000);
});
