// runproof run (through runproof.enqueue_run, with --wait following the run live), runs get and
// runs list, against a real database and a real worker.
import test from "ava";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { cliJson, runCli } from "./helpers/cli.ts";
import { createTestDatabase } from "./helpers/db.ts";
import { json, startHttpServer, startTestWorker, tenantWithAgent, waitForRun } from "./helpers/worker.ts";

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let server: Awaited<ReturnType<typeof startHttpServer>>;
let worker: Awaited<ReturnType<typeof startTestWorker>>;
let env: Record<string, string>;
let tmp: string;

test.before(async () => {
  db = await createTestDatabase("cli-run");
  env = { DATABASE_URL: db.url };
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "runproof-cli-run-"));
  server = await startHttpServer({
    "/ok": (_req, _body, res) => json(res, 200, { ok: true }),
    "/bad": (_req, _body, res) => json(res, 400, { error: "no" }),
    "/busy": (_req, _body, res) => json(res, 503, { error: "try later" }),
  });
  worker = await startTestWorker(db.url);
});
test.after.always(async () => {
  await worker?.stop();
  await server?.close();
  await db?.drop();
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
});

async function planFile(name: string, plan: object): Promise<string> {
  const file = path.join(tmp, name);
  await fs.writeFile(file, JSON.stringify(plan));
  return file;
}

test("run enqueues through runproof.enqueue_run; an idempotency key returns the same run", async (t) => {
  const f = await tenantWithAgent(db.pool);
  const r = await runCli(
    ["run", "--tenant-id", f.tenantId, "--agent", f.agentId, "--goal", "record this goal"],
    { env },
  );
  t.is(r.code, 0, r.stderr);
  const runId = r.stdout.match(
    /^run ([0-9a-f-]{36}) enqueued \(pending, the planner will make the plan\)/m,
  )?.[1];
  t.truthy(runId, r.stdout);
  const {
    rows: [row],
  } = await db.pool.query(
    `select tenant_id, agent_id, goal, origin_system_id from runproof.runs where id = $1`,
    [runId],
  );
  t.deepEqual(row, {
    tenant_id: f.tenantId,
    agent_id: f.agentId,
    goal: "record this goal",
    origin_system_id: "runproof-cli",
  });
  const { rows: jobs } = await db.pool.query(
    `select 1 from graphile_worker.jobs where key in ($1, $2)
    union all select 1 from runproof.runs where id = $3 and status <> 'pending'`,
    [`plan:${runId}`, `exec:${runId}`, runId],
  );
  t.true(jobs.length > 0, "its job was queued with it (or already ran)");

  const file = await planFile("idem.json", { version: 1, steps: [{ skill: "noop", input: { n: 1 } }] });
  const args = [
    "run",
    "-t",
    f.tenantId,
    "-a",
    "agent",
    "-g",
    "idempotent",
    "--plan-file",
    file,
    "--idempotency-key",
    "req-42",
    "--origin-system-id",
    "billing-service",
  ];
  const first = await cliJson(args, { env });
  const second = await cliJson(args, { env });
  t.like(first, { tenant_id: f.tenantId, agent_id: f.agentId, created: true, plan_steps: 1 });
  t.is(second.run_id, first.run_id);
  t.false(second.created);
  const again = await runCli(args, { env });
  t.regex(again.stdout, new RegExp(`run ${first.run_id} already exists for idempotency key req-42`));
  const { rows } = await db.pool.query(
    `select origin_system_id, plan from runproof.runs where idempotency_key = 'req-42'`,
  );
  t.is(rows.length, 1);
  t.is(rows[0].origin_system_id, "billing-service");
  t.deepEqual(rows[0].plan.steps, [{ skill: "noop", input: { n: 1 } }]);
});

