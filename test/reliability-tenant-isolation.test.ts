// Tenant isolation across every GraphQL field and every SQL function the tenant role can call.
// Both lists are read from the live schema (GraphQL introspection; pg_proc with
// has_function_privilege('runproof_tenant', ...)), so a new field or function without an
// isolation case here fails this suite. Tenant A, holding B's ids, must learn nothing of B:
// no row, no goal, no name, no hash; and must change nothing of B's.
import test from "ava";
import type pg from "pg";
import { createTestDatabase, type TestDatabase } from "./helpers/db.ts";
import {
  apiTenant,
  gql,
  gqlOk,
  startTestServer,
  subscribe,
  type ApiTenant,
  type TestServer,
} from "./helpers/graphql.ts";
import {
  appendStep,
  completedRun,
  type Fixture,
  finishRun,
  insertRun,
  planOf,
  sealTrace,
  startAttempt,
} from "./helpers/ledger.ts";

let db: TestDatabase;
let server: TestServer;
let A: ApiTenant;
let B: ApiTenant;
const b = {
  run: "",
  plannedRun: "",
  trace: "",
  openRun: "",
  secretAgent: "",
  runRoot: "",
  traceRoot: "",
  stepHash: "",
  erasedRun: "",
  erasure: "",
};
const a = { run: "", trace: "" };
/** Everything of B's that must never reach A. */
let secrets: string[] = [];

test.before(async () => {
  db = await createTestDatabase("tenant-isolation");
  // One query reaches every field of every type (far past the document limits of
  // src/graphql/limits.ts, which test/graphql-limits.test.ts covers): lifted for this server.
  server = await startTestServer(db.url, {
    env: {
      RUNPROOF_GRAPHQL_MAX_DEPTH: "100",
      RUNPROOF_GRAPHQL_MAX_ALIASES: "10000",
      RUNPROOF_GRAPHQL_MAX_FIELDS: "100000",
      RUNPROOF_GRAPHQL_MAX_COST: "1000000000000000",
      RUNPROOF_TENANT_COST_PER_SECOND: "1000000000000000",
      RUNPROOF_TENANT_RATE_PER_SECOND: "100000",
    },
  });
  A = await apiTenant(db.pool, "iso-tenant-a");
  B = await apiTenant(db.pool, "iso-tenant-b-secret-name");
  ({
    rows: [{ id: b.secretAgent }],
  } = await db.pool.query(
    `select id from runproof.create_agent('b-secret-agent', 'b-secret-description', tenant_id => $1)`,
    [B.tenantId],
  ));
  ({
    rows: [{ id: b.plannedRun }],
  } = await db.pool.query(
    `select id from runproof.enqueue_run($1, $2, 'b-secret-goal', 'b-secret-origin', $3)`,
    [B.tenantId, b.secretAgent, planOf(1)],
  ));
  // B's finished run: two steps whose payloads hold secrets.
  const fb: Fixture = { tenantId: B.tenantId, agentId: B.agentId };
  b.run = await insertRun(db.pool, fb, { steps: 2 });
  b.trace = await startAttempt(db.pool, fb, b.run);
  for (const i of [0, 1])
    await appendStep(db.pool, fb, b.run, b.trace, i, {
      input: { note: `b-secret-input-${i}` },
      output: { note: `b-secret-output-${i}` },
    });
  await sealTrace(db.pool, fb, b.trace);
  await finishRun(db.pool, fb, b.run);
  // And one whose payloads B erased.
  b.erasedRun = (await completedRun(db.pool, fb, { stepsPerTrace: 2 })).runId;
  ({
    rows: [{ id: b.erasure }],
  } = await db.pool.query(
    `select id from runproof.erase_payloads(run_id => $1, reason => 'b-secret-erasure-reason', tenant_id => $2)`,
    [b.erasedRun, B.tenantId],
  ));
  b.openRun = await insertRun(db.pool, { tenantId: B.tenantId, agentId: B.agentId });
  await startAttempt(db.pool, { tenantId: B.tenantId, agentId: B.agentId }, b.openRun);
  await db.pool.query(`select runproof.cancel_run($1, 'b-secret-reason', $2)`, [b.openRun, B.tenantId]);
  ({
    rows: [{ r: b.runRoot }],
  } = await db.pool.query(`select encode(root_hash, 'hex') as r from runproof.runs where id = $1`, [b.run]));
  ({
    rows: [{ r: b.traceRoot }],
  } = await db.pool.query(`select encode(root_hash, 'hex') as r from runproof.traces where id = $1`, [
    b.trace,
  ]));
  ({
    rows: [{ r: b.stepHash }],
  } = await db.pool.query(
    `select encode(step_hash, 'hex') as r from runproof.trace_steps where trace_id = $1 and step_index = 0`,
    [b.trace],
  ));
  await db.pool.query(
    `insert into runproof.agent_memory (tenant_id, agent_id, key, value) values ($1, $2, 'b-secret-key', '"b-secret-value"')`,
    [B.tenantId, B.agentId],
  );
  const own = await completedRun(db.pool, { tenantId: A.tenantId, agentId: A.agentId }, { stepsPerTrace: 2 });
  a.run = own.runId;
  a.trace = own.traceIds[0];
  secrets = [
    B.tenantId,
    B.agentId,
    b.secretAgent,
    b.run,
    b.plannedRun,
    b.trace,
    b.openRun,
    b.runRoot,
    b.traceRoot,
    b.stepHash,
    b.erasedRun,
    b.erasure,
    "b-secret",
    "iso-tenant-b-secret-name",
    B.keyId,
  ];
});
test.after.always(async () => {
  await server?.stop();
  await db?.drop();
});

