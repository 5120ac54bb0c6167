// What is recorded is exactly what ran: a plan holds only numbers a JavaScript number (an IEEE 754
// double, what the worker and its skills use) holds exactly. Others are refused where the plan is
// stored (SQL, RPPLN naming the number and where it is) and before the CLI's JSON parser can round
// them; the input a skill receives is then exactly the recorded input.
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import test from "ava";
import { firstInexactNumber, isExactDouble } from "../src/lib/exact-json.ts";
import { runCli } from "./helpers/cli.ts";
import { createTestDatabase } from "./helpers/db.ts";
import { pgError } from "./helpers/ledger.ts";
import { enqueue, startTestWorker, tenantWithAgent, waitForRun } from "./helpers/worker.ts";

let db: Awaited<ReturnType<typeof createTestDatabase>>;
test.before(async () => {
  db = await createTestDatabase("plan_numbers");
});
test.after.always(async () => db?.drop());

const planWith = (input: string) =>
  `{"version": 1, "steps": [{"skill": "noop", "input": {"ok": 1}}, {"skill": "noop", "input": ${input}}]}`;

test("the database refuses plan numbers no double holds, naming the number and its place", async (t) => {
  await startTestWorker(db.url).then((w) => w.stop()); // registers the skills
  const f = await tenantWithAgent(db.pool);
  const cases: [string, string][] = [
    ['{"n": 12345678901234567890}', "plan.steps[1].input.n = 12345678901234567890"],
    ['{"a": [1, 9007199254740993]}', "plan.steps[1].input.a[1] = 9007199254740993"],
    // (jsonb keeps a number's value, not its text: long ones are shown cut short.)
    ['{"x": 1e400}', "plan.steps[1].input.x = 100000000000000000000000... (401 characters)"],
    ['{"x": 2e-324}', "plan.steps[1].input.x = 0.0000000000000000000000... (326 characters)"],
  ];
  for (const [input, where] of cases) {
    const e = await pgError(
      db.pool.query(`select runproof.enqueue_run($1, $2, 'numbers', 'ava-test', $3::jsonb)`, [
        f.tenantId,
        f.agentId,
        planWith(input),
      ]),
    );
    t.is(e.code, "RPPLN", input);
    t.is(
      e.message,
      `plan number ${where} cannot be held exactly by a 64-bit float, so the skill would receive another number than the one recorded`,
    );
    t.is(e.hint, "pass such numbers as strings, or round them to a value a double holds");
  }
  const {
    rows: [n],
  } = await db.pool.query(`select count(*)::int as n from runproof.runs where tenant_id = $1`, [f.tenantId]);
  t.is(n.n, 0, "nothing was written");
});

test("the input a skill received is exactly the recorded input and the planned one", async (t) => {
  const worker = await startTestWorker(db.url);
  try {
    const f = await tenantWithAgent(db.pool);
    // Doubles at their edges, as numbers; the big integer as a string, as the hint says.
    const input =
      '{"tenth": 0.1, "sum": 0.30000000000000004, "huge": 1e300, "tiny": 5e-324, "max": 1.7976931348623157e308, "safe": 9007199254740992, "neg": -2.5, "one": 1.0, "list": [1.5, 1e21], "big": "12345678901234567890"}';
    const runId = await enqueue(db.pool, f, "numbers", JSON.parse(planWith(input)));
    // (enqueue passes the plan through JSON: those numbers survive the trip exactly.)
    t.is((await waitForRun(db.pool, runId)).status, "succeeded");
    const {
      rows: [r],
    } = await db.pool.query(
      `select p.input = (r.plan #> '{steps,1,input}') as recorded_is_planned,
              (p.output -> 'echo') = p.input as received_is_recorded,
              p.input::text as input
         from runproof.runs r join runproof.traces t on t.run_id = r.id
         join runproof.step_payloads p on p.trace_id = t.id and p.step_index = 1
        where r.id = $1`,
      [runId],
    );
    t.true(r.recorded_is_planned, r.input);
    t.true(r.received_is_recorded, r.input);
    t.is(
      (await db.pool.query(`select verification_status from runproof.run_proof($1, $2)`, [f.tenantId, runId]))
        .rows[0].verification_status,
      "VERIFIED",
    );
  } finally {
    await worker.stop();
  }
});

test("the CLI refuses a plan file with such a number before parsing rounds it", async (t) => {
  const f = await tenantWithAgent(db.pool);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "runproof-plan-"));
  const file = path.join(dir, "plan.json");
  await fs.writeFile(file, planWith('{"amount": 12345678901234567890}'));
  const r = await runCli(
    ["run", "--tenant-id", f.tenantId, "--agent", f.agentId, "--goal", "numbers", "--plan-file", file],
    {
      env: { DATABASE_URL: db.url },
    },
  );
  t.is(r.code, 2, r.stderr);
  t.regex(
    r.stderr,
    /The number at \$\.steps\[1\]\.input\.amount = 12345678901234567890 cannot be held exactly by a 64-bit float/,
  );
  await fs.rm(dir, { recursive: true, force: true });
});

test("isExactDouble and firstInexactNumber agree with the database's check", async (t) => {
  const exact = [
    "0",
    "-0",
    "1",
    "1.0",
    "1.50e1",
    "0.1",
    "0.30000000000000004",
    "9007199254740992",
    "5e-324",
    "1e21",
    "1.7976931348623157e308",
  ];
  const inexact = [
    "12345678901234567890",
    "9007199254740993",
    "1e400",
    "2e-324",
    "1.7976931348623158e308",
    "0.1000000000000000055511151231257827",
  ];
  for (const x of exact) t.true(isExactDouble(x), x);
  for (const x of inexact) t.false(isExactDouble(x), x);
  const { rows } = await db.pool.query(
    `select x, runproof_private.inexact_number(x::jsonb) as found from unnest($1::text[]) x`,
    [[...exact, ...inexact]],
  );
  for (const r of rows) t.is(r.found === null, exact.includes(r.x), `SQL on ${r.x}`);
  t.is(
    firstInexactNumber('{"a": {"x": 1}, "b": [1, {"y": 12345678901234567890}], "c": 1e400}', "plan"),
    "plan.b[1].y = 12345678901234567890",
  );
  t.is(firstInexactNumber('{"a": 1.5, "b": ["1e400"]}'), null);
});
