// runproof.enqueue_run: the one creation path. Bad input gets a clear error and writes nothing.
import test from "ava";
import type pg from "pg";
import { builtinSkills, registerSkillsInDatabase, SkillRegistry } from "../src/skills/registry.ts";
import { createTestDatabase } from "./helpers/db.ts";
import { pgError } from "./helpers/ledger.ts";
import { tenantWithAgent } from "./helpers/worker.ts";

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let f: { tenantId: string; agentId: string };
let other: { tenantId: string; agentId: string };
test.before(async () => {
  db = await createTestDatabase("enqueue-run");
  await registerSkillsInDatabase(db.pool, new SkillRegistry(builtinSkills()));
  f = await tenantWithAgent(db.pool);
  other = await tenantWithAgent(db.pool);
});
test.after.always(async () => db?.drop());

const PLAN = { version: 1, steps: [{ skill: "noop", input: { a: 1 } }] };
// The plan goes as JSON text: node-pg would send a JS array as a Postgres array.
const call = (db: pg.Pool | pg.PoolClient, args: unknown[]) =>
  db.query(
    `select * from runproof.enqueue_run($1, $2, $3, $4, $5, $6, $7)`,
    args.map((a, i) => (i === 4 && a !== null ? JSON.stringify(a) : a)),
  );
const counts = async () =>
  (
    await db.pool.query(
      `select (select count(*) from runproof.runs)::int as runs, (select count(*) from graphile_worker.jobs)::int as jobs`,
    )
  ).rows[0];

test.serial("a run with a plan is stored planned with its execute job in the same transaction", async (t) => {
  const {
    rows: [r],
  } = await call(db.pool, [f.tenantId, f.agentId, "do it", "ava-test", PLAN, null, 3]);
  t.like(r, {
    tenant_id: f.tenantId,
    agent_id: f.agentId,
    status: "planned",
    origin_system_id: "ava-test",
    attempts: 0,
  });
  t.deepEqual(r.plan, PLAN);
  const { rows: jobs } = await db.pool.query(
    `select task_identifier, payload from graphile_worker.jobs j join graphile_worker._private_jobs p using (id) where j.key = $1`,
    [`exec:${r.id}`],
  );
  t.is(jobs.length, 1);
  t.is(jobs[0].task_identifier, "execute_run");
  t.deepEqual(jobs[0].payload, { tenant_id: f.tenantId, run_id: r.id });
});

test.serial("a run without a plan is stored pending with a plan job", async (t) => {
  const {
    rows: [r],
  } = await call(db.pool, [f.tenantId, f.agentId, "figure it out", "ava-test", null, null, 3]);
  t.is(r.status, "pending");
  const {
    rows: [j],
  } = await db.pool.query(`select task_identifier from graphile_worker.jobs where key = $1`, [
    `plan:${r.id}`,
  ]);
  t.is(j.task_identifier, "plan_run");
});

test.serial("a rollback of the caller's transaction leaves neither the run nor its job", async (t) => {
  const before = await counts();
  const c = await db.pool.connect();
  try {
    await c.query("begin");
    const {
      rows: [r],
    } = await call(c, [f.tenantId, f.agentId, "rolled back", "ava-test", PLAN, null, 3]);
    t.truthy(r.id);
    await c.query("rollback");
  } finally {
    c.release();
  }
  t.deepEqual(await counts(), before);
});

test.serial(
  "the same idempotency key for the same tenant returns the same run, even when racing",
  async (t) => {
    const before = await counts();
    const [a, b, c] = await Promise.all(
      [1, 2, 3].map(() => call(db.pool, [f.tenantId, f.agentId, "once", "ava-test", PLAN, "req-42", 3])),
    );
    t.is(a.rows[0].id, b.rows[0].id);
    t.is(a.rows[0].id, c.rows[0].id);
    const after = await counts();
    t.is(after.runs, before.runs + 1);
    t.is(after.jobs, before.jobs + 1);
    // Another tenant may use the same key for its own run.
    const {
      rows: [o],
    } = await call(db.pool, [other.tenantId, other.agentId, "once", "ava-test", PLAN, "req-42", 3]);
    t.not(o.id, a.rows[0].id);
    // Reusing a key for a different request is an error, not a silent alias.
    const e = await pgError(
      call(db.pool, [f.tenantId, f.agentId, "something else", "ava-test", PLAN, "req-42", 3]),
    );
    t.is(e.code, "RPIDM");
    t.regex(e.message, /idempotency_key 'req-42' was already used for a different run/);
  },
);

