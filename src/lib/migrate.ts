// Brings a database up to date: graphile-worker's schema first (our SQL may
// reference graphile_worker.*), then our committed graphile-migrate migrations.
// Only committed migrations run here; current.sql is a dev-time concern (gm.ts).
import path from "node:path";
import pg from "pg";
import { Logger as MigrateLogger, migrate } from "graphile-migrate";
// Not re-exported from the package index; see the finally block below.
import { clearAllPools } from "graphile-migrate/dist/pgReal.js";
import { Logger as WorkerLogger, runMigrations } from "graphile-worker";
import { REPO_ROOT } from "./database.ts";

export const MIGRATIONS_FOLDER = path.join(REPO_ROOT, "migrations");

export async function migrateDatabase(
  connectionString: string,
  opts: { log?: (m: string) => void } = {},
): Promise<void> {
  const factory = logFactory(opts.log);

  await migrateWorkerSchema(connectionString, opts);
  try {
    await migrate({
      connectionString,
      migrationsFolder: MIGRATIONS_FOLDER,
      logger: new MigrateLogger(factory),
    });
  } finally {
    // graphile-migrate caches its pool for 200ms after use and calls
    // process.exit(1) on any pool error, so stopping the server or dropping
    // the DB right after migrating would kill us. Close it now instead.
    clearAllPools();
  }
}

/** Installs/updates only graphile-worker's schema (idempotent). */
export async function migrateWorkerSchema(
  connectionString: string,
  opts: { log?: (m: string) => void } = {},
): Promise<void> {
  // Own pool instead of `connectionString`: graphile-worker's internal pool
  // is ended without awaiting, leaving a connection open after we return.
  const pool = new pg.Pool({ connectionString, max: 1 });
  const ignore = () => {}; // errors surface via the failing query instead
  pool.on("error", ignore);
  pool.on("connect", (client) => client.on("error", ignore));
  try {
    await runMigrations({ pgPool: pool, logger: new WorkerLogger(logFactory(opts.log)) });
  } finally {
    await pool.end();
  }
}

// Both libraries log through @graphile/logger (different versions, so each
// needs its own Logger class); silent unless a log sink is given.
function logFactory(log?: (m: string) => void) {
  return () => (level: string, message: string) => {
    if (log && level !== "debug") log(message);
  };
}
