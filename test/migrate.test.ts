// `runproof migrate` on someone else's PostgreSQL, in each deployment mode of the README
// ("Deploying on your own PostgreSQL"), against a real server with real roles: a cluster of this
// file's own (RUNPROOF_TEST_PG_BIN, e.g. the Debian PostgreSQL 15, else the embedded 18), since
// the RunProof roles are cluster-wide and these tests need them absent, pre-created, or granted.
//
//   superuser                      creates the database and the roles, installs the DDL audit
//   owner with CREATEROLE          creates the roles; no DDL audit (says so, and what that loses)
//   plain owner, roles pre-created needs ADMIN OPTION on runproof_tenant; no DDL audit;
//                                  runproof_authenticator's password comes from the DBA
//
// A missing privilege is named (SQLSTATE 42501 and a HINT) before anything is made, and a first
// install that fails part-way leaves nothing behind.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import test from "ava";
import pg from "pg";
import { AUTHENTICATOR_PASSWORD_ENV, ensureAuthenticator } from "../src/lib/authenticator.ts";
import { migrateDatabase } from "../src/lib/migrate.ts";
import { runCli } from "./helpers/cli.ts";
import { type PgCluster, startCluster } from "./helpers/pg-cluster.ts";

let cluster: PgCluster;
let tmp: string;
let versionNum = 0;