const leaks = (value: unknown) => secrets.filter((s) => JSON.stringify(value).includes(s));

// =============================================================================================
// SQL: every function runproof_tenant may execute
// =============================================================================================

/** Runs fn as tenant A: the role and setting PostGraphile uses for A's API key. */
async function asA<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const c = await db.pool.connect();
  try {
    await c.query("begin");
    await c.query(`set local role runproof_tenant`);
    await c.query(`select set_config('runproof.tenant_id', $1, true)`, [A.tenantId]);
    return await fn(c);
  } finally {
    await c.query("rollback");
    c.release();
  }
}
async function refusedAsA(sql: string, args: unknown[]): Promise<{ code: string; message: string }> {
  return asA(async (c) => {
    try {
      await c.query(sql, args);
    } catch (e) {
      return { code: (e as pg.DatabaseError).code!, message: (e as Error).message };
    }
    throw new Error(`expected A to be refused: ${sql}`);
  });
}
/**
 * B's rows as a tenant can only name them: a row value built from B's ids (RLS hides the real ones),
 * the other columns filled in by jsonb_populate_record.
 */
const fake = (table: string, columns: string) =>
  `jsonb_populate_record(null::runproof.${table}, jsonb_build_object(${columns}))`;
const fakeRun = fake(
  "runs",
  `'tenant_id', $1::uuid, 'id', $2::uuid, 'agent_id', $3::uuid, 'goal', 'x', 'origin_system_id', 'x', 'status', 'succeeded',
   'attempts', 1, 'max_attempts', 3, 'next_plan_step', 0, 'cost_cents', 0, 'created_at', now(), 'updated_at', now()`,
);
const fakeTrace = fake(
  "traces",
  `'tenant_id', $1::uuid, 'id', $2::uuid, 'run_id', $3::uuid, 'attempt', 1, 'status', 'completed', 'started_at', now(),
   'completed_at', now(), 'step_count', 0, 'metadata', '{}'::jsonb`,
);
const fakeStep = fake(
  "trace_steps",
  `'tenant_id', $1::uuid, 'run_id', $2::uuid, 'trace_id', $3::uuid, 'step_index', 0, 'plan_step', 0, 'skill', 'noop',
   'status', 'succeeded', 'policy_decision', 'allow', 'started_at', now(), 'finished_at', now(), 'duration_ms', 1,
   'cost_cents', 0, 'source', 'test', 'level', 'INFO', 'recorded_at', now()`,
);
const fakeDecision = fake(
  "policy_decisions",
  `'tenant_id', $1::uuid, 'run_id', $2::uuid, 'trace_id', $3::uuid, 'step_index', 0, 'plan_step', 0, 'skill', 'noop',
   'decision', 'allow', 'rule', 'daily_budget', 'reason', 'x', 'decided_at', now()`,
);
const fakeIncident = fake(
  "incidents",
  `'tenant_id', $1::uuid, 'id', gen_random_uuid(), 'run_id', $2::uuid, 'kind', 'run_failed', 'severity', 'error',
   'message', 'x', 'details', '{}'::jsonb, 'created_at', now()`,
);
/** Nothing B's from a SELECT that goes through B's rows as A. */
const noRowsAsA = async (t: any, sql: string, args: unknown[]) =>
  t.deepEqual((await asA((c) => c.query(sql, args))).rows, []);

