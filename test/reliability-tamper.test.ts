// The tamper catalogue: every attack on the ledger we could think of, each one either REJECTED
// (by a guard, with its SQLSTATE and message) or DETECTED (by runproof.run_proof, verify_trace,
// verify_all and the offline verifier on an exported bundle, all four agreeing on the verdict, the
// first bad attempt and step and the reason), and, where neither holds, the limit stated and shown
// (the last two of group C).
//
//   A  rejected outright: writes the guards refuse, even in replica mode and for a superuser
//   B  superuser data edits with every trigger disabled: caught by the hashes and the completeness
//      checks (docs/proof-format.md section 9)
//   C  schema (DDL) attacks: caught by the DDL audit (proof.guard_status, verify_all rows)
//
// Most attacks of A have their twin in B: the same edit refused with the guards on, and detected
// when a superuser switches them off.
//
// Groups A and B share a database each; every C attack gets its own, because what it leaves
// behind (a disabled trigger, a replaced function) would change what the others see.
import { createHash } from "node:crypto";
import test, { type ExecutionContext } from "ava";
import type pg from "pg";
import { type Bundle, exportBundle } from "../src/lib/bundle.ts";
import { verifyBundle } from "../src/lib/offline-verify.ts";
import { nodeSha256 } from "../src/lib/sha256-node.ts";
import { createTestDatabase, type TestDatabase } from "./helpers/db.ts";
import {
  appendStep,
  asAttacker,
  completedRun,
  createTenant,
  type Fixture,
  finishRun,
  insertExtraStep,
  insertRun,
  pgError,
  runProof,
  sealTrace,
  startAttempt,
} from "./helpers/ledger.ts";
import { failedRun, haltedRun, runningRun } from "./helpers/outcomes.ts";
import { sinceVersion } from "./helpers/server-version.ts";
import { agreeingProof, type FullProof, offlineProof } from "./helpers/verdicts.ts";

const catalogue: Array<{ group: string; name: string }> = [];
function attack(
  group: "A" | "B" | "C",
  name: string,
  fn: (t: ExecutionContext) => Promise<void>,
  needs?: { major: number; feature: string },
  opts: { serial?: boolean } = {},
) {
  catalogue.push({ group, name });
  const title = `${group}${catalogue.filter((c) => c.group === group).length}: ${name}`;
  // A TRUNCATE takes ACCESS EXCLUSIVE locks table after table: beside the other attacks' writes in
  // the same database it can deadlock, so it runs alone (ava runs serial tests before the others).
  if (opts.serial) return test.serial(title, fn);
  if (!needs) return test(title, fn);
  const v = sinceVersion(needs.major, needs.feature);
  v.test(v.title(title), fn);
}
// SET event_triggers exists from PostgreSQL 17; before it a superuser has no session switch for
// event triggers (docs/reliability.md, "On PostgreSQL 14 to 16").
const EVENT_TRIGGERS_GUC = { major: 17, feature: "SET event_triggers" };

type Proof = FullProof;
const proof = async (db: TestDatabase, f: Fixture, runId: string) =>
  (await runProof(db.pool, f.tenantId, runId)) as Proof;
const verifyAll = async (db: TestDatabase) =>
  (await db.pool.query(`select * from runproof.verify_all()`)).rows;

/** Runs fn in one transaction on its own connection (a superuser's psql session). */
async function session(db: TestDatabase, fn: (c: pg.PoolClient) => Promise<unknown>): Promise<void> {
  const c = await db.pool.connect();
  try {
    await c.query("begin");
    await fn(c);
    await c.query("commit");
  } catch (e) {
    await c.query("rollback").catch(() => {});
    throw e;
  } finally {
    c.release();
  }
}

const sha256hex = (text: string) => createHash("sha256").update(text, "utf8").digest("hex");

interface Victim {
  runId: string;
  traceIds: string[];
}

// ---------------------------------------------------------------------------------------------
// A. Rejected: the guards refuse the write (the run's proof is unchanged, verify_all stays empty)
// ---------------------------------------------------------------------------------------------

let dbA: TestDatabase;
let fA: Fixture;
let dbB: TestDatabase;
let fB: Fixture;
test.before(async () => {
  dbA = await createTestDatabase("tamper-rejected");
  fA = await createTenant(dbA.pool);
  dbB = await createTestDatabase("tamper-data");
  fB = await createTenant(dbB.pool);
});
test.after.always(async () => {
  await dbA?.drop();
  await dbB?.drop();
});

/** Victims in the database of group A. */
const A = {
  completed: () => completedRun(dbA.pool, fA, { stepsPerTrace: 3 }),
  twoAttempts: () => completedRun(dbA.pool, fA, { attempts: 2, stepsPerTrace: 3 }),
  failed: () => failedRun(dbA.pool, fA),
  halted: () => haltedRun(dbA.pool, fA),
  running: () => runningRun(dbA.pool, fA),
};

async function rejected(
  t: ExecutionContext,
  code: string,
  message: RegExp,
  write: (c: pg.PoolClient, v: Victim) => Promise<unknown>,
  opts: { make?: () => Promise<Victim>; detail?: RegExp } = {},
) {
  const v = await (opts.make ?? A.completed)();
  const before = await proof(dbA, fA, v.runId);
  const c = await dbA.pool.connect();
  try {
    await c.query("begin");
    const e = await pgError(write(c, v));
    t.is(e.code, code, e.message);
    t.regex(e.message, message);
    if (opts.detail) t.regex(e.detail ?? "", opts.detail);
  } finally {
    await c.query("rollback");
    c.release();
  }
  const p = await proof(dbA, fA, v.runId);
  t.is(p.verification_status, before.verification_status);
  t.true(["VERIFIED", "IN_PROGRESS"].includes(p.verification_status));
  t.is(p.root_hash, before.root_hash);
  t.is(p.guard_status, "GUARDED");
  t.deepEqual(
    (await verifyAll(dbA)).filter((r) => r.run_id === v.runId || r.run_id === null),
    [],
  );
}
const S6 = (op: string, table: string) =>
  new RegExp(`^S6_IMMUTABILITY_VIOLATION: ${op} on runproof\\.${table} `);

