// Keeps the distributed path open (Citus, every tenant table distributed by tenant_id): a primary
// key, unique constraint, unique index or exclusion constraint of a tenant table (a table of
// runproof or runproof_private with a tenant_id column) must include tenant_id, and a foreign key
// of a tenant table must carry tenant_id to the referenced table's tenant_id (or be tenant_id
// referencing runproof.tenants). Read from the live catalog, so a new table or key is checked too.
import test from "ava";
import { createTestDatabase, type TestDatabase } from "./helpers/db.ts";

let db: TestDatabase;
test.before(async () => {
  db = await createTestDatabase("catalog_tenant_keys");
});
test.after.always(async () => db?.drop());

const TENANT_TABLES = `
  select c.oid, format('%I.%I', n.nspname, c.relname) as name, a.attnum as tenant_att
    from pg_class c
    join pg_namespace n on n.oid = c.relnamespace
    join pg_attribute a on a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped
   where n.nspname in ('runproof', 'runproof_private') and c.relkind in ('r', 'p')`;

test("the tenant tables are found (the check below is not vacuous)", async (t) => {
  const { rows } = await db.pool.query<{ name: string }>(`${TENANT_TABLES} order by 2`);
  const names = rows.map((r) => r.name);
  for (const n of [
    "runproof.runs",
    "runproof.traces",
    "runproof.trace_steps",
    "runproof.policy_decisions",
    "runproof_private.api_keys",
  ])
    t.true(names.includes(n), n);
});

test("every primary key, unique constraint, unique index and exclusion constraint of a tenant table includes tenant_id", async (t) => {
  const { rows } = await db.pool.query<{ tbl: string; what: string; def: string }>(`
    with tt as (${TENANT_TABLES})
    select tt.name as tbl, con.conname as what, pg_get_constraintdef(con.oid) as def
      from tt join pg_constraint con on con.conrelid = tt.oid
     where con.contype in ('p', 'u', 'x') and not (tt.tenant_att = any (con.conkey))
    union all
    select tt.name, i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
      from tt join pg_index i on i.indrelid = tt.oid
     where i.indisunique and not (tt.tenant_att = any (i.indkey::int2[]))
       and not exists (select 1 from pg_constraint con where con.conindid = i.indexrelid)
     order by 1, 2`);
  t.deepEqual(rows, [], "keys without tenant_id: a distributed table could not enforce them");
});

test("every foreign key of a tenant table matches tenant_id to tenant_id (or references runproof.tenants by tenant_id)", async (t) => {
  const { rows: all } = await db.pool.query<{ n: number }>(`
    with tt as (${TENANT_TABLES})
    select count(*)::int as n from tt join pg_constraint con on con.conrelid = tt.oid where con.contype = 'f'`);
  t.true(all[0]!.n >= 10, "the tenant tables have their foreign keys");
  const { rows } = await db.pool.query<{ tbl: string; fk: string; def: string }>(`
    with tt as (${TENANT_TABLES})
    select tt.name as tbl, con.conname as fk, pg_get_constraintdef(con.oid) as def
      from tt join pg_constraint con on con.conrelid = tt.oid and con.contype = 'f'
      left join tt ref on ref.oid = con.confrelid
     where not coalesce(
             -- tenant_id pairs with the referenced tenant table's tenant_id
             (select bool_or(k.a = tt.tenant_att and k.r = ref.tenant_att)
                from unnest(con.conkey, con.confkey) k(a, r)),
             false)
       and not (con.confrelid = 'runproof.tenants'::regclass and con.conkey = array[tt.tenant_att]::int2[])
     order by 1, 2`);
  t.deepEqual(rows, [], "foreign keys that do not carry tenant_id: they would cross shards");
});
