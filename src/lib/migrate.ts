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

export interface MigrateResult {
  /** The database did not exist and migrate created it. */
  createdDatabase: boolean;
  /** runproof_private.ddl_audit_state(): LIVE, NOT_INSTALLED or BROKEN. */
  ddlAudit: { state: string; detail: string | null };
  /** The role that migrated, and whether it is a superuser. */
  role: string;
  superuser: boolean;
}

/** What the DDL audit gives, and so what a deployment without it loses (README, docs/reliability.md). */
export const DDL_AUDIT_LOSS =
  "schema changes (a disabled guard trigger, a replaced function, a dropped constraint) are not recorded, so proofs and verify_all report guard_status UNAUDITED instead of catching them; the hash chain still catches every edit of the rows. A superuser can install the audit later: psql -d <database> -f sql/audit/install.sql";

/**
 * An error migrate raises before it changes anything (or after undoing what it did): a privilege
 * it lacks (SQLSTATE 42501) or a database it cannot reach, with the privilege named and a HINT.
 */
export class MigrateError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly hint?: string,
    readonly detail?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "MigrateError";
  }
}

const RUNPROOF_ROLES = ["runproof_tenant", "runproof_authenticator"] as const;
// The schemas a RunProof installation makes; a failed first install drops those it made.
const INSTALLED_SCHEMAS = ["graphile_worker", "graphile_migrate", "runproof", "runproof_private"];

const ident = (s: string) => `"${s.replace(/"/g, '""')}"`;

function quietClient(connectionString: string): pg.Client {
  const c = new pg.Client({ connectionString });
  c.on("error", () => {}); // a dropped connection surfaces through the next query
  return c;
}

/**
 * Brings a database up to date: graphile-worker's schema, then the committed migrations (and
 * current.sql with withCurrent). Before a first install it checks that the role may do what the
 * baseline does (create or grant the RunProof roles, create schemas) and creates the database
 * when it does not exist and the role may; a missing privilege is a MigrateError (42501) naming
 * it, and nothing is changed. A first install that fails part-way is undone: the schemas it made
 * are dropped, and the database too if it made it.
 */
