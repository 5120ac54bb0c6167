// Fixtures that drive the ledger the way the worker does, through its SQL functions.
import type pg from "pg";
import { inTransaction as inPoolTransaction } from "../../src/lib/worker-context.ts";

type Queryable = pg.Pool | pg.PoolClient | pg.Client;

export interface Fixture {
  tenantId: string;
  agentId: string;
}

export async function registerSkills(
  db: Queryable,
  names: string[] = ["noop", "http_call", "json_transform", "wait"],
): Promise<void> {
  await db.query(
    `insert into runproof.skills (name, description) select n, 'test skill ' || n from unnest($1::text[]) n
     on conflict (name) do nothing`,
    [names],
  );
}

export async function createTenant(
  db: Queryable,
  name = `tenant-${Math.random().toString(36).slice(2, 10)}`,
): Promise<Fixture> {
  await registerSkills(db);
  const {
    rows: [tenant],
  } = await db.query(`insert into runproof.tenants (name) values ($1) returning id`, [name]);
  const {
    rows: [agent],
  } = await db.query(`insert into runproof.agents (tenant_id, name) values ($1, 'agent') returning id`, [
    tenant.id,
  ]);
  return { tenantId: tenant.id, agentId: agent.id };
}

export function planOf(steps: number, skill = "noop"): object {
  return {
    version: 1,
    planner: "test",
    steps: Array.from({ length: steps }, (_, i) => ({ skill, input: { i } })),
  };
}

/** Inserts a planned run directly (the tests of the guards need the raw INSERT path). */
export async function insertRun(
  db: Queryable,
  f: Fixture,
  opts: { steps?: number; origin?: string } = {},
): Promise<string> {
  const {
    rows: [run],
  } = await db.query(
    `insert into runproof.runs (tenant_id, agent_id, goal, origin_system_id, plan, status)
     values ($1, $2, 'test goal', $3, $4, 'planned') returning id`,
    [f.tenantId, f.agentId, opts.origin ?? "ava-test", planOf(opts.steps ?? 3)],
  );
  return run.id;
}

export async function startAttempt(db: Queryable, f: Fixture, runId: string): Promise<string> {
  const {
    rows: [t],
  } = await db.query(`select id from runproof_private.start_attempt($1, $2)`, [f.tenantId, runId]);
  return t.id;
}

/** Records one step the way the worker does: its policy decision, then the step (runproof_private.record_step). */
export async function appendStep(
  db: Queryable,
  f: Fixture,
  runId: string,
  traceId: string,
  stepIndex: number,
  opts: {
    status?: "succeeded" | "failed" | "denied";
    input?: object;
    output?: object | null;
    cost?: number;
    /** The plan step it executes; by default the run's next one, as record_step requires. */
    planStep?: number;
  } = {},
): Promise<{ prev_hash: Buffer; step_hash: Buffer }> {
  const status = opts.status ?? "succeeded";
  const decision = status === "denied" ? "deny" : "allow";
  const planStep =
    opts.planStep ??
    (
      await db.query(`select next_plan_step from runproof.runs where tenant_id = $1 and id = $2`, [
        f.tenantId,
        runId,
      ])
    ).rows[0].next_plan_step;
  await db.query(
    `insert into runproof.policy_decisions (tenant_id, run_id, trace_id, step_index, plan_step, skill, decision, rule, reason)
     values ($1, $2, $3, $4, $5, 'noop', $6, 'daily_budget', 'test')`,
    [f.tenantId, runId, traceId, stepIndex, planStep, decision],
  );
  await db.query(
    `select 1 from runproof_private.record_step(
       p_tenant_id => $1, p_run_id => $2, p_trace_id => $3, p_step_index => $4, p_plan_step => $5, p_skill => 'noop',
       p_status => $6, p_input => $7, p_output => $8, p_error => $9, p_started_at => now(), p_finished_at => now(),
       p_duration_ms => 1.25, p_cost_cents => $10, p_source => 'test')`,
    [
      f.tenantId,
      runId,
      traceId,
      stepIndex,
      planStep,
      status,
      opts.input ?? { i: stepIndex },
      status === "succeeded" ? (opts.output === undefined ? { ok: true, i: stepIndex } : opts.output) : null,
      status === "failed" ? "boom" : null,
      opts.cost ?? 0.5,
    ],
  );
  const {
    rows: [s],
  } = await db.query(
    `select prev_hash, step_hash from runproof.trace_steps where tenant_id = $1 and trace_id = $2 and step_index = $3`,
    [f.tenantId, traceId, stepIndex],
  );
  return s;
}

