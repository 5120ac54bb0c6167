// The guards: append-only steps, the two allowed trace changes, the run state machine, ENABLE ALWAYS.
import test from "ava";
import { createTestDatabase } from "./helpers/db.ts";
import {
  appendStep,
  completedRun,
  createTenant,
  finishRun,
  insertRun,
  pgError,
  sealTrace,
  startAttempt,
  type Fixture,
} from "./helpers/ledger.ts";

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let f: Fixture;
test.before(async () => {
  db = await createTestDatabase("immutability");
  f = await createTenant(db.pool);
});
test.after.always(async () => db?.drop());

const S6 = /^S6_IMMUTABILITY_VIOLATION: /;

// TRUNCATE (with CASCADE: of most ledger tables) takes ACCESS EXCLUSIVE locks in its own order,
// which deadlocks with the file's other tests recording runs: serial tests run before them.
test.serial("trace_steps: UPDATE, DELETE and TRUNCATE are rejected, naming the table and key", async (t) => {
  const {
    runId,
    traceIds: [traceId],
  } = await completedRun(db.pool, f);
  const upd = await pgError(
    db.pool.query(`update runproof.trace_steps set cost_cents = 0 where trace_id = $1 and step_index = 1`, [
      traceId,
    ]),
  );
  t.is(upd.code, "RPIMM");
  t.is(
    upd.message,
    `S6_IMMUTABILITY_VIOLATION: UPDATE on runproof.trace_steps (tenant_id=${f.tenantId}, trace_id=${traceId}, step_index=1) is not allowed`,
  );
  t.regex(upd.hint ?? "", /record a new row instead/);
  const del = await pgError(db.pool.query(`delete from runproof.trace_steps where trace_id = $1`, [traceId]));
  t.is(del.code, "RPIMM");
  t.regex(del.message, /DELETE on runproof\.trace_steps \(tenant_id=.*step_index=0\)/);
  const tr = await pgError(db.pool.query(`truncate runproof.trace_steps cascade`));
  t.is(tr.code, "RPIMM");
  t.regex(tr.message, /TRUNCATE on runproof\.trace_steps \(all rows\)/);
  const { rows } = await db.pool.query(`select count(*)::int n from runproof.trace_steps where run_id = $1`, [
    runId,
  ]);
  t.is(rows[0].n, 4);
});

// Serial: it truncates (see above).
test.serial("step_payloads: never updated, deleted only with a recorded erasure", async (t) => {
  const {
    traceIds: [traceId],
  } = await completedRun(db.pool, f);
  const upd = await pgError(
    db.pool.query(
      `update runproof.step_payloads set output = '{"ok":false}' where trace_id = $1 and step_index = 1`,
      [traceId],
    ),
  );
  t.is(upd.code, "RPIMM");
  t.is(
    upd.message,
    `S6_IMMUTABILITY_VIOLATION: UPDATE on runproof.step_payloads (tenant_id=${f.tenantId}, trace_id=${traceId}, step_index=1) is not allowed`,
  );
  t.regex(upd.hint ?? "", /runproof\.erase_payloads/);
  const del = await pgError(
    db.pool.query(`delete from runproof.step_payloads where trace_id = $1`, [traceId]),
  );
  t.is(del.code, "RPIMM");
  t.regex(del.detail ?? "", /removed only together with the record of its erasure/);
  const tr = await pgError(db.pool.query(`truncate runproof.step_payloads`));
  t.is(tr.code, "RPIMM");
  const { rows } = await db.pool.query(
    `select count(*)::int n from runproof.step_payloads where trace_id = $1`,
    [traceId],
  );
  t.is(rows[0].n, 4);
});

