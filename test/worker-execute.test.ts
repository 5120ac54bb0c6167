// End to end: runs enqueued with one SQL call, executed by a real worker against real local servers.
import test from "ava";
import pg from "pg";
import { z } from "zod";
import { defineSkill } from "../src/skills/types.ts";
import { createTestDatabase } from "./helpers/db.ts";
import {
  enqueue,
  json,
  startHttpServer,
  startTestWorker,
  tenantWithAgent,
  waitForRun,
} from "./helpers/worker.ts";

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let server: Awaited<ReturnType<typeof startHttpServer>>;
let llm: Awaited<ReturnType<typeof startHttpServer>>;
let worker: Awaited<ReturnType<typeof startTestWorker>>;
let flakyCalls = 0;

// A skill that costs one cent a call, to exercise the budget.
const paid = defineSkill({
  name: "paid_echo",
  description: "echo, one cent a call",
  input: z.record(z.string(), z.unknown()).default({}),
  sideEffects: false,
  defaultTimeoutMs: 5000,
  costCents: 1,
  async run(input) {
    return { output: { echo: input }, costCents: 1 };
  },
});

test.before(async () => {
  db = await createTestDatabase("worker-execute");
  server = await startHttpServer({
    "/json": (_req, _body, res) =>
      json(res, 200, {
        items: [
          { name: "a", price: 5 },
          { name: "b", price: 20 },
        ],
      }),
    "/flaky": (_req, _body, res) => {
      flakyCalls++;
      json(res, flakyCalls === 1 ? 503 : 200, { call: flakyCalls });
    },
    "/missing": (_req, _body, res) => json(res, 404, { error: "no such thing" }),
  });
  llm = await startHttpServer({
    "/v1/chat/completions": (_req, body, res) => {
      const req = JSON.parse(body);
      json(res, 200, {
        model: req.model,
        choices: [{ message: { role: "assistant", content: `answer to: ${req.messages.at(-1).content}` } }],
        usage: { prompt_tokens: 600, completion_tokens: 400, total_tokens: 1000 },
      });
    },
  });
  worker = await startTestWorker(db.url, {
    skills: [paid],
    env: {
      RUNPROOF_LLM_BASE_URL: `${llm.url}/v1`,
      RUNPROOF_LLM_API_KEY: "sk-test-secret",
      RUNPROOF_LLM_CENTS_PER_1K_TOKENS: "0.25",
    },
  });
});
test.after.always(async () => {
  await worker?.stop();
  await server?.close();
  await llm?.close();
  await db?.drop();
});

const steps = async (runId: string) =>
  (
    await db.pool.query(
      `select t.attempt, t.status as trace_status, s.step_index, s.plan_step, s.skill, s.status, s.cost_cents::float8 as cost, p.input, p.output, p.error
     from runproof.traces t left join runproof.trace_steps s on s.trace_id = t.id
     left join runproof.step_payloads p on p.tenant_id = s.tenant_id and p.trace_id = s.trace_id and p.step_index = s.step_index
    where t.run_id = $1 order by t.attempt, s.step_index`,
      [runId],
    )
  ).rows;
const proof = async (tenantId: string, runId: string) =>
  (await db.pool.query(`select * from runproof.run_proof($1, $2)`, [tenantId, runId])).rows[0];

test("a successful multi-step run is VERIFIED with the expected steps and costs", async (t) => {
  const f = await tenantWithAgent(db.pool);
  const runId = await enqueue(db.pool, f, "fetch items, pick expensive ones, remember them, ask the LLM", {
    version: 1,
    steps: [
      {
        skill: "http_call",
        input: { url: `${server.url}/json`, headers: { Authorization: "Bearer top-secret" } },
      },
      {
        skill: "json_transform",
        input: {
          expression: "items[price > 10].name",
          data: {
            items: [
              { name: "a", price: 5 },
              { name: "b", price: 20 },
            ],
          },
        },
      },
      { skill: "memory_put", input: { key: "expensive", value: ["b"] } },
      { skill: "memory_get", input: { key: "expensive" } },
      { skill: "llm_complete", input: { prompt: "summarise", max_tokens: 50 } },
    ],
  });
  const run = await waitForRun(db.pool, runId);
  t.is(run.status, "succeeded", String(run.error));
  t.is(run.next_plan_step, 5);
  const rows = await steps(runId);
  t.deepEqual(
    rows.map((r) => [r.step_index, r.skill, r.status]),
    [
      [0, "http_call", "succeeded"],
      [1, "json_transform", "succeeded"],
      [2, "memory_put", "succeeded"],
      [3, "memory_get", "succeeded"],
      [4, "llm_complete", "succeeded"],
    ],
  );
  t.is(rows[0].output.status, 200);
  t.deepEqual(rows[0].input.headers, { Authorization: "[REDACTED]" }, "secrets are redacted before hashing");
  t.is(
    server.requests.find((r) => r.url === "/json")?.headers.authorization,
    "Bearer top-secret",
    "the real call carried the secret",
  );
  t.is(server.requests.find((r) => r.url === "/json")?.headers["idempotency-key"], `${runId}:0`);
  t.deepEqual(rows[1].output.result, "b");
  t.deepEqual(rows[3].output, { found: true, value: ["b"] });
  t.is(rows[4].cost, 0.25, "1000 tokens at 0.25 cents per 1k");
  t.is(Number(run.cost_cents), 0.25);
  const p = await proof(f.tenantId, runId);
  t.like(p, {
    integrity_model: "HASH_CHAIN",
    verification_status: "VERIFIED",
    chain_length: 5,
    trace_count: 1,
    step_count: 5,
  });
  const {
    rows: [trace],
  } = await db.pool.query(`select status, metadata from runproof.traces where run_id = $1`, [runId]);
  t.is(trace.status, "completed");
  t.is(trace.metadata.process_id, worker.processId);
});