attack("A", "UPDATE a recorded step", (t) =>
  rejected(t, "RPIMM", S6("UPDATE", "trace_steps"), (c, v) =>
    c.query(`update runproof.trace_steps set cost_cents = 0 where trace_id = $1 and step_index = 1`, [
      v.traceIds[0],
    ]),
  ),
);
attack("A", "DELETE a step", (t) =>
  rejected(t, "RPIMM", S6("DELETE", "trace_steps"), (c, v) =>
    c.query(`delete from runproof.trace_steps where trace_id = $1 and step_index = 2`, [v.traceIds[0]]),
  ),
);
attack(
  "A",
  "TRUNCATE the payloads, the steps and the runs (cascading)",
  (t) =>
    rejected(t, "RPIMM", /TRUNCATE on runproof\.(step_payloads|trace_steps|runs)/, async (c) => {
      for (const sql of [`truncate runproof.step_payloads`, `truncate runproof.trace_steps cascade`]) {
        await c.query("savepoint s");
        const e = await pgError(c.query(sql));
        if (e.code !== "RPIMM") throw e;
        await c.query("rollback to savepoint s");
      }
      await c.query(`truncate runproof.runs cascade`);
    }),
  undefined,
  { serial: true },
);
attack("A", "UPDATE a sealed trace's root_hash, or DELETE the trace", (t) =>
  rejected(t, "RPIMM", /on runproof\.traces/, async (c, v) => {
    await c.query("savepoint s");
    const e = await pgError(c.query(`delete from runproof.traces where id = $1`, [v.traceIds[0]]));
    if (e.code !== "RPIMM") throw e;
    await c.query("rollback to savepoint s");
    await c.query(`update runproof.traces set root_hash = sha256('forged') where id = $1`, [v.traceIds[0]]);
  }),
);
attack("A", "INSERT a step with a hash of the attacker's choosing", async (t) => {
  const runId = await insertRun(dbA.pool, fA, { steps: 2 });
  const traceId = await startAttempt(dbA.pool, fA, runId);
  await dbA.pool.query(
    `insert into runproof.policy_decisions (tenant_id, run_id, trace_id, step_index, plan_step, skill, decision, rule, reason)
    values ($1, $2, $3, 0, 0, 'noop', 'allow', 'daily_budget', 'test')`,
    [fA.tenantId, runId, traceId],
  );
  const e = await pgError(
    dbA.pool.query(
      `insert into runproof.trace_steps (tenant_id, run_id, trace_id, step_index, plan_step, skill, status, policy_decision,
         decision_hash, input_commitment, started_at, finished_at, duration_ms, prev_hash, step_hash)
     values ($1, $2, $3, 0, 0, 'noop', 'succeeded', 'allow', sha256('d'), sha256('i'), now(), now(), 1, sha256('a'), sha256('b'))`,
      [fA.tenantId, runId, traceId],
    ),
  );
  t.is(e.code, "RPCHN");
  t.is(e.message, "decision_hash, prev_hash and step_hash are computed by the database");
});
attack("A", "seal a trace with a forged root (a raw UPDATE instead of seal_trace)", async (t) => {
  const runId = await insertRun(dbA.pool, fA, { steps: 2 });
  const traceId = await startAttempt(dbA.pool, fA, runId);
  await appendStep(dbA.pool, fA, runId, traceId, 0);
  const e = await pgError(
    dbA.pool.query(
      `update runproof.traces set status = 'completed', completed_at = now(), step_count = 1, root_hash = sha256('forged') where id = $1`,
      [traceId],
    ),
  );
  t.is(e.code, "RPSEL");
  t.regex(e.message, /^seal of trace .* does not match its chain/);
});
attack(
  "A",
  "session_replication_role = replica, then UPDATE a step or a payload (the guards are ENABLE ALWAYS)",
  (t) =>
    rejected(t, "RPIMM", /^S6_IMMUTABILITY_VIOLATION: UPDATE/, async (c, v) => {
      await c.query(`set local session_replication_role = replica`);
      await c.query("savepoint s");
      const e = await pgError(
        c.query(
          `update runproof.step_payloads set output = '{"forged": true}' where trace_id = $1 and step_index = 0`,
          [v.traceIds[0]],
        ),
      );
      if (e.code !== "RPIMM") throw e;
      await c.query("rollback to savepoint s");
      await c.query(`update runproof.trace_steps set cost_cents = 0 where trace_id = $1 and step_index = 0`, [
        v.traceIds[0],
      ]);
    }),
);
attack(
  "A",
  "the tenant role writes a ledger table directly (every write goes through the SQL functions)",
  (t) =>
    rejected(t, "42501", /permission denied/, async (c, v) => {
      await c.query(`set local role runproof_tenant`);
      await c.query(`select set_config('runproof.tenant_id', $1, true)`, [fA.tenantId]);
      await c.query("savepoint s");
      const e = await pgError(
        c.query(`update runproof.step_payloads set output = '{}' where trace_id = $1`, [v.traceIds[0]]),
      );
      if (e.code !== "42501") throw e;
      await c.query("rollback to savepoint s");
      await c.query(`update runproof.trace_steps set cost_cents = 0 where trace_id = $1`, [v.traceIds[0]]);
    }),
);
attack("A", "UPDATE, DELETE or TRUNCATE the DDL audit", (t) =>
  rejected(
    t,
    "RPIMM",
    /^S6_IMMUTABILITY_VIOLATION: (DELETE|UPDATE|TRUNCATE) on runproof_private\.ddl_audit/,
    async (c) => {
      for (const sql of [
        `update runproof_private.ddl_audit set statement = null`,
        `delete from runproof_private.ddl_audit`,
      ]) {
        await c.query("savepoint s");
        const e = await pgError(c.query(sql));
        if (e.code !== "RPIMM") throw e;
        await c.query("rollback to savepoint s");
      }
      await c.query(`truncate runproof_private.ddl_audit`);
    },
  ),
);
attack("A", "DROP the DDL audit table (or its function, or its schema, without CASCADE)", (t) =>
  rejected(
    t,
    "RPIMM",
    /^S6_IMMUTABILITY_VIOLATION: DROP of runproof_private\.ddl_audit is not allowed$/,
    (c) => c.query(`drop table runproof_private.ddl_audit`),
  ),
);

// The outcome, the traces, the decisions, the incidents and the payloads (issue 11), guards on.
const finishedRunChange = (status: string, changes: string) =>
  new RegExp(`^the run is ${status}; changes ${changes}$`);
attack("A", "a finished run's status failed -> succeeded", (t) =>
  rejected(
    t,
    "RPIMM",
    S6("UPDATE", "runs"),
    (c, v) => c.query(`update runproof.runs set status = 'succeeded', error = null where id = $1`, [v.runId]),
    { make: A.failed, detail: finishedRunChange("failed", "error, status") },
  ),
);
attack("A", "a finished run's status halted -> succeeded", (t) =>
  rejected(
    t,
    "RPIMM",
    S6("UPDATE", "runs"),
    (c, v) => c.query(`update runproof.runs set status = 'succeeded' where id = $1`, [v.runId]),
    { make: A.halted, detail: finishedRunChange("halted", "status") },
  ),
);
attack("A", "a finished run's error changed", (t) =>
  rejected(
    t,
    "RPIMM",
    S6("UPDATE", "runs"),
    (c, v) => c.query(`update runproof.runs set error = 'nothing happened' where id = $1`, [v.runId]),
    { make: A.failed, detail: finishedRunChange("failed", "error") },
  ),
);
attack("A", "a finished run's progress, cost or finish time changed", (t) =>
  rejected(
    t,
    "RPIMM",
    S6("UPDATE", "runs"),
    (c, v) =>
      c.query(
        `update runproof.runs set next_plan_step = 1, cost_cents = 0, finished_at = finished_at + interval '1 day' where id = $1`,
        [v.runId],
      ),
    { detail: finishedRunChange("succeeded", "cost_cents, finished_at, next_plan_step") },
  ),
);
attack("A", "a run's created_at changed", (t) =>
  rejected(
    t,
    "RPIMM",
    S6("UPDATE", "runs"),
    (c, v) =>
      c.query(`update runproof.runs set created_at = created_at - interval '1 day' where id = $1`, [v.runId]),
    { detail: /changes created_at/ },
  ),
);
attack("A", "runs.attempts lowered below the number of traces", (t) =>
  rejected(
    t,
    "RPIMM",
    S6("UPDATE", "runs"),
    (c, v) => c.query(`update runproof.runs set attempts = 1 where id = $1`, [v.runId]),
    { make: A.twoAttempts, detail: finishedRunChange("succeeded", "attempts") },
  ),
);
attack("A", "a trace's status failed -> completed, or its metadata changed", (t) =>
  rejected(
    t,
    "RPIMM",
    S6("UPDATE", "traces"),
    async (c, v) => {
      await c.query("savepoint s");
      const e = await pgError(
        c.query(`update runproof.traces set status = 'completed' where id = $1`, [v.traceIds[0]]),
      );
      if (e.code !== "RPIMM" || !/status failed -> completed/.test(e.detail ?? "")) throw e;
      await c.query("rollback to savepoint s");
      await c.query(`update runproof.traces set metadata = '{"worker": "elsewhere"}' where id = $1`, [
        v.traceIds[1],
      ]);
    },
    { make: A.failed, detail: /^status failed -> failed, changes metadata$/ },
  ),
);
attack(
  "A",
  "a policy decision changed to deny while its step says allow (or any other of its columns)",
  (t) =>
    rejected(
      t,
      "RPIMM",
      S6("UPDATE", "policy_decisions"),
      async (c, v) => {
        await c.query("savepoint s");
        const e = await pgError(
          c.query(
            `update runproof.policy_decisions set decision = 'deny' where trace_id = $1 and step_index = 1`,
            [v.traceIds[0]],
          ),
        );
        if (e.code !== "RPIMM") throw e;
        await c.query("rollback to savepoint s");
        await c.query(
          `update runproof.policy_decisions set rule = 'allowed_skills', reason = 'x', budget_cents = 1, decided_at = now() where trace_id = $1`,
          [v.traceIds[0]],
        );
      },
      { detail: /^runproof\.policy_decisions is append-only$/ },
    ),
);
attack("A", "a running run's progress set ahead (update runproof.runs set next_plan_step = 3)", (t) =>
  rejected(
    t,
    "RPSTS",
    /^run [0-9a-f-]{36} progress \(plan step 1 to 3, cost 0\.5000 to 0\.5000\) does not come with its recorded steps$/,
    (c, v) => c.query(`update runproof.runs set next_plan_step = 3 where id = $1`, [v.runId]),
    { make: A.running, detail: /^the last step of attempt 1 is plan step 0, succeeded$/ },
  ),
);
attack("A", "a run that 'succeeds' with 1 of 3 plan steps recorded", (t) =>
  rejected(
    t,
    "RPSTS",
    /^run [0-9a-f-]{36} cannot succeed: 1 of 3 plan steps succeeded$/,
    async (c, v) => {
      await c.query(`select runproof_private.seal_trace($1, $2, 'completed')`, [fA.tenantId, v.traceIds[0]]);
      await c.query(`update runproof.runs set status = 'succeeded' where id = $1`, [v.runId]);
    },
    { make: A.running },
  ),
);
attack("A", "a step recorded after a failed step of its trace", (t) =>
  rejected(
    t,
    "RPCHN",
    /^trace [0-9a-f-]{36} ended at step 1 \(failed\): no step comes after a failed or denied one$/,
    async (c, v) => {
      const traceId = v.traceIds[0];
      await appendStep(c, fA, v.runId, traceId, 1, { status: "failed" });
      await appendStep(c, fA, v.runId, traceId, 2, { planStep: 1 });
    },
    { make: A.running },
  ),
);
attack("A", "a trace sealed with a status its last step contradicts", (t) =>
  rejected(
    t,
    "RPSEL",
    /^trace [0-9a-f-]{36} cannot be sealed (completed|failed|aborted): its last step (succeeded|failed|denied)$/,
    async (c, v) => {
      // completed needs a succeeded last step, failed a failed or denied one, aborted not a denied one.
      const traceId = v.traceIds[0];
      await c.query("savepoint s");
      const e = await pgError(
        c.query(`select runproof_private.seal_trace($1, $2, 'failed')`, [fA.tenantId, traceId]),
      );
      if (e.code !== "RPSEL" || !/cannot be sealed failed: its last step succeeded$/.test(e.message)) throw e;
      await c.query("rollback to savepoint s");
      await appendStep(c, fA, v.runId, traceId, 1, { status: "denied" });
      await c.query("savepoint s");
      const e2 = await pgError(
        c.query(`select runproof_private.seal_trace($1, $2, 'aborted')`, [fA.tenantId, traceId]),
      );
      if (e2.code !== "RPSEL" || !/cannot be sealed aborted: its last step denied$/.test(e2.message))
        throw e2;
      await c.query("rollback to savepoint s");
      await c.query(`select runproof_private.seal_trace($1, $2, 'completed')`, [fA.tenantId, traceId]);
    },
    { make: A.running },
  ),
);
attack("A", "edit an incident, or delete one", (t) =>
  rejected(
    t,
    "RPIMM",
    /^S6_IMMUTABILITY_VIOLATION: (UPDATE|DELETE) on runproof\.incidents /,
    async (c, v) => {
      await c.query("savepoint s");
      const e = await pgError(
        c.query(`update runproof.incidents set message = 'all good' where run_id = $1`, [v.runId]),
      );
      if (e.code !== "RPIMM") throw e;
      await c.query("rollback to savepoint s");
      await c.query(`delete from runproof.incidents where run_id = $1 and kind = 'run_failed'`, [v.runId]);
    },
    { make: A.failed },
  ),
);
attack("A", "add an incident to a finished run", (t) =>
  rejected(
    t,
    "RPSTS",
    /^run [0-9a-f-]{36} is failed and sealed: no incident can be added to it$/,
    (c, v) =>
      c.query(
        `insert into runproof.incidents (tenant_id, run_id, kind, message) values ($1, $2, 'worker_crashed', 'x')`,
        [fA.tenantId, v.runId],
      ),
    { make: A.failed },
  ),
);
attack("A", "edit a payload (input, output or error) that was not erased", (t) =>
  rejected(
    t,
    "RPIMM",
    S6("UPDATE", "step_payloads"),
    async (c, v) => {
      for (const sql of [
        `update runproof.step_payloads set input = '{"i": 7}' where trace_id = $1 and step_index = 0`,
        `update runproof.step_payloads set output = '{"forged": true}' where trace_id = $1 and step_index = 0`,
      ]) {
        await c.query("savepoint s");
        const e = await pgError(c.query(sql, [v.traceIds[0]]));
        if (e.code !== "RPIMM") throw e;
        await c.query("rollback to savepoint s");
      }
      await c.query(
        `update runproof.step_payloads set error = 'all fine' where trace_id = $1 and step_index = 1`,
        [v.traceIds[0]],
      );
    },
    { make: A.failed, detail: /^a payload never changes$/ },
  ),
);
attack("A", "delete a payload without an erasure record", (t) =>
  rejected(
    t,
    "RPIMM",
    S6("DELETE", "step_payloads"),
    (c, v) =>
      c.query(`delete from runproof.step_payloads where trace_id = $1 and step_index = 1`, [v.traceIds[0]]),
    { detail: /^a payload is removed only together with the record of its erasure$/ },
  ),
);