test("run refuses bad input with the database's reason", async (t) => {
  const f = await tenantWithAgent(db.pool);
  const base = ["run", "-t", f.tenantId, "-g", "x"];
  const noAgent = await runCli([...base, "-a", "nobody"], { env });
  t.is(noAgent.code, 4);
  t.regex(noAgent.stderr, /agent nobody not found for tenant/);
  const noTenant = await runCli(
    ["run", "-t", "00000000-0000-4000-8000-000000000000", "-a", "agent", "-g", "x"],
    { env },
  );
  t.is(noTenant.code, 4);
  const reserved = await runCli([...base, "-a", "agent", "--origin-system-id", "legacy-migration"], { env });
  t.is(reserved.code, 2);
  t.regex(
    reserved.stderr,
    /origin_system_id 'legacy-migration' is reserved[\s\S]*hint: pass origin_system_id/,
  );
  const badPlan = await runCli([...base, "-a", "agent", "--plan-file", "-"], {
    env,
    input: JSON.stringify({ version: 1, steps: [{ skill: "teleport" }] }),
  });
  t.is(badPlan.code, 2);
  t.regex(badPlan.stderr, /teleport/);
  const notJson = await runCli([...base, "-a", "agent", "--plan-file", "-"], { env, input: "{nope" });
  t.is(notJson.code, 2);
  t.regex(notJson.stderr, /the plan file - is not JSON/);
  const missing = await runCli([...base, "-a", "agent", "--plan-file", path.join(tmp, "absent.json")], {
    env,
  });
  t.is(missing.code, 2);
  t.regex(missing.stderr, /cannot read the plan file/);
  const { rows } = await db.pool.query(`select count(*)::int n from runproof.runs where tenant_id = $1`, [
    f.tenantId,
  ]);
  t.is(rows[0].n, 0, "nothing was created");
});

test("run --wait shows every step live, the final status and the proof; exit 0 when it succeeded", async (t) => {
  const f = await tenantWithAgent(db.pool);
  const file = await planFile("ok.json", {
    version: 1,
    steps: [
      { skill: "noop", input: { hello: "world" } },
      { skill: "http_call", input: { url: `${server.url}/ok` } },
      { skill: "wait", input: { ms: 200 } },
      { skill: "json_transform", input: { expression: "$sum(xs)", data: { xs: [1, 2, 3] } } },
      { skill: "noop" },
    ],
  });
  const r = await runCli(
    [
      "run",
      "--tenant-id",
      f.tenantId,
      "--agent",
      "agent",
      "--goal",
      "five steps",
      "--plan-file",
      file,
      "--wait",
    ],
    { env },
  );
  t.is(r.code, 0, r.stdout + r.stderr);
  const runId = r.stdout.match(/^run ([0-9a-f-]{36}) enqueued/m)![1];
  const lines = r.stdout.split("\n");
  const stepLines = lines.filter((l) => /^\s+[✓✗⊘] step/.test(l));
  t.deepEqual(
    stepLines.map((l) => l.trim().split(/\s+/).slice(0, 7)),
    [
      ["✓", "step", "0", "plan", "0", "noop", "succeeded"],
      ["✓", "step", "1", "plan", "1", "http_call", "succeeded"],
      ["✓", "step", "2", "plan", "2", "wait", "succeeded"],
      ["✓", "step", "3", "plan", "3", "json_transform", "succeeded"],
      ["✓", "step", "4", "plan", "4", "noop", "succeeded"],
    ],
  );
  for (const l of stepLines) t.regex(l, /\d+\.\d ms\s+\d+\.\d{4}¢$/, "duration and cost");
  const wait = stepLines[2].match(/([\d.]+) ms/)![1];
  t.true(Number(wait) >= 200, `the wait step took ${wait} ms`);
  t.regex(
    r.stdout,
    new RegExp(`^run ${runId} succeeded after [\\d.]+ s: 1 attempt\\(s\\), 5/5 plan steps done`, "m"),
  );
  t.regex(
    r.stdout,
    /^proof: VERIFIED \(HASH_CHAIN\) root [0-9a-f]{64}, 1 trace\(s\), 5 step\(s\), chain length 5$/m,
  );
  // What was printed is what was recorded.
  const { rows } = await db.pool.query(
    `select skill, status from runproof.trace_steps where run_id = $1 order by step_index`,
    [runId],
  );
  t.deepEqual(
    rows.map((s) => s.skill),
    ["noop", "http_call", "wait", "json_transform", "noop"],
  );
  const {
    rows: [p],
  } = await db.pool.query(`select root_hash from runproof.run_proof($1, $2)`, [f.tenantId, runId]);
  t.true(r.stdout.includes(p.root_hash));
  // Waiting on a run that has finished: the time is the run's own, as the database recorded it.
  const again = await runCli(["runs", "wait", runId], { env });
  t.is(again.code, 0, again.stderr);
  const {
    rows: [took],
  } = await db.pool.query(
    `select extract(epoch from finished_at - created_at)::float8 as s from runproof.runs where id = $1`,
    [runId],
  );
  t.true(took.s >= 0.2, `the run took ${took.s} s`);
  const printed = again.stdout.match(new RegExp(`^run ${runId} succeeded after ([\\d.]+) s: `, "m"));
  t.truthy(printed, again.stdout);
  t.true(Math.abs(Number(printed![1]) - took.s) <= 0.051, `printed ${printed![1]} s, recorded ${took.s} s`);
});

