// Runs the project's ava tests against bench/proposed.sql applied as if it were the next migration:
//   npm run bench -- --test-proposed [test files...]
// (through npm, so that it runs on the project's Node 22: PostGraphile fails on the system's Node 20).
// Like test/run.ts (a throwaway embedded cluster and a template database migrated with
// migrations/committed), except that the template also gets bench/proposed.sql in one transaction
// with a graphile_migrate.migrations row, as graphile-migrate would write it; so the DDL audit
// records it as a migration and schema_drift() stays empty, as it would after the lead folds it in.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { databaseUrlWithName, REPO_ROOT } from "../src/lib/database.ts";
import { startEmbeddedPostgres } from "../src/lib/embedded.ts";
import { migrateDatabase } from "../src/lib/migrate.ts";

const TEMPLATE = "runproof_test_template";

export async function runTestProposed(avaArgs: string[]): Promise<number> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runproof-proposed-"));
  const server = await startEmbeddedPostgres({ dataDir: path.join(tmp, "pg"), persistent: false });
  let code = 1;
  try {
    const admin = new pg.Client({ connectionString: server.rootUrl });
    await admin.connect();
    await admin.query(`create database ${TEMPLATE}`);
    const templateUrl = databaseUrlWithName(server.rootUrl, TEMPLATE);
    await migrateDatabase(templateUrl);
    const t = new pg.Client({ connectionString: templateUrl });
    await t.connect();
    await t.query("begin");
    await t.query(fs.readFileSync(path.join(REPO_ROOT, "bench", "proposed.sql"), "utf8"));
    const {
      rows: [last],
    } = await t.query(`select hash from graphile_migrate.migrations order by filename desc limit 1`);
    await t.query(
      `insert into graphile_migrate.migrations (hash, previous_hash, filename) values ('sha1:proposed', $1, '999999-proposed.sql')`,
      [last.hash],
    );
    await t.query("commit");
    await t.end();
    await admin.query(`alter database ${TEMPLATE} allow_connections false`);
    await admin.end();
    process.stderr.write("bench/proposed.sql applied to the test template as a migration\n");

    const ava = spawn(process.execPath, [path.join(REPO_ROOT, "node_modules", ".bin", "ava"), ...avaArgs], {
      cwd: REPO_ROOT,
      stdio: "inherit",
      env: {
        ...process.env,
        RUNPROOF_TEST_ROOT_URL: server.rootUrl,
        RUNPROOF_TEST_TEMPLATE: TEMPLATE,
        RUNPROOF_AUTHENTICATOR_PASSWORD:
          process.env.RUNPROOF_AUTHENTICATOR_PASSWORD || randomBytes(18).toString("hex"),
      },
    });
    code = await new Promise<number>((resolve) => ava.on("exit", (c) => resolve(c ?? 1)));
  } finally {
    await server.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return code;
}