// ---------------------------------------------------------------------------------------------
// B. A superuser disables every trigger and edits the data: the verifiers catch it, all four alike
// ---------------------------------------------------------------------------------------------

/** Victims in the database of group B. */
const B = {
  completed: () => completedRun(dbB.pool, fB, { stepsPerTrace: 5 }),
  twoAttempts: () => completedRun(dbB.pool, fB, { attempts: 2, stepsPerTrace: 3 }),
  failed: () => failedRun(dbB.pool, fB),
  halted: () => haltedRun(dbB.pool, fB),
  running: () => runningRun(dbB.pool, fB),
};

interface Expected {
  status: "TAMPERED" | "BROKEN";
  attempt: number | null;
  step: number | null;
  /** The reason, exactly, or a pattern where it holds hashes or ids. */
  reason: string | RegExp;
}

/** run_proof, verify_trace, verify_all and the offline verifier all report what is expected. */
async function detected(t: ExecutionContext, runId: string, e: Expected, label = ""): Promise<Proof> {
  const p = await agreeingProof(t, dbB.pool, fB.tenantId, runId, label);
  t.is(p.verification_status, e.status, `${label} ${p.reason ?? ""}`);
  t.is(p.first_bad_attempt, e.attempt, label);
  t.is(p.first_bad_step_index, e.step, label);
  if (typeof e.reason === "string") t.is(p.reason, e.reason, label);
  else t.regex(p.reason ?? "", e.reason, label);
  return p;
}

/** A superuser's edit of one victim, detected as expected. */
function edit(
  name: string,
  make: () => Promise<Victim>,
  change: (c: pg.PoolClient, v: Victim) => Promise<unknown>,
  expected: Expected,
) {
  attack("B", name, async (t) => {
    const v = await make();
    await asAttacker(dbB.pool, (c) => change(c, v));
    await detected(t, v.runId, expected, name);
  });
}
const onTrace =
  (sql: string, attempt = 1) =>
  (c: pg.PoolClient, v: Victim) =>
    c.query(sql, [v.traceIds[attempt - 1]]);
const onRun = (sql: string) => (c: pg.PoolClient, v: Victim) => c.query(sql, [v.runId]);
const HEX = "[0-9a-f]{64}";
const stepHashReason = (step: number) =>
  new RegExp(
    `^attempt 1: step ${step}: stored step_hash ${HEX} does not match sha256\\(prev_hash \\|\\| sha256\\(content\\)\\) = ${HEX}; its content or its hash was changed$`,
  );