test("a permanently failed step fails the run, with a failed step and an incident", async (t) => {
  const f = await tenantWithAgent(db.pool);
  const runId = await enqueue(db.pool, f, "fetch a missing page", {
    version: 1,
    steps: [
      { skill: "noop", input: {} },
      { skill: "http_call", input: { url: `${server.url}/missing` } },
      { skill: "noop" },
    ],
  });
  const run = await waitForRun(db.pool, runId);
  t.is(run.status, "failed");
  t.regex(run.error, /step 1 \(http_call\) failed: HTTP_STATUS: /);
  const rows = await steps(runId);
  t.deepEqual(
    rows.map((r) => [r.skill, r.status]),
    [
      ["noop", "succeeded"],
      ["http_call", "failed"],
    ],
  );
  t.is(rows[0].trace_status, "failed");
  t.regex(rows[1].error, /^HTTP_STATUS/);
  const { rows: inc } = await db.pool.query(`select kind from runproof.incidents where run_id = $1`, [runId]);
  t.deepEqual(
    inc.map((i) => i.kind),
    ["run_failed"],
  );
  t.is((await proof(f.tenantId, runId)).verification_status, "VERIFIED");
});

test("a transient failure retries as a new attempt (a new trace) that then succeeds", async (t) => {
  const f = await tenantWithAgent(db.pool);
  const runId = await enqueue(db.pool, f, "call a flaky service", {
    version: 1,
    steps: [
      { skill: "noop", input: { first: true } },
      { skill: "http_call", input: { url: `${server.url}/flaky` } },
    ],
  });
  const run = await waitForRun(db.pool, runId);
  t.is(run.status, "succeeded", String(run.error));
  t.is(run.attempts, 2);
  const rows = await steps(runId);
  t.deepEqual(
    rows.map((r) => [r.attempt, r.trace_status, r.plan_step, r.skill, r.status]),
    [
      [1, "failed", 0, "noop", "succeeded"],
      [1, "failed", 1, "http_call", "failed"],
      [2, "completed", 1, "http_call", "succeeded"], // resumes after the last succeeded step
    ],
  );
  const calls = server.requests.filter((r) => r.url === "/flaky");
  t.is(calls.length, 2);
  t.deepEqual(
    calls.map((c) => c.headers["idempotency-key"]),
    [`${runId}:1`, `${runId}:1`],
    "the retry reuses the idempotency key",
  );
  const { rows: inc } = await db.pool.query(`select kind from runproof.incidents where run_id = $1`, [runId]);
  t.deepEqual(
    inc.map((i) => i.kind),
    ["step_failed"],
  );
  t.like(await proof(f.tenantId, runId), { verification_status: "VERIFIED", trace_count: 2, step_count: 3 });
});

test("the daily budget halts a run: the denied step and its decision are recorded, with an incident", async (t) => {
  const f = await tenantWithAgent(db.pool, { budgetCents: 1.5 });
  const runId = await enqueue(db.pool, f, "spend", {
    version: 1,
    steps: [{ skill: "paid_echo" }, { skill: "paid_echo" }, { skill: "paid_echo" }],
  });
  const run = await waitForRun(db.pool, runId);
  t.is(run.status, "halted");
  t.regex(
    run.error,
    /policy denied step 1: daily budget exceeded: spent 1\.0000 \+ estimated 1 > budget 1\.5000 cents/,
  );
  const rows = await steps(runId);
  t.deepEqual(
    rows.map((r) => [r.skill, r.status, r.cost]),
    [
      ["paid_echo", "succeeded", 1],
      ["paid_echo", "denied", 0],
    ],
  );
  const { rows: dec } = await db.pool.query(
    `select step_index, decision from runproof.policy_decisions where run_id = $1 order by step_index`,
    [runId],
  );
  t.deepEqual(
    dec.map((d) => d.decision),
    ["allow", "deny"],
  );
  const { rows: inc } = await db.pool.query(
    `select kind, severity from runproof.incidents where run_id = $1`,
    [runId],
  );
  t.deepEqual(inc, [{ kind: "budget_exceeded", severity: "warning" }]);
  t.is((await proof(f.tenantId, runId)).verification_status, "VERIFIED");
});

