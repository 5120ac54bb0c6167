// Gaps a DBA found by exercising the guards, each closed in sql/ and kept closed here.
import test from "ava";
import { createTestDatabase } from "./helpers/db.ts";
import {
  appendStep,
  createTenant,
  insertRun,
  pgError,
  planOf,
  sealTrace,
  startAttempt,
  type Fixture,
} from "./helpers/ledger.ts";

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let f: Fixture;
test.before(async () => {
  db = await createTestDatabase("hardening");
  f = await createTenant(db.pool);
});
test.after.always(async () => db?.drop());

test("a run cannot start running without an attempt, nor succeed without a finished plan", async (t) => {
  const runId = await insertRun(db.pool, f, { steps: 2 });
  const noAttempt = await pgError(
    db.pool.query(`update runproof.runs set status = 'running' where id = $1`, [runId]),
  );
  t.is(noAttempt.code, "RPSTS");
  t.regex(noAttempt.message, /can only start running with a new attempt/);
  const tr = await startAttempt(db.pool, f, runId);
  await appendStep(db.pool, f, runId, tr, 0);
  await sealTrace(db.pool, f, tr, "completed");
  const early = await pgError(
    db.pool.query(`update runproof.runs set status = 'succeeded' where id = $1`, [runId]),
  );
  t.is(early.code, "RPSTS");
  t.regex(early.message, /cannot succeed: 1 of 2 plan steps succeeded/);
  // Back to retrying and straight to running by hand: still needs a real new attempt.
  await db.pool.query(`update runproof.runs set status = 'retrying' where id = $1`, [runId]);
  const manual = await pgError(
    db.pool.query(`update runproof.runs set status = 'running' where id = $1`, [runId]),
  );
  t.is(manual.code, "RPSTS");
  // Every plan step has succeeded now, but the last attempt did not complete.
  const tr2 = await startAttempt(db.pool, f, runId);
  await appendStep(db.pool, f, runId, tr2, 0, {});
  await sealTrace(db.pool, f, tr2, "aborted");
  const abortedLast = await pgError(
    db.pool.query(`update runproof.runs set status = 'succeeded' where id = $1`, [runId]),
  );
  t.is(abortedLast.code, "RPSTS");
  t.regex(abortedLast.message, /cannot succeed: its last attempt did not complete/);
});

test("replica mode skips foreign keys, but a step still needs its policy decision", async (t) => {
  const runId = await insertRun(db.pool, f);
  const tr = await startAttempt(db.pool, f, runId);
  const c = await db.pool.connect();
  try {
    await c.query(`set session_replication_role = replica`);
    const e = await pgError(
      c.query(
        `insert into runproof.trace_steps (tenant_id, run_id, trace_id, step_index, plan_step, skill, status, policy_decision, started_at, finished_at, duration_ms)
       values ($1, $2, $3, 0, 0, 'noop', 'succeeded', 'allow', now(), now(), 1)`,
        [f.tenantId, runId, tr],
      ),
    );
    t.is(e.code, "RPCHN");
    t.is(e.message, `step 0 of trace ${tr} has no policy decision`);
    await c.query(
      `insert into runproof.policy_decisions (tenant_id, run_id, trace_id, step_index, plan_step, skill, decision, rule, reason) values ($1, $2, $3, 0, 0, 'noop', 'deny', 'allowed_skills', 'no')`,
      [f.tenantId, runId, tr],
    );
    const lie = await pgError(
      c.query(
        `insert into runproof.trace_steps (tenant_id, run_id, trace_id, step_index, plan_step, skill, status, policy_decision, started_at, finished_at, duration_ms)
       values ($1, $2, $3, 0, 0, 'noop', 'denied', 'allow', now(), now(), 1)`,
        [f.tenantId, runId, tr],
      ),
    );
    t.true(["RPCHN", "23514"].includes(lie.code!));
  } finally {
    await c.query(`reset session_replication_role`);
    c.release();
  }
});

test("a policy decision is only for the next step", async (t) => {
  const runId = await insertRun(db.pool, f);
  const tr = await startAttempt(db.pool, f, runId);
  const e = await pgError(
    db.pool.query(
      `insert into runproof.policy_decisions (tenant_id, run_id, trace_id, step_index, plan_step, skill, decision, rule, reason) values ($1, $2, $3, 5, 5, 'noop', 'allow', 'daily_budget', 'early')`,
      [f.tenantId, runId, tr],
    ),
  );
  t.is(e.code, "RPCHN");
  t.regex(e.message, /is not for its next step/);
});

test("origin_system_id: Unicode white space at the edges and invisible characters are rejected, visibly", async (t) => {
  const ins = (origin: string) =>
    db.pool.query(
      `insert into runproof.runs (tenant_id, agent_id, goal, plan, status, origin_system_id) values ($1, $2, 'g', $3, 'planned', $4)`,
      [f.tenantId, f.agentId, planOf(1), origin],
    );
  for (const v of ["cli\u00a0", "\u2003cli", "c\u200bli", "cli\u202e"]) {
    const e = await pgError(ins(v));
    t.is(e.code, "RPOCH", JSON.stringify(v));
  }
  const ctl = await pgError(ins("cli\u0001"));
  t.regex(ctl.message, /"cli\\u0001"/, "the control character is visible in the message");
  const blank = await pgError(ins("\u00a0\u3000"));
  t.is(blank.code, "RPOBL");
  t.is((await ins("Zürich-Ops_ÄÖÜ/é")).rowCount, 1);
});

test("goal, tenant and agent names that are only white space are blank", async (t) => {
  const goal = await pgError(
    db.pool.query(`select runproof.enqueue_run($1, $2, $3, 'x')`, [f.tenantId, f.agentId, "\n\t \u00a0"]),
  );
  t.is(goal.code, "RPVAL");
  const tenant = await pgError(db.pool.query(`select runproof_private.create_tenant($1)`, ["\u200b "]));
  t.is(tenant.code, "RPVAL");
  const agent = await pgError(
    db.pool.query(`select runproof.create_agent($1, tenant_id => $2)`, ["\n", f.tenantId]),
  );
  t.is(agent.code, "RPVAL");
});

test("seal_trace and start_attempt say clearly what is wrong with their arguments", async (t) => {
  const runId = await insertRun(db.pool, f);
  const tr = await startAttempt(db.pool, f, runId);
  const bad = await pgError(
    db.pool.query(`select runproof_private.seal_trace($1, $2, 'bogus')`, [f.tenantId, tr]),
  );
  t.is(bad.code, "RPVAL");
  t.regex(bad.message, /sealed as completed, failed or aborted, not bogus/);
  const missing = await pgError(
    db.pool.query(`select runproof_private.start_attempt($1, gen_random_uuid())`, [f.tenantId]),
  );
  t.is(missing.code, "RPNFD");
});

test("a no-op update of a finished run is not an error and changes nothing", async (t) => {
  const runId = await insertRun(db.pool, f, { steps: 1 });
  const tr = await startAttempt(db.pool, f, runId);
  await appendStep(db.pool, f, runId, tr, 0);
  await sealTrace(db.pool, f, tr);
  await db.pool.query(`update runproof.runs set status = 'succeeded' where id = $1`, [runId]);
  const {
    rows: [before],
  } = await db.pool.query(`select updated_at from runproof.runs where id = $1`, [runId]);
  await db.pool.query(`update runproof.runs set goal = goal where id = $1`, [runId]);
  const {
    rows: [after],
  } = await db.pool.query(`select updated_at from runproof.runs where id = $1`, [runId]);
  t.deepEqual(after.updated_at, before.updated_at);
});
