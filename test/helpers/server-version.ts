// The major version of the server the suite runs on (test/run.ts: the embedded PostgreSQL 18, or
// TEST_DATABASE_URL), read once when a test file loads, so that a test needing a newer server can
// be registered as skipped with its reason in the title (docs/reliability.md says what is weaker).
import test from "ava";
import pg from "pg";

async function versionNum(): Promise<number> {
  const url = process.env.RUNPROOF_TEST_ROOT_URL;
  if (!url) throw new Error("RUNPROOF_TEST_ROOT_URL is not set; run the tests via `npm test` (test/run.ts)");
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const { rows } = await c.query<{ n: number }>("select current_setting('server_version_num')::int as n");
    return rows[0]!.n;
  } finally {
    await c.end();
  }
}

/** server_version_num of the test server, e.g. 150018 or 180004. */
export const SERVER_VERSION_NUM = await versionNum();
export const SERVER_MAJOR = Math.floor(SERVER_VERSION_NUM / 10000);

/**
 * `test` on a server of at least `major`, else `test.skip` with a title that says why, e.g.
 * "... [skipped: needs PostgreSQL 17+ (SET event_triggers); this server is 15]".
 */
export function sinceVersion(major: number, feature: string) {
  if (SERVER_MAJOR >= major) return { test, title: (t: string) => t };
  return {
    test: test.skip,
    title: (t: string) =>
      `${t} [skipped: needs PostgreSQL ${major}+ (${feature}); this server is ${SERVER_MAJOR}]`,
  };
}
