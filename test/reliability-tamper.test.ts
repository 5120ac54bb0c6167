// The tamper catalogue: every attack on the ledger we could think of, each one either REJECTED
// (by a guard, with its SQLSTATE) or DETECTED (by runproof.run_proof and runproof.verify_all),
// and, where neither holds, the limit stated and shown (the last two of group C).
//
//   A  rejected outright: writes the guards refuse, even in replica mode and for a superuser
//   B  superuser data edits with every trigger disabled: caught by the hash chain
//   C  schema (DDL) attacks: caught by the DDL audit (proof.guard_status, verify_all rows)
//
// Groups A and B share a database each; every C attack gets its own, because what it leaves
// behind (a disabled trigger, a replaced function) would change what the others see.
import test, { type ExecutionContext } from "ava";
import type pg from "pg";
import { exportBundle } from "../src/lib/bundle.ts";
import { verifyBundle } from "../src/lib/offline-verify.ts";
import { createTestDatabase, type TestDatabase } from "./helpers/db.ts";
import {
  appendStep,
  asAttacker,
  completedRun,
  createTenant,
  finishRun,
  insertRun,
  pgError,
  runProof,
  sealTrace,
  startAttempt,
  verifyTrace,
  type Fixture,
} from "./helpers/ledger.ts";

const catalogue: Array<{ group: string; name: string }> = [];
function attack(group: "A" | "B" | "C", name: string, fn: (t: ExecutionContext) => Promise<void>) {
  catalogue.push({ group, name });
  test(`${group}${catalogue.filter((c) => c.group === group).length}: ${name}`, fn);
}

type Proof = Awaited<ReturnType<typeof runProof>> & {
  guard_status: string | null;
  guard_detail: string | null;
};
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

// ---------------------------------------------------------------------------------------------
// A. Rejected: the guards refuse the write (the run stays VERIFIED, verify_all stays empty)
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

async function rejected(
  t: ExecutionContext,
  code: string,
  message: RegExp,
  write: (c: pg.PoolClient, v: { runId: string; traceId: string }) => Promise<unknown>,
) {
  const {
    runId,
    traceIds: [traceId],
  } = await completedRun(dbA.pool, fA, { stepsPerTrace: 3 });
  const c = await dbA.pool.connect();
  try {
    await c.query("begin");
    const e = await pgError(write(c, { runId, traceId }));
    t.is(e.code, code, e.message);
    t.regex(e.message, message);
  } finally {
    await c.query("rollback");
    c.release();
  }
  const p = await proof(dbA, fA, runId);
  t.is(p.verification_status, "VERIFIED");
  t.is(p.guard_status, "GUARDED");
  t.deepEqual(
    (await verifyAll(dbA)).filter((r) => r.run_id === runId || r.run_id === null),
    [],
  );
}