const SQL_CASES: Record<string, (t: any) => Promise<void>> = {
  // The tenants' Merkle logs (issue 12): B's log, status and proofs are refused to A.
  "runproof.log_inclusion_proof(uuid,bigint,bigint)": async (t) => {
    t.like(await refusedAsA(`select runproof.log_inclusion_proof($1, 0, 1)`, [B.tenantId]), {
      code: "42501",
    });
    const {
      rows: [r],
    } = await asA((c) => c.query(`select runproof.log_inclusion_proof(null, 0, 1) as p`));
    t.deepEqual(r.p, [], "A's own log (one run)");
  },
  "runproof.log_consistency_proof(uuid,bigint,bigint)": async (t) => {
    t.like(await refusedAsA(`select runproof.log_consistency_proof($1, 1, 2)`, [B.tenantId]), {
      code: "42501",
    });
    t.like(await refusedAsA(`select runproof.log_consistency_proof(null, 1, 2)`, []), { code: "RPVAL" });
  },
  "runproof.log_status(uuid)": async (t) => {
    t.like(await refusedAsA(`select runproof.log_status($1)`, [B.tenantId]), { code: "42501" });
    const {
      rows: [r],
    } = await asA((c) => c.query(`select (runproof.log_status(null)).*`));
    t.is(r.tenant_id, A.tenantId);
    t.is(Number(r.log_size), 1);
  },
  "runproof.tenants_log_status(runproof.tenants)": async (t) => {
    await noRowsAsA(t, `select runproof.tenants_log_status(x) from runproof.tenants x where id = $1`, [
      B.tenantId,
    ]);
    // A row of B's made up by A: the status is still B's tenant's, so it is refused.
    t.like(
      await refusedAsA(
        `select runproof.tenants_log_status(jsonb_populate_record(null::runproof.tenants, jsonb_build_object('id', $1::uuid)))`,
        [B.tenantId],
      ),
      { code: "42501" },
    );
  },
  "runproof_private.run_log_proof(uuid,uuid)": async (t) => {
    t.like(await refusedAsA(`select * from runproof_private.run_log_proof($1, $2)`, [B.tenantId, b.run]), {
      code: "42501",
    });
    const {
      rows: [r],
    } = await asA((c) => c.query(`select * from runproof_private.run_log_proof(null, $1)`, [b.run]));
    t.is(r.leaf_index, null, "row level security: B's leaf is not there for A");
  },
  "runproof.erase_payloads(uuid,interval,text,uuid)": async (t) => {
    const count = async () =>
      (
        await db.pool.query(`select count(*)::int as n from runproof.step_payloads where tenant_id = $1`, [
          B.tenantId,
        ])
      ).rows[0].n;
    const before = await count();
    t.like(await refusedAsA(`select runproof.erase_payloads(run_id => $1, reason => 'x')`, [b.run]), {
      code: "RPNFD",
    });
    t.like(
      await refusedAsA(`select runproof.erase_payloads(run_id => $1, reason => 'x', tenant_id => $2)`, [
        b.run,
        B.tenantId,
      ]),
      { code: "42501" },
    );
    t.like(
      await refusedAsA(
        `select runproof.erase_payloads(older_than => '0 s', reason => 'x', tenant_id => $1)`,
        [B.tenantId],
      ),
      { code: "42501" },
    );
    // By age, A erases its own payloads only (in a transaction rolled back afterwards).
    const erased = await asA(async (c) => {
      const {
        rows: [e],
      } = await c.query(
        `select tenant_id, step_count from runproof.erase_payloads(older_than => '0 s', reason => 'x')`,
      );
      // Back to the superuser inside A's transaction: what the erasure removed, before the rollback.
      await c.query("reset role");
      const {
        rows: [left],
      } = await c.query(
        `select count(*) filter (where tenant_id = $1)::int as b, count(*) filter (where tenant_id = $2)::int as a from runproof.step_payloads`,
        [B.tenantId, A.tenantId],
      );
      return { ...e, left };
    });
    t.is(erased.tenant_id, A.tenantId);
    t.true(erased.step_count > 0, "A's own payloads were erased");
    t.deepEqual(erased.left, { b: before, a: 0 }, "B's payloads are untouched");
    t.is(await count(), before);
  },
  "runproof.runs_payload_erasures(runproof.runs)": async (t) => {
    await noRowsAsA(t, `select runproof.runs_payload_erasures(r) from runproof.runs r where id = $1`, [
      b.erasedRun,
    ]);
    await noRowsAsA(t, `select * from runproof.runs_payload_erasures(${fakeRun})`, [
      B.tenantId,
      b.erasedRun,
      B.agentId,
    ]);
  },
  "runproof.trace_steps_erasure(runproof.trace_steps)": async (t) => {
    await noRowsAsA(
      t,
      `select runproof.trace_steps_erasure(s) from runproof.trace_steps s where run_id = $1`,
      [b.erasedRun],
    );
    const { trace_id } = (
      await db.pool.query(`select id as trace_id from runproof.traces where run_id = $1`, [b.erasedRun])
    ).rows[0];
    const {
      rows: [r],
    } = await asA((c) =>
      c.query(`select (runproof.trace_steps_erasure(${fakeStep})).id`, [B.tenantId, b.erasedRun, trace_id]),
    );
    t.is(r.id, null, "row level security: B's erasure is not there for A");
  },
  ...Object.fromEntries(
    (["input", "output", "error"] as const).map((kind) => [
      `runproof.trace_steps_${kind}(runproof.trace_steps)`,
      async (t: any) => {
        await noRowsAsA(
          t,
          `select runproof.trace_steps_${kind}(s) from runproof.trace_steps s where trace_id = $1`,
          [b.trace],
        );
        const {
          rows: [r],
        } = await asA((c) =>
          c.query(`select runproof.trace_steps_${kind}(${fakeStep}) as v`, [B.tenantId, b.run, b.trace]),
        );
        t.is(r.v, null, "row level security: B's payload is not there for A");
      },
    ]),
  ),
  "runproof_private.decision_canonical(runproof.policy_decisions)": async (t) => {
    await noRowsAsA(
      t,
      `select runproof_private.decision_canonical(d) from runproof.policy_decisions d where trace_id = $1`,
      [b.trace],
    );
    const {
      rows: [r],
    } = await asA((c) =>
      c.query(`select convert_from(runproof_private.decision_canonical(${fakeDecision}), 'UTF8') as s`, [
        B.tenantId,
        b.run,
        b.trace,
      ]),
    );
    t.regex(r.s, /^\["runproof\.decision\/2", /, "the text of the row given, nothing read");
  },
  "runproof_private.incident_canonical(runproof.incidents)": async (t) => {
    await noRowsAsA(
      t,
      `select runproof_private.incident_canonical(i) from runproof.incidents i where run_id = $1`,
      [b.openRun],
    );
    const {
      rows: [r],
    } = await asA((c) =>
      c.query(`select convert_from(runproof_private.incident_canonical(${fakeIncident}), 'UTF8') as s`, [
        B.tenantId,
        b.openRun,
      ]),
    );
    t.regex(r.s, /^\["runproof\.incident\/2", /);
    t.deepEqual(leaks(r.s.replace(B.tenantId, "").replace(b.openRun, "")), []);
  },
  "runproof_private.payload_commitment(text,bytea,text)": async (t) => {
    // A pure function of what is given (docs/proof-format.md section 5).
    const salt = "ab".repeat(32);
    const {
      rows: [r],
    } = await asA((c) =>
      c.query(
        `select encode(runproof_private.payload_commitment('input', decode($1, 'hex'), '{}'), 'hex') as h`,
        [salt],
      ),
    );
    const { createHash } = await import("node:crypto");
    t.is(
      r.h,
      createHash("sha256")
        .update("runproof.payload/2|input|")
        .update(Buffer.from(salt, "hex"))
        .update("{}")
        .digest("hex"),
    );
  },
  "runproof_private.run_root_hash(runproof.runs)": async (t) => {
    await noRowsAsA(t, `select runproof_private.run_root_hash(r) from runproof.runs r where id = $1`, [
      b.run,
    ]);
    const {
      rows: [r],
    } = await asA((c) =>
      c.query(`select encode(runproof_private.run_root_hash(${fakeRun}), 'hex') as h`, [
        B.tenantId,
        b.run,
        B.agentId,
      ]),
    );
    t.not(r.h, b.runRoot, "computed from the row given and what A can see: none of B's traces");
  },
  "runproof_private.run_seal_canonical(runproof.runs)": async (t) => {
    await noRowsAsA(t, `select runproof_private.run_seal_canonical(r) from runproof.runs r where id = $1`, [
      b.run,
    ]);
    const {
      rows: [r],
    } = await asA((c) =>
      c.query(`select convert_from(runproof_private.run_seal_canonical(${fakeRun}), 'UTF8')::jsonb as s`, [
        B.tenantId,
        b.run,
        B.agentId,
      ]),
    );
    t.deepEqual([r.s[12], r.s[13]], [[], []], "no trace seal and no incident of B's");
  },
  "runproof_private.seal_difference(bytea,bytea,text[])": async (t) => {
    const {
      rows: [r],
    } = await asA((c) =>
      c.query(`select * from runproof_private.seal_difference('[1, 2]', '[1, 3]', array['a', 'b'])`),
    );
    t.like(r, { element: 1, name: "b", now_value: "2", sealed_value: "3" });
  },
  "runproof_private.step_fault_order()": async (t) => {
    const {
      rows: [r],
    } = await asA((c) => c.query(`select runproof_private.step_fault_order() as o`));
    t.deepEqual(r.o.slice(0, 3), ["gap", "link", "hash"]);
  },
  ...Object.fromEntries(
    [
      [
        "runproof_private.step_faults(uuid,uuid,bytea,integer,integer)",
        `runproof_private.step_faults($1, $2, sha256(''), 0, 10)`,
      ],
      [
        "runproof_private.step_faults_parallel(uuid,uuid,bytea,integer)",
        `runproof_private.step_faults_parallel($1, $2, sha256(''), 0)`,
      ],
    ].map(([sig, call]) => [
      sig,
      async (t: any) => {
        const {
          rows: [r],
        } = await asA((c) => c.query(`select * from ${call}`, [B.tenantId, b.trace]));
        t.like(
          r,
          { step_count: 0, first_bad: null, fault: null },
          "row level security: B's steps are not there for A",
        );
      },
    ]),
  ),
  "runproof_private.trace_canonical(runproof.traces)": async (t) => {
    await noRowsAsA(t, `select runproof_private.trace_canonical(tr) from runproof.traces tr where id = $1`, [
      b.trace,
    ]);
    const {
      rows: [r],
    } = await asA((c) =>
      c.query(`select convert_from(runproof_private.trace_canonical(${fakeTrace}), 'UTF8') as s`, [
        B.tenantId,
        b.trace,
        b.run,
      ]),
    );
    t.regex(r.s, /^\["runproof\.trace\/2", /);
    t.false(r.s.includes(b.traceRoot));
  },
  "runproof_private.trace_check(runproof.traces,integer)": async (t) => {
    const {
      rows: [r],
    } = await asA((c) =>
      c.query(
        `select (c.proof).step_count, (c.proof).root_hash, c.succeeded from runproof_private.trace_check(${fakeTrace}, 0) c`,
        [B.tenantId, b.trace, b.run],
      ),
    );
    t.like(r, { step_count: 0, succeeded: 0 });
    t.not(r.root_hash, b.traceRoot);
  },
  "runproof.archive_trace(uuid,uuid)": async (t) => {
    t.like(await refusedAsA(`select runproof.archive_trace($1)`, [b.trace]), { code: "RPNFD" });
    t.like(await refusedAsA(`select runproof.archive_trace($1, $2)`, [b.trace, B.tenantId]), {
      code: "42501",
    });
    t.is(
      (await db.pool.query(`select archived_at from runproof.traces where id = $1`, [b.trace])).rows[0]
        .archived_at,
      null,
    );
  },
  "runproof.cancel_run(uuid,text,uuid)": async (t) => {
    t.like(await refusedAsA(`select runproof.cancel_run($1)`, [b.plannedRun]), { code: "RPNFD" });
    t.like(await refusedAsA(`select runproof.cancel_run($1, 'x', $2)`, [b.plannedRun, B.tenantId]), {
      code: "42501",
    });
    t.is(
      (await db.pool.query(`select status from runproof.runs where id = $1`, [b.plannedRun])).rows[0].status,
      "planned",
    );
  },
  "runproof.create_agent(text,text,text[],uuid)": async (t) => {
    t.like(await refusedAsA(`select runproof.create_agent('intruder', tenant_id => $1)`, [B.tenantId]), {
      code: "42501",
    });
    // Without a tenant id it creates A's agent, never B's.
    const own = await asA((c) => c.query(`select tenant_id from runproof.create_agent('mine')`));
    t.is(own.rows[0].tenant_id, A.tenantId);
  },
  "runproof.current_tenant()": async (t) => {
    const {
      rows: [r],
    } = await asA((c) => c.query(`select (runproof.current_tenant()).*`));
    t.is(r.id, A.tenantId);
    t.deepEqual(leaks(r), []);
  },
  "runproof.enqueue_run(uuid,uuid,text,text,jsonb,text,integer)": async (t) => {
    t.like(
      await refusedAsA(`select runproof.enqueue_run($1, $2, 'steal', 'x', null)`, [B.tenantId, B.agentId]),
      { code: "42501" },
    );
    const e = await refusedAsA(`select runproof.enqueue_run(null, $1, 'steal', 'x', null)`, [B.agentId]);
    t.is(e.code, "RPNFD");
    t.deepEqual(leaks(e.message.replace(B.agentId, "")), [], "the error names only the id A gave");
    // B's idempotency keys are B's: the same key gives A a new run of its own, not B's.
    const {
      rows: [r],
    } = await asA((c) =>
      c.query(`select id, tenant_id from runproof.enqueue_run(null, $1, 'g', 'x', $2, 'shared-key')`, [
        A.agentId,
        planOf(1),
      ]),
    );
    t.is(r.tenant_id, A.tenantId);
  },
  "runproof.run_proof(uuid,uuid)": async (t) => {
    for (const run of [b.run, b.plannedRun, b.openRun]) {
      for (const tenant of [B.tenantId, A.tenantId]) {
        const {
          rows: [p],
        } = await asA((c) => c.query(`select * from runproof.run_proof($1, $2)`, [tenant, run]));
        t.is(p.verification_status, "NOT_FOUND");
        t.is(p.root_hash, null);
        t.is(p.step_count, 0);
        t.is(p.guard_status, null);
      }
    }
  },
  "runproof.runs_is_finished(runproof.runs)": async (t) => {
    t.deepEqual(
      (
        await asA((c) =>
          c.query(`select runproof.runs_is_finished(r) from runproof.runs r where id = $1`, [b.run]),
        )
      ).rows,
      [],
    );
  },
  "runproof.runs_plan_step_count(runproof.runs)": async (t) => {
    t.deepEqual(
      (
        await asA((c) =>
          c.query(`select runproof.runs_plan_step_count(r) from runproof.runs r where id = $1`, [
            b.plannedRun,
          ]),
        )
      ).rows,
      [],
    );
  },
  "runproof.runs_proof(runproof.runs)": async (t) => {
    // A row A builds with B's ids: the proof is computed as A, and finds nothing.
    const {
      rows: [r],
    } = await asA((c) =>
      c.query(`select (runproof.runs_proof(${fakeRun})).*`, [B.tenantId, b.run, B.agentId]),
    );
    t.is(r.verification_status, "NOT_FOUND");
    t.deepEqual(leaks({ ...r, tenant_id: null, run_id: null }), []);
  },
  "runproof.runs_root_hash(runproof.runs)": async (t) => {
    t.deepEqual(
      (
        await asA((c) =>
          c.query(`select runproof.runs_root_hash(r) from runproof.runs r where id = $1`, [b.run]),
        )
      ).rows,
      [],
    );
    const {
      rows: [r],
    } = await asA((c) =>
      c.query(`select runproof.runs_root_hash(${fakeRun}) as h`, [B.tenantId, b.run, B.agentId]),
    );
    t.is(r.h, null, "computed from the row given, which has no seal");
  },
  "runproof.trace_steps_prev_hash(runproof.trace_steps)": async (t) => {
    t.deepEqual(
      (
        await asA((c) =>
          c.query(
            `select runproof.trace_steps_prev_hash(s) from runproof.trace_steps s where trace_id = $1`,
            [b.trace],
          ),
        )
      ).rows,
      [],
    );
  },
  "runproof.trace_steps_step_hash(runproof.trace_steps)": async (t) => {
    t.deepEqual(
      (
        await asA((c) =>
          c.query(
            `select runproof.trace_steps_step_hash(s) from runproof.trace_steps s where trace_id = $1`,
            [b.trace],
          ),
        )
      ).rows,
      [],
    );
  },
  "runproof.traces_proof(runproof.traces)": async (t) => {
    const {
      rows: [r],
    } = await asA((c) =>
      c.query(`select (runproof.traces_proof(${fakeTrace})).*`, [B.tenantId, b.trace, b.run]),
    );
    t.is(r.verification_status, "NOT_FOUND");
    t.deepEqual(leaks({ ...r, trace_id: null }), []);
  },
  "runproof.traces_root_hash(runproof.traces)": async (t) => {
    t.deepEqual(
      (
        await asA((c) =>
          c.query(`select runproof.traces_root_hash(tr) from runproof.traces tr where id = $1`, [b.trace]),
        )
      ).rows,
      [],
    );
  },
  "runproof.verify_trace(uuid)": async (t) => {
    const {
      rows: [p],
    } = await asA((c) => c.query(`select * from runproof.verify_trace($1)`, [b.trace]));
    t.is(p.verification_status, "NOT_FOUND");
    t.deepEqual(leaks({ ...p, trace_id: null }), []);
  },
  "runproof_private.current_tenant_id()": async (t) => {
    t.is(
      (await asA((c) => c.query(`select runproof_private.current_tenant_id() as id`))).rows[0].id,
      A.tenantId,
    );
  },
  "runproof_private.genesis_hash(uuid,uuid,uuid)": async (t) => {
    // A pure function of the ids given (docs/proof-format.md section 1): no table is read.
    const {
      rows: [r],
    } = await asA((c) =>
      c.query(`select encode(runproof_private.genesis_hash($1, $2, $3), 'hex') as h`, [
        B.tenantId,
        b.run,
        b.trace,
      ]),
    );
    const { createHash } = await import("node:crypto");
    t.is(
      r.h,
      createHash("sha256").update(`runproof.genesis/2|${B.tenantId}|${b.run}|${b.trace}`).digest("hex"),
    );
  },
  "runproof_private.guard_status(timestamp with time zone,timestamp with time zone)": async (t) => {
    // SECURITY DEFINER, but about the schema, not about anyone's rows.
    const {
      rows: [r],
    } = await asA((c) => c.query(`select * from runproof_private.guard_status('-infinity', 'infinity')`));
    t.is(r.status, "GUARDED");
    t.deepEqual(leaks(r), []);
  },
  "runproof_private.hex(bytea)": async (t) => {
    t.is((await asA((c) => c.query(`select runproof_private.hex('\\x0aff'::bytea) as h`))).rows[0].h, "0aff");
  },
  "runproof_private.is_terminal_status(text)": async (t) => {
    t.true(
      (await asA((c) => c.query(`select runproof_private.is_terminal_status('succeeded') as v`))).rows[0].v,
    );
  },
  "runproof_private.run_proof_chain(uuid,uuid)": async (t) => {
    const {
      rows: [p],
    } = await asA((c) =>
      c.query(`select * from runproof_private.run_proof_chain($1, $2)`, [B.tenantId, b.run]),
    );
    t.is(p.verification_status, "NOT_FOUND");
    t.is(p.root_hash, null);
  },

  "runproof_private.run_canonical(runproof.runs)": async (t) => {
    const { rows } = await asA((c) =>
      c.query(`select runproof_private.run_canonical(r) from runproof.runs r where r.id = $1`, [b.run]),
    );
    t.deepEqual(rows, [], "B's run row is invisible, so its content cannot be read through it");
  },

  "runproof_private.step_canonical(runproof.trace_steps)": async (t) => {
    const {
      rows: [r],
    } = await asA((c) =>
      c.query(`select convert_from(runproof_private.step_canonical(${fakeStep}), 'UTF8') as s`, [
        B.tenantId,
        b.run,
        b.trace,
      ]),
    );
    t.regex(r.s, /^\["runproof\.step\/2", /);
    t.false(r.s.includes(b.stepHash));
  },
  "runproof_private.step_hash(bytea,bytea)": async (t) => {
    const {
      rows: [r],
    } = await asA((c) => c.query(`select encode(runproof_private.step_hash('\\x00', '\\x01'), 'hex') as h`));
    t.regex(r.h, /^[0-9a-f]{64}$/);
  },
  "runproof_private.verify_trace_row(runproof.traces)": async (t) => {
    // Verifying a row A made up with B's ids reads B's steps as A: there are none.
    const {
      rows: [p],
    } = await asA((c) =>
      c.query(`select (runproof_private.verify_trace_row(${fakeTrace})).*`, [B.tenantId, b.trace, b.run]),
    );
    t.is(p.chain_length, 0);
    t.is(p.step_count, 0);
    t.not(p.root_hash, b.traceRoot);
    t.false(JSON.stringify(p).includes(b.stepHash));
  },
};

test("SQL: every function the tenant role may execute has an isolation case (and nothing else is executable)", async (t) => {
  const { rows } = await db.pool.query<{ sig: string }>(
    `select p.oid::regprocedure::text as sig from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where has_schema_privilege('runproof_tenant', n.oid, 'usage') and n.nspname not in ('pg_catalog', 'information_schema')
        and has_function_privilege('runproof_tenant', p.oid, 'execute') order by 1`,
  );
  const callable = rows.map((r) => r.sig);
  t.deepEqual(
    callable.filter((s) => !(s in SQL_CASES)),
    [],
    "functions without an isolation case: add one to SQL_CASES",
  );
  t.deepEqual(
    Object.keys(SQL_CASES).filter((s) => !callable.includes(s)),
    [],
    "cases for functions the tenant can no longer call",
  );
  const { rows: schemas } = await db.pool.query(
    `select nspname from pg_namespace where nspname in ('graphile_worker', 'graphile_migrate') and has_schema_privilege('runproof_tenant', oid, 'usage')`,
  );
  t.deepEqual(schemas, [], "the job queue and the migration log are out of the tenant's reach");
  t.log(`${callable.length} SQL functions callable by runproof_tenant, each checked`);
});

for (const [sig, check] of Object.entries(SQL_CASES)) {
  test(`SQL ${sig}: A learns and changes nothing of B's`, check);
}

// =============================================================================================
// GraphQL: every field
// =============================================================================================

interface TypeRef {
  kind: string;
  name: string | null;
  ofType: TypeRef | null;
}
interface Field {
  name: string;
  args: Array<{ name: string; type: TypeRef; defaultValue: string | null }>;
  type: TypeRef;
}
interface FullType {
  kind: string;
  name: string;
  fields: Field[] | null;
}

async function introspect(): Promise<{
  types: Map<string, FullType>;
  query: string;
  mutation: string;
  subscription: string;
}> {
  const typeRef =
    "kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } }";
  const data = await gqlOk(
    server.url,
    A.apiKey,
    `{ __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types { kind name fields(includeDeprecated: true) { name args { name defaultValue type { ${typeRef} } } type { ${typeRef} } } } } }`,
  );
  const s = data.__schema;
  return {
    types: new Map(s.types.map((x: FullType) => [x.name, x])),
    query: s.queryType.name,
    mutation: s.mutationType.name,
    subscription: s.subscriptionType.name,
  };
}
const named = (t: TypeRef): TypeRef => (t.ofType ? named(t.ofType) : t);
const required = (f: Field) => f.args.filter((x) => x.type.kind === "NON_NULL" && x.defaultValue === null);

/** A selection of every field below `typeName`, each object type expanded once per path. */
function selectAll(
  types: Map<string, FullType>,
  typeName: string,
  visited: Set<string>,
  path: string[] = [],
  depth = 0,
): string {
  const type = types.get(typeName)!;
  const parts: string[] = ["__typename"];
  for (const f of type.fields ?? []) {
    if (required(f).length) continue; // needs arguments: an explicit case below
    const target = types.get(named(f.type).name!)!;
    if (target.kind === "OBJECT") {
      visited.add(`${typeName}.${f.name}`);
      // A type already on the path (a back-reference, e.g. TraceStep.trace): its own columns only.
      const body =
        path.includes(target.name) || target.name === typeName || depth >= 8
          ? [
              "__typename",
              ...(target.fields ?? [])
                .filter((g) => !required(g).length && types.get(named(g.type).name!)!.kind !== "OBJECT")
                .map((g) => g.name),
            ].join(" ")
          : selectAll(types, target.name, visited, [...path, typeName], depth + 1);
      parts.push(`${f.name} { ${body} }`);
    } else {
      visited.add(`${typeName}.${f.name}`);
      parts.push(f.name);
    }
  }
  return parts.join(" ");
}

/** Root query fields, each asked for B's data. */
const QUERY_CASES: Record<
  string,
  (ids: { tenant: string; agent: string; run: string; trace: string }) => string[]
> = {
  run: (x) => [`run(id: "${x.run}")`],
  runs: (x) => [
    `runs`,
    `runs(condition: { tenantId: "${x.tenant}" })`,
    `runs(condition: { agentId: "${x.agent}" })`,
  ],
  trace: (x) => [`trace(id: "${x.trace}")`],
  agent: (x) => [`agent(id: "${x.agent}")`],
  agents: (x) => [`agents`, `agents(condition: { tenantId: "${x.tenant}" })`],
  skill: () => [`skill(name: "noop")`],
  skills: () => [`skills`],
  currentTenant: () => [`currentTenant`],
  logCheckpoints: (x) => [`logCheckpoints`, `logCheckpoints(condition: { tenantId: "${x.tenant}" })`],
  logInclusionProof: () => [`logInclusionProof(leafIndex: "0", treeSize: "1")`],
  logConsistencyProof: () => [`logConsistencyProof(fromSize: "0", toSize: "1")`],
};

test("GraphQL: every field of every type, reached from every root query field with B's ids, returns nothing of B's to A", async (t) => {
  const { types, query, mutation, subscription } = await introspect();
  const roots = (types.get(query)!.fields ?? []).map((f) => f.name);
  t.deepEqual(
    roots.filter((r) => !(r in QUERY_CASES)),
    [],
    "root query fields without an isolation case: add one to QUERY_CASES",
  );
  t.deepEqual(
    (types.get(mutation)!.fields ?? []).map((f) => f.name).filter((m) => !MUTATION_CASES.includes(m)),
    [],
    "mutations without a case",
  );
  t.deepEqual(
    (types.get(subscription)!.fields ?? []).map((f) => f.name),
    ["runUpdated"],
    "subscriptions without a case",
  );

  const build = (
    ids: { tenant: string; agent: string; run: string; trace: string },
    visited: Set<string>,
  ) => {
    const parts: string[] = [];
    for (const f of types.get(query)!.fields!) {
      visited.add(`${query}.${f.name}`);
      const target = types.get(named(f.type).name!)!;
      const body = target.kind === "OBJECT" ? ` { ${selectAll(types, target.name, visited, [query])} }` : "";
      QUERY_CASES[f.name](ids).forEach((call, i) => parts.push(`q_${f.name}_${i}: ${call}${body}`));
    }
    return `{ ${parts.join("\n")} }`;
  };
  const visited = new Set<string>();
  const bIds = { tenant: B.tenantId, agent: b.secretAgent, run: b.run, trace: b.trace };
  const asA = await gql(server.url, A.apiKey, build(bIds, visited));
  t.is(asA.status, 200, JSON.stringify(asA.body.errors?.[0]));
  t.deepEqual(asA.body.errors ?? [], [], "the generated query is valid");
  t.deepEqual(leaks(asA.body), [], "nothing of B's in A's answer");
  t.true(JSON.stringify(asA.body).includes(a.run), "A still sees its own run: the query does reach data");

  // Control: the same query with B's key finds B's secrets, so the check above can see them.
  const asB = await gql(server.url, B.apiKey, build(bIds, new Set()));
  t.deepEqual(asB.body.errors ?? [], []);
  for (const s of [
    b.run,
    b.trace,
    b.runRoot,
    b.traceRoot,
    b.stepHash,
    "b-secret-goal",
    "b-secret-agent",
    "b-secret-value",
    "b-secret-input-0",
    "b-secret-output-1",
    "b-secret-erasure-reason",
  ]) {
    t.true(JSON.stringify(asB.body).includes(s), `B's own query shows ${s}`);
  }

  // Coverage: every field of every object type reachable from Query was selected at least once.
  const reachable = new Set<string>();
  const walk = (name: string) => {
    if (reachable.has(name)) return;
    reachable.add(name);
    for (const f of types.get(name)!.fields ?? [])
      if (types.get(named(f.type).name!)!.kind === "OBJECT") walk(named(f.type).name!);
  };
  walk(query);
  const missing: string[] = [];
  for (const name of reachable) {
    if (name.startsWith("__")) continue;
    for (const f of types.get(name)!.fields ?? []) {
      if (!visited.has(`${name}.${f.name}`))
        missing.push(`${name}.${f.name}${required(f).length ? " (has required arguments)" : ""}`);
    }
  }
  t.deepEqual(missing, [], "fields no isolation query reached: give them a case");
  t.log(
    `${visited.size} GraphQL fields on ${[...reachable].filter((n) => !n.startsWith("__")).length} types selected from ${roots.length} root query fields; none returned B's data`,
  );
});

const MUTATION_CASES = ["enqueueRun", "createAgent", "cancelRun", "archiveTrace", "erasePayloads"];

test("GraphQL mutations: A cannot enqueue for, create in, cancel, archive or erase anything of B's", async (t) => {
  const count = async () =>
    (
      await db.pool.query(
        `select (select count(*) from runproof.runs where tenant_id = $1)::int as runs, (select count(*) from runproof.agents where tenant_id = $1)::int as agents,
                (select count(*) from runproof.step_payloads where tenant_id = $1)::int as payloads,
                (select count(*) from runproof.payload_erasures where tenant_id = $1)::int as erasures`,
        [B.tenantId],
      )
    ).rows[0];
  const before = await count();
  const tries: Array<[string, string, Record<string, unknown>, string]> = [
    [
      "enqueueRun for B's agent",
      `mutation($a: UUID!) { enqueueRun(input: { agentId: $a, goal: "x", originSystemId: "x", plan: { version: 1, steps: [{ skill: "noop" }] } }) { run { id } } }`,
      { a: b.secretAgent },
      "RPNFD",
    ],
    [
      "enqueueRun for B's tenant",
      `mutation($t: UUID!, $a: UUID!) { enqueueRun(input: { tenantId: $t, agentId: $a, goal: "x", originSystemId: "x" }) { run { id } } }`,
      { t: B.tenantId, a: B.agentId },
      "42501",
    ],
    [
      "createAgent in B's tenant",
      `mutation($t: UUID!) { createAgent(input: { tenantId: $t, name: "intruder" }) { agent { id } } }`,
      { t: B.tenantId },
      "42501",
    ],
    [
      "cancelRun of B's run",
      `mutation($r: UUID!) { cancelRun(input: { runId: $r }) { run { id status } } }`,
      { r: b.plannedRun },
      "RPNFD",
    ],
    [
      "cancelRun of B's run, naming B's tenant",
      `mutation($r: UUID!, $t: UUID!) { cancelRun(input: { runId: $r, tenantId: $t }) { run { id } } }`,
      { r: b.plannedRun, t: B.tenantId },
      "42501",
    ],
    [
      "archiveTrace of B's trace",
      `mutation($x: UUID!) { archiveTrace(input: { traceId: $x }) { trace { id } } }`,
      { x: b.trace },
      "RPNFD",
    ],
    [
      "archiveTrace of B's trace, naming B's tenant",
      `mutation($x: UUID!, $t: UUID!) { archiveTrace(input: { traceId: $x, tenantId: $t }) { trace { id } } }`,
      { x: b.trace, t: B.tenantId },
      "42501",
    ],
    [
      "erasePayloads of B's run",
      `mutation($r: UUID!) { erasePayloads(input: { runId: $r, reason: "x" }) { erasure { id stepCount } } }`,
      { r: b.run },
      "RPNFD",
    ],
    [
      "erasePayloads of B's run, naming B's tenant",
      `mutation($r: UUID!, $t: UUID!) { erasePayloads(input: { runId: $r, reason: "x", tenantId: $t }) { erasure { id } } }`,
      { r: b.run, t: B.tenantId },
      "42501",
    ],
  ];
  const covered = new Set<string>();
  for (const [what, q, vars, code] of tries) {
    const r = await gql(server.url, A.apiKey, q, vars);
    t.is(r.body.errors?.[0]?.extensions?.code, code, what);
    // An error may repeat the ids A itself sent; nothing else of B's.
    const scrub = (m: string) =>
      Object.values(vars).reduce<string>((acc, v) => acc.replaceAll(String(v), "<given>"), m);
    t.deepEqual(
      leaks({
        data: r.body.data,
        errors: (r.body.errors ?? []).map((e) => ({ ...e, message: scrub(e.message) })),
      }),
      [],
      what,
    );
    covered.add(/^mutation[^{]*\{ (\w+)/.exec(q)![1]);
  }
  t.deepEqual([...covered].sort(), [...MUTATION_CASES].sort());
  t.deepEqual(await count(), before, "B has no new run, agent or erasure, and all its payloads");
  t.is(
    (await db.pool.query(`select status from runproof.runs where id = $1`, [b.plannedRun])).rows[0].status,
    "planned",
  );
  t.is(
    (await db.pool.query(`select archived_at from runproof.traces where id = $1`, [b.trace])).rows[0]
      .archived_at,
    null,
  );
});

test("GraphQL subscription: A cannot follow B's run", async (t) => {
  const sub = await subscribe(
    server.url,
    A.apiKey,
    `subscription($r: UUID!) { runUpdated(runId: $r) { event status } }`,
    { r: b.plannedRun },
  );
  const result = await sub.done;
  const errors = result.errors ?? sub.events.flatMap((e) => e.errors ?? []);
  t.is(errors[0]?.extensions?.code, "RPNFD");
  t.deepEqual(
    sub.events.filter((e) => e.data?.runUpdated),
    [],
  );
});