edit(
  "edit a step's output (its payload)",
  B.completed,
  onTrace(
    `update runproof.step_payloads set output = '{"ok":true,"i":999}' where trace_id = $1 and step_index = 2`,
  ),
  {
    status: "TAMPERED",
    attempt: 1,
    step: 2,
    reason: "attempt 1: step 2: its output payload does not match the commitment its hash covers",
  },
);
edit(
  "edit a step's timestamp",
  B.completed,
  onTrace(
    `update runproof.trace_steps set started_at = started_at - interval '1 second' where trace_id = $1 and step_index = 1`,
  ),
  { status: "TAMPERED", attempt: 1, step: 1, reason: stepHashReason(1) },
);
edit(
  "edit a step's skill, status and error commitment",
  B.completed,
  onTrace(
    `update runproof.trace_steps set skill = 'http_call', status = 'failed', output_commitment = null, error_commitment = sha256('x') where trace_id = $1 and step_index = 3`,
  ),
  { status: "TAMPERED", attempt: 1, step: 3, reason: stepHashReason(3) },
);
edit(
  "edit a step's cost",
  B.completed,
  onTrace(`update runproof.trace_steps set cost_cents = 0 where trace_id = $1 and step_index = 4`),
  { status: "TAMPERED", attempt: 1, step: 4, reason: stepHashReason(4) },
);
edit(
  "edit a step_hash",
  B.completed,
  onTrace(
    `update runproof.trace_steps set step_hash = sha256('forged') where trace_id = $1 and step_index = 3`,
  ),
  { status: "TAMPERED", attempt: 1, step: 3, reason: stepHashReason(3) },
);
edit(
  "edit a prev_hash",
  B.completed,
  onTrace(
    `update runproof.trace_steps set prev_hash = sha256('forged') where trace_id = $1 and step_index = 0`,
  ),
  {
    status: "TAMPERED",
    attempt: 1,
    step: 0,
    reason: new RegExp(
      `^attempt 1: step 0: prev_hash ${HEX} does not link to the trace's genesis hash ${HEX}$`,
    ),
  },
);
edit(
  "delete a middle step",
  B.completed,
  onTrace(`delete from runproof.trace_steps where trace_id = $1 and step_index = 2`),
  {
    status: "BROKEN",
    attempt: 1,
    step: 2,
    reason: "attempt 1: step 2 is missing from the chain (the next stored step is 3)",
  },
);
edit(
  "delete the last step of a sealed trace",
  B.completed,
  onTrace(`delete from runproof.trace_steps where trace_id = $1 and step_index = 4`),
  {
    status: "BROKEN",
    attempt: 1,
    step: 4,
    reason: "attempt 1: the seal says 5 steps but the chain has 4: step 4 onwards is missing",
  },
);
edit(
  "edit a sealed trace's root_hash",
  B.completed,
  onTrace(`update runproof.traces set root_hash = sha256('forged') where id = $1`),
  {
    status: "TAMPERED",
    attempt: 1,
    step: null,
    reason: new RegExp(`^attempt 1: the sealed root_hash ${HEX} does not match the chain's root ${HEX}$`),
  },
);
edit(
  "re-commit an edited payload and re-hash every later step (the seal still disagrees)",
  B.completed,
  async (c, v) => {
    const tr = v.traceIds[0];
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
  },
  {
    status: "TAMPERED",
    attempt: 1,
    step: null,
    reason: new RegExp(`^attempt 1: the sealed root_hash ${HEX} does not match the chain's root ${HEX}$`),
  },
);
edit(
  "insert an extra step after the seal, with its decision, payloads and hashes",
  B.completed,
  (c, v) => insertExtraStep(c, v.traceIds[0]),
  {
    status: "BROKEN",
    attempt: 1,
    step: 5,
    reason: "attempt 1: the seal says 5 steps but the chain has 6: step 5 onwards was added after the seal",
  },
);
edit(
  "swap two steps' indexes",
  B.completed,
  async (c, v) => {
    for (const [from, to] of [
      [1, 1000],
      [3, 1],
      [1000, 3],
    ])
      await c.query(
        `update runproof.trace_steps set step_index = $3 where trace_id = $1 and step_index = $2`,
        [v.traceIds[0], from, to],
      );
  },
  {
    status: "TAMPERED",
    attempt: 1,
    step: 1,
    reason: new RegExp(
      `^attempt 1: step 1: prev_hash ${HEX} does not link to the step_hash of step 0 ${HEX}$`,
    ),
  },
);
attack("B", "move a step into another run's trace", async (t) => {
  const a = await B.completed();
  const b = await B.completed();
  await asAttacker(dbB.pool, (c) =>
    c.query(
      `update runproof.trace_steps set trace_id = $2, run_id = $3, step_index = 5 where trace_id = $1 and step_index = 2`,
      [a.traceIds[0], b.traceIds[0], b.runId],
    ),
  );
  await detected(t, a.runId, {
    status: "BROKEN",
    attempt: 1,
    step: 2,
    reason: "attempt 1: step 2 is missing from the chain (the next stored step is 3)",
  });
  await detected(t, b.runId, {
    status: "TAMPERED",
    attempt: 1,
    step: 5,
    reason: new RegExp(
      `^attempt 1: step 5: prev_hash ${HEX} does not link to the step_hash of step 4 ${HEX}$`,
    ),
  });
});
edit(
  "delete a whole trace (attempt) of a run",
  B.twoAttempts,
  async (c, v) => {
    for (const tbl of ["step_payloads", "trace_steps", "policy_decisions"])
      await c.query(`delete from runproof.${tbl} where trace_id = $1`, [v.traceIds[0]]);
    await c.query(`delete from runproof.traces where id = $1`, [v.traceIds[0]]);
  },
  { status: "BROKEN", attempt: 1, step: null, reason: "the trace of attempt 1 is missing" },
);
attack("B", "move a run to another tenant", async (t) => {
  const { runId } = await B.completed();
  const other = await createTenant(dbB.pool);
  await asAttacker(dbB.pool, (c) =>
    c.query(`update runproof.runs set tenant_id = $2 where id = $1`, [runId, other.tenantId]),
  );
  const p = await proof(dbB, fB, runId);
  t.is(p.verification_status, "TAMPERED");
  t.is(
    p.reason,
    `trace ${(await dbB.pool.query(`select id from runproof.traces where run_id = $1`, [runId])).rows[0].id} (attempt 1) belongs to tenant ${fB.tenantId} but the run to tenant ${other.tenantId}`,
  );
  t.like((await verifyAll(dbB)).find((r) => r.run_id === runId && r.tenant_id === other.tenantId) ?? {}, {
    verification_status: "TAMPERED",
    reason: p.reason,
  });
  // No bundle can be exported for the tenant the run was taken from.
  await t.throwsAsync(exportBundle(dbB.pool, fB.tenantId, runId), { message: /not found for tenant/ });
});
edit(
  "edit a run's seal (its root_hash)",
  B.completed,
  onRun(`update runproof.runs set root_hash = sha256('forged') where id = $1`),
  {
    status: "TAMPERED",
    attempt: null,
    step: null,
    reason: new RegExp(`^the run's root_hash ${HEX} does not match sha256 of its seal ${HEX}$`),
  },
);
attack("B", "delete the run row (its traces and steps stay)", async (t) => {
  const {
    runId,
    traceIds: [tr],
  } = await B.completed();
  await asAttacker(dbB.pool, (c) => c.query(`delete from runproof.runs where id = $1`, [runId]));
  const p = await proof(dbB, fB, runId);
  t.is(p.verification_status, "BROKEN");
  t.is(p.reason, "the run row is missing but its traces exist");
  t.truthy(
    (await verifyAll(dbB)).find(
      (r) => r.run_id === runId && r.trace_id === tr && r.reason === "trace has no run row",
    ),
  );
  await t.throwsAsync(exportBundle(dbB.pool, fB.tenantId, runId), { message: /not found for tenant/ });
});
attack(
  "B",
  "edit a finished run's goal, origin or plan: the run seal hashes the run's own content",
  async (t) => {
    const content =
      "the run's content (agent, goal, origin, plan, idempotency key, max attempts or creation time) differs from its seal";
    for (const set of [
      `goal = 'something else entirely'`,
      `origin_system_id = 'someone-else'`,
      `plan = jsonb_set(plan, '{steps,2,input}', '{"i": 99}')`,
    ]) {
      const { runId } = await B.completed();
      await asAttacker(dbB.pool, (c) => c.query(`update runproof.runs set ${set} where id = $1`, [runId]));
      await detected(t, runId, { status: "TAMPERED", attempt: null, step: null, reason: content }, set);
    }
    // A plan with fewer steps than succeeded is caught earlier, by the completeness check.
    const { runId } = await B.completed();
    await asAttacker(dbB.pool, (c) =>
      c.query(`update runproof.runs set plan = '{"version":1,"steps":[{"skill":"noop"}]}' where id = $1`, [
        runId,
      ]),
    );
    await detected(
      t,
      runId,
      {
        status: "BROKEN",
        attempt: null,
        step: null,
        reason: "the run succeeded but 5 of 1 plan steps succeeded",
      },
      "shorter plan",
    );
  },
);