export async function migrateDatabase(
  connectionString: string,
  opts: MigrateOptions = {},
): Promise<MigrateResult> {
  const factory = logFactory(opts.log);
  const target = new URL(connectionString);
  const dbName = decodeURIComponent(target.pathname.replace(/^\//, "")) || target.username;

  let createdDatabase = false;
  let facts = await readFacts(connectionString);
  if (facts === "missing") {
    await createDatabase(connectionString, dbName, opts.log);
    createdDatabase = true;
    facts = await readFacts(connectionString);
    if (facts === "missing") throw new Error(`database "${dbName}" was created but cannot be opened`);
  }

  try {
    if (facts.firstInstall) await checkFirstInstall(connectionString, dbName, facts);
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
  } catch (err) {
    if (createdDatabase) await dropDatabase(connectionString, dbName).catch(() => {});
    else if (facts.firstInstall) await undoFirstInstall(connectionString, facts.schemas).catch(() => {});
    throw translatePrivilegeError(err, facts, dbName);
  }

  const c = quietClient(connectionString);
  await c.connect();
  try {
    const {
      rows: [a],
    } = await c.query<{ state: string; detail: string | null }>(
      "select state, detail from runproof_private.ddl_audit_state()",
    );
    return { createdDatabase, ddlAudit: a!, role: facts.role, superuser: facts.superuser };
  } finally {
    await c.end();
  }
}

interface Facts {
  role: string;
  superuser: boolean;
  createrole: boolean;
  serverVersion: number;
  /** Whether the role may CREATE (schemas) in the database. */
  mayCreateSchemas: boolean;
  /** The RunProof roles that exist already. */
  existingRoles: string[];
  /** Of INSTALLED_SCHEMAS, those that exist. */
  schemas: string[];
  /** No RunProof migration recorded yet. */
  firstInstall: boolean;
}

async function readFacts(connectionString: string): Promise<Facts | "missing"> {
  const c = quietClient(connectionString);
  try {
    await c.connect();
  } catch (err) {
    if ((err as { code?: string }).code === "3D000") return "missing";
    throw err;
  }
  try {
    const {
      rows: [f],
    } = await c.query(
      `select current_user as role, r.rolsuper as superuser, r.rolcreaterole as createrole,
              current_setting('server_version_num')::int as server_version,
              has_database_privilege(current_database(), 'CREATE') as may_create_schemas,
              array(select rolname::text from pg_roles where rolname = any ($1::text[]) order by 1) as existing_roles,
              array(select nspname::text from pg_namespace where nspname = any ($2::text[]) order by 1) as schemas,
              to_regclass('graphile_migrate.migrations') is null as no_log
         from pg_roles r where r.rolname = current_user`,
      [RUNPROOF_ROLES, INSTALLED_SCHEMAS],
    );
    let firstInstall = f.no_log as boolean;
    if (!firstInstall) {
      const { rowCount } = await c.query("select 1 from graphile_migrate.migrations limit 1");
      firstInstall = !rowCount;
    }
    return {
      role: f.role,
      superuser: f.superuser,
      createrole: f.createrole,
      serverVersion: f.server_version,
      mayCreateSchemas: f.may_create_schemas,
      existingRoles: f.existing_roles,
      schemas: f.schemas,
      firstInstall,
    };
  } finally {
    await c.end();
  }
}

/** The maintenance database of the same server and credentials: postgres, else template1. */
async function connectMaintenance(connectionString: string): Promise<pg.Client> {
  let last: unknown;
  for (const name of ["postgres", "template1"]) {
    const u = new URL(connectionString);
    u.pathname = `/${name}`;
    const c = quietClient(u.toString());
    try {
      await c.connect();
      return c;
    } catch (err) {
      last = err;
    }
  }
  throw last;
}

async function createDatabase(
  connectionString: string,
  dbName: string,
  log?: (m: string) => void,
): Promise<void> {
  const c = await connectMaintenance(connectionString);
  try {
    const {
      rows: [r],
    } = await c.query<{ role: string; may: boolean; encoding: string }>(
      `select current_user as role, rolcreatedb or rolsuper as may,
              (select pg_encoding_to_char(encoding) from pg_database where datname = 'template1') as encoding
         from pg_roles where rolname = current_user`,
    );
    if (!r!.may) {
      throw new MigrateError(
        `database "${dbName}" does not exist, and role "${r!.role}" may not create it: it has neither CREATEDB nor SUPERUSER`,
        "42501",
        `create it first, as a superuser: CREATE DATABASE ${ident(dbName)} OWNER ${ident(r!.role)} ENCODING 'UTF8' TEMPLATE template0; or give the role CREATEDB: ALTER ROLE ${ident(r!.role)} CREATEDB`,
      );
    }
    // RunProof needs UTF8 (canonical bytes); template1 decides the encoding unless it is another one.
    const sql =
      r!.encoding === "UTF8"
        ? `create database ${ident(dbName)}`
        : `create database ${ident(dbName)} encoding 'UTF8' template template0`;
    try {
      await c.query(sql);
    } catch (err) {
      if ((err as { code?: string }).code === "42P04") return; // a concurrent migrate created it
      throw err;
    }
    log?.(`created database "${dbName}"`);
  } finally {
    await c.end();
  }
}

async function dropDatabase(connectionString: string, dbName: string): Promise<void> {
  const c = await connectMaintenance(connectionString);
  try {
    await c.query(`drop database if exists ${ident(dbName)} with (force)`);
  } finally {
    await c.end();
  }
}

/** Drops what a failed first install made: the DDL audit's event triggers and the new schemas. */
async function undoFirstInstall(connectionString: string, existedBefore: string[]): Promise<void> {
  const c = quietClient(connectionString);
  await c.connect();
  try {
    const made = INSTALLED_SCHEMAS.filter((s) => !existedBefore.includes(s));
    if (!made.length) return;
    // The audit refuses to drop itself while its event triggers are there (RPIMM).
    await c.query("drop event trigger if exists runproof_ddl_audit_end").catch(() => {});
    await c.query("drop event trigger if exists runproof_ddl_audit_drop").catch(() => {});
    await c.query(`drop schema if exists ${made.map(ident).join(", ")} cascade`);
  } finally {
    await c.end();
  }
}

/**
 * Before a first install: may the role do what the baseline migration does? Roles are tried in a
 * transaction that is rolled back (CREATE ROLE when missing, GRANT runproof_tenant TO
 * runproof_authenticator), so the answer is the server's own, for its version.
 */
async function checkFirstInstall(connectionString: string, dbName: string, f: Facts): Promise<void> {
  if (!f.mayCreateSchemas) {
    throw new MigrateError(
      `role "${f.role}" may not create schemas in database "${dbName}" (it lacks CREATE on the database)`,
      "42501",
      `as a superuser or the database owner: GRANT CREATE ON DATABASE ${ident(dbName)} TO ${ident(f.role)}; or ALTER DATABASE ${ident(dbName)} OWNER TO ${ident(f.role)}`,
    );
  }
  if (f.superuser) return;
  const c = quietClient(connectionString);
  await c.connect();
  try {
    await c.query("begin");
    try {
      for (const role of RUNPROOF_ROLES) {
        if (f.existingRoles.includes(role)) continue;
        await c.query(
          role === "runproof_tenant"
            ? "create role runproof_tenant nologin"
            : "create role runproof_authenticator login noinherit",
        );
      }
      await c.query("grant runproof_tenant to runproof_authenticator");
    } finally {
      await c.query("rollback").catch(() => {});
    }
  } catch (err) {
    throw translatePrivilegeError(err, f, dbName);
  } finally {
    await c.end();
  }
}

/** A permission error (42501) of a first install, as the privilege it lacks and how to get it. */
function translatePrivilegeError(err: unknown, f: Facts, dbName: string): unknown {
  const e = err as { code?: string; message?: string };
  if (err instanceof MigrateError || e?.code !== "42501") return err;
  const role = ident(f.role);
  const missing = RUNPROOF_ROLES.filter((r) => !f.existingRoles.includes(r));
  const precreate = `CREATE ROLE runproof_tenant NOLOGIN; CREATE ROLE runproof_authenticator LOGIN NOINHERIT; GRANT runproof_tenant TO runproof_authenticator; GRANT runproof_tenant TO ${role} WITH ADMIN OPTION`;
  if (missing.length && !f.createrole) {
    return new MigrateError(
      `role "${f.role}" may not create the roles ${missing.join(" and ")}: that needs CREATEROLE (or SUPERUSER)`,
      "42501",
      `as a superuser, either give it CREATEROLE (ALTER ROLE ${role} CREATEROLE), or create the roles first: ${precreate}`,
      e.message,
      { cause: err },
    );
  }
  if (/runproof_tenant|admin option|grant role|ADMIN/i.test(e.message ?? "")) {
    const why =
      f.createrole && f.serverVersion >= 160000
        ? " (since PostgreSQL 16, CREATEROLE alone does not let a role grant roles it did not create)"
        : "";
    return new MigrateError(
      `role "${f.role}" may not grant runproof_tenant to runproof_authenticator: that needs ADMIN OPTION on runproof_tenant${why}`,
      "42501",
      `as a superuser (or the role that created runproof_tenant): GRANT runproof_tenant TO ${role} WITH ADMIN OPTION`,
      e.message,
      { cause: err },
    );
  }
  return new MigrateError(
    `role "${f.role}" lacks a privilege the RunProof migrations need in database "${dbName}": ${e.message}`,
    "42501",
    `migrate as the database owner (with CREATEROLE, or with the roles pre-created: ${precreate}), or as a superuser; README, "Deploying on your own PostgreSQL", lists what each needs`,
    e.message,
    { cause: err },
  );
}

/** Whether migrations/current.sql holds a change (anything but comments and white space). */
export async function currentMigrationText(): Promise<string | null> {
  let text: string;
  try {
    text = await fs.readFile(CURRENT_MIGRATION, "utf8");
  } catch {
    return null;
  }
  const meaningful = text.replace(/--[^\n]*/g, "").trim();
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