attack("A", "UPDATE a recorded step's output", (t) =>
  rejected(t, "RPIMM", /^S6_IMMUTABILITY_VIOLATION: UPDATE on runproof\.trace_steps/, (c, v) =>
    c.query(
      `update runproof.trace_steps set output = '{"forged": true}' where trace_id = $1 and step_index = 1`,
      [v.traceId],
    ),
  ),
);
attack("A", "DELETE a step", (t) =>
  rejected(t, "RPIMM", /^S6_IMMUTABILITY_VIOLATION: DELETE on runproof\.trace_steps/, (c, v) =>
    c.query(`delete from runproof.trace_steps where trace_id = $1 and step_index = 2`, [v.traceId]),
  ),
);
attack("A", "TRUNCATE the steps (and the runs, cascading)", (t) =>
  rejected(t, "RPIMM", /TRUNCATE on runproof\.(trace_steps|runs)/, async (c) => {
    await c.query("savepoint s");
    const e = await pgError(c.query(`truncate runproof.trace_steps`));
    if (e.code !== "RPIMM") throw e;
    await c.query("rollback to savepoint s");
    await c.query(`truncate runproof.runs cascade`);
  }),
);
attack("A", "UPDATE a sealed trace's root_hash, or DELETE the trace", (t) =>
  rejected(t, "RPIMM", /on runproof\.traces/, async (c, v) => {
    await c.query("savepoint s");
    const e = await pgError(c.query(`delete from runproof.traces where id = $1`, [v.traceId]));
    if (e.code !== "RPIMM") throw e;
    await c.query("rollback to savepoint s");
    await c.query(`update runproof.traces set root_hash = sha256('forged') where id = $1`, [v.traceId]);
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
      `insert into runproof.trace_steps (tenant_id, run_id, trace_id, step_index, plan_step, skill, status, policy_decision, started_at, finished_at, duration_ms, prev_hash, step_hash)
     values ($1, $2, $3, 0, 0, 'noop', 'succeeded', 'allow', now(), now(), 1, sha256('a'), sha256('b'))`,
      [fA.tenantId, runId, traceId],
    ),
  );
  t.is(e.code, "RPCHN");
  t.is(e.message, "prev_hash and step_hash are computed by the database");
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
attack("A", "session_replication_role = replica, then UPDATE a step (the guards are ENABLE ALWAYS)", (t) =>
  rejected(t, "RPIMM", /^S6_IMMUTABILITY_VIOLATION: UPDATE/, async (c, v) => {
    await c.query(`set local session_replication_role = replica`);
    await c.query(
      `update runproof.trace_steps set output = '{"forged": true}' where trace_id = $1 and step_index = 0`,
      [v.traceId],
    );
  }),
);
attack(
  "A",
  "the tenant role writes a ledger table directly (every write goes through the SQL functions)",
  (t) =>
    rejected(t, "42501", /permission denied/, async (c, v) => {
      await c.query(`set local role runproof_tenant`);
      await c.query(`select set_config('runproof.tenant_id', $1, true)`, [fA.tenantId]);
      await c.query(`update runproof.trace_steps set output = '{}' where trace_id = $1`, [v.traceId]);
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

// ---------------------------------------------------------------------------------------------
// B. A superuser disables every trigger and edits the data: the hash chain catches it
// ---------------------------------------------------------------------------------------------

const victim = () => completedRun(dbB.pool, fB, { stepsPerTrace: 5 });

async function caught(
  t: ExecutionContext,
  runId: string,
  status: "TAMPERED" | "BROKEN",
  step: number | null,
  reason?: RegExp,
) {
  const p = await proof(dbB, fB, runId);
  t.is(p.verification_status, status, p.reason ?? "");
  t.is(p.first_bad_step_index, step);
  if (reason) t.regex(p.reason ?? "", reason);
  const listed = (await verifyAll(dbB)).filter((r) => r.run_id === runId);
  t.true(listed.length >= 1, "verify_all lists the run");
  t.true(
    listed.some((r) => r.verification_status === status),
    `verify_all says ${status}`,
  );
}

const B_EDITS: Array<[string, string, "TAMPERED" | "BROKEN", number | null, RegExp]> = [
  [
    "edit a step's output",
    `update runproof.trace_steps set output = '{"ok":true,"i":999}' where trace_id = $1 and step_index = 2`,
    "TAMPERED",
    2,
    /step 2: stored step_hash .* does not match/,
  ],
  [
    "edit a step's timestamp",
    `update runproof.trace_steps set started_at = started_at - interval '1 second' where trace_id = $1 and step_index = 1`,
    "TAMPERED",
    1,
    /step 1: stored step_hash/,
  ],
  [
    "edit a step's skill, status and error",
    `update runproof.trace_steps set skill = 'http_call', status = 'failed', error = 'x' where trace_id = $1 and step_index = 3`,
    "TAMPERED",
    3,
    /step 3/,
  ],
  [
    "edit a step's cost",
    `update runproof.trace_steps set cost_cents = 0 where trace_id = $1 and step_index = 4`,
    "TAMPERED",
    4,
    /step 4/,
  ],
  [
    "edit a step_hash",
    `update runproof.trace_steps set step_hash = sha256('forged') where trace_id = $1 and step_index = 3`,
    "TAMPERED",
    3,
    /step 3/,
  ],
  [
    "edit a prev_hash",
    `update runproof.trace_steps set prev_hash = sha256('forged') where trace_id = $1 and step_index = 0`,
    "TAMPERED",
    0,
    /step 0: prev_hash .* does not link to the trace's genesis hash/,
  ],
  [
    "delete a middle step",
    `delete from runproof.trace_steps where trace_id = $1 and step_index = 2`,
    "BROKEN",
    2,
    /step 2 is missing from the chain/,
  ],
  [
    "delete the last step of a sealed trace",
    `delete from runproof.trace_steps where trace_id = $1 and step_index = 4`,
    "BROKEN",
    4,
    /the seal says 5 steps but the chain has 4/,
  ],
  [
    "edit a sealed trace's root_hash",
    `update runproof.traces set root_hash = sha256('forged') where id = $1`,
    "TAMPERED",
    null,
    /the sealed root_hash .* does not match the chain's root/,
  ],
];
for (const [name, sql, status, step, reason] of B_EDITS) {
  attack("B", name, async (t) => {
    const {
      runId,
      traceIds: [tr],
    } = await victim();
    await asAttacker(dbB.pool, (c) => c.query(sql, [tr]));
    await caught(t, runId, status, step, reason);
  });
}

attack("B", "re-hash an edited step and every later one (the seal still disagrees)", async (t) => {
  const {
    runId,
    traceIds: [tr],
  } = await victim();
  await asAttacker(dbB.pool, async (c) => {
    await c.query(
      `update runproof.trace_steps set output = '{"forged":true}' where trace_id = $1 and step_index = 2`,
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
  await caught(t, runId, "TAMPERED", null, /sealed root_hash .* does not match the chain's root/);
});
attack("B", "insert an extra step, hashes and all, after the seal", async (t) => {
  const {
    runId,
    traceIds: [tr],
  } = await victim();
  await asAttacker(dbB.pool, async (c) => {
    await c.query(
      `insert into runproof.trace_steps (tenant_id, run_id, trace_id, step_index, plan_step, skill, status, policy_decision, started_at, finished_at, duration_ms, prev_hash, step_hash)
       select tenant_id, run_id, trace_id, 5, 5, 'noop', 'succeeded', 'allow', now(), now(), 1, step_hash, step_hash
         from runproof.trace_steps where trace_id = $1 and step_index = 4`,
      [tr],
    );
    await c.query(
      `update runproof.trace_steps s set step_hash = runproof_private.step_hash(s.prev_hash, runproof_private.step_canonical(s)) where trace_id = $1 and step_index = 5`,
      [tr],
    );
  });
  await caught(t, runId, "BROKEN", 5, /added after the seal/);
});
attack("B", "swap two steps' indexes", async (t) => {
  const {
    runId,
    traceIds: [tr],
  } = await victim();
  await asAttacker(dbB.pool, async (c) => {
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
  await caught(t, runId, "TAMPERED", 1);
});
attack("B", "move a step into another run's trace", async (t) => {
  const a = await victim();
  const b = await victim();
  await asAttacker(dbB.pool, (c) =>
    c.query(
      `update runproof.trace_steps set trace_id = $2, run_id = $3, step_index = 5 where trace_id = $1 and step_index = 2`,
      [a.traceIds[0], b.traceIds[0], b.runId],
    ),
  );
  await caught(t, a.runId, "BROKEN", 2);
  await caught(t, b.runId, "TAMPERED", 5, /step 5: prev_hash .* does not link to the step_hash of step 4/);
  t.is(
    (await verifyTrace(dbB.pool, b.traceIds[0])).verification_status,
    "TAMPERED",
    "the moved step does not link into its new chain",
  );
});
attack("B", "delete a whole trace (attempt) of a run", async (t) => {
  const { runId, traceIds } = await completedRun(dbB.pool, fB, { attempts: 2, stepsPerTrace: 3 });
  await asAttacker(dbB.pool, async (c) => {
    await c.query(`delete from runproof.trace_steps where trace_id = $1`, [traceIds[0]]);
    await c.query(`delete from runproof.policy_decisions where trace_id = $1`, [traceIds[0]]);
    await c.query(`delete from runproof.traces where id = $1`, [traceIds[0]]);
  });
  await caught(t, runId, "BROKEN", null, /the trace of attempt 1 is missing/);
});
attack("B", "move a run to another tenant", async (t) => {
  const { runId } = await victim();
  const other = await createTenant(dbB.pool);
  await asAttacker(dbB.pool, (c) =>
    c.query(`update runproof.runs set tenant_id = $2 where id = $1`, [runId, other.tenantId]),
  );
  await caught(t, runId, "TAMPERED", null, /belongs to tenant/);
});
attack("B", "edit a run's seal (its root_hash)", async (t) => {
  const { runId } = await victim();
  await asAttacker(dbB.pool, (c) =>
    c.query(`update runproof.runs set root_hash = sha256('forged') where id = $1`, [runId]),
  );
  await caught(
    t,
    runId,
    "TAMPERED",
    null,
    /the run's sealed root_hash .* does not match the root recomputed from its traces/,
  );
});
attack("B", "delete the run row (its traces and steps stay)", async (t) => {
  const {
    runId,
    traceIds: [tr],
  } = await victim();
  await asAttacker(dbB.pool, (c) => c.query(`delete from runproof.runs where id = $1`, [runId]));
  const p = await proof(dbB, fB, runId);
  t.is(p.verification_status, "BROKEN");
  t.is(p.reason, "the run row is missing but its traces exist");
  t.truthy(
    (await verifyAll(dbB)).find(
      (r) => r.run_id === runId && r.trace_id === tr && r.reason === "trace has no run row",
    ),
  );
});
attack(
  "B",
  "edit a finished run's goal, origin or plan: the run root hashes the run's own content",
  async (t) => {
    for (const set of [
      `goal = 'something else entirely'`,
      `origin_system_id = 'someone-else'`,
      `plan = '{"version":1,"steps":[{"skill":"noop"}]}'`,
    ]) {
      const { runId } = await victim();
      await asAttacker(dbB.pool, (c) => c.query(`update runproof.runs set ${set} where id = $1`, [runId]));
      const p = await proof(dbB, fB, runId);
      t.is(p.verification_status, "TAMPERED", set);
      t.regex(p.reason ?? "", /sealed root_hash .* does not match the root recomputed/, set);
      t.truthy(
        (await verifyAll(dbB)).find((r) => r.run_id === runId),
        set,
      );
    }
  },
);

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
attack("C", "replace a guard's trigger function with a no-op, then delete a step through it", async (t) => {
  const s = await ddlAttack(t, "noop-function", async (c) => {
    await c.query(
      `create or replace function runproof_private.tg__append_only() returns trigger language plpgsql as $$ begin return old; end $$`,
    );
  });
  // The no-op lets a DELETE through: the chain catches the data, the audit the function.
  await s.db.pool.query(`delete from runproof.trace_steps where trace_id = $1 and step_index = 1`, [
    s.inFlightTrace,
  ]);
  await flaggedByChange(t, s, /CREATE FUNCTION runproof_private\.tg__append_only\(\)/, "BROKEN");
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
attack("C", "add a trigger that rewrites each step after it is hashed", async (t) => {
  const s = await ddlAttack(t, "evil-trigger", async (c) => {
    await c.query(
      `create function runproof_private.tg_zz_rewrite() returns trigger language plpgsql as $$ begin new.output := '{"rewritten": true}'; return new; end $$`,
    );
    await c.query(
      `create trigger tg_trace_steps__zz_rewrite before insert on runproof.trace_steps for each row execute function runproof_private.tg_zz_rewrite()`,
    );
  });
  await flaggedByChange(t, s, /CREATE FUNCTION runproof_private\.tg_zz_rewrite\(\)/, "TAMPERED");
  await flaggedNow(
    t,
    s,
    "UNGUARDED",
    /trigger tg_trace_steps__zz_rewrite on runproof\.trace_steps was added since the last migration/,
  );
});
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
    const r = await c.query(`update runproof.trace_steps set output = '{}' where run_id = $1`, [s.before]);
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
       as $$ select row('HASH_CHAIN', 'VERIFIED', tenant_id, run_id, null, 0, null, 0, 0, null, null, null, null, now(), 'GUARDED', null)::runproof.proof $$`,
      ),
    );
    await asAttacker(s.db.pool, (c) =>
      c.query(
        `update runproof.trace_steps set output = '{"forged": true}' where run_id = $1 and step_index = 0`,
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
    const bundle = JSON.parse(JSON.stringify(await exportBundle(s.db.pool, s.f.tenantId, s.before)));
    t.is(verifyBundle(bundle).verification_status, "TAMPERED");
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
  "LIMIT: SET event_triggers = off, disable the guards, edit a step: no audit record, the chain still catches the edit",
  async (t) => {
    const s = await scene("event-triggers-off");
    t.teardown(() => s.db.drop());
    await s.finish();
    const {
      rows: [{ n: before }],
    } = await s.db.pool.query(`select count(*)::int as n from runproof_private.ddl_audit`);
    await session(s.db, async (c) => {
      await c.query(`set local event_triggers = off`);
      await c.query(`alter table runproof.trace_steps disable trigger all`);
      await c.query(
        `update runproof.trace_steps set output = '{"forged": true}' where run_id = $1 and step_index = 1`,
        [s.before],
      );
      await c.query(`alter table runproof.trace_steps enable trigger all`);
      await c.query(`alter table runproof.trace_steps enable always trigger tg_trace_steps__append_only`);
      await c.query(`alter table runproof.trace_steps enable always trigger tg_trace_steps__chain`);
      await c.query(`alter table runproof.trace_steps enable always trigger tg_trace_steps__no_truncate`);
      await c.query(`alter table runproof.trace_steps enable always trigger tg_trace_steps__notify`);
    });
    const {
      rows: [{ n: after }],
    } = await s.db.pool.query(`select count(*)::int as n from runproof_private.ddl_audit`);
    t.is(after, before, "a superuser can switch event triggers off for a session: nothing was recorded");
    const p = await proof(s.db, s.f, s.before);
    t.is(p.verification_status, "TAMPERED");
    t.is(p.first_bad_step_index, 1);
    t.truthy(
      (await verifyAll(s.db)).find((r) => r.run_id === s.before && r.verification_status === "TAMPERED"),
    );
  },
);
attack(
  "C",
  "LIMIT: a consistent rewrite (step, chain and both seals) with event triggers off: caught only against a root kept outside the database",
  async (t) => {
    const s = await scene("consistent-rewrite");
    t.teardown(() => s.db.drop());
    await s.finish();
    const recorded = (await proof(s.db, s.f, s.before)).root_hash; // e.g. kept by an auditor, or in an exported bundle
    await session(s.db, async (c) => {
      await c.query(`set local event_triggers = off`);
      for (const tbl of ["runs", "traces", "trace_steps"])
        await c.query(`alter table runproof.${tbl} disable trigger all`);
      const {
        rows: [tr],
      } = await c.query(`select id from runproof.traces where run_id = $1`, [s.before]);
      await c.query(
        `update runproof.trace_steps set output = '{"rewritten": true}' where trace_id = $1 and step_index = 0`,
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
        `update runproof.runs r set root_hash = runproof_private.run_root_hash(r.tenant_id, r.id, array[(select root_hash from runproof.traces where id = $2)]) where id = $1`,
        [s.before, tr.id],
      );
      for (const tbl of ["runs", "traces", "trace_steps"]) {
        await c.query(`alter table runproof.${tbl} enable trigger all`);
        const { rows: trg } = await c.query(
          `select tgname from pg_trigger where tgrelid = $1::regclass and not tgisinternal`,
          [`runproof.${tbl}`],
        );
        for (const g of trg) await c.query(`alter table runproof.${tbl} enable always trigger ${g.tgname}`);
      }
    });
    const p = await proof(s.db, s.f, s.before);
    t.is(p.verification_status, "VERIFIED", "inside the database nothing shows: proof-format.md section 7");
    t.is(p.guard_status, "GUARDED");
    t.not(
      p.root_hash,
      recorded,
      "the root no longer matches the one kept outside the database (proof verify --expect-root)",
    );
  },
);

test("the catalogue has at least 20 attacks, and says which group caught each", (t) => {
  const by = (g: string) => catalogue.filter((c) => c.group === g).length;
  t.true(catalogue.length >= 20, `${catalogue.length} attacks`);
  t.log(
    `${catalogue.length} attacks: ${by("A")} rejected by the guards, ${by("B")} superuser data edits (caught by the hash chain), ${by("C")} schema attacks (caught by the DDL audit)`,
  );
  t.log(`stated limits: ${catalogue.filter((c) => c.name.startsWith("LIMIT")).length}`);
});