test.before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runproof-migrate-"));
  cluster = await startCluster({ dataDir: path.join(tmp, "pg") });
  versionNum = Number((await sql("select current_setting('server_version_num') as v"))[0].v);
});
test.after.always(async () => {
  await cluster?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

/** Runs SQL as the cluster's superuser (in database db, default postgres). */
async function sql(text: string, db = "postgres", params: unknown[] = []): Promise<any[]> {
  const u = new URL(cluster.rootUrl);
  u.pathname = `/${db}`;
  const c = new pg.Client({ connectionString: u.toString() });
  await c.connect();
  try {
    return (await c.query(text, params)).rows;
  } finally {
    await c.end();
  }
}

function urlAs(role: string, db: string, password = "pw"): string {
  return `postgres://${role}:${password}@127.0.0.1:${cluster.port}/${db}`;
}

const migrateCli = (url: string) =>
  runCli(["migrate"], { env: { DATABASE_URL: url, ROOT_DATABASE_URL: undefined }, timeoutMs: 170_000 });

async function schemasOf(db: string): Promise<string[]> {
  return (
    await sql(
      `select nspname from pg_namespace where nspname in ('graphile_worker', 'graphile_migrate', 'runproof', 'runproof_private') order by 1`,
      db,
    )
  ).map((r) => r.nspname);
}

async function databaseExists(db: string): Promise<boolean> {
  return (await sql("select 1 from pg_database where datname = $1", "postgres", [db])).length === 1;
}

async function runproofRoles(): Promise<string[]> {
  return (await sql(`select rolname from pg_roles where rolname like 'runproof\\_%' order by 1`)).map(
    (r) => r.rolname,
  );
}

/** Drops every database and role a previous test made, so each starts from a bare cluster. */
async function bareCluster(): Promise<void> {
  for (const r of await sql(`select datname from pg_database where datname like 'rp\\_%'`))
    await sql(`drop database ${JSON.stringify(r.datname)} with (force)`);
  // The RunProof roles first: since PostgreSQL 16 their memberships depend on the role that granted them.
  for (const r of await sql(
    `select rolname from pg_roles where rolname like 'runproof\\_%' or rolname like 'own\\_%' order by rolname like 'own\\_%'`,
  ))
    await sql(`drop role ${JSON.stringify(r.rolname)}`);
}

const DDL_AUDIT_MISSING =
  /DDL audit: not installed \(own_\w+ is not a superuser; event triggers need one\)\. Without it schema changes .* are not recorded, so proofs and verify_all report guard_status UNAUDITED/;

// Serial: every test shapes the cluster-wide roles.
test.serial(
  "superuser: migrate creates the database that does not exist, the roles and the DDL audit",
  async (t) => {
    await bareCluster();
    const r = await migrateCli(`${cluster.rootUrl.replace(/\/postgres$/, "")}/rp_super`);
    t.is(r.code, 0, r.stderr);
    t.regex(r.stdout, /^created database "rp_super"$/m);
    t.regex(r.stdout, /^migrated: the database is at the newest committed migration$/m);
    t.notRegex(r.stdout, /DDL audit/);
    t.deepEqual(await schemasOf("rp_super"), [
      "graphile_migrate",
      "graphile_worker",
      "runproof",
      "runproof_private",
    ]);
    t.deepEqual(await runproofRoles(), ["runproof_authenticator", "runproof_tenant"]);
    const [a] = await sql("select state from runproof_private.ddl_audit_state()", "rp_super");
    t.is(a.state, "LIVE");
    // Again: nothing to do, nothing created.
    const again = await migrateCli(`${cluster.rootUrl.replace(/\/postgres$/, "")}/rp_super`);
    t.is(again.code, 0, again.stderr);
    t.notRegex(again.stdout, /created database/);
  },
);

test.serial(
  "plain owner, roles not pre-created: 42501 naming CREATEROLE, with the statements to pre-create them; nothing is made",
  async (t) => {
    await bareCluster();
    await sql("create role own_plain login password 'pw'");
    await sql("create database rp_plain owner own_plain");
    const r = await migrateCli(urlAs("own_plain", "rp_plain"));
    t.is(r.code, 1, r.stdout);
    t.regex(
      r.stderr,
      /role "own_plain" may not create the roles runproof_tenant and runproof_authenticator: that needs CREATEROLE \(or SUPERUSER\)/,
    );
    t.regex(
      r.stderr,
      /hint: as a superuser, either give it CREATEROLE \(ALTER ROLE "own_plain" CREATEROLE\), or create the roles first: CREATE ROLE runproof_tenant NOLOGIN; CREATE ROLE runproof_authenticator LOGIN NOINHERIT; GRANT runproof_tenant TO runproof_authenticator; GRANT runproof_tenant TO "own_plain" WITH ADMIN OPTION/,
    );
    t.deepEqual(
      await schemasOf("rp_plain"),
      [],
      "no graphile_worker or graphile_migrate schema is left behind",
    );
    t.deepEqual(await runproofRoles(), []);
    // The same through the library: the error carries the SQLSTATE.
    const e = await t.throwsAsync(migrateDatabase(urlAs("own_plain", "rp_plain")));
    t.is((e as { code?: string }).code, "42501");
  },
);

test.serial(
  "a role without CREATEDB: migrate of a database that does not exist names CREATEDB; with CREATEDB it creates it",
  async (t) => {
    await bareCluster();
    await sql("create role own_nodb login password 'pw' createrole");
    const r = await migrateCli(urlAs("own_nodb", "rp_nodb"));
    t.is(r.code, 1, r.stdout);
    t.regex(
      r.stderr,
      /database "rp_nodb" does not exist, and role "own_nodb" may not create it: it has neither CREATEDB nor SUPERUSER/,
    );
    t.regex(
      r.stderr,
      /hint: create it first, as a superuser: CREATE DATABASE "rp_nodb" OWNER "own_nodb" ENCODING 'UTF8' TEMPLATE template0; or give the role CREATEDB: ALTER ROLE "own_nodb" CREATEDB/,
    );
    t.false(await databaseExists("rp_nodb"));

    // CREATEDB but not CREATEROLE, roles missing: refused before the database is made, or undone.
    await sql("create role own_db login password 'pw' createdb");
    const r2 = await migrateCli(urlAs("own_db", "rp_db"));
    t.is(r2.code, 1, r2.stdout);
    t.regex(
      r2.stderr,
      /role "own_db" may not create the roles runproof_tenant and runproof_authenticator: that needs CREATEROLE/,
    );
    t.false(await databaseExists("rp_db"), "the database it created is dropped again");
  },
);

test.serial(
  "CREATEROLE owner: creates the roles; says on stdout that the DDL audit is not installed and what that loses",
  async (t) => {
    await bareCluster();
    await sql("create role own_cr login password 'pw' createrole createdb");
    const r = await migrateCli(urlAs("own_cr", "rp_cr"));
    t.is(r.code, 0, r.stderr);
    t.regex(r.stdout, /^created database "rp_cr"$/m);
    t.regex(r.stdout, DDL_AUDIT_MISSING);
    t.regex(
      r.stdout,
      /A superuser can install the audit later: psql -d <database> -f sql\/audit\/install\.sql/,
    );
    t.deepEqual(await runproofRoles(), ["runproof_authenticator", "runproof_tenant"]);
    const [a] = await sql("select state from runproof_private.ddl_audit_state()", "rp_cr");
    t.is(a.state, "NOT_INSTALLED");
    // It created runproof_authenticator, so it may give it a password: the GraphQL server can start.
    const saved = process.env[AUTHENTICATOR_PASSWORD_ENV];
    process.env[AUTHENTICATOR_PASSWORD_ENV] = "authenticator-pw";
    try {
      const authUrl = await ensureAuthenticator(urlAs("own_cr", "rp_cr"));
      const c = new pg.Client({ connectionString: authUrl });
      await c.connect();
      t.is((await c.query("select current_user as u")).rows[0].u, "runproof_authenticator");
      await c.end();
    } finally {
      process.env[AUTHENTICATOR_PASSWORD_ENV] = saved;
    }
  },
);

test.serial(
  "CREATEROLE owner, roles pre-created by someone else: needs ADMIN OPTION on runproof_tenant from PostgreSQL 16",
  async (t) => {
    await bareCluster();
    await sql("create role runproof_tenant nologin");
    await sql("create role runproof_authenticator login noinherit");
    await sql("create role own_cr2 login password 'pw' createrole");
    await sql("create database rp_cr2 owner own_cr2");
    const r = await migrateCli(urlAs("own_cr2", "rp_cr2"));
    if (versionNum >= 160000) {
      t.is(r.code, 1, r.stdout);
      t.regex(
        r.stderr,
        /role "own_cr2" may not grant runproof_tenant to runproof_authenticator: that needs ADMIN OPTION on runproof_tenant \(since PostgreSQL 16, CREATEROLE alone does not let a role grant roles it did not create\)/,
      );
      t.regex(
        r.stderr,
        /hint: as a superuser \(or the role that created runproof_tenant\): GRANT runproof_tenant TO "own_cr2" WITH ADMIN OPTION/,
      );
      t.deepEqual(await schemasOf("rp_cr2"), []);
      await sql("grant runproof_tenant to own_cr2 with admin option");
    } else {
      t.is(r.code, 0, `PostgreSQL 15: CREATEROLE may grant any role that is not a superuser\n${r.stderr}`);
    }
    const r2 = await migrateCli(urlAs("own_cr2", "rp_cr2"));
    t.is(r2.code, 0, r2.stderr);
    t.regex(r2.stdout, /^migrated:/m);
  },
);

test.serial(
  "plain owner, roles pre-created with ADMIN OPTION: migrates; the authenticator's password comes from the DBA",
  async (t) => {
    await bareCluster();
    await sql("create role own_pre login password 'pw'");
    await sql("create role runproof_tenant nologin");
    await sql("create role runproof_authenticator login noinherit");
    await sql("grant runproof_tenant to runproof_authenticator");
    await sql("grant runproof_tenant to own_pre with admin option");
    await sql("create database rp_pre owner own_pre");
    const r = await migrateCli(urlAs("own_pre", "rp_pre"));
    t.is(r.code, 0, r.stderr);
    t.notRegex(r.stdout, /created database/);
    t.regex(r.stdout, DDL_AUDIT_MISSING);

    const saved = process.env[AUTHENTICATOR_PASSWORD_ENV];
    try {
      // The owner may not set the password: the error says so, and does not claim it was set.
      process.env[AUTHENTICATOR_PASSWORD_ENV] = "not-the-password";
      const e = await t.throwsAsync(ensureAuthenticator(urlAs("own_pre", "rp_pre")));
      t.regex(
        e!.message,
        /cannot connect as runproof_authenticator \(.*\), and own_pre may not set its password: permission denied/,
      );
      t.notRegex(e!.message, /after setting its password/);
      t.is((e as { code?: string }).code, "42501");
      t.regex(
        (e as { hint?: string }).hint ?? "",
        /set RUNPROOF_AUTHENTICATOR_PASSWORD to the password a DBA gave runproof_authenticator/,
      );
      // The DBA sets it; with it configured, the server connects.
      await sql("alter role runproof_authenticator password 'dba-set'");
      process.env[AUTHENTICATOR_PASSWORD_ENV] = "dba-set";
      const authUrl = await ensureAuthenticator(urlAs("own_pre", "rp_pre"));
      t.regex(authUrl, /runproof_authenticator:dba-set@/);
    } finally {
      process.env[AUTHENTICATOR_PASSWORD_ENV] = saved;
    }
  },
);

test.serial("a first install that fails part-way leaves nothing half-made", async (t) => {
  await bareCluster();
  // A database RunProof refuses (SQL_ASCII: RPENC) after graphile-worker's schema is in.
  await sql("create database rp_ascii encoding 'SQL_ASCII' template template0");
  const r = await migrateCli(`${cluster.rootUrl.replace(/\/postgres$/, "")}/rp_ascii`);
  t.is(r.code, 1, r.stdout);
  t.regex(r.stderr, /RunProof needs a UTF8 database, this one is SQL_ASCII/);
  t.deepEqual(await schemasOf("rp_ascii"), [], "graphile_worker and graphile_migrate are dropped again");
  t.true(await databaseExists("rp_ascii"), "a database it did not create is kept");

  // A database migrate created, whose install then fails: the database is dropped again.
  await sql("create schema runproof", "template1");
  try {
    const r2 = await migrateCli(`${cluster.rootUrl.replace(/\/postgres$/, "")}/rp_made`);
    t.is(r2.code, 1, r2.stdout);
    t.regex(r2.stderr, /schema "runproof" already exists/);
    t.false(await databaseExists("rp_made"));
  } finally {
    await sql("drop schema runproof", "template1");
  }
  t.deepEqual(await runproofRoles(), [], "the roles the failed baseline made are rolled back with it");
});
