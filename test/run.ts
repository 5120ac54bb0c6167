// `npm test`: provide a Postgres server with a migrated template database,
// then hand over to ava. Each test clones the template (test/helpers/db.ts),
// which is much faster than migrating per test and isolates tests fully.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { databaseUrlWithName, REPO_ROOT } from "../src/lib/database.ts";
import { startEmbeddedPostgres } from "../src/lib/embedded.ts";
import { migrateDatabase } from "../src/lib/migrate.ts";

const TEMPLATE = "runproof_test_template";

let stopServer: (() => Promise<void>) | undefined;
let tmpDir: string | undefined;
let ava: ChildProcess | undefined;

async function cleanup(): Promise<void> {
  await stopServer?.();
  if (tmpDir) fs.rmSync(tmpDir, { recursive: true, force: true });
}

for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    // While ava runs, let it shut down: SIGINT is the signal ava handles
    // gracefully (stops its workers, reports what was interrupted; repeats
    // are harmless). main() then cleans up once it exits.
    if (ava && ava.exitCode === null && ava.signalCode === null) {
      ava.kill("SIGINT");
      return;
    }
    void cleanup().finally(() => process.exit(128 + os.constants.signals[sig]));
  });
}

async function main(): Promise<number> {
  let rootUrl = process.env.TEST_DATABASE_URL;
  if (!rootUrl) {
    tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), "runproof-test-"));
    const server = await startEmbeddedPostgres({ dataDir: path.join(tmpDir, "pg"), persistent: false });
    stopServer = server.stop;
    rootUrl = server.rootUrl;
  }

  await recreateTemplate(rootUrl);

  const avaBin = path.join(REPO_ROOT, "node_modules", ".bin", "ava");
  // process.execPath keeps ava (and its workers) on the Node that npm picked (node@22).
  ava = spawn(process.execPath, [avaBin, ...process.argv.slice(2)], {
    cwd: REPO_ROOT,
    stdio: "inherit",
    env: {
      ...process.env,
      RUNPROOF_TEST_ROOT_URL: rootUrl,
      RUNPROOF_TEST_TEMPLATE: TEMPLATE,
      // One password for runproof_authenticator (a cluster-wide role) for the whole run, so
      // GraphQL servers started by parallel tests agree on it instead of racing to change it.
      RUNPROOF_AUTHENTICATOR_PASSWORD:
        process.env.RUNPROOF_AUTHENTICATOR_PASSWORD || randomBytes(18).toString("hex"),
    },
  });
  const child = ava;
  return new Promise<number>((resolve, reject) => {
    child.on("error", reject);
    child.on("exit", (code, signal) => resolve(code ?? 128 + (signal ? os.constants.signals[signal] : 1)));
  });
}

async function recreateTemplate(rootUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: rootUrl });
  await client.connect();
  const ident = client.escapeIdentifier(TEMPLATE);
  try {
    await client.query(`drop database if exists ${ident} with (force)`);
    await client.query(`create database ${ident}`);
    // With migrations/current.sql, the change being developed, as its last migration.
    await migrateDatabase(databaseUrlWithName(rootUrl, TEMPLATE), { withCurrent: true });
    // Nobody may connect to the template any more: a stray connection would
    // make every `CREATE DATABASE ... TEMPLATE` fail. Cloning still works.
    await client.query(`alter database ${ident} allow_connections false`);
  } finally {
    await client.end();
  }
}

let code: number;
try {
  code = await main();
} catch (err) {
  console.error(err);
  code = 1;
}
await cleanup();
process.exit(code);
