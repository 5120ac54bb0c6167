// The runproof command as a whole: --help everywhere with the exit code table, usage errors
// (exit 2), an unreachable database (exit 1), `migrate`, and migrating on first use.
import test from "ava";
import { randomBytes } from "node:crypto";
import pg from "pg";
import { databaseUrlWithName } from "../src/lib/database.ts";
import { runCli } from "./helpers/cli.ts";
import { createTestDatabase } from "./helpers/db.ts";

const NO_DB = { DATABASE_URL: undefined, RUNPROOF_PG_PORT: "bogus" };

const COMMANDS = [
  [],
  ["start"],
  ["migrate"],
  ["worker"],
  ["serve"],
  ["tenant"],
  ["tenant", "create"],
  ["tenant", "list"],
  ["api-key"],
  ["api-key", "create"],
  ["api-key", "revoke"],
  ["api-key", "list"],
  ["agent"],
  ["agent", "create"],
  ["agent", "list"],
  ["skills"],
  ["skills", "list"],
  ["run"],
  ["runs"],
  ["runs", "get"],
  ["runs", "list"],
  ["proof"],
  ["proof", "export"],
  ["proof", "verify"],
  ["verify-all"],
  ["demo"],
];

test("--help works on every command, touches no database, and documents the exit codes", async (t) => {
  const results = await Promise.all(COMMANDS.map((c) => runCli([...c, "--help"], { env: NO_DB })));
  results.forEach((r, i) => {
    const name = ["runproof", ...COMMANDS[i]].join(" ");
    t.is(r.code, 0, `${name} --help: ${r.stderr}`);
    t.regex(r.stdout, /^Usage: runproof/m, name);
    t.regex(
      r.stdout,
      /Exit codes:\n\s+0\s+ok\n\s+1\s+operational error.*\n\s+2\s+usage error[\s\S]*?\n\s+3\s+verification failed.*\n\s+4\s+not found/,
      name,
    );
    t.regex(
      r.stdout,
      COMMANDS[i].join(" ") === "proof verify"
        ? /Offline: no database is used or needed/
        : /Database: DATABASE_URL if set/,
      name,
    );
  });
  const top = results[0].stdout;
  for (const cmd of [
    "start",
    "migrate",
    "worker",
    "serve",
    "tenant",
    "api-key",
    "agent",
    "skills",
    "run",
    "runs",
    "proof",
    "verify-all",
    "demo",
  ]) {
    t.regex(top, new RegExp(`^\\s+${cmd}\\b`, "m"), `top-level help lists ${cmd}`);
  }
  // Every command that reads takes --json.
  for (const c of [
    ["tenant", "list"],
    ["api-key", "list"],
    ["agent", "list"],
    ["skills", "list"],
    ["runs", "get"],
    ["runs", "list"],
    ["proof"],
    ["proof", "verify"],
    ["verify-all"],
    ["run"],
  ]) {
    t.regex(
      results[COMMANDS.findIndex((x) => x.join(" ") === c.join(" "))].stdout,
      /--json/,
      `${c.join(" ")} has --json`,
    );
  }
});

test("usage errors exit 2 and say what is wrong", async (t) => {
  const cases: [string[], RegExp][] = [
    [[], /Usage: runproof/],
    [["frobnicate"], /unknown command 'frobnicate'/],
    [["tenant"], /Usage: runproof tenant/],
    [["run", "--agent", "a", "--goal", "g"], /required option '-t, --tenant-id <uuid>' not specified/],
    [["runs", "get", "not-a-uuid"], /"not-a-uuid" is not a UUID/],
    [["runs", "list", "--status", "exploded"], /"exploded" is not a run status/],
    [["runs", "list", "--limit", "0"], /"0" is not a positive whole number/],
    [["tenant", "create", "x", "--budget-cents", "-5"], /not an amount of cents/],
    [["proof", "verify"], /missing required argument 'bundle-file'/],
    [["tenant", "list", "--bogus"], /unknown option '--bogus'/],
  ];
  const results = await Promise.all(cases.map(([args]) => runCli(args, { env: NO_DB })));
  results.forEach((r, i) => {
    t.is(r.code, 2, `runproof ${cases[i][0].join(" ")}: ${r.stderr}`);
    t.regex(r.stderr, cases[i][1], cases[i][0].join(" "));
  });
});

