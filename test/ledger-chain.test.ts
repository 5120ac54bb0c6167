// The hash chain is computed by the database, and recomputable by anyone with SHA-256.
import test from "ava";
import { createHash } from "node:crypto";
import { createTestDatabase } from "./helpers/db.ts";
import {
  appendStep,
  createTenant,
  insertRun,
  pgError,
  sealTrace,
  startAttempt,
  type Fixture,
} from "./helpers/ledger.ts";

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let f: Fixture;
test.before(async () => {
  db = await createTestDatabase("chain");
  f = await createTenant(db.pool);
});
test.after.always(async () => db?.drop());

const sha256 = (...parts: (Buffer | string)[]) => {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return h.digest();
};

test("genesis binds format version, tenant, run and trace; each step_hash = sha256(prev_hash || sha256(canonical))", async (t) => {
  const runId = await insertRun(db.pool, f);
  const traceId = await startAttempt(db.pool, f, runId);
  for (let i = 0; i < 3; i++)
    await appendStep(db.pool, f, runId, traceId, i, { input: { url: "https://example.test", n: i } });
  const { rows } = await db.pool.query(
    `select s.step_index, s.prev_hash, s.step_hash, runproof_private.step_canonical(s) as canonical
       from runproof.trace_steps s where trace_id = $1 order by step_index`,
    [traceId],
  );
  const genesis = sha256(`runproof.genesis/2|${f.tenantId}|${runId}|${traceId}`);
  let prev = genesis;
  for (const r of rows) {
    t.deepEqual(r.prev_hash, prev, `prev_hash of step ${r.step_index}`);
    t.deepEqual(r.step_hash, sha256(prev, sha256(r.canonical)), `step_hash of step ${r.step_index}`);
    prev = r.step_hash;
  }
  // The hashed content holds the identity, index, skill, status, decision, its hash, the payloads'
  // commitments and the timestamps; the payloads themselves are stored apart, each with its salt.
  const content = JSON.parse(rows[1].canonical.toString("utf8"));
  t.is(content[0], "runproof.step/2");
  t.is(content.length, 20);
  t.deepEqual(content.slice(1, 9), [f.tenantId, runId, traceId, 1, 1, "noop", "succeeded", "allow"]);
  const {
    rows: [d],
  } = await db.pool.query(
    `select runproof_private.decision_canonical(d) as c from runproof.policy_decisions d where trace_id = $1 and step_index = 1`,
    [traceId],
  );
  t.is(content[9], sha256(d.c).toString("hex"));
  const {
    rows: [p],
  } = await db.pool.query(
    `select input, input::text as input_text, input_salt, output::text as output_text, output_salt, error
       from runproof.step_payloads where trace_id = $1 and step_index = 1`,
    [traceId],
  );
  t.deepEqual(p.input, { n: 1, url: "https://example.test" });
  t.is(p.input_salt.length, 32);
  t.is(content[10], sha256("runproof.payload/2|input|", p.input_salt, p.input_text).toString("hex"));
  t.is(content[11], sha256("runproof.payload/2|output|", p.output_salt, p.output_text).toString("hex"));
  t.is(content[12], null);
  t.is(p.error, null);
  t.regex(content[13], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?$/);
  t.regex(content[19], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?$/);
});

test("the canonical bytes do not depend on the session TimeZone or DateStyle", async (t) => {
  const runId = await insertRun(db.pool, f);
  const traceId = await startAttempt(db.pool, f, runId);
  await appendStep(db.pool, f, runId, traceId, 0);
  const c = await db.pool.connect();
  try {
    const q = `select runproof_private.step_canonical(s) as c from runproof.trace_steps s where trace_id = $1`;
    const a = (await c.query(q, [traceId])).rows[0].c;
    await c.query(`set timezone = 'Pacific/Chatham'; set datestyle = 'SQL, DMY'`);
    const b = (await c.query(q, [traceId])).rows[0].c;
    t.deepEqual(a, b);
  } finally {
    await c.query("reset timezone; reset datestyle");
    c.release();
  }
});