export async function sealTrace(
  db: Queryable,
  f: Fixture,
  traceId: string,
  status = "completed",
): Promise<void> {
  await db.query(`select runproof_private.seal_trace($1, $2, $3)`, [f.tenantId, traceId, status]);
}

export async function finishRun(
  db: Queryable,
  f: Fixture,
  runId: string,
  status = "succeeded",
): Promise<void> {
  await db.query(`update runproof.runs set status = $3 where tenant_id = $1 and id = $2`, [
    f.tenantId,
    runId,
    status,
  ]);
}

/**
 * A finished run: `attempts` traces of `stepsPerTrace` steps each. Every attempt but the last fails
 * transiently at its last step (after stepsPerTrace - 1 succeeded ones); the last one succeeds with
 * all its steps, and the plan has exactly the steps that succeeded.
 */
export async function completedRun(
  db: Queryable,
  f: Fixture,
  opts: { attempts?: number; stepsPerTrace?: number } = {},
): Promise<{ runId: string; traceIds: string[] }> {
  const attempts = opts.attempts ?? 1;
  const n = opts.stepsPerTrace ?? 4;
  const runId = await insertRun(db, f, { steps: (attempts - 1) * (n - 1) + n });
  const traceIds: string[] = [];
  for (let a = 1; a <= attempts; a++) {
    const traceId = await startAttempt(db, f, runId);
    traceIds.push(traceId);
    for (let i = 0; i < n; i++)
      await appendStep(db, f, runId, traceId, i, {
        status: a < attempts && i === n - 1 ? "failed" : "succeeded",
      });
    // The seal and the run's move in one transaction, as end_attempt does them: a concurrent
    // verify_all must never see a running run whose attempt is already sealed.
    await inTransaction(db, async (c) => {
      await sealTrace(c, f, traceId, a < attempts ? "failed" : "completed");
      await finishRun(c, f, runId, a < attempts ? "retrying" : "succeeded");
    });
  }
  return { runId, traceIds };
}

/** Runs fn in one transaction: on a client of its own when given a pool, else in the caller's. */
export async function inTransaction<T>(db: Queryable, fn: (c: Queryable) => Promise<T>): Promise<T> {
  return "totalCount" in db ? inPoolTransaction(db, fn) : fn(db);
}

export interface Proof {
  integrity_model: string;
  proof_format: number;
  verification_status: string;
  chain_length: number;
  root_hash: string;
  trace_count: number;
  step_count: number;
  erased_steps: number;
  first_bad_attempt: number | null;
  first_bad_trace_id: string | null;
  first_bad_step_index: number | null;
  reason: string | null;
}

export async function runProof(db: Queryable, tenantId: string, runId: string): Promise<Proof> {
  const {
    rows: [p],
  } = await db.query(`select * from runproof.run_proof($1, $2)`, [tenantId, runId]);
  return p;
}

export async function verifyTrace(db: Queryable, traceId: string): Promise<Proof> {
  const {
    rows: [p],
  } = await db.query(`select * from runproof.verify_trace($1)`, [traceId]);
  return p;
}

/**
 * Runs fn as a superuser with every trigger of the ledger tables disabled: the attacker the verifier must catch.
 * Other tests write the same database meanwhile, and disabling triggers locks each table in turn, which
 * could deadlock with them. So the attacker first takes every ledger table at once, without waiting
 * (EXCLUSIVE: no writer holds any of them, nor a row of them, while it works), and tries again a
 * moment later when a writer is in the way. Attackers take turns.
 */
