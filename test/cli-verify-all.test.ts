// runproof verify-all: every run through run_proof in batches, with a progress bar on stderr,
// plus the orphans runproof.verify_all() reports; exit 3 when anything is not intact.
import test from "ava";
import { cliJson, runCli } from "./helpers/cli.ts";
import { createTestDatabase } from "./helpers/db.ts";
import {
  appendStep,
  asAttacker,
  completedRun,
  createTenant,
  insertRun,
  startAttempt,
} from "./helpers/ledger.ts";

test("an intact ledger: exit 0, every run counted, a progress bar on stderr", async (t) => {
  const db = await createTestDatabase("cli-verify-all-ok");
  t.teardown(() => db.drop());
  const env = { DATABASE_URL: db.url };
  const empty = await runCli(["verify-all"], { env });
  t.is(empty.code, 0, empty.stderr);
  t.regex(empty.stdout, /scanned 0 run\(s\)/);

  const f = await createTenant(db.pool);
  for (let i = 0; i < 5; i++) await completedRun(db.pool, f, { stepsPerTrace: 2 });
  const open = await insertRun(db.pool, f);
  await appendStep(db.pool, f, open, await startAttempt(db.pool, f, open), 0);

  const r = await runCli(["verify-all", "--batch-size", "2"], { env });
  t.is(r.code, 0, r.stdout + r.stderr);
  t.regex(r.stdout, /^scanned 6 run\(s\) in [\d.]+ s: 5 VERIFIED, 1 IN_PROGRESS$/m);
  t.regex(r.stdout, /ledger intact/);
  t.regex(r.stderr, /verifying runs \[.*\] 6\/6 \(100%\) 0 problem\(s\)/);

  const j = await cliJson(["verify-all", "--no-progress", "--batch-size", "4"], { env });
  t.like(j, {
    runs_scanned: 6,
    ok: true,
    problems: [],
    counts: { VERIFIED: 5, IN_PROGRESS: 1, TAMPERED: 0, BROKEN: 0 },
  });
  const quiet = await runCli(["verify-all", "--no-progress"], { env });
  t.notRegex(quiet.stderr, /verifying runs/);
});

test("tampered, broken and orphaned rows: listed like runproof.verify_all(), exit 3", async (t) => {
  const db = await createTestDatabase("cli-verify-all-bad");
  t.teardown(() => db.drop());
  const env = { DATABASE_URL: db.url };
  const f = await createTenant(db.pool);
  const g = await createTenant(db.pool);
  const fine = await completedRun(db.pool, f);
  const edited = await completedRun(db.pool, f, { stepsPerTrace: 4 });
  const cut = await completedRun(db.pool, f, { stepsPerTrace: 4 });
  const runless = await completedRun(db.pool, g);
  const traceless = await completedRun(db.pool, g, { attempts: 2, stepsPerTrace: 2 });
  await asAttacker(db.pool, async (c) => {
    await c.query(
      `update runproof.step_payloads set output = '{"x": 1}' where trace_id = $1 and step_index = 1`,
      [edited.traceIds[0]],
    );
    await c.query(`delete from runproof.trace_steps where trace_id = $1 and step_index = 3`, [
      cut.traceIds[0],
    ]);
    await c.query(`delete from runproof.runs where id = $1`, [runless.runId]);
    await c.query(`delete from runproof.traces where id = $1`, [traceless.traceIds[1]]);
  });

  const r = await runCli(["verify-all", "--batch-size", "2"], { env });
  t.is(r.code, 3, r.stderr);
  t.regex(r.stdout, /^scanned 4 run\(s\) in [\d.]+ s: 1 VERIFIED, 1 TAMPERED, 2 BROKEN$/m);
  t.regex(r.stdout, /5 problem\(s\):/);
  t.regex(
    r.stdout,
    new RegExp(
      `${edited.runId}\\s+│ ${edited.traceIds[0]}\\s+│ TAMPERED\\s+│ 1\\s+│ 1\\s+│ attempt 1: step 1: its output payload`,
    ),
  );
  t.regex(
    r.stdout,
    new RegExp(
      `${runless.runId}\\s+│ ${runless.traceIds[0]}\\s+│ BROKEN\\s+│ 1\\s+│ -\\s+│ trace has no run row`,
    ),
  );
  t.regex(
    r.stdout,
    new RegExp(
      `${traceless.runId}\\s+│ ${traceless.traceIds[1]}\\s+│ BROKEN\\s+│ -\\s+│ 0\\s+│ steps have no trace row`,
    ),
  );
  t.false(r.stdout.includes(fine.runId), "the intact run is not listed");

  const j = await cliJson(["verify-all", "--no-progress"], { env, expect: 3 });
  t.like(j, {
    runs_scanned: 4,
    ok: false,
    orphan_traces: 1,
    orphan_step_groups: 1,
    counts: { VERIFIED: 1, TAMPERED: 1, BROKEN: 2 },
  });
  // The same findings as the SQL function a DBA would call.
  const { rows: sql } = await db.pool.query(`select * from runproof.verify_all()`);
  const key = (p: any) =>
    [
      p.run_id,
      p.trace_id,
      p.verification_status,
      p.first_bad_attempt,
      p.first_bad_step_index,
      p.reason,
      p.guard_status,
    ].join("|");
  t.deepEqual(j.problems.map(key).sort(), sql.map(key).sort());

  const onlyF = await cliJson(["verify-all", "--tenant-id", f.tenantId, "--no-progress"], { env, expect: 3 });
  t.is(onlyF.runs_scanned, 3);
  t.deepEqual(onlyF.problems.map((p: any) => p.run_id).sort(), [edited.runId, cut.runId].sort());
  const onlyFine = await createTenant(db.pool);
  await completedRun(db.pool, onlyFine);
  t.is((await runCli(["verify-all", "--tenant-id", onlyFine.tenantId], { env })).code, 0);
});