// Serial: it truncates (see above).
test.serial(
  "policy_decisions and incidents are append-only too; a finished run takes no new incident",
  async (t) => {
    const {
      runId,
      traceIds: [traceId],
    } = await completedRun(db.pool, f);
    const e1 = await pgError(
      db.pool.query(`update runproof.policy_decisions set decision = 'deny' where trace_id = $1`, [traceId]),
    );
    t.is(e1.code, "RPIMM");
    // The run is sealed with its incidents: one added afterwards is refused.
    const late = await pgError(
      db.pool.query(
        `insert into runproof.incidents (tenant_id, run_id, kind, message) values ($1, $2, 'run_failed', 'x')`,
        [f.tenantId, runId],
      ),
    );
    t.is(late.code, "RPSTS");
    t.is(late.message, `run ${runId} is succeeded and sealed: no incident can be added to it`);
    const running = await insertRun(db.pool, f);
    await db.pool.query(
      `insert into runproof.incidents (tenant_id, run_id, kind, message) values ($1, $2, 'run_failed', 'x')`,
      [f.tenantId, running],
    );
    const e2 = await pgError(db.pool.query(`delete from runproof.incidents where run_id = $1`, [running]));
    t.is(e2.code, "RPIMM");
    t.regex(e2.message, /DELETE on runproof\.incidents \(tenant_id=.*, id=.*\)/);
    const e3 = await pgError(db.pool.query(`truncate runproof.incidents`));
    t.is(e3.code, "RPIMM");
  },
);

test('traces: completion seals the trace (the report\'s "running forever" bug cannot happen)', async (t) => {
  const runId = await insertRun(db.pool, f);
  const traceId = await startAttempt(db.pool, f, runId);
  await appendStep(db.pool, f, runId, traceId, 0);
  const {
    rows: [last],
  } = await db.pool.query(
    `select step_hash from runproof.trace_steps where trace_id = $1 and step_index = 0`,
    [traceId],
  );
  await db.pool.query(
    `update runproof.traces set status = 'completed', completed_at = now(), step_count = 1, root_hash = $2, metadata = '{"worker":"w1"}' where id = $1`,
    [traceId, last.step_hash],
  );
  const {
    rows: [tr],
  } = await db.pool.query(
    `select status, step_count, root_hash, metadata from runproof.traces where id = $1`,
    [traceId],
  );
  t.is(tr.status, "completed");
  t.is(tr.step_count, 1);
  t.deepEqual(tr.root_hash, last.step_hash);
  t.deepEqual(tr.metadata, { worker: "w1" });
});

test("traces: a seal that disagrees with the chain is rejected", async (t) => {
  const runId = await insertRun(db.pool, f);
  const traceId = await startAttempt(db.pool, f, runId);
  await appendStep(db.pool, f, runId, traceId, 0);
  const e1 = await pgError(
    db.pool.query(
      `update runproof.traces set status = 'completed', completed_at = now(), step_count = 2, root_hash = (select step_hash from runproof.trace_steps where trace_id = $1) where id = $1`,
      [traceId],
    ),
  );
  t.is(e1.code, "RPSEL");
  t.regex(e1.message, /seal of trace .* does not match its chain: step_count 2 \(chain has 1\)/);
  const e2 = await pgError(
    db.pool.query(
      `update runproof.traces set status = 'completed', completed_at = now(), step_count = 1, root_hash = sha256('x') where id = $1`,
      [traceId],
    ),
  );
  t.is(e2.code, "RPSEL");
  const {
    rows: [tr],
  } = await db.pool.query(`select status from runproof.traces where id = $1`, [traceId]);
  t.is(tr.status, "running");
});

test("traces: every other change is rejected, before and after the seal", async (t) => {
  const runId = await insertRun(db.pool, f);
  const traceId = await startAttempt(db.pool, f, runId);
  // A running trace cannot change anything but by being sealed.
  for (const set of [
    `metadata = '{"a":1}'`,
    `started_at = now() - interval '1 day'`,
    `archived_at = now()`,
    `status = 'completed'`,
  ]) {
    const e = await pgError(db.pool.query(`update runproof.traces set ${set} where id = $1`, [traceId]));
    t.true(["RPIMM", "23514"].includes(e.code!), `${set}: ${e.code} ${e.message}`);
  }
  // A trace without steps can only be sealed aborted (completed and failed need their last step).
  await sealTrace(db.pool, f, traceId, "aborted");
  for (const set of [
    `status = 'completed'`,
    `step_count = 5`,
    `root_hash = sha256('x')`,
    `metadata = '{}'`,
    `completed_at = now()`,
    `attempt = 9`,
  ]) {
    const e = await pgError(db.pool.query(`update runproof.traces set ${set} where id = $1`, [traceId]));
    t.is(e.code, "RPIMM", set);
    t.regex(e.message, S6);
    t.regex(e.message, new RegExp(`runproof\\.traces \\(tenant_id=${f.tenantId}, id=${traceId}\\)`));
  }
  const del = await pgError(db.pool.query(`delete from runproof.traces where id = $1`, [traceId]));
  t.is(del.code, "RPIMM");
  t.regex(del.hint ?? "", /archive/);
});