// The outcome, the traces, the decisions, the incidents and the payloads (issue 11), guards off.
edit(
  "a finished run's status failed -> succeeded",
  B.failed,
  onRun(`update runproof.runs set status = 'succeeded', error = null where id = $1`),
  {
    status: "BROKEN",
    attempt: null,
    step: null,
    reason: "the run succeeded but 1 of 3 plan steps succeeded",
  },
);
edit(
  "a finished run's status halted -> succeeded",
  B.halted,
  onRun(`update runproof.runs set status = 'succeeded', error = null where id = $1`),
  {
    status: "BROKEN",
    attempt: null,
    step: null,
    reason: "the run succeeded but 1 of 3 plan steps succeeded",
  },
);
edit(
  "a finished run's status failed -> cancelled (an outcome its steps allow: only the seal tells)",
  B.failed,
  onRun(`update runproof.runs set status = 'cancelled' where id = $1`),
  {
    status: "TAMPERED",
    attempt: null,
    step: null,
    reason: `the run's status is "cancelled" but its seal says "failed"`,
  },
);
edit(
  "a finished run's error changed",
  B.failed,
  onRun(`update runproof.runs set error = 'nothing happened' where id = $1`),
  {
    status: "TAMPERED",
    attempt: null,
    step: null,
    reason: `the run's error is "nothing happened" but its seal says "step 1 failed: boom"`,
  },
);
edit(
  "a finished run's finish time changed",
  B.completed,
  onRun(`update runproof.runs set finished_at = finished_at + interval '1 day' where id = $1`),
  {
    status: "TAMPERED",
    attempt: null,
    step: null,
    reason: /^the run's finished_at is "[0-9T:.-]+" but its seal says "[0-9T:.-]+"$/,
  },
);
edit(
  "a finished run's cost changed (its seal's cost is not its steps')",
  B.completed,
  onRun(`update runproof.runs set cost_cents = 1 where id = $1`),
  {
    status: "BROKEN",
    attempt: null,
    step: null,
    reason: "the run's cost is 1.0000 cents but its steps cost 2.5000",
  },
);
edit(
  "a run's created_at changed",
  B.completed,
  onRun(`update runproof.runs set created_at = created_at - interval '1 day' where id = $1`),
  {
    status: "TAMPERED",
    attempt: null,
    step: null,
    reason:
      "the run's content (agent, goal, origin, plan, idempotency key, max attempts or creation time) differs from its seal",
  },
);
edit(
  "runs.attempts lowered below the number of traces",
  B.twoAttempts,
  onRun(`update runproof.runs set attempts = 1 where id = $1`),
  {
    status: "BROKEN",
    attempt: 2,
    step: null,
    reason: "the run made 1 attempts but 2 traces exist: attempt 2 onwards is not one of its attempts",
  },
);
edit(
  "a trace's status failed -> completed",
  B.failed,
  onTrace(`update runproof.traces set status = 'completed' where id = $1`),
  {
    status: "BROKEN",
    attempt: 1,
    step: null,
    reason: "attempt 1: the trace is completed but its last step is failed",
  },
);
edit(
  "a trace's status completed -> aborted (consistent with its steps: only the seal tells)",
  B.completed,
  onTrace(`update runproof.traces set status = 'aborted' where id = $1`),
  {
    status: "TAMPERED",
    attempt: 1,
    step: null,
    reason: `attempt 1: the trace's status is "aborted" but its seal says "completed"`,
  },
);
edit(
  "a trace's metadata changed",
  B.failed,
  onTrace(`update runproof.traces set metadata = '{"worker": "elsewhere"}' where id = $1`, 2),
  {
    status: "TAMPERED",
    attempt: 2,
    step: null,
    reason: `attempt 2: the trace's metadata is {"worker": "elsewhere"} but its seal says {}`,
  },
);
edit(
  "a policy decision changed to deny while its step says allow",
  B.completed,
  onTrace(
    `update runproof.policy_decisions set decision = 'deny', reason = 'skill not allowed' where trace_id = $1 and step_index = 2`,
  ),
  {
    status: "TAMPERED",
    attempt: 1,
    step: 2,
    reason: new RegExp(
      `^attempt 1: step 2: its policy decision was changed: the step holds decision_hash ${HEX}, the decision hashes to ${HEX}$`,
    ),
  },
);
attack("B", "any other column of a policy decision changed", async (t) => {
  for (const set of [
    `rule = 'allowed_skills'`,
    `reason = 'approved by nobody'`,
    `budget_cents = 100`,
    `spent_cents = 0`,
    `decided_at = decided_at - interval '1 hour'`,
    `plan_step = 7`,
    `skill = 'http_call'`,
  ]) {
    const v = await B.completed();
    await asAttacker(dbB.pool, (c) =>
      c.query(`update runproof.policy_decisions set ${set} where trace_id = $1 and step_index = 3`, [
        v.traceIds[0],
      ]),
    );
    await detected(
      t,
      v.runId,
      {
        status: "TAMPERED",
        attempt: 1,
        step: 3,
        reason: new RegExp(
          `^attempt 1: step 3: its policy decision was changed: the step holds decision_hash ${HEX}, the decision hashes to ${HEX}$`,
        ),
      },
      set,
    );
  }
});
edit(
  "a policy decision deleted",
  B.completed,
  onTrace(`delete from runproof.policy_decisions where trace_id = $1 and step_index = 0`),
  {
    status: "BROKEN",
    attempt: 1,
    step: 0,
    reason: "attempt 1: step 0: its policy decision is missing",
  },
);
attack(
  "B",
  "a running run's progress set ahead (next_plan_step = 3): BROKEN while running, and once the run ends",
  async (t) => {
    const v = await B.running();
    await asAttacker(dbB.pool, (c) =>
      c.query(`update runproof.runs set next_plan_step = 3 where id = $1`, [v.runId]),
    );
    const reason = "the run's progress says 3 plan steps succeeded but its steps show 1";
    await detected(t, v.runId, { status: "BROKEN", attempt: null, step: null, reason }, "while running");
    // With the guards back on, the run cannot end succeeded: the seal refuses progress that is not its steps'.
    await sealTrace(dbB.pool, fB, v.traceIds[0]);
    const e = await pgError(finishRun(dbB.pool, fB, v.runId, "succeeded"));
    t.is(e.code, "RPSTS");
    t.is(
      e.message,
      `run ${v.runId} cannot be sealed: its progress (3 plan steps, 0.5000 cents) is not its steps' (1 succeeded, 0.5000 cents)`,
    );
    // The attacker ends it with the guards off, sealing it consistently: the progress still tells.
    await asAttacker(dbB.pool, (c) => forgeRunSeal(c, v.runId, "succeeded"));
    await detected(t, v.runId, { status: "BROKEN", attempt: null, step: null, reason }, "ended");
  },
);
edit(
  "a run that 'succeeded' with 1 of 3 plan steps recorded, sealed consistently",
  B.running,
  async (c, v) => {
    await forgeTraceSeal(c, v.traceIds[0], "completed");
    await forgeRunSeal(c, v.runId, "succeeded");
  },
  {
    status: "BROKEN",
    attempt: null,
    step: null,
    reason: "the run succeeded but 1 of 3 plan steps succeeded",
  },
);
edit(
  "a step recorded after a failed step of its trace",
  B.failed,
  (c, v) => insertExtraStep(c, v.traceIds[0], 1),
  {
    status: "BROKEN",
    attempt: 1,
    step: 1,
    reason: "attempt 1: step 1 failed, but the trace goes on after it",
  },
);
edit(
  "edit an incident",
  B.failed,
  onRun(`update runproof.incidents set message = 'all good' where run_id = $1 and kind = 'step_failed'`),
  {
    status: "TAMPERED",
    attempt: null,
    step: null,
    reason: /^incident [0-9a-f-]{36} differs from the one in the run's seal$/,
  },
);
edit(
  "delete an incident",
  B.failed,
  onRun(`delete from runproof.incidents where run_id = $1 and kind = 'run_failed'`),
  {
    status: "TAMPERED",
    attempt: null,
    step: null,
    reason: "the run's incidents differ from its seal: 2 in the seal, 1 now",
  },
);
edit(
  "add an incident to a finished run",
  B.completed,
  onRun(
    `insert into runproof.incidents (tenant_id, run_id, kind, message) select tenant_id, id, 'worker_crashed', 'x' from runproof.runs where id = $1`,
  ),
  {
    status: "TAMPERED",
    attempt: null,
    step: null,
    reason: "the run's incidents differ from its seal: 0 in the seal, 1 now",
  },
);
for (const [kind, step, sql] of [
  ["input", 0, `update runproof.step_payloads set input = '{"i": 7}' where trace_id = $1 and step_index = 0`],
  [
    "output",
    0,
    `update runproof.step_payloads set output = '{"ok": false}' where trace_id = $1 and step_index = 0`,
  ],
  ["error", 1, `update runproof.step_payloads set error = 'all fine' where trace_id = $1 and step_index = 1`],
] as const)
  edit(`edit a payload's ${kind} that was not erased`, B.failed, onTrace(sql), {
    status: "TAMPERED",
    attempt: 1,
    step,
    reason: `attempt 1: step ${step}: its ${kind} payload does not match the commitment its hash covers`,
  });
edit(
  "delete a payload without an erasure record",
  B.completed,
  onTrace(`delete from runproof.step_payloads where trace_id = $1 and step_index = 3`),
  {
    status: "BROKEN",
    attempt: 1,
    step: 3,
    reason: "attempt 1: step 3: its payloads are missing and no erasure of them is recorded",
  },
);
attack("B", "a bundle whose run created_at is edited (offline)", async (t) => {
  const { runId } = await B.completed();
  const bundle: Bundle = JSON.parse(JSON.stringify(await exportBundle(dbB.pool, fB.tenantId, runId)));
  const created = JSON.parse(bundle.run.content)[9] as string;
  const earlier = `${Number(created.slice(0, 4)) - 1}${created.slice(4)}`; // a year earlier
  const verify = (b: Bundle) => verifyBundle(b, { sha256: nodeSha256 });
  // The content alone: its hash is no longer the one the run's state lists.
  const edited = structuredClone(bundle);
  edited.run.content = bundle.run.content.replace(`"${created}"`, `"${earlier}"`);
  t.not(edited.run.content, bundle.run.content);
  t.like(await verify(edited), {
    verification_status: "TAMPERED",
    reason: "the run's content is not the content its state was computed from",
  });
  // The content and the state's content hash: the seal disagrees.
  const both = structuredClone(edited);
  both.run.state = bundle.run.state.replace(sha256hex(bundle.run.content), sha256hex(edited.run.content));
  t.not(both.run.state, bundle.run.state);
  t.like(await verify(both), {
    verification_status: "TAMPERED",
    first_bad_attempt: null,
    reason:
      "the run's content (agent, goal, origin, plan, idempotency key, max attempts or creation time) differs from its seal",
  });
  // The seal and the root too: consistent again, but the root is not the one the database sealed.
  const all = structuredClone(both);
  all.run.seal = both.run.state;
  all.run.root_hash = sha256hex(all.run.seal);
  const forged = await verify(all);
  t.is(forged.verification_status, "VERIFIED");
  t.not(
    forged.root_hash,
    (await offlineProof(dbB.pool, fB.tenantId, runId)).root_hash,
    "caught against a kept root (proof verify --expect-root)",
  );
});