test("an agent's skill allow-list halts a run that calls another skill", async (t) => {
  const f = await tenantWithAgent(db.pool, { allowedSkills: ["noop"] });
  const runId = await enqueue(db.pool, f, "wait", {
    version: 1,
    steps: [{ skill: "noop" }, { skill: "wait", input: { ms: 1 } }],
  });
  const run = await waitForRun(db.pool, runId);
  t.is(run.status, "halted");
  t.regex(run.error, /skill wait is not in the agent's allowed_skills \(noop\)/);
});

test("cancel_run stops a running run between steps", async (t) => {
  const f = await tenantWithAgent(db.pool);
  const runId = await enqueue(db.pool, f, "slow", {
    version: 1,
    steps: [{ skill: "wait", input: { ms: 800 } }, { skill: "wait", input: { ms: 800 } }, { skill: "noop" }],
  });
  await waitForRun(db.pool, runId, ["running"]);
  const {
    rows: [c],
  } = await db.pool.query(`select status from runproof.cancel_run($1, 'user changed their mind', $2)`, [
    runId,
    f.tenantId,
  ]);
  t.is(c.status, "running", "a running run stops at the next step boundary");
  const run = await waitForRun(db.pool, runId);
  t.is(run.status, "cancelled");
  t.is(run.error, "user changed their mind");
  const rows = await steps(runId);
  t.true(rows.length >= 1 && rows.length < 3);
  t.is(rows[0].trace_status, "aborted");
  t.is((await proof(f.tenantId, runId)).verification_status, "VERIFIED");
  const again = await db.pool
    .query(`select runproof.cancel_run($1, 'x', $2)`, [runId, f.tenantId])
    .catch((e) => e);
  t.is(again.code, "RPSTS");
});

test("a run enqueued without a plan is planned by the builtin planner, then executed", async (t) => {
  const f = await tenantWithAgent(db.pool);
  const runId = await enqueue(db.pool, f, `fetch ${server.url}/json and remember colour = blue`, null);
  const run = await waitForRun(db.pool, runId);
  t.is(run.status, "succeeded", String(run.error));
  t.like(run.plan, { version: 1, planner: "builtin" });
  t.deepEqual(
    run.plan.steps.map((s: { skill: string }) => s.skill),
    ["http_call", "memory_put"],
  );
  const {
    rows: [m],
  } = await db.pool.query(`select value from runproof.agent_memory where agent_id = $1 and key = 'colour'`, [
    f.agentId,
  ]);
  t.is(m.value, "blue");
});

test("run status changes and steps are announced with NOTIFY", async (t) => {
  const f = await tenantWithAgent(db.pool);
  const listener = new pg.Client({ connectionString: db.url });
  await listener.connect();
  const events: any[] = [];
  listener.on("notification", (n) => events.push(JSON.parse(n.payload!)));
  try {
    // LISTEN before the enqueue commits: no event can be missed.
    const c = await db.pool.connect();
    let runId: string;
    try {
      await c.query("begin");
      runId = (
        await c.query(
          `select id from runproof.enqueue_run($1, $2, 'announce', 'ava-test', '{"version":1,"steps":[{"skill":"noop"},{"skill":"noop"}]}')`,
          [f.tenantId, f.agentId],
        )
      ).rows[0].id;
      await listener.query(`listen "runproof:run:${runId}"`);
      await c.query("commit");
    } finally {
      c.release();
    }
    await waitForRun(db.pool, runId);
    await new Promise((r) => setTimeout(r, 200));
    // insert, attempt start, two progress updates, the end.
    t.deepEqual(
      events.filter((e) => e.event === "run").map((e) => e.status),
      ["planned", "running", "running", "running", "succeeded"],
    );
    t.is(events.filter((e) => e.event === "run").at(-1).status, "succeeded");
    t.deepEqual(
      events.filter((e) => e.event === "step").map((e) => [e.step_index, e.skill, e.status]),
      [
        [0, "noop", "succeeded"],
        [1, "noop", "succeeded"],
      ],
    );
  } finally {
    await listener.end();
  }
});
