// docs/dba.md cannot go stale: its psql sessions are run again, on a freshly migrated database
// loaded with docs/dba-seed.sql, and the output must be what the page shows, apart from what
// varies from run to run (database-made uuids, hashes, timestamps, timings). When this fails, run
// `npm run docs:dba` and read the diff of docs/dba.md: it is what a DBA would now see.
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import test from "ava";
import { REPO_ROOT } from "../src/lib/database.ts";
import {
  findPsql,
  findScript,
  firstDifference,
  loadSeed,
  parseSessions,
  regeneratePage,
} from "../src/lib/psql-sessions.ts";
import { createTestDatabase } from "./helpers/db.ts";
import { SERVER_MAJOR } from "./helpers/server-version.ts";

const PAGE = path.join(REPO_ROOT, "docs", "dba.md");
const SEED = path.join(REPO_ROOT, "docs", "dba-seed.sql");

const psql = findPsql();
const script = findScript();
// The page is what one server version prints (the embedded one, as its introduction says): PL/pgSQL source
// locations and some messages differ between versions, so it is checked on that version only.
const pageServer = Number(
  (await fs.readFile(PAGE, "utf8")).match(/on an embedded\s+PostgreSQL (\d+)/)?.[1] ?? 0,
);
const missing =
  pageServer && pageServer !== SERVER_MAJOR
    ? `the page was captured on PostgreSQL ${pageServer}; this server is ${SERVER_MAJOR}`
    : !psql
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

test("the comparison ignores what the database makes up, and nothing else", (t) => {
  const page = (body: string) =>
    [
      "# p",
      "## 1. one",
      "```psql",
      "runproof_dba=# select 1;",
      body,
      "```",
      "## 2. two",
      "```psql",
      "runproof_dba=# select 2;",
      " 2",
      "```",
      "",
    ].join("\n");
  const committed = page(
    "ERROR:  trace 3978501d-e061-4c89-bbb4-67721d0f8df7 at 2026-11-21 02:10:31.882954+00: " +
      "a0eb1971132cf18f49e1e933e4413a11737ab3a96d2d6f27bad15e3cf7ebcde1 (run 00000000-0000-0000-0000-000000000001)\nruntime: ddl_audit id 412\nTime: 41.721 ms",
  );
  const rerun = page(
    "ERROR:  trace 55c22b78-675e-48d5-bbf4-de679ff61d23 at 2026-12-02 05:31:17.29+00: " +
      "ccdd35168ab474fa5764a526cfb83621351e23682c5075b2e18d56bddf96aa30 (run 00000000-0000-0000-0000-000000000001)\nruntime: ddl_audit id 504\nTime: 2.5 ms",
  );
  t.is(parseSessions(committed).length, 2);
  t.deepEqual(parseSessions(committed)[0].inputs, ["select 1;"]);
  t.is(firstDifference(committed, rerun), null);
  // A seed-fixed id, a message or a count is not volatile.
  const otherRun = rerun.replace("0000-000000000001)", "0000-000000000002)");
  t.like(firstDifference(committed, otherRun), { session: 1, heading: "1. one", pageLine: 5 });
  const otherCount = page("x").replace(" 2\n", " 3\n");
  t.like(firstDifference(page("x"), otherCount), {
    session: 2,
    heading: "2. two",
    expected: " 2",
    actual: " 3",
  });
});