test("traces: archival sets archived_at once and nothing else", async (t) => {
  const {
    traceIds: [traceId],
  } = await completedRun(db.pool, f);
  const both = await pgError(
    db.pool.query(`update runproof.traces set archived_at = now(), metadata = '{"x":1}' where id = $1`, [
      traceId,
    ]),
  );
  t.is(both.code, "RPIMM");
  await db.pool.query(`update runproof.traces set archived_at = now() where id = $1`, [traceId]);
  const again = await pgError(
    db.pool.query(`update runproof.traces set archived_at = now() + interval '1 s' where id = $1`, [traceId]),
  );
  t.is(again.code, "RPIMM");
  const unarchive = await pgError(
    db.pool.query(`update runproof.traces set archived_at = null where id = $1`, [traceId]),
  );
  t.is(unarchive.code, "RPIMM");
});

// Serial: it truncates (see above).
test.serial(
  "runs: identity, goal and origin never change; runs are never deleted or truncated",
  async (t) => {
    const runId = await insertRun(db.pool, f);
    const other = await createTenant(db.pool);
    for (const set of [
      `goal = 'other'`,
      `agent_id = '${other.agentId}'`,
      `origin_system_id = 'x'`,
      `max_attempts = 9`,
      `idempotency_key = 'k'`,
    ]) {
      const e = await pgError(db.pool.query(`update runproof.runs set ${set} where id = $1`, [runId]));
      t.is(e.code, "RPIMM", set);
      t.regex(e.message, S6);
    }
    const tenant = await pgError(
      db.pool.query(`update runproof.runs set tenant_id = $2 where id = $1`, [runId, other.tenantId]),
    );
    t.true(["RPIMM", "23503"].includes(tenant.code!));
    const del = await pgError(db.pool.query(`delete from runproof.runs where id = $1`, [runId]));
    t.is(del.code, "RPIMM");
    t.regex(del.message, /DELETE on runproof\.runs/);
    const tr = await pgError(db.pool.query(`truncate runproof.runs cascade`));
    t.is(tr.code, "RPIMM");
  },
);

test("runs: a stored plan never changes", async (t) => {
  const runId = await insertRun(db.pool, f);
  const e = await pgError(
    db.pool.query(
      `update runproof.runs set plan = '{"version":1,"steps":[{"skill":"noop"}]}' where id = $1`,
      [runId],
    ),
  );
  t.is(e.code, "RPIMM");
  t.regex(e.detail ?? "", /changes the stored plan/);
});

test("runs: a pending run stores its plan once; a run without a plan cannot start", async (t) => {
  const {
    rows: [r],
  } = await db.pool.query(
    `insert into runproof.runs (tenant_id, agent_id, goal, origin_system_id) values ($1, $2, 'g', 'ava-test') returning id, status`,
    [f.tenantId, f.agentId],
  );
  t.is(r.status, "pending");
  const noPlan = await pgError(
    db.pool.query(`update runproof.runs set status = 'planned' where id = $1`, [r.id]),
  );
  t.is(noPlan.code, "23514");
  t.is(noPlan.constraint, "runs_plan_before_start");
  const start = await pgError(
    db.pool.query(`select runproof_private.start_attempt($1, $2)`, [f.tenantId, r.id]),
  );
  t.is(start.code, "RPSTS");
  const badPlan = await pgError(
    db.pool.query(
      `update runproof.runs set plan = '{"version":1,"steps":[{"skill":"http_cal"}]}', status = 'planned' where id = $1`,
      [r.id],
    ),
  );
  t.is(badPlan.code, "RPSKL");
  t.regex(badPlan.message, /plan step 0 names unknown skill 'http_cal'/);
  await db.pool.query(
    `update runproof.runs set plan = '{"version":1,"steps":[{"skill":"noop"}]}', status = 'planned' where id = $1`,
    [r.id],
  );
  const {
    rows: [p],
  } = await db.pool.query(`select status, planned_at from runproof.runs where id = $1`, [r.id]);
  t.is(p.status, "planned");
  t.truthy(p.planned_at);
});

