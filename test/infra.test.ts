// Smoke test for the test infrastructure itself: server, template, cloning.
import test from "ava";
import { createTestDatabase, withClient } from "./helpers/db.ts";

test("test database is a migrated clone of the template on Postgres >= 14", async (t) => {
  const db = await createTestDatabase("infra");
  try {
    await withClient(db.pool, async (client) => {
      const {
        rows: [v],
      } = await client.query<{ version: string }>("select version()");
      const major = Number(/PostgreSQL (\d+)/.exec(v!.version)?.[1]);
      t.true(major >= 14, v!.version);

      const {
        rows: [n],
      } = await client.query<{ n: number }>("select current_setting('server_version_num')::int as n");
      t.true(n!.n >= 140000);

      // graphile-worker's schema was installed by migrateDatabase.
      const {
        rows: [jobs],
      } = await client.query<{ count: string }>("select count(*) from graphile_worker.jobs");
      t.is(jobs!.count, "0");

      // graphile-migrate's bookkeeping exists (even with no committed migrations).
      const {
        rows: [m],
      } = await client.query<{ t: string | null }>(
        "select to_regclass('graphile_migrate.migrations')::text as t",
      );
      t.is(m!.t, "graphile_migrate.migrations");
    });
  } finally {
    await db.drop();
  }
});