/**
 * What a superuser with the guards off would write to seal a trace as the database does: the new row
 * is built first (jsonb_populate_record) so that its seal is computed over its final values, in the
 * one UPDATE the table's constraints allow.
 */
async function forgeTraceSeal(c: pg.PoolClient, traceId: string, status: string) {
  await c.query(
    `update runproof.traces t
        set status = (n.x).status, completed_at = (n.x).completed_at, step_count = (n.x).step_count, root_hash = (n.x).root_hash,
            seal = runproof_private.trace_canonical(n.x), seal_hash = sha256(runproof_private.trace_canonical(n.x))
       from (select jsonb_populate_record(t0, jsonb_build_object(
                      'status', $2::text, 'completed_at', clock_timestamp(),
                      'step_count', (select count(*) from runproof.trace_steps s where s.trace_id = t0.id),
                      'root_hash', coalesce((select s.step_hash from runproof.trace_steps s where s.trace_id = t0.id order by s.step_index desc limit 1),
                                            runproof_private.genesis_hash(t0.tenant_id, t0.run_id, t0.id)))) as x
               from runproof.traces t0 where t0.id = $1) n
      where t.id = $1`,
    [traceId, status],
  );
}
/** ... and to seal a run. */
async function forgeRunSeal(c: pg.PoolClient, runId: string, status: string) {
  await c.query(
    `update runproof.runs r
        set status = (n.x).status, finished_at = (n.x).finished_at, updated_at = (n.x).finished_at, trace_count = (n.x).trace_count,
            seal = runproof_private.run_seal_canonical(n.x), root_hash = sha256(runproof_private.run_seal_canonical(n.x))
       from (select jsonb_populate_record(r0, jsonb_build_object(
                      'status', $2::text, 'finished_at', clock_timestamp(),
                      'trace_count', (select count(*) from runproof.traces t where t.run_id = r0.id))) as x
               from runproof.runs r0 where r0.id = $1) n
      where r.id = $1`,
    [runId, status],
  );
}

// ---------------------------------------------------------------------------------------------
// C. Schema attacks: the DDL audit (guard_status, verify_all) catches what the chain cannot
// ---------------------------------------------------------------------------------------------

interface Scene {
  db: TestDatabase;
  f: Fixture;
  /** Finished before the attack: stays GUARDED unless the attack is still in effect. */
  before: string;
  /** Running across the attack: steps 0-1 recorded before, 2-3 after, then sealed and finished. */
  inFlight: string;
  inFlightTrace: string;
  finish(): Promise<void>;
}

async function scene(label: string): Promise<Scene> {
  const db = await createTestDatabase(`tamper-${label}`);
  const f = await createTenant(db.pool);
  const before = (await completedRun(db.pool, f, { stepsPerTrace: 2 })).runId;
  const inFlight = await insertRun(db.pool, f, { steps: 4 });
  const inFlightTrace = await startAttempt(db.pool, f, inFlight);
  await appendStep(db.pool, f, inFlight, inFlightTrace, 0);
  await appendStep(db.pool, f, inFlight, inFlightTrace, 1);
  return {
    db,
    f,
    before,
    inFlight,
    inFlightTrace,
    async finish() {
      await appendStep(db.pool, f, inFlight, inFlightTrace, 2);
      await appendStep(db.pool, f, inFlight, inFlightTrace, 3);
      await sealTrace(db.pool, f, inFlightTrace);
      await finishRun(db.pool, f, inFlight);
    },
  };
}

/** Sets a scene up, runs the attack as a superuser session, finishes the in-flight run. */
async function ddlAttack(
  t: ExecutionContext,
  label: string,
  attackSql: (c: pg.PoolClient, s: Scene) => Promise<unknown>,
): Promise<Scene> {
  const s = await scene(label);
  t.teardown(() => s.db.drop());
  await session(s.db, (c) => attackSql(c, s));
  await s.finish();
  return s;
}

/** The in-flight run is UNGUARDED because of a recorded change; the run finished before is not. */
async function flaggedByChange(t: ExecutionContext, s: Scene, change: RegExp, chain = "VERIFIED") {
  const p = await proof(s.db, s.f, s.inFlight);
  t.is(p.verification_status, chain, p.reason ?? "");
  t.is(p.guard_status, "UNGUARDED", p.guard_detail ?? "");
  t.regex(p.guard_detail ?? "", change);
  const row = (await verifyAll(s.db)).find((r) => r.run_id === s.inFlight);
  t.is(row?.guard_status, "UNGUARDED", "verify_all lists the run recorded across the change");
  t.false(
    (await verifyAll(s.db)).some((r) => r.run_id === s.before),
    "the run finished before the change is not listed",
  );
}

/** A ledger-wide problem that is still there: a verify_all row without a run. */
async function flaggedNow(t: ExecutionContext, s: Scene, status: "UNGUARDED" | "UNAUDITED", reason: RegExp) {
  const rows = (await verifyAll(s.db)).filter((r) => r.run_id === null);
  t.true(
    rows.some((r) => r.guard_status === status && reason.test(r.reason)),
    `verify_all has a ${status} row matching ${reason}: ${JSON.stringify(rows)}`,
  );
}

