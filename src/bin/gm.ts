// `npm run gm -- <args>`: the graphile-migrate CLI (watch, commit, uncommit,
// reset, status, ...) pointed at our database. With no DATABASE_URL it boots
// the embedded dev Postgres (.data/pg), keeps it up while the CLI runs, and
// stops it afterwards.
import { spawn, type ChildProcess } from "node:child_process";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { createDatabaseIfMissing, databaseUrlWithName, REPO_ROOT, resolveDatabase } from "../lib/database.ts";
import { migrateWorkerSchema } from "../lib/migrate.ts";

const SHADOW_DB = "runproof_shadow";

let stopDb: (() => Promise<void>) | undefined;
let cli: ChildProcess | undefined;

for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    // Let the CLI (e.g. `watch`) exit first; main() then stops the server.
    if (cli && cli.exitCode === null && cli.signalCode === null) {
      cli.kill(sig);
      return;
    }
    void (stopDb?.() ?? Promise.resolve()).finally(() => process.exit(128 + os.constants.signals[sig]));
  });
}

async function main(): Promise<number> {
  const db = await resolveDatabase({ log: (m) => console.error(m) });
  stopDb = db.stop;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: db.url,
    // node_modules/.bin first, for .gmrc command actions (graphile-worker).
    PATH: [path.join(REPO_ROOT, "node_modules", ".bin"), process.env.PATH].join(path.delimiter),
  };
  if (db.embedded && db.rootUrl) {
    await createDatabaseIfMissing(db.rootUrl, SHADOW_DB);
    env.SHADOW_DATABASE_URL = databaseUrlWithName(db.rootUrl, SHADOW_DB);
    env.ROOT_DATABASE_URL = db.rootUrl;
    // So current.sql can use graphile_worker.* under `watch` on a fresh dev
    // DB (reset/commit get it via the .gmrc afterReset action).
    await migrateWorkerSchema(db.url);
  }
  // Otherwise SHADOW_DATABASE_URL / ROOT_DATABASE_URL pass through from the env.

  const entry = createRequire(import.meta.url).resolve("graphile-migrate/dist/cli.js");
  // process.execPath keeps the CLI on the same Node (node@22) as we run on.
  cli = spawn(process.execPath, [entry, ...process.argv.slice(2)], { cwd: REPO_ROOT, stdio: "inherit", env });
  const child = cli;
  return new Promise<number>((resolve, reject) => {
    child.on("error", reject);
    child.on("exit", (code, signal) => resolve(code ?? 128 + (signal ? os.constants.signals[signal] : 1)));
  });
}

let code: number;
try {
  code = await main();
} catch (err) {
  console.error(err);
  code = 1;
}
await stopDb?.();
process.exit(code);
