// The tamper catalogue: a superuser with every trigger disabled edits the ledger; the verifier catches it.
import test from "ava";
import type pg from "pg";
import { createTestDatabase } from "./helpers/db.ts";
import {
  asAttacker,
  completedRun,
  createTenant,
  insertExtraStep,
  runProof,
  verifyTrace,
  type Fixture,
} from "./helpers/ledger.ts";

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let f: Fixture;
let witness: string; // an untouched run that must keep verifying
test.before(async () => {
  db = await createTestDatabase("tamper");
  f = await createTenant(db.pool);
  witness = (await completedRun(db.pool, f, { attempts: 2, stepsPerTrace: 5 })).runId;
});
test.after.always(async () => db?.drop());

const victim = () => completedRun(db.pool, f, { stepsPerTrace: 5 });
const afterEach = async (t: any) => {
  const w = await runProof(db.pool, f.tenantId, witness);
  t.is(w.verification_status, "VERIFIED", "the untouched run still verifies");
};
const inVerifyAll = async (runId: string) =>
  (await db.pool.query(`select * from runproof.verify_all() where run_id = $1`, [runId])).rows;

test("the untouched runs verify before any attack", async (t) => {
  const { runId } = await victim();
  const p = await runProof(db.pool, f.tenantId, runId);
  t.is(p.integrity_model, "HASH_CHAIN");
  t.is(p.verification_status, "VERIFIED");
  t.is(p.chain_length, 5);
  t.is(p.step_count, 5);
  t.is(p.trace_count, 1);
  t.is(p.first_bad_step_index, null);
  t.is(p.reason, null);
});

test("(a) editing a step's output (its payload)", async (t) => {
  const {
    runId,
    traceIds: [tr],
  } = await victim();
  await asAttacker(db.pool, (c) =>
    c.query(
      `update runproof.step_payloads set output = '{"ok":true,"i":999}' where trace_id = $1 and step_index = 2`,
      [tr],
    ),
  );
  const p = await runProof(db.pool, f.tenantId, runId);
  t.is(p.verification_status, "TAMPERED");
  t.is(p.first_bad_step_index, 2);
  t.is(p.first_bad_trace_id, tr);
  t.is(p.reason, "attempt 1: step 2: its output payload does not match the commitment its hash covers");
  t.is(p.chain_length, 2);
  t.is((await inVerifyAll(runId))[0]?.first_bad_step_index, 2);
  await afterEach(t);
});

test("(a2) editing a timestamp, the skill, the status, the policy decision or a commitment of a step", async (t) => {
  for (const set of [
    `started_at = started_at - interval '1 second'`,
    `skill = 'http_call'`,
    `status = 'failed', error_commitment = sha256('x'), output_commitment = null`,
    `status = 'denied', policy_decision = 'deny', output_commitment = null`,
    `cost_cents = 0`,
    `input_commitment = sha256('x')`,
    `decision_hash = sha256('x')`,
  ]) {
    const {
      runId,
      traceIds: [tr],
    } = await victim();
    await asAttacker(db.pool, (c) =>
      c.query(`update runproof.trace_steps set ${set} where trace_id = $1 and step_index = 1`, [tr]),
    );
    const p = await runProof(db.pool, f.tenantId, runId);
    t.is(p.verification_status, "TAMPERED", set);
    t.is(p.first_bad_step_index, 1, set);
    t.regex(p.reason ?? "", /^attempt 1: step 1: stored step_hash .* does not match/, set);
  }
});

test("(b) editing a step_hash", async (t) => {
  const {
    runId,
    traceIds: [tr],
  } = await victim();
  await asAttacker(db.pool, (c) =>
    c.query(
      `update runproof.trace_steps set step_hash = sha256('forged') where trace_id = $1 and step_index = 3`,
      [tr],
    ),
  );
  const p = await runProof(db.pool, f.tenantId, runId);
  t.is(p.verification_status, "TAMPERED");
  t.is(p.first_bad_step_index, 3);
  await afterEach(t);
});