attack(
  "C",
  "disable a guard trigger during a run, then re-enable it (no data changed: only the audit can tell)",
  async (t) => {
    const s = await ddlAttack(t, "disable-reenable", async (c) => {
      await c.query(`alter table runproof.trace_steps disable trigger tg_trace_steps__append_only`);
      await c.query(`alter table runproof.trace_steps enable always trigger tg_trace_steps__append_only`);
    });
    await flaggedByChange(
      t,
      s,
      /ALTER TABLE runproof\.trace_steps at .* \(runproof_private\.ddl_audit id \d+\)/,
    );
    const after = (await completedRun(s.db.pool, s.f, { stepsPerTrace: 2 })).runId;
    t.is(
      (await proof(s.db, s.f, after)).guard_status,
      "GUARDED",
      "a run recorded after the guard was restored is GUARDED",
    );
    t.is((await proof(s.db, s.f, s.before)).guard_status, "GUARDED");
    const {
      rows: [a],
    } = await s.db.pool.query(
      `select command_tag, object_identity, statement, session_user_name from runproof_private.ddl_audit where statement ~ 'disable trigger' order by id desc limit 1`,
    );
    t.like(a, {
      command_tag: "ALTER TABLE",
      object_identity: "runproof.trace_steps",
      session_user_name: "postgres",
    });
  },
);
attack("C", "disable a guard trigger and leave it disabled", async (t) => {
  const s = await ddlAttack(t, "disable-leave", (c) =>
    c.query(`alter table runproof.trace_steps disable trigger tg_trace_steps__append_only`),
  );
  await flaggedByChange(t, s, /ALTER TABLE runproof\.trace_steps|now: guard tg_trace_steps__append_only/);
  await flaggedNow(
    t,
    s,
    "UNGUARDED",
    /^now: guard tg_trace_steps__append_only on runproof\.trace_steps is DISABLED$/,
  );
  const p = await proof(s.db, s.f, s.before);
  t.is(p.guard_status, "UNGUARDED", "while a guard is down, no run's proof says GUARDED");
  t.is(p.guard_detail, "now: guard tg_trace_steps__append_only on runproof.trace_steps is DISABLED");
});
attack("C", "replace a guard's trigger function with a no-op, then edit a step through it", async (t) => {
  const s = await ddlAttack(t, "noop-function", async (c) => {
    await c.query(
      `create or replace function runproof_private.tg__append_only() returns trigger language plpgsql as $$ begin return coalesce(new, old); end $$`,
    );
  });
  // The no-op lets an UPDATE through: the chain catches the data, the audit the function.
  await s.db.pool.query(
    `update runproof.trace_steps set cost_cents = 0 where trace_id = $1 and step_index = 1`,
    [s.inFlightTrace],
  );
  await flaggedByChange(t, s, /CREATE FUNCTION runproof_private\.tg__append_only\(\)/, "TAMPERED");
  await flaggedNow(
    t,
    s,
    "UNGUARDED",
    /^now: function runproof_private\.tg__append_only\(\) was changed since the last migration/,
  );
});
attack("C", "drop a CHECK constraint", async (t) => {
  const s = await ddlAttack(t, "drop-constraint", (c) =>
    c.query(`alter table runproof.trace_steps drop constraint trace_steps_time_order`),
  );
  await flaggedByChange(t, s, /ALTER TABLE (trace_steps_time_order on )?runproof\.trace_steps/);
  await flaggedNow(
    t,
    s,
    "UNGUARDED",
    /constraint trace_steps_time_order on runproof\.trace_steps was dropped since the last migration/,
  );
});
attack("C", "change a column default", async (t) => {
  const s = await ddlAttack(t, "default", (c) =>
    c.query(`alter table runproof.runs alter column max_attempts set default 20`),
  );
  await flaggedByChange(t, s, /ALTER TABLE runproof\.runs/);
  await flaggedNow(
    t,
    s,
    "UNGUARDED",
    /column runproof\.runs\.max_attempts was changed since the last migration/,
  );
});
attack("C", "alter a column's type (hashes unchanged: invisible to the chain)", async (t) => {
  const s = await ddlAttack(t, "column-type", (c) =>
    c.query(`alter table runproof.trace_steps alter column cost_cents type numeric`),
  );
  await flaggedByChange(t, s, /ALTER TABLE runproof\.trace_steps/, "VERIFIED");
  await flaggedNow(t, s, "UNGUARDED", /column runproof\.trace_steps\.cost_cents was changed/);
});
attack("C", "drop a guard trigger", async (t) => {
  const s = await ddlAttack(t, "drop-trigger", (c) =>
    c.query(`drop trigger tg_incidents__append_only on runproof.incidents`),
  );
  await flaggedByChange(
    t,
    s,
    /DROP TRIGGER tg_incidents__append_only on runproof\.incidents|now: guard tg_incidents__append_only .* MISSING/,
  );
  await flaggedNow(
    t,
    s,
    "UNGUARDED",
    /^now: guard tg_incidents__append_only on runproof\.incidents is MISSING$/,
  );
  await flaggedNow(
    t,
    s,
    "UNGUARDED",
    /trigger tg_incidents__append_only on runproof\.incidents was dropped since the last migration/,
  );
});
attack("C", "rename a guard trigger", async (t) => {
  const s = await ddlAttack(t, "rename-trigger", (c) =>
    c.query(`alter trigger tg_runs__guard on runproof.runs rename to tg_runs__zz_harmless`),
  );
  await flaggedByChange(t, s, /ALTER TRIGGER|now: guard tg_runs__guard/);
  await flaggedNow(t, s, "UNGUARDED", /^now: guard tg_runs__guard on runproof\.runs is MISSING$/);
});
attack("C", "disable every trigger of a table, foreign keys included, and leave them", async (t) => {
  const s = await ddlAttack(t, "disable-all", (c) =>
    c.query(`alter table runproof.policy_decisions disable trigger all`),
  );
  await flaggedNow(
    t,
    s,
    "UNGUARDED",
    /^now: guard tg_policy_decisions__check on runproof\.policy_decisions is DISABLED$/,
  );
  await flaggedNow(
    t,
    s,
    "UNGUARDED",
    /^now: foreign key policy_decisions_tenant_id_run_id_trace_id_fkey on runproof\.policy_decisions is DISABLED$/,
  );
});
attack(
  "C",
  "add a trigger that rewrites each payload after it is checked against its commitment",
  async (t) => {
    const s = await ddlAttack(t, "evil-trigger", async (c) => {
      await c.query(
        `create function runproof_private.tg_zz_rewrite() returns trigger language plpgsql as $$ begin new.output := '{"rewritten": true}'; return new; end $$`,
      );
      // Named to fire after tg_step_payloads__check, which compares the payload with the step's commitment.
      await c.query(
        `create trigger tg_step_payloads__zz_rewrite before insert on runproof.step_payloads for each row execute function runproof_private.tg_zz_rewrite()`,
      );
    });
    await flaggedByChange(t, s, /CREATE FUNCTION runproof_private\.tg_zz_rewrite\(\)/, "TAMPERED");
    t.is(
      (await proof(s.db, s.f, s.inFlight)).reason,
      "attempt 1: step 2: its output payload does not match the commitment its hash covers",
    );
    await flaggedNow(
      t,
      s,
      "UNGUARDED",
      /trigger tg_step_payloads__zz_rewrite on runproof\.step_payloads was added since the last migration/,
    );
  },
);
attack("C", "grant INSERT and UPDATE on the steps to the tenant role", async (t) => {
  const s = await ddlAttack(t, "grant", (c) =>
    c.query(`grant insert, update on runproof.trace_steps to runproof_tenant`),
  );
  await flaggedByChange(t, s, /^now: runproof_tenant may write runproof\.trace_steps/);
  t.true(
    (
      await s.db.pool.query(
        `select 1 from runproof_private.ddl_audit where command_tag = 'GRANT' and statement ~ 'runproof_tenant'`,
      )
    ).rowCount === 1,
    "the GRANT is in the DDL audit",
  );
  await flaggedNow(
    t,
    s,
    "UNGUARDED",
    /^now: runproof_tenant may write runproof\.trace_steps \(INSERT, UPDATE\)$/,
  );
  // The tenant's UPDATE still changes nothing: row level security has no UPDATE policy (and the
  // append-only trigger would refuse the row anyway).
  const c = await s.db.pool.connect();
  try {
    await c.query("begin");
    await c.query(`set local role runproof_tenant`);
    await c.query(`select set_config('runproof.tenant_id', $1, true)`, [s.f.tenantId]);
    const r = await c.query(`update runproof.trace_steps set cost_cents = 0 where run_id = $1`, [s.before]);
    t.is(r.rowCount, 0);
  } finally {
    await c.query("rollback");
    c.release();
  }
});
attack("C", "switch row level security off", async (t) => {
  const s = await ddlAttack(t, "rls-off", (c) =>
    c.query(`alter table runproof.runs disable row level security`),
  );
  await flaggedByChange(t, s, /ALTER TABLE runproof\.runs|now: row level security/);
  await flaggedNow(t, s, "UNGUARDED", /^now: row level security is off on runproof\.runs$/);
});
attack("C", "replace the guards view so a disabled guard looks 'always'", async (t) => {
  const s = await ddlAttack(t, "lying-view", async (c) => {
    await c.query(`alter view runproof_private.guards rename to guards_real`);
    await c.query(
      `create view runproof_private.guards as select table_name, trigger_name, 'always'::text as enabled, blocks, allows, definition from runproof_private.guards_real`,
    );
    await c.query(`alter table runproof.trace_steps disable trigger tg_trace_steps__append_only`);
  });
  const { rows } = await s.db.pool.query(
    `select enabled from runproof_private.guards where trigger_name = 'tg_trace_steps__append_only'`,
  );
  t.is(rows[0].enabled, "always", "the view lies");
  await flaggedNow(
    t,
    s,
    "UNGUARDED",
    /^now: guard tg_trace_steps__append_only on runproof\.trace_steps is DISABLED$/,
  );
  await flaggedNow(t, s, "UNGUARDED", /view runproof_private\.guards was changed since the last migration/);
  await flaggedByChange(t, s, /ALTER VIEW|CREATE VIEW|ALTER TABLE|now:/);
});
attack(
  "C",
  "replace the verifier (run_proof) with one that always says VERIFIED, then edit a step",
  async (t) => {
    const s = await ddlAttack(t, "fake-verifier", (c) =>
      c.query(
        `create or replace function runproof.run_proof(tenant_id uuid, run_id uuid) returns runproof.proof language sql stable
       as $$ select row('HASH_CHAIN', 'VERIFIED', tenant_id, run_id, null, 0, null, 0, 0, null, null, null, null, now(), 'GUARDED', null, 2, 0, null, null, null, null)::runproof.proof $$`,
      ),
    );
    await asAttacker(s.db.pool, (c) =>
      c.query(
        `update runproof.step_payloads set output = '{"forged": true}' where run_id = $1 and step_index = 0`,
        [s.before],
      ),
    );
    t.is(
      (await proof(s.db, s.f, s.before)).verification_status,
      "VERIFIED",
      "the replaced run_proof is fooled, as it was written to be",
    );
    // verify_all checks the chain with its own function, and the schema against the last migration.
    const rows = await verifyAll(s.db);
    t.truthy(rows.find((r) => r.run_id === s.before && r.verification_status === "TAMPERED"));
    await flaggedNow(
      t,
      s,
      "UNGUARDED",
      /^now: function runproof\.run_proof\(uuid,uuid\) was changed since the last migration/,
    );
    // And the offline verifier needs no database code at all.
    t.is((await offlineProof(s.db.pool, s.f.tenantId, s.before)).verification_status, "TAMPERED");
  },
);
attack("C", "take graphile-migrate's advisory lock to pass a change off as a migration", async (t) => {
  const s = await ddlAttack(t, "fake-migration", async (c) => {
    await c.query(`select pg_advisory_xact_lock(4727445306447283)`);
    await c.query(`alter table runproof.traces disable trigger tg_traces__guard`);
    await c.query(`alter table runproof.traces enable always trigger tg_traces__guard`);
  });
  await flaggedByChange(t, s, /ALTER TABLE runproof\.traces/);
  const { rows } = await s.db.pool.query(
    `select bool_and(migration_lock_held) as held from runproof_private.ddl_audit where object_identity = 'runproof.traces'`,
  );
  t.true(
    rows[0].held,
    "recorded with the lock held; still not a migration: no migration row in that transaction",
  );
});
attack("C", "disable the DDL audit's event trigger", async (t) => {
  const s = await ddlAttack(t, "audit-disabled", (c) =>
    c.query(`alter event trigger runproof_ddl_audit_end disable`),
  );
  const p = await proof(s.db, s.f, s.before);
  t.is(p.guard_status, "UNAUDITED");
  t.regex(p.guard_detail ?? "", /event trigger runproof_ddl_audit_end is DISABLED/);
  await flaggedNow(
    t,
    s,
    "UNAUDITED",
    /the DDL audit is not live: event trigger runproof_ddl_audit_end is DISABLED/,
  );
});
attack("C", "drop the DDL audit's event triggers", async (t) => {
  const s = await ddlAttack(t, "audit-dropped", async (c) => {
    await c.query(`drop event trigger runproof_ddl_audit_end`);
    await c.query(`drop event trigger runproof_ddl_audit_drop`);
  });
  t.is((await proof(s.db, s.f, s.inFlight)).guard_status, "UNAUDITED");
  await flaggedNow(
    t,
    s,
    "UNAUDITED",
    /event trigger runproof_ddl_audit_end is missing; event trigger runproof_ddl_audit_drop is missing/,
  );
});
attack(
  "C",
  "replace the DDL audit's function with a no-op (the replacement itself goes unrecorded)",
  async (t) => {
    const s = await ddlAttack(t, "audit-noop", (c) =>
      c.query(
        `create or replace function runproof_private.ddl_audit_record(p_event text, p_tag text, p_object_type text, p_schema_name text, p_object_identity text)
       returns void language sql as 'select'`,
      ),
    );
    t.is((await proof(s.db, s.f, s.before)).guard_status, "UNAUDITED");
    await flaggedNow(
      t,
      s,
      "UNAUDITED",
      /the audit's functions \(tg__ddl_audit, ddl_audit_record\) were replaced outside a migration/,
    );
  },
);
attack("C", "disable the DDL audit's own guard, delete its records, re-enable it", async (t) => {
  const s = await ddlAttack(t, "audit-erased", async (c) => {
    const {
      rows: [{ max }],
    } = await c.query(`select max(id) from runproof_private.ddl_audit`);
    await c.query(`alter table runproof_private.ddl_audit disable trigger tg_ddl_audit__append_only`);
    await c.query(`alter table runproof.trace_steps disable trigger tg_trace_steps__append_only`);
    await c.query(`alter table runproof.trace_steps enable always trigger tg_trace_steps__append_only`);
    await c.query(`delete from runproof_private.ddl_audit where id > $1`, [max]);
    await c.query(`alter table runproof_private.ddl_audit enable always trigger tg_ddl_audit__append_only`);
  });
  // Re-enabling the guard is itself a schema change, recorded after the deletion.
  await flaggedByChange(t, s, /ALTER TABLE runproof_private\.ddl_audit/);
});
attack("C", "disable the DDL audit's own guard and leave it", async (t) => {
  const s = await ddlAttack(t, "audit-unguarded", (c) =>
    c.query(`alter table runproof_private.ddl_audit disable trigger tg_ddl_audit__append_only`),
  );
  t.is((await proof(s.db, s.f, s.before)).guard_status, "UNAUDITED");
  await flaggedNow(
    t,
    s,
    "UNAUDITED",
    /guard tg_ddl_audit__append_only on runproof_private\.ddl_audit is DISABLED/,
  );
});
attack(
  "C",
  "LIMIT: SET event_triggers = off, disable the guards, edit a payload: no audit record, the commitment still catches the edit",
  async (t) => {
    const s = await scene("event-triggers-off");
    t.teardown(() => s.db.drop());
    await s.finish();
    const {
      rows: [{ n: before }],
    } = await s.db.pool.query(`select count(*)::int as n from runproof_private.ddl_audit`);
    await session(s.db, async (c) => {
      await c.query(`set local event_triggers = off`);
      await c.query(`alter table runproof.step_payloads disable trigger all`);
      await c.query(
        `update runproof.step_payloads set output = '{"forged": true}' where run_id = $1 and step_index = 1`,
        [s.before],
      );
      await c.query(`alter table runproof.step_payloads enable trigger all`);
      for (const g of ["check", "guard", "no_truncate"])
        await c.query(`alter table runproof.step_payloads enable always trigger tg_step_payloads__${g}`);
    });
    const {
      rows: [{ n: after }],
    } = await s.db.pool.query(`select count(*)::int as n from runproof_private.ddl_audit`);
    t.is(after, before, "a superuser can switch event triggers off for a session: nothing was recorded");
    const p = await proof(s.db, s.f, s.before);
    t.is(p.verification_status, "TAMPERED");
    t.is(p.first_bad_step_index, 1);
    t.is(p.reason, "attempt 1: step 1: its output payload does not match the commitment its hash covers");
    t.truthy(
      (await verifyAll(s.db)).find((r) => r.run_id === s.before && r.verification_status === "TAMPERED"),
    );
  },
  EVENT_TRIGGERS_GUC,
);
attack(
  "C",
  "LIMIT: a consistent rewrite (payload, commitment, chain and both seals) with event triggers off: caught only against a root kept outside the database",
  async (t) => {
    const s = await scene("consistent-rewrite");
    t.teardown(() => s.db.drop());
    await s.finish();
    const recorded = (await proof(s.db, s.f, s.before)).root_hash; // e.g. kept by an auditor, or in an exported bundle
    const TABLES = ["runs", "traces", "trace_steps", "step_payloads"];
    await session(s.db, async (c) => {
      await c.query(`set local event_triggers = off`);
      for (const tbl of TABLES) await c.query(`alter table runproof.${tbl} disable trigger all`);
      const {
        rows: [tr],
      } = await c.query(`select id from runproof.traces where run_id = $1`, [s.before]);
      // The payload, its commitment, the chain, the trace's seal and the run's seal, all recomputed.
      await c.query(
        `update runproof.step_payloads set output = '{"rewritten": true}' where trace_id = $1 and step_index = 0`,
        [tr.id],
      );
      await c.query(
        `update runproof.trace_steps s set output_commitment = runproof_private.payload_commitment('output', p.output_salt, p.output::text)
           from runproof.step_payloads p where p.trace_id = s.trace_id and p.step_index = s.step_index and s.trace_id = $1 and s.step_index = 0`,
        [tr.id],
      );
      for (let i = 0; i < 2; i++) {
        await c.query(
          `update runproof.trace_steps s set prev_hash = coalesce((select step_hash from runproof.trace_steps where trace_id = $1 and step_index = $2 - 1), runproof_private.genesis_hash(s.tenant_id, s.run_id, s.trace_id)) where trace_id = $1 and step_index = $2`,
          [tr.id, i],
        );
        await c.query(
          `update runproof.trace_steps s set step_hash = runproof_private.step_hash(s.prev_hash, runproof_private.step_canonical(s)) where trace_id = $1 and step_index = $2`,
          [tr.id, i],
        );
      }
      await c.query(
        `update runproof.traces t set root_hash = (select step_hash from runproof.trace_steps where trace_id = t.id and step_index = 1) where id = $1`,
        [tr.id],
      );
      await c.query(
        `update runproof.traces t set seal = runproof_private.trace_canonical(t), seal_hash = sha256(runproof_private.trace_canonical(t)) where id = $1`,
        [tr.id],
      );
      await c.query(
        `update runproof.runs r set seal = runproof_private.run_seal_canonical(r), root_hash = runproof_private.run_root_hash(r) where id = $1`,
        [s.before],
      );
      for (const tbl of TABLES) {
        await c.query(`alter table runproof.${tbl} enable trigger all`);
        const { rows: trg } = await c.query(
          `select tgname from pg_trigger where tgrelid = $1::regclass and not tgisinternal`,
          [`runproof.${tbl}`],
        );
        for (const g of trg) await c.query(`alter table runproof.${tbl} enable always trigger ${g.tgname}`);
      }
    });
    const p = await proof(s.db, s.f, s.before);
    t.is(p.verification_status, "VERIFIED", "inside the database nothing shows");
    t.is(p.guard_status, "GUARDED");
    t.not(
      p.root_hash,
      recorded,
      "the root no longer matches the one kept outside the database (proof verify --expect-root)",
    );
  },
  EVENT_TRIGGERS_GUC,
);

test("the catalogue has every attack of docs/reliability.md, and says which group caught each", (t) => {
  const by = (g: string) => catalogue.filter((c) => c.group === g).length;
  t.deepEqual([by("A"), by("B"), by("C")], [26, 43, 22], "docs/reliability.md section 4 lists them all");
  t.log(
    `${catalogue.length} attacks: ${by("A")} rejected by the guards, ${by("B")} superuser data edits (caught by the hashes and the completeness checks, all four verifiers agreeing), ${by("C")} schema attacks (caught by the DDL audit)`,
  );
  t.log(`stated limits: ${catalogue.filter((c) => c.name.startsWith("LIMIT")).length}`);
});
