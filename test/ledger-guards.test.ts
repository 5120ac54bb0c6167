// The DBA's view of the guards: what each blocks and allows, and whether it is live.
import test from "ava";
import { createTestDatabase } from "./helpers/db.ts";

let db: Awaited<ReturnType<typeof createTestDatabase>>;
test.before(async () => {
  db = await createTestDatabase("guards");
});
test.after.always(async () => db?.drop());

test.serial("runproof_private.guards lists every guard trigger as always enabled", async (t) => {
  const { rows: all } = await db.pool.query(`select * from runproof_private.guards`);
  const rows = all.filter((r) => !r.trigger_name.startsWith("foreign key "));
  // 26 on the ledger tables, 9 of the tenants' logs (tg_runs__log_append and the log tables' guards,
  // runproof_private.log_nodes's among them).
  t.is(rows.length, 35);
  t.deepEqual(
    rows.filter((r) => r.table_schema === "runproof_private").map((r) => `${r.table_name}.${r.trigger_name}`),
    ["log_nodes.tg_log_nodes__append_only", "log_nodes.tg_log_nodes__no_truncate"],
  );
  const fks = all.filter((r) => r.trigger_name.startsWith("foreign key "));
  t.true(fks.length >= 10);
  for (const r of fks) t.is(r.enabled, "origin only (foreign key)", r.trigger_name);
  for (const r of rows) {
    t.is(r.enabled, "always", r.trigger_name);
    t.truthy(r.blocks, r.trigger_name);
    t.truthy(r.allows, r.trigger_name);
    t.regex(r.definition, /^CREATE TRIGGER /);
  }
  t.truthy(
    rows.find(
      (r) =>
        r.table_name === "trace_steps" &&
        r.trigger_name === "tg_trace_steps__append_only" &&
        /UPDATE, DELETE/.test(r.blocks),
    ),
  );
});

test.serial("a disabled or dropped guard shows as DISABLED or MISSING", async (t) => {
  const c = await db.pool.connect();
  try {
    await c.query("begin");
    await c.query("alter table runproof.trace_steps disable trigger tg_trace_steps__append_only");
    await c.query("drop trigger tg_incidents__append_only on runproof.incidents");
    await c.query("alter table runproof.runs enable trigger tg_runs__guard"); // origin only: replica mode would skip it
    const { rows } = await c.query(`select trigger_name, enabled from runproof_private.guards`);
    const by = Object.fromEntries(rows.map((r) => [r.trigger_name, r.enabled]));
    t.is(by.tg_trace_steps__append_only, "DISABLED");
    t.is(by.tg_incidents__append_only, "MISSING");
    t.is(by.tg_runs__guard, "origin only");
    await c.query("alter table runproof.policy_decisions disable trigger all");
    const { rows: after } = await c.query(
      `select trigger_name, enabled from runproof_private.guards where table_name = 'policy_decisions'`,
    );
    t.true(after.length >= 4);
    for (const r of after) t.is(r.enabled, "DISABLED", r.trigger_name);
  } finally {
    await c.query("rollback");
    c.release();
  }
});

test.serial(
  "guard_problems: a guard of the private schema's log nodes is watched too; the lines come in a fixed order",
  async (t) => {
    const c = await db.pool.connect();
    try {
      await c.query("begin");
      t.deepEqual((await c.query(`select p from runproof_private.guard_problems() p`)).rows, []);
      await c.query("alter table runproof_private.log_nodes disable trigger tg_log_nodes__append_only");
      await c.query("alter table runproof.trace_steps disable trigger tg_trace_steps__append_only");
      await c.query("alter table runproof.incidents enable replica trigger tg_incidents__append_only");
      const { rows } = await c.query(`select p from runproof_private.guard_problems() p`);
      t.deepEqual(
        rows.map((r) => r.p),
        [
          "guard tg_incidents__append_only on runproof.incidents is enabled in replica mode only",
          "guard tg_log_nodes__append_only on runproof_private.log_nodes is DISABLED",
          "guard tg_trace_steps__append_only on runproof.trace_steps is DISABLED",
        ],
      );
      const { rows: ledger } = await c.query(
        `select reason, guard_status from runproof.verify_all() where run_id is null and reason like '%log_nodes%'`,
      );
      t.deepEqual(ledger, [
        {
          reason: "now: guard tg_log_nodes__append_only on runproof_private.log_nodes is DISABLED",
          guard_status: "UNGUARDED",
        },
      ]);
      const { rows: view } = await c.query(
        `select enabled from runproof_private.guards where table_schema = 'runproof_private' and trigger_name = 'tg_log_nodes__append_only'`,
      );
      t.deepEqual(view, [{ enabled: "DISABLED" }]);
    } finally {
      await c.query("rollback");
      c.release();
    }
  },
);