test("runs: status only moves along the state machine", async (t) => {
  const runId = await insertRun(db.pool, f, { steps: 1 });
  const skip = await pgError(
    db.pool.query(`update runproof.runs set status = 'succeeded' where id = $1`, [runId]),
  );
  t.is(skip.code, "RPSTS");
  t.is(skip.message, `run ${runId} cannot go from planned to succeeded`);
  t.regex(skip.detail ?? "", /allowed from planned: cancelled, running/);
  const traceId = await startAttempt(db.pool, f, runId);
  const open = await pgError(finishRun(db.pool, f, runId, "succeeded"));
  t.is(open.code, "RPSTS");
  t.regex(open.message, /cannot succeed: 0 of 1 plan steps succeeded/);
  await appendStep(db.pool, f, runId, traceId, 0);
  await sealTrace(db.pool, f, traceId);
  await finishRun(db.pool, f, runId, "succeeded");
  const back = await pgError(
    db.pool.query(`update runproof.runs set status = 'running' where id = $1`, [runId]),
  );
  t.is(back.code, "RPIMM");
  t.regex(back.detail ?? "", /the run is succeeded/);
  const {
    rows: [r],
  } = await db.pool.query(
    `select trace_count, root_hash is not null as sealed, finished_at is not null as finished from runproof.runs where id = $1`,
    [runId],
  );
  t.deepEqual(r, { trace_count: 1, sealed: true, finished: true });
});

test("runs: progress and the seal cannot be forged", async (t) => {
  const runId = await insertRun(db.pool, f);
  const early = await pgError(
    db.pool.query(`update runproof.runs set next_plan_step = 2 where id = $1`, [runId]),
  );
  t.is(early.code, "RPIMM");
  const traceId = await startAttempt(db.pool, f, runId);
  // With every guard on, progress only moves with the step that made it (record_step).
  const forged = await pgError(
    db.pool.query(`update runproof.runs set next_plan_step = 1, cost_cents = 2 where id = $1`, [runId]),
  );
  t.is(forged.code, "RPSTS");
  t.is(
    forged.message,
    `run ${runId} progress (plan step 0 to 1, cost 0.0000 to 2.0000) does not come with its recorded steps`,
  );
  t.is(forged.detail, "attempt 1 has no step");
  await appendStep(db.pool, f, runId, traceId, 0, { cost: 2 });
  const skip = await pgError(
    db.pool.query(`update runproof.runs set next_plan_step = 3 where id = $1`, [runId]),
  );
  t.is(skip.code, "RPSTS");
  t.regex(skip.detail ?? "", /^the last step of attempt 1 is plan step 0, succeeded$/);
  const back = await pgError(
    db.pool.query(`update runproof.runs set next_plan_step = 0 where id = $1`, [runId]),
  );
  t.is(back.code, "RPSTS");
  const {
    rows: [r],
  } = await db.pool.query(`select next_plan_step, cost_cents from runproof.runs where id = $1`, [runId]);
  t.deepEqual(r, { next_plan_step: 1, cost_cents: "2.0000" });
  const seal = await pgError(
    db.pool.query(`update runproof.runs set root_hash = sha256('x'), trace_count = 1 where id = $1`, [runId]),
  );
  t.is(seal.code, "RPIMM");
  const att = await pgError(db.pool.query(`update runproof.runs set attempts = 5 where id = $1`, [runId]));
  t.is(att.code, "RPIMM");
});

test("the guards are ENABLE ALWAYS: session_replication_role = replica does not bypass them", async (t) => {
  const {
    traceIds: [traceId],
  } = await completedRun(db.pool, f);
  const { rows } = await db.pool.query(
    `select tgname, tgenabled from pg_trigger t join pg_class c on c.oid = t.tgrelid join pg_namespace n on n.oid = c.relnamespace
     where n.nspname = 'runproof' and not t.tgisinternal order by 1`,
  );
  t.true(rows.length >= 16);
  for (const r of rows) t.is(r.tgenabled, "A", r.tgname);
  const c = await db.pool.connect();
  try {
    await c.query(`set session_replication_role = replica`);
    const e = await pgError(
      c.query(`update runproof.trace_steps set cost_cents = 0 where trace_id = $1`, [traceId]),
    );
    t.is(e.code, "RPIMM");
    const d = await pgError(c.query(`delete from runproof.traces where id = $1`, [traceId]));
    t.is(d.code, "RPIMM");
  } finally {
    await c.query(`reset session_replication_role`);
    c.release();
  }
});
