// The origin_system_id trap from the reports: a DEFAULT that its own trigger rejected.
import test from "ava";
import { createTestDatabase } from "./helpers/db.ts";
import { createTenant, planOf, pgError, type Fixture } from "./helpers/ledger.ts";

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let f: Fixture;
test.before(async () => {
  db = await createTestDatabase("origin");
  f = await createTenant(db.pool);
});
test.after.always(async () => db?.drop());

const insert = (origin: string | null | undefined) => {
  const cols = origin === undefined ? "" : ", origin_system_id";
  const vals = origin === undefined ? "" : ", $4";
  const params: unknown[] = [f.tenantId, f.agentId, planOf(1)];
  if (origin !== undefined) params.push(origin);
  return db.pool.query(
    `insert into runproof.runs (tenant_id, agent_id, goal, plan, status${cols}) values ($1, $2, 'goal', $3, 'planned'${vals}) returning id, origin_system_id`,
    params,
  );
};
const runCount = async () =>
  Number((await db.pool.query(`select count(*) from runproof.runs`)).rows[0].count);

test.serial("the column is NOT NULL and has no default", async (t) => {
  const {
    rows: [c],
  } = await db.pool.query(
    `select is_nullable, column_default from information_schema.columns
     where table_schema = 'runproof' and table_name = 'runs' and column_name = 'origin_system_id'`,
  );
  t.is(c.is_nullable, "NO");
  t.is(c.column_default, null);
});

test.serial("an insert without origin_system_id fails as a NOT NULL violation with a hint", async (t) => {
  const before = await runCount();
  const e = await pgError(insert(undefined));
  t.is(e.code, "23502");
  t.regex(
    e.message,
    /null value in column "origin_system_id" of relation "runs" violates not-null constraint/,
  );
  t.regex(e.hint ?? "", /pass origin_system_id/);
  t.is(e.column, "origin_system_id");
  t.is(await runCount(), before);
});

test.serial("an explicit NULL fails the same way", async (t) => {
  const e = await pgError(insert(null));
  t.is(e.code, "23502");
});

test.serial("'legacy-migration' is rejected by the check as reserved", async (t) => {
  const before = await runCount();
  for (const v of ["legacy-migration", "LEGACY-MIGRATION", "unknown", "default"]) {
    const e = await pgError(insert(v));
    t.is(e.code, "RPORS", v);
    t.regex(e.message, /origin_system_id '.*' is reserved and cannot be used for new runs/);
    t.regex(e.hint ?? "", /identifier of the system creating the run/);
    t.regex(e.detail ?? "", /legacy-migration/);
  }
  t.is(await runCount(), before);
});

test.serial("blank and whitespace-only values are rejected", async (t) => {
  for (const v of ["", " ", "\t\n  "]) {
    const e = await pgError(insert(v));
    t.is(e.code, "RPOBL", JSON.stringify(v));
    t.is(e.message, "origin_system_id must not be blank");
    t.regex(e.hint ?? "", /pass origin_system_id/);
  }
});

test.serial("over-long values are rejected", async (t) => {
  t.truthy((await insert("x".repeat(128))).rows[0].id);
  const e = await pgError(insert("x".repeat(129)));
  t.is(e.code, "RPOLN");
  t.is(e.message, "origin_system_id is 129 characters long; at most 128 are allowed");
  t.truthy(e.hint);
});

test.serial("untrimmed values and control characters are rejected", async (t) => {
  for (const v of [" cli", "cli ", "c\u0001li"]) {
    const e = await pgError(insert(v));
    t.is(e.code, "RPOCH", JSON.stringify(v));
    t.regex(e.hint ?? "", /trim/);
  }
});

test.serial("an explicit value is accepted and stored as given", async (t) => {
  const {
    rows: [r],
  } = await insert("billing-service");
  t.is(r.origin_system_id, "billing-service");
  const {
    rows: [u],
  } = await insert("Überweisungs-Dienst/v2");
  t.is(u.origin_system_id, "Überweisungs-Dienst/v2");
});

test.serial("the check constraint still rejects reserved values when the trigger is disabled", async (t) => {
  const c = await db.pool.connect();
  try {
    await c.query("begin");
    await c.query("alter table runproof.runs disable trigger tg_runs__origin_check");
    const e = await pgError(
      c.query(
        `insert into runproof.runs (tenant_id, agent_id, goal, plan, status, origin_system_id) values ($1, $2, 'g', $3, 'planned', 'legacy-migration')`,
        [f.tenantId, f.agentId, planOf(1)],
      ),
    );
    t.is(e.code, "23514");
    t.is(e.constraint, "runs_origin_system_id_valid");
  } finally {
    await c.query("rollback");
    c.release();
  }
});

test.serial("origin_system_id never changes after insert", async (t) => {
  const {
    rows: [r],
  } = await insert("first-system");
  const e = await pgError(
    db.pool.query(`update runproof.runs set origin_system_id = 'other' where id = $1`, [r.id]),
  );
  t.is(e.code, "RPIMM");
  t.regex(
    e.message,
    /^S6_IMMUTABILITY_VIOLATION: UPDATE on runproof\.runs \(tenant_id=.*, id=.*\) is not allowed$/,
  );
});