test("a hash supplied by the client is rejected", async (t) => {
  const runId = await insertRun(db.pool, f);
  const traceId = await startAttempt(db.pool, f, runId);
  await db.pool.query(
    `insert into runproof.policy_decisions (tenant_id, run_id, trace_id, step_index, plan_step, skill, decision, rule, reason) values ($1, $2, $3, 0, 0, 'noop', 'allow', 'daily_budget', 't')`,
    [f.tenantId, runId, traceId],
  );
  const e = await pgError(
    db.pool.query(
      `insert into runproof.trace_steps (tenant_id, run_id, trace_id, step_index, plan_step, skill, status, policy_decision, started_at, finished_at, duration_ms, step_hash)
     values ($1, $2, $3, 0, 0, 'noop', 'succeeded', 'allow', now(), now(), 1, sha256('forged'))`,
      [f.tenantId, runId, traceId],
    ),
  );
  t.is(e.code, "RPCHN");
  t.is(e.message, "decision_hash, prev_hash and step_hash are computed by the database");
});

test("a gap, a duplicate index and an append to a sealed trace are rejected", async (t) => {
  const runId = await insertRun(db.pool, f);
  const traceId = await startAttempt(db.pool, f, runId);
  await appendStep(db.pool, f, runId, traceId, 0);
  // A decision is only ever taken for the next step, so a gap is refused there first...
  const early = await pgError(appendStep(db.pool, f, runId, traceId, 2));
  t.is(early.code, "RPCHN");
  t.regex(early.message, /a decision for step 2 of trace .* is not for its next step/);
  // ...and by the chain itself.
  await db.pool.query(
    `insert into runproof.policy_decisions (tenant_id, run_id, trace_id, step_index, plan_step, skill, decision, rule, reason) values ($1, $2, $3, 1, 1, 'noop', 'allow', 'daily_budget', 't')`,
    [f.tenantId, runId, traceId],
  );
  const gap = await pgError(
    db.pool.query(
      `insert into runproof.trace_steps (tenant_id, run_id, trace_id, step_index, plan_step, skill, status, policy_decision, started_at, finished_at, duration_ms)
     values ($1, $2, $3, 2, 1, 'noop', 'succeeded', 'allow', now(), now(), 1)`,
      [f.tenantId, runId, traceId],
    ),
  );
  t.is(gap.code, "RPCHN");
  t.is(gap.message, `gap at step index 2: trace ${traceId} expects step 1`);
  const dup = await pgError(
    db.pool.query(
      `insert into runproof.trace_steps (tenant_id, run_id, trace_id, step_index, plan_step, skill, status, policy_decision, started_at, finished_at, duration_ms)
     values ($1, $2, $3, 0, 0, 'noop', 'succeeded', 'allow', now(), now(), 1)`,
      [f.tenantId, runId, traceId],
    ),
  );
  t.is(dup.code, "RPCHN");
  t.regex(dup.message, /^duplicate step index 0/);
  await sealTrace(db.pool, f, traceId);
  const sealed = await pgError(appendStep(db.pool, f, runId, traceId, 1));
  t.is(sealed.code, "RPCHN"); // the decision for a sealed trace is refused first
  const {
    rows: [n],
  } = await db.pool.query(`select count(*)::int n from runproof.trace_steps where trace_id = $1`, [traceId]);
  t.is(n.n, 1);
});