const NIL = "00000000-0000-0000-0000-000000000000";
const badCases: [string, () => unknown[], string, RegExp][] = [
  [
    "unknown tenant",
    () => [NIL, f.agentId, "g", "ava-test", PLAN, null, 3],
    "RPNFD",
    /^tenant 0{8}-.* not found$/,
  ],
  [
    "missing tenant",
    () => [null, f.agentId, "g", "ava-test", PLAN, null, 3],
    "RPVAL",
    /^tenant_id is required$/,
  ],
  [
    "unknown agent",
    () => [f.tenantId, NIL, "g", "ava-test", PLAN, null, 3],
    "RPNFD",
    /^agent 0{8}-.* not found for tenant/,
  ],
  [
    "another tenant's agent",
    () => [f.tenantId, other.agentId, "g", "ava-test", PLAN, null, 3],
    "RPNFD",
    /^agent .* not found for tenant/,
  ],
  [
    "missing agent",
    () => [f.tenantId, null, "g", "ava-test", PLAN, null, 3],
    "RPVAL",
    /^agent_id is required$/,
  ],
  [
    "blank goal",
    () => [f.tenantId, f.agentId, "  \n", "ava-test", PLAN, null, 3],
    "RPVAL",
    /^goal must not be blank$/,
  ],
  [
    "null goal",
    () => [f.tenantId, f.agentId, null, "ava-test", PLAN, null, 3],
    "RPVAL",
    /^goal must not be blank$/,
  ],
  [
    "oversized goal",
    () => [f.tenantId, f.agentId, "x".repeat(10_001), "ava-test", PLAN, null, 3],
    "RPVAL",
    /^goal is 10001 characters long/,
  ],
  ["missing origin", () => [f.tenantId, f.agentId, "g", null, PLAN, null, 3], "23502", /origin_system_id/],
  [
    "reserved origin",
    () => [f.tenantId, f.agentId, "g", "legacy-migration", PLAN, null, 3],
    "RPORS",
    /is reserved/,
  ],
  ["blank origin", () => [f.tenantId, f.agentId, "g", " ", PLAN, null, 3], "RPOBL", /must not be blank/],
  [
    "plan not an object",
    () => [f.tenantId, f.agentId, "g", "ava-test", [1, 2], null, 3],
    "RPPLN",
    /^plan must be a JSON object, got array$/,
  ],
  [
    "plan without steps",
    () => [f.tenantId, f.agentId, "g", "ava-test", { version: 1, steps: [] }, null, 3],
    "RPPLN",
    /non-empty "steps" array/,
  ],
  [
    "plan of another version",
    () => [f.tenantId, f.agentId, "g", "ava-test", { version: 2, steps: [{ skill: "noop" }] }, null, 3],
    "RPPLN",
    /version must be 1/,
  ],
  [
    "plan step without skill",
    () => [f.tenantId, f.agentId, "g", "ava-test", { version: 1, steps: [{ input: {} }] }, null, 3],
    "RPPLN",
    /plan step 0 has no skill name/,
  ],
  [
    "plan step with unknown key",
    () => [
      f.tenantId,
      f.agentId,
      "g",
      "ava-test",
      { version: 1, steps: [{ skill: "noop", sql: "drop" }] },
      null,
      3,
    ],
    "RPPLN",
    /unknown key 'sql'/,
  ],
  [
    "plan step input not an object",
    () => [
      f.tenantId,
      f.agentId,
      "g",
      "ava-test",
      { version: 1, steps: [{ skill: "noop", input: "x" }] },
      null,
      3,
    ],
    "RPPLN",
    /input must be an object/,
  ],
  [
    "huge plan",
    () => [
      f.tenantId,
      f.agentId,
      "g",
      "ava-test",
      { version: 1, steps: Array.from({ length: 1001 }, () => ({ skill: "noop" })) },
      null,
      3,
    ],
    "RPPLN",
    /at most 1000/,
  ],
  [
    "unknown skill (the report's http_call bug)",
    () => [
      f.tenantId,
      f.agentId,
      "g",
      "ava-test",
      { version: 1, steps: [{ skill: "noop" }, { skill: "http_cal" }] },
      null,
      3,
    ],
    "RPSKL",
    /^plan step 1 names unknown skill 'http_cal'$/,
  ],
  [
    "max_attempts out of range",
    () => [f.tenantId, f.agentId, "g", "ava-test", PLAN, null, 0],
    "RPVAL",
    /max_attempts must be from 1 to 20/,
  ],
  [
    "blank idempotency key",
    () => [f.tenantId, f.agentId, "g", "ava-test", PLAN, " ", 3],
    "RPVAL",
    /idempotency_key must be/,
  ],
];
for (const [name, args, code, message] of badCases) {
  test.serial(`bad input: ${name} -> ${code}, nothing written`, async (t) => {
    const before = await counts();
    const e = await pgError(call(db.pool, args()));
    t.is(e.code, code);
    t.regex(e.message, message);
    t.truthy(e.hint, "every error says what to do");
    t.deepEqual(await counts(), before);
  });
}

test.serial("in a tenant's request, enqueue_run acts only for that tenant", async (t) => {
  const c = await db.pool.connect();
  try {
    await c.query("begin");
    await c.query(`set local role runproof_tenant`);
    await c.query(`select set_config('runproof.tenant_id', $1, true)`, [f.tenantId]);
    const {
      rows: [mine],
    } = await call(c, [null, f.agentId, "mine", "graphql", PLAN, null, 3]);
    t.is(mine.tenant_id, f.tenantId);
    await c.query("savepoint s");
    const e = await pgError(call(c, [other.tenantId, other.agentId, "theirs", "graphql", PLAN, null, 3]));
    t.is(e.code, "42501");
    t.regex(e.message, /is not the tenant of this request/);
    await c.query("rollback to savepoint s");
    await c.query(`select set_config('runproof.tenant_id', '', true)`);
    const anon = await pgError(call(c, [f.tenantId, f.agentId, "anon", "graphql", PLAN, null, 3]));
    t.is(anon.code, "42501");
    t.regex(anon.message, /this request has no tenant/);
  } finally {
    await c.query("rollback");
    c.release();
  }
});

test.serial("the tenant role cannot insert runs directly: enqueue_run is the only way in", async (t) => {
  const c = await db.pool.connect();
  try {
    await c.query("begin");
    await c.query(`set local role runproof_tenant`);
    const e = await pgError(
      c.query(
        `insert into runproof.runs (tenant_id, agent_id, goal, origin_system_id) values ($1, $2, 'g', 'x')`,
        [f.tenantId, f.agentId],
      ),
    );
    t.is(e.code, "42501");
  } finally {
    await c.query("rollback");
    c.release();
  }
});
