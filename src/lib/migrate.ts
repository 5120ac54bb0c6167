// Brings a database up to date: graphile-worker's schema first (our SQL may
// reference graphile_worker.*), then our committed graphile-migrate migrations.
// Committed migrations are self-contained: graphile-migrate inlined the sql/ files
// they --!include when they were committed (migrations/fixtures is a link to sql/).
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { compile, Logger as MigrateLogger, migrate } from "graphile-migrate";
// Not re-exported from the package index: the hash and header format of committed migrations,
// and the pool cache (see the finally block below).
import { calculateHash } from "graphile-migrate/dist/hash.js";
import { getAllMigrations, serializeMigration } from "graphile-migrate/dist/migration.js";
import { clearAllPools } from "graphile-migrate/dist/pgReal.js";
import { parseSettings } from "graphile-migrate/dist/settings.js";
import { Logger as WorkerLogger, runMigrations } from "graphile-worker";
import { REPO_ROOT } from "./database.ts";

export const MIGRATIONS_FOLDER = path.join(REPO_ROOT, "migrations");
export const CURRENT_MIGRATION = path.join(MIGRATIONS_FOLDER, "current.sql");
export const SQL_FOLDER = path.join(REPO_ROOT, "sql");

export interface MigrateOptions {
  log?: (m: string) => void;
  /**
   * Also apply migrations/current.sql, the change being developed, as if it were committed
   * (a provisional last migration). For throwaway databases only (npm test): a database migrated
   * this way records a migration that the real commit will not match.
   */
  withCurrent?: boolean;
}

export async function migrateDatabase(connectionString: string, opts: MigrateOptions = {}): Promise<void> {
  const factory = logFactory(opts.log);

  await migrateWorkerSchema(connectionString, opts);
  const provisional = opts.withCurrent ? await provisionalFolder() : null;
  try {
    await migrate({
      connectionString,
      migrationsFolder: provisional?.folder ?? MIGRATIONS_FOLDER,
      logger: new MigrateLogger(factory),
    });
  } finally {
    // graphile-migrate caches its pool for 200ms after use and calls
    // process.exit(1) on any pool error, so stopping the server or dropping
    // the DB right after migrating would kill us. Close it now instead.
    clearAllPools();
    await provisional?.remove();
  }
}

/** Whether migrations/current.sql holds a change (anything but comments and white space; an `--!include` line is a change). */
export async function currentMigrationText(): Promise<string | null> {
  let text: string;
  try {
    text = await fs.readFile(CURRENT_MIGRATION, "utf8");
  } catch {
    return null;
  }
  const meaningful = text.replace(/--(?!!\s*include\b)[^\n]*/g, "").trim();
  return meaningful ? text : null;
}

/**
 * A copy of migrations/ in which current.sql, compiled (its --!include lines inlined, as `gm
 * commit` would), is the last committed migration; null when current.sql is empty.
 */
async function provisionalFolder(): Promise<{ folder: string; remove(): Promise<void> } | null> {
  const current = await currentMigrationText();
  if (!current) return null;
  const folder = await fs.mkdtemp(path.join(os.tmpdir(), "runproof-migrations-"));
  const remove = () => fs.rm(folder, { recursive: true, force: true });
  try {
    await fs.mkdir(path.join(folder, "committed"));
    await fs.symlink(SQL_FOLDER, path.join(folder, "fixtures"));
    const committed = path.join(MIGRATIONS_FOLDER, "committed");
    for (const f of await fs.readdir(committed)) {
      await fs.copyFile(path.join(committed, f), path.join(folder, "committed", f));
    }
    const settings = { connectionString: "postgres://unused/unused", migrationsFolder: folder };
    const body = await compile(settings, current, { filename: CURRENT_MIGRATION });
    const all = await getAllMigrations(await parseSettings(settings));
    const last = all[all.length - 1];
    const number = String((last ? Number.parseInt(last.filename, 10) : 0) + 1).padStart(6, "0");
    const text = serializeMigration(body, {
      Previous: last ? last.hash : "-",
      Hash: calculateHash(body, last?.hash),
      Message: "current (provisional)",
    });
    await fs.writeFile(path.join(folder, "committed", `${number}-current-provisional.sql`), text);
    return { folder, remove };
  } catch (err) {
    await remove();
    throw err;
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

/**
 * The files of sql/ in the order migrations apply them: by first inclusion in the committed
 * migrations (graphile-migrate marks each inlined file `--! Included <path>`), then in current.sql
 * (`--!include <path>`). Files that no migration includes come last, in `notIncluded`.
 */
export async function sqlFilesInOrder(): Promise<{ ordered: string[]; notIncluded: string[] }> {
  const seen = new Set<string>();
  const committed = path.join(MIGRATIONS_FOLDER, "committed");
  for (const f of (await fs.readdir(committed)).sort()) {
    const text = await fs.readFile(path.join(committed, f), "utf8");
    for (const m of text.matchAll(/^--! Included (\S+\.sql)$/gm)) seen.add(m[1]);
  }
  const current = (await currentMigrationText()) ?? "";
  for (const m of current.matchAll(/^--![ \t]*include[ \t]+(\S+\.sql)[ \t]*$/gm)) seen.add(m[1]);
  const all = (await fs.readdir(SQL_FOLDER, { recursive: true }))
    .filter((f) => f.endsWith(".sql"))
    .map((f) => f.split(path.sep).join("/"))
    .sort();
  return { ordered: [...seen], notIncluded: all.filter((f) => !seen.has(f)) };
}
