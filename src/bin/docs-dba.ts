// `npm run docs:dba`: regenerates the psql sessions of docs/dba.md. A scratch database
// `runproof_dba` is created (on an embedded PostgreSQL, or on the server of DATABASE_URL), migrated
// with the committed migrations and migrations/current.sql, and loaded with docs/dba-seed.sql; then
// every ```psql block of the page is run, in page order, through its own interactive psql, and
// its output is written back into the page verbatim.
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Command } from "commander";
import pg from "pg";
import { databaseUrlWithName, REPO_ROOT } from "../lib/database.ts";
import { startEmbeddedPostgres } from "../lib/embedded.ts";
import { migrateDatabase } from "../lib/migrate.ts";
import {
  findPsql,
  findScript,
  firstDifference,
  loadSeed,
  psqlVersion,
  regeneratePage,
} from "../lib/psql-sessions.ts";

const PAGE = path.join(REPO_ROOT, "docs", "dba.md");
const SEED = path.join(REPO_ROOT, "docs", "dba-seed.sql");
const DATABASE = "runproof_dba";

const program = new Command()
  .name("docs-dba")
  .description(
    "Regenerate the psql sessions of docs/dba.md against a freshly migrated and seeded database.\n" +
      "Uses an embedded PostgreSQL, or, when DATABASE_URL is set, (re)creates the database " +
      `${DATABASE} on that server (the URL's role must be a superuser).`,
  )
  .option("--page <file>", "the page whose sessions to run", PAGE)
  .option("-o, --output <file>", "write the page here instead of over --page")
  .option("--check", "do not write; exit 1 when docs/dba.md is stale (volatile values aside)")
  .option("--keep", `keep the ${DATABASE} database afterwards (DATABASE_URL only)`)
  .option("--force", "write the page even when only volatile values (ids, hashes, times) changed")
  .parse();
const opts = program.opts<{
  page: string;
  output?: string;
  check?: boolean;
  keep?: boolean;
  force?: boolean;
}>();
const page = path.resolve(opts.page);

async function main(): Promise<number> {
  const psql = findPsql();
  if (!psql) {
    console.error(
      "no psql client found (PATH, /usr/lib/postgresql/*/bin, or RUNPROOF_PSQL): " +
        "install it, e.g. apt-get install postgresql-client",
    );
    return 2;
  }
  if (!findScript()) {
    console.error("`script` (util-linux) is not installed: psql needs a pseudo-terminal");
    return 2;
  }
  const started = performance.now();
  let stopServer: (() => Promise<void>) | undefined;
  let tmpDir: string | undefined;
  let serverUrl = process.env.DATABASE_URL;
  try {
    if (!serverUrl) {
      tmpDir = await fs.mkdtemp(path.join(os.tmpdir(), "runproof-docs-dba-"));
      const server = await startEmbeddedPostgres({ dataDir: path.join(tmpDir, "pg"), persistent: false });
      stopServer = server.stop;
      serverUrl = server.rootUrl;
    }
    const url = databaseUrlWithName(serverUrl, DATABASE);
    // Create and drop the scratch database from another one of the server.
    if (new URL(serverUrl).pathname === `/${DATABASE}`)
      serverUrl = databaseUrlWithName(serverUrl, "postgres");
    await recreateDatabase(serverUrl);
    try {
      await migrateDatabase(url, { withCurrent: true });
      loadSeed(psql, url, SEED);
      const ready = performance.now();
      const text = await fs.readFile(page, "utf8");
      const result = await regeneratePage(text, {
        psql,
        url,
        cwd: REPO_ROOT,
        onSession: (s, ms) =>
          console.error(
            `session ${s.index + 1} (${s.heading}): ${s.inputs.length} lines, ${Math.round(ms)} ms`,
          ),
      });
      const done = performance.now();
      console.error(
        `${result.sessions} sessions, ${result.commands} commands with ${psqlVersion(psql)}: ` +
          `database ready in ${((ready - started) / 1000).toFixed(1)} s, sessions ${((done - ready) / 1000).toFixed(1)} s`,
      );
      const diff = firstDifference(text, result.page);
      if (opts.check) {
        if (!diff) {
          console.error(`${path.relative(process.cwd(), page)} is up to date`);
          return 0;
        }
        console.error(
          `${path.relative(process.cwd(), page)} is stale: session ${diff.session} (${diff.heading}), line ${diff.pageLine}:\n` +
            `  committed:   ${diff.expected}\n  regenerated: ${diff.actual}\nrun npm run docs:dba`,
        );
        return 1;
      }
      // A page whose sessions differ only in what varies from run to run is left alone, so that
      // regenerating does not churn every hash and timestamp of the page (--force rewrites it).
      if (!diff && !opts.output && !opts.force) {
        console.error(
          `${path.relative(process.cwd(), page)}: only volatile values differ; left as it is (--force writes it)`,
        );
        return 0;
      }
      const out = opts.output ? path.resolve(opts.output) : page;
      await fs.writeFile(out, result.page);
      console.error(`wrote ${path.relative(process.cwd(), out) || out}`);
      return 0;
    } finally {
      if (!(opts.keep && process.env.DATABASE_URL)) await dropDatabase(serverUrl);
    }
  } finally {
    await stopServer?.();
    if (tmpDir) await fs.rm(tmpDir, { recursive: true, force: true });
  }
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function recreateDatabase(serverUrl: string): Promise<void> {
  await withClient(serverUrl, async (c) => {
    const ident = c.escapeIdentifier(DATABASE);
    await c.query(`drop database if exists ${ident} with (force)`);
    await c.query(`create database ${ident}`);
  });
}

async function dropDatabase(serverUrl: string): Promise<void> {
  await withClient(serverUrl, (c) =>
    c.query(`drop database if exists ${c.escapeIdentifier(DATABASE)} with (force)`),
  );
}

let code: number;
try {
  code = await main();
} catch (err) {
  console.error((err as Error).message);
  code = 1;
}
process.exit(code);