test("run --wait follows the planner and retries, and exits 1 when the run does not succeed", async (t) => {
  const f = await tenantWithAgent(db.pool);
  // No plan: the builtin planner turns the goal into steps first.
  const planned = await runCli(
    ["run", "-t", f.tenantId, "-a", "agent", "-g", "wait 50 ms, then remember colour = blue", "--wait"],
    { env },
  );
  t.is(planned.code, 0, planned.stdout + planned.stderr);
  t.regex(planned.stdout, /planned: 2 steps \(wait, memory_put\)/);
  t.regex(planned.stdout, /✓ step\s+1\s+plan\s+1\s+memory_put\s+succeeded/);
  // Followed after it was planned and started (or finished): the plan is still said, first.
  const plannedId = planned.stdout.match(/^run (\S+) enqueued/m)![1];
  const late = await runCli(["runs", "wait", plannedId], { env });
  t.is(late.code, 0, late.stdout + late.stderr);
  t.regex(late.stdout, /^ {2}planned: 2 steps \(wait, memory_put\)\n(.*\n)*.*✓ step\s+0/m);

  const failing = await planFile("fail.json", {
    version: 1,
    steps: [{ skill: "noop" }, { skill: "http_call", input: { url: `${server.url}/bad` } }],
  });
  const failed = await runCli(
    ["run", "-t", f.tenantId, "-a", "agent", "-g", "a 400", "--plan-file", failing, "--wait"],
    { env },
  );
  t.is(failed.code, 1);
  t.regex(failed.stdout, /✓ step\s+0\s+plan\s+0\s+noop\s+succeeded/);
  t.regex(
    failed.stdout,
    /✗ step\s+1\s+plan\s+1\s+http_call\s+failed .*HTTP_STATUS: GET .*\/bad returned HTTP 400/,
  );
  t.regex(failed.stdout, /^run [0-9a-f-]{36} failed after/m);
  t.regex(failed.stdout, /^\s+error: step 1 \(http_call\) failed/m);
  t.regex(failed.stdout, /^proof: VERIFIED/m, "a failed run's record is still intact");

  const busy = await planFile("busy.json", {
    version: 1,
    steps: [{ skill: "noop" }, { skill: "http_call", input: { url: `${server.url}/busy` } }],
  });
  const retried = await runCli(
    [
      "run",
      "-t",
      f.tenantId,
      "-a",
      "agent",
      "-g",
      "a 503",
      "--plan-file",
      busy,
      "--max-attempts",
      "2",
      "--wait",
      "--json",
    ],
    { env },
  );
  t.is(retried.code, 1);
  // --json: the progress goes to stderr, the result to stdout.
  t.regex(
    retried.stderr,
    /attempt 1[\s\S]*✗ step\s+1\s+plan\s+1\s+http_call\s+failed[\s\S]*retrying: [\s\S]*attempt 2[\s\S]*✗ step\s+0\s+plan\s+1\s+http_call\s+failed/,
  );
  const out = JSON.parse(retried.stdout);
  t.like(out.run, { status: "failed", attempts: 2, next_plan_step: 1 });
  // Followed after the backoff had passed: the retry is still said, between the two attempts.
  const lateRetry = await runCli(["runs", "wait", out.run.id], { env });
  t.is(lateRetry.code, 1, lateRetry.stdout + lateRetry.stderr);
  t.regex(lateRetry.stdout, /attempt 1[\s\S]*failed[\s\S]*\n {2}retrying: \S[^\n]*\n {2}attempt 2\n/);
  t.like(out.proof, { verification_status: "VERIFIED", trace_count: 2, step_count: 3 });
});

