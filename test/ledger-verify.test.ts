// The verifier on intact data: statuses, counts and roots that anyone can recompute.
import test from "ava";
import { createHash } from "node:crypto";
import { createTestDatabase } from "./helpers/db.ts";
import {
  appendStep,
  completedRun,
  createTenant,
  insertRun,
  runProof,
  startAttempt,
  verifyTrace,
  type Fixture,
} from "./helpers/ledger.ts";

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let f: Fixture;
test.before(async () => {
  db = await createTestDatabase("verify");
  f = await createTenant(db.pool);
});
test.after.always(async () => db?.drop());

const sha256 = (...parts: (Buffer | string)[]) => {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return h.digest();
};

test("a finished multi-attempt run is VERIFIED with its counts and a recomputable run root", async (t) => {
  const { runId, traceIds } = await completedRun(db.pool, f, { attempts: 3, stepsPerTrace: 4 });
  const p = await runProof(db.pool, f.tenantId, runId);
  t.like(p, {
    integrity_model: "HASH_CHAIN",
    verification_status: "VERIFIED",
    chain_length: 12,
    trace_count: 3,
    step_count: 12,
  });
  const { rows } = await db.pool.query(`select id from runproof.traces where run_id = $1 order by attempt`, [
    runId,
  ]);
  t.deepEqual(
    rows.map((r) => r.id),
    traceIds,
  );
  // The run root is sha256 of the run's seal text, which lists its content hash and its traces' seals.
  const {
    rows: [rc],
  } = await db.pool.query(
    `select runproof_private.run_canonical(r) as c, r.seal, r.root_hash, r.trace_count from runproof.runs r where id = $1`,
    [runId],
  );
  t.like(JSON.parse(rc.c.toString("utf8")), [
    "runproof.run/2",
    f.tenantId,
    runId,
    f.agentId,
    "test goal",
    "ava-test",
  ]);
  const seal = JSON.parse(rc.seal.toString("utf8"));
  t.is(seal[0], "runproof.run-seal/2");
  t.is(seal[3], sha256(rc.c).toString("hex"));
  t.is(seal[4], "succeeded");
  t.is(seal[6], 3);
  const { rows: seals } = await db.pool.query(
    `select seal, seal_hash from runproof.traces where run_id = $1 order by attempt`,
    [runId],
  );
  t.deepEqual(
    seal[12],
    seals.map((r) => sha256(r.seal).toString("hex")),
  );
  t.deepEqual(
    seals.map((r) => r.seal_hash),
    seals.map((r) => sha256(r.seal)),
  );
  t.deepEqual(rc.root_hash, sha256(rc.seal));
  t.is(p.root_hash, rc.root_hash.toString("hex"));
  t.is(rc.trace_count, 3);
  for (const id of traceIds) {
    const v = await verifyTrace(db.pool, id);
    t.is(v.verification_status, "VERIFIED");
    t.is(v.chain_length, 4);
    t.is(v.proof_format, 2);
  }
});

test("a trace root is its last step_hash; an empty trace's root is its genesis", async (t) => {
  const runId = await insertRun(db.pool, f);
  const traceId = await startAttempt(db.pool, f, runId);
  const empty = await verifyTrace(db.pool, traceId);
  t.is(empty.verification_status, "IN_PROGRESS");
  t.is(empty.root_hash, sha256(`runproof.genesis/2|${f.tenantId}|${runId}|${traceId}`).toString("hex"));
  const s = await appendStep(db.pool, f, runId, traceId, 0);
  const one = await verifyTrace(db.pool, traceId);
  t.is(one.root_hash, s.step_hash.toString("hex"));
});

test("a run still executing is IN_PROGRESS, not VERIFIED", async (t) => {
  const runId = await insertRun(db.pool, f);
  const traceId = await startAttempt(db.pool, f, runId);
  await appendStep(db.pool, f, runId, traceId, 0);
  const p = await runProof(db.pool, f.tenantId, runId);
  t.is(p.verification_status, "IN_PROGRESS");
  t.is(p.chain_length, 1);
});

test("an unknown run, or another tenant's run, is NOT_FOUND", async (t) => {
  const { runId } = await completedRun(db.pool, f);
  const other = await createTenant(db.pool);
  t.is(
    (await runProof(db.pool, f.tenantId, "00000000-0000-0000-0000-000000000000")).verification_status,
    "NOT_FOUND",
  );
  t.is((await runProof(db.pool, other.tenantId, runId)).verification_status, "NOT_FOUND");
  t.is((await verifyTrace(db.pool, "00000000-0000-0000-0000-000000000000")).verification_status, "NOT_FOUND");
});

test("failed and denied steps are part of the proof like any other", async (t) => {
  const runId = await insertRun(db.pool, f);
  // Attempt 1 fails at its second step; attempt 2 resumes there and is denied.
  const first = await startAttempt(db.pool, f, runId);
  await appendStep(db.pool, f, runId, first, 0);
  await appendStep(db.pool, f, runId, first, 1, { status: "failed" });
  await db.pool.query(`select runproof_private.seal_trace($1, $2, 'failed')`, [f.tenantId, first]);
  await db.pool.query(`update runproof.runs set status = 'retrying' where id = $1`, [runId]);
  const second = await startAttempt(db.pool, f, runId);
  await appendStep(db.pool, f, runId, second, 0, { status: "denied" });
  await db.pool.query(`select runproof_private.seal_trace($1, $2, 'failed')`, [f.tenantId, second]);
  await db.pool.query(`update runproof.runs set status = 'halted', error = 'denied' where id = $1`, [runId]);
  const p = await runProof(db.pool, f.tenantId, runId);
  t.is(p.verification_status, "VERIFIED", p.reason ?? "");
  t.is(p.step_count, 3);
  t.is(p.trace_count, 2);
});

test("verify_all is empty on an intact ledger", async (t) => {
  await completedRun(db.pool, f, { attempts: 2 });
  const { rows } = await db.pool.query(`select * from runproof.verify_all()`);
  t.deepEqual(rows, []);
});