test("a guard switched off: the CLI reports the same ledger-wide row as runproof.verify_all(), exit 3", async (t) => {
  const db = await createTestDatabase("cli-verify-all-guard");
  t.teardown(() => db.drop());
  const env = { DATABASE_URL: db.url };
  const f = await createTenant(db.pool);
  await completedRun(db.pool, f);
  await db.pool.query(`alter table runproof.trace_steps disable trigger tg_trace_steps__append_only`);
  const sql = (
    await db.pool.query(`select reason, guard_status from runproof.verify_all() where run_id is null`)
  ).rows;
  t.true(sql.length >= 1);
  const j = await cliJson(["verify-all", "--no-progress"], { env, expect: 3 });
  const ledgerRows = (j.problems as { run_id: string | null; reason: string; guard_status: string }[]).filter(
    (p) => p.run_id === null,
  );
  t.deepEqual(
    ledgerRows.map((p) => [p.reason, p.guard_status]),
    sql.map((r) => [r.reason, r.guard_status]),
  );
  t.false(j.ok as boolean);
});

test("--jobs: the runs verified over several connections, reported in creation order, the same as one connection and as runproof.verify_all()", async (t) => {
  const db = await createTestDatabase("cli-verify-all-jobs");
  t.teardown(() => db.drop());
  const env = { DATABASE_URL: db.url };
  const f = await createTenant(db.pool);
  const runs: { runId: string; traceIds: string[] }[] = [];
  for (let i = 0; i < 24; i++) runs.push(await completedRun(db.pool, f, { stepsPerTrace: 1 + (i % 4) }));
  const bad = [1, 6, 7, 13, 22].map((i) => runs[i]);
  await asAttacker(db.pool, async (c) => {
    for (const r of bad)
      await c.query(
        `update runproof.step_payloads set output = '{"x": 1}' where trace_id = $1 and step_index = 0`,
        [r.traceIds[0]],
      );
  });
  const one = await cliJson(["verify-all", "--no-progress", "--jobs", "1", "--batch-size", "2"], {
    env,
    expect: 3,
  });
  const four = await cliJson(["verify-all", "--no-progress", "--jobs", "4", "--batch-size", "2"], {
    env,
    expect: 3,
  });
  t.is(one.jobs, 1);
  t.is(four.jobs, 4);
  t.like(four, { runs_scanned: 24, counts: { VERIFIED: 19, TAMPERED: 5 } });
  t.deepEqual(
    four.problems.map((p: any) => p.run_id),
    bad.map((r) => r.runId),
    "creation order",
  );
  t.deepEqual(four.problems, one.problems);
  // Row for row what the SQL function says, guard status included: both take run_verdict's word.
  const { rows: sql } = await db.pool.query(`select * from runproof.verify_all()`);
  t.deepEqual(four.problems, sql);
  const tooMany = await runCli(["verify-all", "--jobs", "65"], { env });
  t.is(tooMany.code, 2, tooMany.stderr);
  t.regex(tooMany.stderr, /--jobs 65 is more than 64/);
});

test("--jobs: every connection reads the snapshot the scan started with; what commits during the scan is not in it", async (t) => {
  const db = await createTestDatabase("cli-verify-all-snapshot");
  t.teardown(() => db.drop());
  const env = { DATABASE_URL: db.url };
  const f = await createTenant(db.pool);
  const runs: { runId: string; traceIds: string[] }[] = [];
  for (let i = 0; i < 6; i++) runs.push(await completedRun(db.pool, f));
  let scan: ReturnType<typeof cliJson> | undefined;
  // The tamper holds the payloads locked: the scan takes its snapshot and hands out its batches,
  // the verifiers wait for the payloads; the tamper commits while they wait.
  await asAttacker(db.pool, async (c) => {
    // What the attacker's triggers-off edits lock lets readers through; this does not.
    await c.query("lock table runproof.step_payloads in access exclusive mode");
    scan = cliJson(["verify-all", "--no-progress", "--jobs", "3", "--batch-size", "1"], { env });
    for (let i = 0; ; i++) {
      const { rows } = await db.pool.query(
        `select 1 from pg_stat_activity where application_name = 'runproof verify-all' and wait_event_type = 'Lock'`,
      );
      if (rows.length) break;
      if (i > 600)
        throw new Error(
          `verify-all never waited for the tables: ${JSON.stringify((await db.pool.query(`select application_name, state, wait_event_type, wait_event, query from pg_stat_activity where datname = current_database()`)).rows)}`,
        );
      await new Promise((r) => setTimeout(r, 50));
    }
    await c.query(
      `update runproof.step_payloads set output = '{"x": 1}' where trace_id = $1 and step_index = 0`,
      [runs[5].traceIds[0]],
    );
    await c.query(`delete from runproof.runs where id = $1`, [runs[0].runId]);
  });
  const during = await scan!;
  t.like(during, { runs_scanned: 6, ok: true, counts: { VERIFIED: 6 } });
  const after = await cliJson(["verify-all", "--no-progress", "--jobs", "3"], { env, expect: 3 });
  t.like(after, { runs_scanned: 5, counts: { VERIFIED: 4, TAMPERED: 1 }, orphan_traces: 1 });
});