test("runs get shows plan, traces, steps and incidents; runs list filters", async (t) => {
  const f = await tenantWithAgent(db.pool);
  const file = await planFile("get.json", {
    version: 1,
    steps: [
      { skill: "noop", title: "first" },
      { skill: "http_call", input: { url: `${server.url}/bad` } },
    ],
  });
  const { run_id: runId } = await cliJson(
    ["run", "-t", f.tenantId, "-a", "agent", "-g", "inspect me", "--plan-file", file],
    { env },
  );
  await waitForRun(db.pool, runId);
  const ok = await cliJson(
    [
      "run",
      "-t",
      f.tenantId,
      "-a",
      "agent",
      "-g",
      "fine",
      "--plan-file",
      await planFile("fine.json", { version: 1, steps: [{ skill: "noop" }] }),
    ],
    { env },
  );
  await waitForRun(db.pool, ok.run_id);

  const got = await cliJson(["runs", "get", runId], { env });
  t.like(got.run, {
    id: runId,
    tenant_id: f.tenantId,
    agent_name: "agent",
    goal: "inspect me",
    status: "failed",
    origin_system_id: "runproof-cli",
  });
  t.is(got.run.plan.steps.length, 2);
  t.deepEqual(
    got.traces.map((x: any) => [x.attempt, x.status, x.step_count]),
    [[1, "failed", 2]],
  );
  t.deepEqual(
    got.steps.map((s: any) => [s.step_index, s.skill, s.status, s.policy_decision]),
    [
      [0, "noop", "succeeded", "allow"],
      [1, "http_call", "failed", "allow"],
    ],
  );
  t.regex(got.steps[1].step_hash, /^[0-9a-f]{64}$/);
  t.deepEqual(
    got.incidents.map((i: any) => i.kind),
    ["run_failed"],
  );

  const text = await runCli(["runs", "get", runId, "--tenant-id", f.tenantId], { env });
  t.is(text.code, 0, text.stderr);
  for (const heading of ["Plan", "Traces", "Steps", "Incidents"])
    t.regex(text.stdout, new RegExp(`^${heading}`, "m"));
  t.regex(text.stdout, /│ 0 │ noop\s+│ first/);
  t.regex(text.stdout, /run_failed/);
  t.regex(text.stdout, /status\s+│ failed: step 1 \(http_call\) failed/);

  t.is((await runCli(["runs", "get", "00000000-0000-4000-8000-000000000000"], { env })).code, 4);

  const mine = await cliJson(["runs", "list", "--tenant-id", f.tenantId], { env });
  t.deepEqual(
    mine.map((r: any) => r.id),
    [ok.run_id, runId],
    "newest first",
  );
  const failedOnly = await cliJson(["runs", "list", "--tenant-id", f.tenantId, "--status", "failed"], {
    env,
  });
  t.deepEqual(
    failedOnly.map((r: any) => r.id),
    [runId],
  );
  const one = await cliJson(["runs", "list", "--limit", "1"], { env });
  t.is(one.length, 1);
  const table = await runCli(["runs", "list", "-t", f.tenantId], { env });
  t.regex(table.stdout, new RegExp(`${runId}\\s+│ t-\\w+\\s+│ agent\\s+│ failed\\s+│ 1/2`));
});
