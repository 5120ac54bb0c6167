// sql/ is the current definition of every function, trigger, view, policy, grant and rule row: a
// freshly migrated database must be exactly what applying sql/ again makes of it. The test
// snapshots the catalog (src/lib/catalog.ts), applies every sql/ file in a transaction, snapshots
// again and rolls back. A definition edited in sql/ without a migration, or changed by a migration
// without sql/, shows up as a difference; an object that only a migration defines, as missing.
import fs from "node:fs/promises";
import path from "node:path";
import test from "ava";
import type pg from "pg";
import { diffSnapshots, snapshot } from "../src/lib/catalog.ts";
import { SQL_FOLDER, sqlFilesInOrder } from "../src/lib/migrate.ts";
import { createTestDatabase, withClient } from "./helpers/db.ts";

let db: Awaited<ReturnType<typeof createTestDatabase>>;
test.before(async () => {
  db = await createTestDatabase("sql_drift");
});
test.after.always(async () => db?.drop());

/** Applies sql/ (or a changed copy of one file) inside a transaction that is rolled back. */
async function applySqlFolder(client: pg.PoolClient, replace?: { file: string; text: string }) {
  const { ordered, notIncluded } = await sqlFilesInOrder();
  const before = await snapshot(client);
  await client.query("begin");
  try {
    // Every object a CREATE or COMMENT in sql/ touches (event triggers see DDL inside DO blocks too).
    await client.query(`
      create schema runproof_drift_check;
      create table runproof_drift_check.touched (command_tag text, object_type text, object_identity text);
      create function runproof_drift_check.collect() returns event_trigger language plpgsql as $$
      begin
        insert into runproof_drift_check.touched
          select c.command_tag, c.object_type,
                 -- functions as regprocedure prints them (object_identity qualifies every type)
                 case when c.object_type = 'function' then c.objid::regprocedure::text else c.object_identity end
            from pg_event_trigger_ddl_commands() c;
      end $$;
      create event trigger runproof_drift_check_collect on ddl_command_end
        execute function runproof_drift_check.collect();`);
    for (const file of [...ordered, ...notIncluded]) {
      const text =
        replace?.file === file ? replace.text : await fs.readFile(path.join(SQL_FOLDER, file), "utf8");
      try {
        await client.query(text);
      } catch (err) {
        throw new Error(`sql/${file}: ${(err as Error).message}`);
      }
    }
    await client.query("drop event trigger runproof_drift_check_collect");
    const { rows: touched } = await client.query<{ object_type: string; object_identity: string }>(
      "select distinct object_type, object_identity from runproof_drift_check.touched",
    );
    await client.query("drop schema runproof_drift_check cascade");
    const after = await snapshot(client);
    return { before, after, touched, notIncluded };
  } finally {
    await client.query("rollback");
  }
}

test.serial(
  "applying sql/ to a freshly migrated database changes nothing, and defines everything",
  async (t) => {
    await withClient(db.pool, async (client) => {
      const { before, after, touched, notIncluded } = await applySqlFolder(client);
      t.deepEqual(
        notIncluded,
        [],
        "every sql/ file is included by a migration (or by migrations/current.sql)",
      );
      const d = diffSnapshots(before, after);
      const shown = (k: string) => `${k}\n  migrated: ${before.get(k)}\n  sql/:     ${after.get(k)}`;
      t.deepEqual(d.onlyInA, [], "objects the migrations made that sql/ removes");
      t.deepEqual(d.onlyInB, [], "objects sql/ defines that the migrations did not make");
      t.deepEqual(d.changed.map(shown), [], "definitions that differ between the migrations and sql/");

      // What re-running sql/ cannot see by comparison: an object defined only by a migration.
      const defined = new Set(touched.map((r) => `${r.object_type} ${r.object_identity}`));
      const expected = [...before.keys()].filter((k) => /^(function|trigger|policy|view) /.test(k));
      const missing = expected.filter((k) => !defined.has(k));
      t.deepEqual(missing, [], "functions, triggers, policies and views that no sql/ file defines");
      t.true(expected.length > 100, `checked ${expected.length} objects`);
    });
  },
);

test.serial("the check fails on drift: a function body edited in sql/ but not migrated", async (t) => {
  const file = "common/values.sql";
  const text = await fs.readFile(path.join(SQL_FOLDER, file), "utf8");
  const edited = text.replace("select encode(b, 'hex')", "select upper(encode(b, 'hex'))");
  t.not(edited, text);
  await withClient(db.pool, async (client) => {
    const { before, after } = await applySqlFolder(client, { file, text: edited });
    t.deepEqual(diffSnapshots(before, after).changed, ["function runproof_private.hex(bytea)"]);
  });
});

test.serial("the check fails on drift: a grant that only a migration made is revoked by sql/", async (t) => {
  await withClient(db.pool, async (client) => {
    await client.query("begin");
    try {
      await client.query(
        "grant execute on function runproof_private.create_tenant(text, numeric) to runproof_tenant",
      );
      // applySqlFolder opens its own transaction: run its steps inside a savepoint-free copy.
      const before = await snapshot(client);
      for (const file of (await sqlFilesInOrder()).ordered) {
        await client.query(await fs.readFile(path.join(SQL_FOLDER, file), "utf8"));
      }
      const after = await snapshot(client);
      t.deepEqual(diffSnapshots(before, after).changed, [
        "function runproof_private.create_tenant(text,numeric)",
      ]);
    } finally {
      await client.query("rollback");
    }
  });
});
