// docs/dba.md cannot go stale: its psql sessions are run again, on a freshly migrated database
// loaded with docs/dba-seed.sql, and the output must be what the page shows, apart from what
// varies from run to run (database-made uuids, hashes, timestamps, timings). When this fails, run
// `npm run docs:dba` and read the diff of docs/dba.md: it is what a DBA would now see.
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import test from "ava";
import { REPO_ROOT } from "../src/lib/database.ts";
import { findPsql, findScript, firstDifference, loadSeed, regeneratePage } from "../src/lib/psql-sessions.ts";
import { createTestDatabase } from "./helpers/db.ts";

const PAGE = path.join(REPO_ROOT, "docs", "dba.md");
const SEED = path.join(REPO_ROOT, "docs", "dba-seed.sql");

const psql = findPsql();
const script = findScript();
const missing = !psql
  ? process.env.RUNPROOF_PSQL
    ? `RUNPROOF_PSQL=${process.env.RUNPROOF_PSQL} does not exist`
    : "no psql client (not on PATH, not in /usr/lib/postgresql/*/bin): apt-get install postgresql-client"
  : !script
    ? "no `script` from util-linux to give psql a terminal"
    : null;

if (missing) {
  test.skip(`docs/dba.md sessions are current (skipped: ${missing})`, () => {});
} else {
  test("docs/dba.md sessions are current: every session, rerun, prints what the page shows", async (t) => {
    const db = await createTestDatabase("docs_dba");
    const tmp = await fs.mkdtemp(path.join(os.tmpdir(), "runproof-docs-dba-"));
    try {
      loadSeed(psql!, db.url, SEED);
      const committed = await fs.readFile(PAGE, "utf8");
      const result = await regeneratePage(committed, { psql: psql!, url: db.url, cwd: REPO_ROOT });
      const regenerated = path.join(tmp, "dba.md");
      await fs.writeFile(regenerated, result.page);
      t.log(`${result.sessions} sessions, ${result.commands} commands`);
      const diff = firstDifference(committed, await fs.readFile(regenerated, "utf8"));
      if (diff) {
        t.fail(
          `docs/dba.md is stale: session ${diff.session} (section "${diff.heading}"), docs/dba.md line ${diff.pageLine}\n` +
            `  page:   ${diff.expected}\n  now:    ${diff.actual}\n` +
            "Run `npm run docs:dba` and review the diff of docs/dba.md.",
        );
      } else {
        t.pass();
      }
    } finally {
      await fs.rm(tmp, { recursive: true, force: true });
      await db.drop();
    }
  });
}