test("every usage error has the one documented form: runproof: <message>, then a hint", async (t) => {
  const cases: [string[], string, string][] = [
    [
      ["frobnicate"],
      "runproof: unknown command 'frobnicate'",
      "  hint: npx runproof --help lists its commands",
    ],
    [
      ["tenant", "list", "--bogus"],
      "runproof: unknown option '--bogus'",
      "  hint: npx runproof tenant list --help lists its options",
    ],
    [
      ["proof", "verify"],
      "runproof: missing required argument 'bundle-file'",
      "  hint: npx runproof proof verify --help lists its options",
    ],
    [
      ["runs", "get", "x"],
      `runproof: command-argument value 'x' is invalid for argument 'run-id'. "x" is not a UUID.`,
      "  hint: npx runproof runs get --help lists its options",
    ],
  ];
  const results = await Promise.all(cases.map(([args]) => runCli(args, { env: NO_DB })));
  results.forEach((r, i) => {
    t.is(r.code, 2, r.stderr);
    t.is(r.stdout, "");
    t.deepEqual(r.stderr.split("\n"), [cases[i][1], cases[i][2], ""], cases[i][0].join(" "));
  });
  // A usage error found by a command itself (not by commander's parser) has the same form.
  const own = await runCli(["tenant", "retention", "00000000-0000-0000-0000-000000000000"], { env: NO_DB });
  t.is(own.code, 2);
  t.is(own.stderr, "runproof: pass --keep <interval> or --forever\n");
});

test("an unreachable database is an operational error (exit 1) with the reason", async (t) => {
  const r = await runCli(["tenant", "list"], {
    env: { DATABASE_URL: "postgres://nobody:x@127.0.0.1:1/nothing" },
  });
  t.is(r.code, 1);
  t.regex(
    r.stderr,
    /runproof: cannot connect to the database at 127\.0\.0\.1:1 \(DATABASE_URL\): connection refused/,
  );
  t.is(r.stdout, "");
});

async function emptyDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const root = process.env.RUNPROOF_TEST_ROOT_URL!;
  const name = `rpt_cli_empty_${randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: root });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  return {
    url: databaseUrlWithName(root, name),
    async drop() {
      const c = new pg.Client({ connectionString: root });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}

test("migrate brings an empty database up, and is idempotent", async (t) => {
  const db = await emptyDatabase();
  t.teardown(() => db.drop());
  const first = await runCli(["migrate"], { env: { DATABASE_URL: db.url } });
  t.is(first.code, 0, first.stderr);
  t.regex(first.stdout, /migrated/);
  const again = await runCli(["migrate"], { env: { DATABASE_URL: db.url } });
  t.is(again.code, 0, again.stderr);
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  t.teardown(() => c.end());
  const {
    rows: [r],
  } =
    await c.query(`select to_regprocedure('runproof.enqueue_run(uuid,uuid,text,text,jsonb,text,integer)') is not null as ok,
    to_regclass('graphile_worker.jobs') is not null as worker`);
  t.deepEqual(r, { ok: true, worker: true });
});

test("any command migrates a database without the schema first", async (t) => {
  const db = await emptyDatabase();
  t.teardown(() => db.drop());
  const r = await runCli(["tenant", "list", "--json"], { env: { DATABASE_URL: db.url } });
  t.is(r.code, 0, r.stderr);
  t.regex(r.stderr, /no RunProof schema in this database; migrating first/);
  t.deepEqual(JSON.parse(r.stdout), []);
  // Once migrated, the quick check passes silently.
  const again = await runCli(["tenant", "list"], { env: { DATABASE_URL: db.url } });
  t.is(again.code, 0);
  t.notRegex(again.stderr, /migrating/);
});

test("a migrated test database needs no migration", async (t) => {
  const db = await createTestDatabase("cli-basics");
  t.teardown(() => db.drop());
  const r = await runCli(["skills", "list", "--json"], { env: { DATABASE_URL: db.url } });
  t.is(r.code, 0, r.stderr);
  t.notRegex(r.stderr, /migrating/);
  const names = JSON.parse(r.stdout).map((s: { name: string }) => s.name);
  // The built-in skills are registered on first use (plans and allowed_skills are checked against them).
  t.deepEqual(names, [
    "http_call",
    "json_transform",
    "llm_complete",
    "memory_get",
    "memory_put",
    "noop",
    "wait",
  ]);
});