test("(b2) re-committing an edited payload and re-hashing every later step still breaks the seal", async (t) => {
  const {
    runId,
    traceIds: [tr],
  } = await victim();
  await asAttacker(db.pool, async (c) => {
    await c.query(
      `update runproof.step_payloads set output = '{"forged":true}' where trace_id = $1 and step_index = 2`,
      [tr],
    );
    await c.query(
      `update runproof.trace_steps s set output_commitment = runproof_private.payload_commitment('output', p.output_salt, p.output::text)
         from runproof.step_payloads p where p.trace_id = s.trace_id and p.step_index = s.step_index and s.trace_id = $1 and s.step_index = 2`,
      [tr],
    );
    for (let i = 2; i < 5; i++) {
      await c.query(
        `update runproof.trace_steps s set prev_hash = (select step_hash from runproof.trace_steps where trace_id = $1 and step_index = $2 - 1) where trace_id = $1 and step_index = $2`,
        [tr, i],
      );
      await c.query(
        `update runproof.trace_steps s set step_hash = runproof_private.step_hash(s.prev_hash, runproof_private.step_canonical(s)) where trace_id = $1 and step_index = $2`,
        [tr, i],
      );
    }
  });
  const p = await runProof(db.pool, f.tenantId, runId);
  t.is(p.verification_status, "TAMPERED");
  t.is(p.first_bad_step_index, null);
  t.regex(p.reason!, /sealed root_hash .* does not match the chain's root/);
});

test("(c) deleting a middle step", async (t) => {
  const {
    runId,
    traceIds: [tr],
  } = await victim();
  await asAttacker(db.pool, (c) =>
    c.query(`delete from runproof.trace_steps where trace_id = $1 and step_index = 2`, [tr]),
  );
  const p = await runProof(db.pool, f.tenantId, runId);
  t.is(p.verification_status, "BROKEN");
  t.is(p.first_bad_step_index, 2);
  t.regex(p.reason!, /step 2 is missing from the chain \(the next stored step is 3\)/);
  await afterEach(t);
});

test("(d) deleting the last step of a sealed trace", async (t) => {
  const {
    runId,
    traceIds: [tr],
  } = await victim();
  await asAttacker(db.pool, (c) =>
    c.query(`delete from runproof.trace_steps where trace_id = $1 and step_index = 4`, [tr]),
  );
  const p = await runProof(db.pool, f.tenantId, runId);
  t.is(p.verification_status, "BROKEN");
  t.is(p.first_bad_step_index, 4);
  t.regex(p.reason!, /the seal says 5 steps but the chain has 4/);
  await afterEach(t);
});

test("(e) inserting an extra step, with its decision, payloads and hashes", async (t) => {
  const {
    runId,
    traceIds: [tr],
  } = await victim();
  await asAttacker(db.pool, (c) => insertExtraStep(c, tr));
  const p = await runProof(db.pool, f.tenantId, runId);
  t.is(p.verification_status, "BROKEN");
  t.is(p.first_bad_step_index, 5);
  t.regex(p.reason!, /added after the seal/);
  await afterEach(t);
});

test("(f) swapping two steps' indexes", async (t) => {
  const {
    runId,
    traceIds: [tr],
  } = await victim();
  await asAttacker(db.pool, async (c) => {
    await c.query(
      `update runproof.trace_steps set step_index = 1000 where trace_id = $1 and step_index = 1`,
      [tr],
    );
    await c.query(`update runproof.trace_steps set step_index = 1 where trace_id = $1 and step_index = 3`, [
      tr,
    ]);
    await c.query(
      `update runproof.trace_steps set step_index = 3 where trace_id = $1 and step_index = 1000`,
      [tr],
    );
  });
  const p = await runProof(db.pool, f.tenantId, runId);
  t.is(p.verification_status, "TAMPERED");
  t.is(p.first_bad_step_index, 1);
  await afterEach(t);
});

test("(g) moving a step to another trace", async (t) => {
  const a = await victim();
  const b = await victim();
  await asAttacker(db.pool, (c) =>
    c.query(
      `update runproof.trace_steps set trace_id = $2, run_id = $3, step_index = 5 where trace_id = $1 and step_index = 2`,
      [a.traceIds[0], b.traceIds[0], b.runId],
    ),
  );
  const pa = await runProof(db.pool, f.tenantId, a.runId);
  t.is(pa.verification_status, "BROKEN");
  t.is(pa.first_bad_step_index, 2);
  const pb = await verifyTrace(db.pool, b.traceIds[0]);
  t.is(pb.verification_status, "TAMPERED");
  t.is(pb.first_bad_step_index, 5);
  await afterEach(t);
});

test("(h) editing a sealed trace's root_hash", async (t) => {
  const {
    runId,
    traceIds: [tr],
  } = await victim();
  await asAttacker(db.pool, (c) =>
    c.query(`update runproof.traces set root_hash = sha256('forged') where id = $1`, [tr]),
  );
  const p = await runProof(db.pool, f.tenantId, runId);
  t.is(p.verification_status, "TAMPERED");
  t.is(p.first_bad_trace_id, tr);
  t.is(p.first_bad_step_index, null);
  t.regex(p.reason!, /the sealed root_hash [0-9a-f]{64} does not match the chain's root/);
  await afterEach(t);
});

test("(i) deleting a whole trace of a run", async (t) => {
  for (const attempt of [1, 2]) {
    const { runId, traceIds } = await completedRun(db.pool, f, { attempts: 2, stepsPerTrace: 3 });
    await asAttacker(db.pool, async (c: pg.PoolClient) => {
      await c.query(`delete from runproof.step_payloads where trace_id = $1`, [traceIds[attempt - 1]]);
      await c.query(`delete from runproof.trace_steps where trace_id = $1`, [traceIds[attempt - 1]]);
      await c.query(`delete from runproof.policy_decisions where trace_id = $1`, [traceIds[attempt - 1]]);
      await c.query(`delete from runproof.traces where id = $1`, [traceIds[attempt - 1]]);
    });
    const p = await runProof(db.pool, f.tenantId, runId);
    t.is(p.verification_status, "BROKEN", `attempt ${attempt}`);
    t.is(p.first_bad_attempt, attempt);
    t.is(p.first_bad_step_index, null);
    t.regex(p.reason!, new RegExp(`the trace of attempt ${attempt} is missing`));
    t.is((await inVerifyAll(runId)).length, 1);
  }
  await afterEach(t);
});

test("(j) changing a run's tenant", async (t) => {
  const { runId } = await victim();
  const other = await createTenant(db.pool);
  await asAttacker(db.pool, (c) =>
    c.query(`update runproof.runs set tenant_id = $2 where id = $1`, [runId, other.tenantId]),
  );
  const p = await runProof(db.pool, f.tenantId, runId);
  t.is(p.verification_status, "TAMPERED");
  t.regex(p.reason!, /belongs to tenant/);
  const q = await runProof(db.pool, other.tenantId, runId);
  t.not(q.verification_status, "VERIFIED");
  t.true((await inVerifyAll(runId)).length >= 1);
  await afterEach(t);
});

test("verify_all lists what does not verify, including steps and traces no run leads to", async (t) => {
  const {
    runId,
    traceIds: [tr],
  } = await victim();
  await asAttacker(db.pool, (c) =>
    c.query(
      `update runproof.trace_steps set trace_id = gen_random_uuid() where trace_id = $1 and step_index = 4`,
      [tr],
    ),
  );
  const rows = (await db.pool.query(`select * from runproof.verify_all()`)).rows;
  t.truthy(
    rows.find(
      (r) => r.run_id === runId && r.verification_status === "BROKEN" && r.first_bad_step_index === 4,
    ),
  );
  t.truthy(rows.find((r) => r.run_id === runId && r.reason === "steps have no trace row"));
  t.falsy(rows.find((r) => r.run_id === witness));
});