test("a step cannot exist without its policy decision, and must match it", async (t) => {
  const runId = await insertRun(db.pool, f);
  const traceId = await startAttempt(db.pool, f, runId);
  // The commitments are the inserter's (record_step makes them); the chain trigger fills in the hashes.
  const stepSql = `insert into runproof.trace_steps (tenant_id, run_id, trace_id, step_index, plan_step, skill, status, policy_decision, started_at, finished_at, duration_ms, input_commitment)
     values ($1, $2, $3, 0, 0, 'noop', $4, $5, now(), now(), 1, sha256(''))`;
  const none = await pgError(db.pool.query(stepSql, [f.tenantId, runId, traceId, "succeeded", "allow"]));
  t.is(none.code, "RPCHN");
  t.is(none.message, `step 0 of trace ${traceId} has no policy decision`);
  // The foreign key says the same when the trigger is not there to say it first.
  const c = await db.pool.connect();
  try {
    await c.query("begin");
    await c.query("alter table runproof.trace_steps disable trigger tg_trace_steps__chain");
    const fk = await pgError(
      c.query(
        `insert into runproof.trace_steps (tenant_id, run_id, trace_id, step_index, plan_step, skill, status, policy_decision, started_at, finished_at, duration_ms, prev_hash, step_hash, decision_hash, input_commitment)
       values ($1, $2, $3, 0, 0, 'noop', 'succeeded', 'allow', now(), now(), 1, sha256(''), sha256(''), sha256(''), sha256(''))`,
        [f.tenantId, runId, traceId],
      ),
    );
    t.is(fk.code, "23503");
    t.is(fk.constraint, "trace_steps_tenant_id_trace_id_step_index_policy_decision_fkey");
  } finally {
    await c.query("rollback");
    c.release();
  }
  await db.pool.query(
    `insert into runproof.policy_decisions (tenant_id, run_id, trace_id, step_index, plan_step, skill, decision, rule, reason) values ($1, $2, $3, 0, 0, 'noop', 'deny', 'daily_budget', 'over budget')`,
    [f.tenantId, runId, traceId],
  );
  const mismatch = await pgError(db.pool.query(stepSql, [f.tenantId, runId, traceId, "succeeded", "allow"]));
  t.is(mismatch.code, "RPCHN");
  t.regex(mismatch.message, /does not match its policy decision \(decision deny, plan step 0, skill noop\)/);
  const lie = await pgError(db.pool.query(stepSql, [f.tenantId, runId, traceId, "succeeded", "deny"]));
  t.is(lie.code, "23514");
  t.is(lie.constraint, "trace_steps_denied_iff_deny");
  await db.pool.query(stepSql, [f.tenantId, runId, traceId, "denied", "deny"]);
  t.pass();
});

test("concurrent appends to one trace are serialized", async (t) => {
  const runId = await insertRun(db.pool, f);
  const traceId = await startAttempt(db.pool, f, runId);
  const a = await db.pool.connect();
  const b = await db.pool.connect();
  try {
    await a.query("begin");
    await appendStep(a, f, runId, traceId, 0);
    await b.query("begin");
    let settled = false;
    const second = appendStep(b, f, runId, traceId, 0).finally(() => {
      settled = true;
    });
    second.catch(() => {});
    await new Promise((r) => setTimeout(r, 300));
    t.false(settled, "the second append waits for the first transaction");
    await a.query("commit");
    const e = await pgError(second);
    // b waited on the decision's unique key or on the trace lock, then saw step 0 taken.
    t.true(["23505", "RPCHN"].includes(e.code!), `${e.code} ${e.message}`);
    await b.query("rollback");
  } finally {
    a.release();
    b.release();
  }
  // Many writers racing for the next index: each step lands exactly once, in order.
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      for (let k = 0; k < 5; k++) {
        const c = await db.pool.connect();
        try {
          await c.query("begin");
          const {
            rows: [n],
          } = await c.query(
            `select coalesce(max(step_index) + 1, 0) as next from runproof.trace_steps where trace_id = $1`,
            [traceId],
          );
          await appendStep(c, f, runId, traceId, n.next);
          await c.query("commit");
        } catch {
          await c.query("rollback");
        } finally {
          c.release();
        }
      }
    }),
  );
  const { rows } = await db.pool.query(
    `select step_index from runproof.trace_steps where trace_id = $1 order by step_index`,
    [traceId],
  );
  t.deepEqual(
    rows.map((r) => r.step_index),
    rows.map((_, i) => i),
  );
  t.true(rows.length >= 2);
  const {
    rows: [p],
  } = await db.pool.query(`select verification_status from runproof.verify_trace($1)`, [traceId]);
  t.is(p.verification_status, "IN_PROGRESS");
});