test.serial("every table, column and function in both schemas has a comment", async (t) => {
  const { rows: tables } = await db.pool.query(
    `select n.nspname || '.' || c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where n.nspname in ('runproof', 'runproof_private') and c.relkind in ('r', 'v') and obj_description(c.oid, 'pg_class') is null`,
  );
  t.deepEqual(tables, []);
  const { rows: cols } = await db.pool.query(
    `select c.relname || '.' || a.attname as name from pg_attribute a join pg_class c on c.oid = a.attrelid
       join pg_namespace n on n.oid = c.relnamespace
     where n.nspname in ('runproof', 'runproof_private') and c.relkind in ('r', 'c') and a.attnum > 0 and not a.attisdropped
       and col_description(c.oid, a.attnum) is null`,
  );
  t.deepEqual(cols, []);
  const { rows: fns } = await db.pool.query(
    `select p.oid::regprocedure::text as name from pg_proc p join pg_namespace n on n.oid = p.pronamespace
     where n.nspname in ('runproof', 'runproof_private') and obj_description(p.oid, 'pg_proc') is null`,
  );
  t.deepEqual(fns, []);
});

test.serial("SECURITY DEFINER functions pin their search_path", async (t) => {
  const { rows } = await db.pool.query(
    `select p.oid::regprocedure::text as name from pg_proc p join pg_namespace n on n.oid = p.pronamespace
     where n.nspname in ('runproof', 'runproof_private') and p.prosecdef
       and not exists (select 1 from unnest(p.proconfig) c where c like 'search_path=%')`,
  );
  t.deepEqual(rows, []);
});

test.serial("row level security is on for every table in the exposed schema", async (t) => {
  const { rows } = await db.pool.query(
    `select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where n.nspname = 'runproof' and c.relkind = 'r' and not c.relrowsecurity`,
  );
  t.deepEqual(rows, []);
});

test.serial(
  "no RunProof function is executable by PUBLIC; the tenant role has only its explicit grants",
  async (t) => {
    const { rows } = await db.pool.query(
      `select p.oid::regprocedure::text as name from pg_proc p join pg_namespace n on n.oid = p.pronamespace
     where n.nspname in ('runproof', 'runproof_private')
       and exists (select 1 from aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a where a.grantee = 0 and a.privilege_type = 'EXECUTE')`,
    );
    t.deepEqual(rows, []);
    const {
      rows: [r],
    } = await db.pool.query(
      `select has_function_privilege('runproof_tenant', 'runproof_private.create_tenant(text, numeric)', 'execute') as create_tenant,
            has_function_privilege('runproof_tenant', 'runproof_private.record_step(uuid, uuid, uuid, integer, integer, text, text, jsonb, jsonb, text, timestamptz, timestamptz, numeric, numeric, text, text)', 'execute') as record_step,
            has_function_privilege('runproof_tenant', 'runproof.verify_all()', 'execute') as verify_all,
            has_function_privilege('runproof_tenant', 'runproof.run_proof(uuid, uuid)', 'execute') as run_proof,
            has_function_privilege('runproof_tenant', 'runproof.enqueue_run(uuid, uuid, text, text, jsonb, text, integer)', 'execute') as enqueue_run,
            has_function_privilege('runproof_authenticator', 'runproof_private.authenticate(text)', 'execute') as authenticate`,
    );
    t.deepEqual(r, {
      create_tenant: false,
      record_step: false,
      verify_all: false,
      run_proof: true,
      enqueue_run: true,
      authenticate: true,
    });
  },
);
