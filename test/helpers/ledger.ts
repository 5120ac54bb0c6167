// Fixtures that drive the ledger the way the worker does, through its SQL functions.
import type pg from "pg";

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

/** Records one step the way the worker does: its policy decision, then the step. */
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
  } = {},
): Promise<{ prev_hash: Buffer; step_hash: Buffer }> {
  const status = opts.status ?? "succeeded";
  const decision = status === "denied" ? "deny" : "allow";
  await db.query(
    `insert into runproof.policy_decisions (tenant_id, run_id, trace_id, step_index, plan_step, skill, decision, rule, reason)
     values ($1, $2, $3, $4, $4, 'noop', $5, 'daily_budget', 'test')`,
    [f.tenantId, runId, traceId, stepIndex, decision],
  );
  const {
    rows: [s],
  } = await db.query(
    `insert into runproof.trace_steps (tenant_id, run_id, trace_id, step_index, plan_step, skill, status, policy_decision,
       input, output, error, started_at, finished_at, duration_ms, cost_cents, source)
     values ($1, $2, $3, $4, $4, 'noop', $5, $6, $7, $8, $9, now(), now(), 1.25, $10, 'test')
     returning prev_hash, step_hash`,
    [
      f.tenantId,
      runId,
      traceId,
      stepIndex,
      status,
      decision,
      opts.input ?? { i: stepIndex },
      opts.output === undefined ? { ok: true, i: stepIndex } : opts.output,
      status === "failed" ? "boom" : null,
      opts.cost ?? 0.5,
    ],
  );
  // Progress as record_step keeps it (a run only succeeds once every plan step has).
  if (status === "succeeded") {
    await db.query(
      `update runproof.runs set next_plan_step = greatest(next_plan_step, $3 + 1) where tenant_id = $1 and id = $2`,
      [f.tenantId, runId, stepIndex],
    );
  }
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

/** A finished run: `attempts` traces of `stepsPerTrace` steps; every attempt but the last fails transiently. */
export async function completedRun(
  db: Queryable,
  f: Fixture,
  opts: { attempts?: number; stepsPerTrace?: number } = {},
): Promise<{ runId: string; traceIds: string[] }> {
  const attempts = opts.attempts ?? 1;
  const n = opts.stepsPerTrace ?? 4;
  const runId = await insertRun(db, f, { steps: n });
  const traceIds: string[] = [];
  for (let a = 1; a <= attempts; a++) {
    const traceId = await startAttempt(db, f, runId);
    traceIds.push(traceId);
    for (let i = 0; i < n; i++) await appendStep(db, f, runId, traceId, i);
    await sealTrace(db, f, traceId, a < attempts ? "failed" : "completed");
    if (a < attempts) await finishRun(db, f, runId, "retrying");
  }
  await finishRun(db, f, runId, "succeeded");
  return { runId, traceIds };
}

export interface Proof {
  integrity_model: string;
  verification_status: string;
  chain_length: number;
  root_hash: string;
  trace_count: number;
  step_count: number;
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

/** Runs fn as a superuser with every trigger of the ledger tables disabled: the attacker the verifier must catch. */
export async function asAttacker(db: pg.Pool, fn: (c: pg.PoolClient) => Promise<unknown>): Promise<void> {
  const c = await db.connect();
  const tables = ["runs", "traces", "trace_steps", "policy_decisions", "incidents"];
  try {
    await c.query("begin");
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
  } catch (e) {
    await c.query("rollback");
    throw e;
  } finally {
    c.release();
  }
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