export async function asAttacker(db: pg.Pool, fn: (c: pg.PoolClient) => Promise<unknown>): Promise<void> {
  const tables = [
    "runs",
    "traces",
    "trace_steps",
    "policy_decisions",
    "incidents",
    "step_payloads",
    "payload_erasures",
    "payload_erasure_steps",
  ];
  for (let attempt = 1; ; attempt++) {
    const c = await db.connect();
    try {
      await c.query("begin");
      // Attackers queue for their turn (holding nothing while they wait), then take the tables.
      await c.query("select pg_advisory_xact_lock(7212345)");
      await c.query(`lock table ${tables.map((t) => `runproof.${t}`).join(", ")} in exclusive mode nowait`);
      for (const t of tables) await c.query(`alter table runproof.${t} disable trigger all`);
      await fn(c);
      for (const t of tables) await c.query(`alter table runproof.${t} enable trigger all`);
      // ENABLE TRIGGER ALL leaves them "origin"; put the guards back to ENABLE ALWAYS as the migration left them.
      for (const row of (
        await c.query(`select tgrelid::regclass::text as tbl, tgname from pg_trigger t join pg_class c on c.oid = t.tgrelid
        join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'runproof' and not t.tgisinternal`)
      ).rows) {
        await c.query(`alter table ${row.tbl} enable always trigger ${row.tgname}`);
      }
      await c.query("commit");
      return;
    } catch (e) {
      await c.query("rollback");
      // 55P03: a table is in use (lock_not_available); 40P01: a deadlock all the same.
      if (!["55P03", "40P01"].includes((e as pg.DatabaseError).code ?? "") || attempt >= 1000) throw e;
    } finally {
      c.release();
    }
    await new Promise((r) => setTimeout(r, 10 + Math.random() * 40));
  }
}

/**
 * A thorough attacker's extra step after step `after` of a trace (a copy of it, one step index and one plan step on), with its
 * decision, payloads, commitments and hashes all consistent: only the seal and the counts can tell. Needs asAttacker.
 */
export async function insertExtraStep(c: pg.PoolClient, tr: string, after = 4): Promise<void> {
  await c.query(
    `insert into runproof.policy_decisions (tenant_id, run_id, trace_id, step_index, plan_step, skill, decision, rule, reason)
     select tenant_id, run_id, trace_id, $2 + 1, plan_step + 1, skill, decision, rule, reason from runproof.policy_decisions where trace_id = $1 and step_index = $2`,
    [tr, after],
  );
  await c.query(
    `insert into runproof.trace_steps (tenant_id, run_id, trace_id, step_index, plan_step, skill, status, policy_decision,
       decision_hash, input_commitment, output_commitment, started_at, finished_at, duration_ms, prev_hash, step_hash)
     select s.tenant_id, s.run_id, s.trace_id, $2 + 1, s.plan_step + 1, 'noop', 'succeeded', 'allow',
            (select sha256(runproof_private.decision_canonical(d)) from runproof.policy_decisions d where d.trace_id = $1 and d.step_index = $2 + 1),
            s.input_commitment, s.output_commitment, now(), now(), 1, s.step_hash, s.step_hash
       from runproof.trace_steps s where s.trace_id = $1 and s.step_index = $2`,
    [tr, after],
  );
  await c.query(
    `insert into runproof.step_payloads (tenant_id, run_id, trace_id, step_index, input, input_salt, output, output_salt)
     select tenant_id, run_id, trace_id, $2 + 1, input, input_salt, output, output_salt from runproof.step_payloads where trace_id = $1 and step_index = $2`,
    [tr, after],
  );
  await c.query(
    `update runproof.trace_steps s set step_hash = runproof_private.step_hash(s.prev_hash, runproof_private.step_canonical(s)) where trace_id = $1 and step_index = $2 + 1`,
    [tr, after],
  );
}

/** Asserts that a promise rejects with a Postgres error and returns it. */
export async function pgError(p: Promise<unknown>): Promise<pg.DatabaseError> {
  try {
    await p;
  } catch (e) {
    return e as pg.DatabaseError;
  }
  throw new Error("expected the statement to fail, but it succeeded");
}
