// Bad input can also come back from the outside world: a skill's output that Postgres cannot
// store (a NUL character inside a JSON string, JSON nested thousands of levels deep). The step
// must fail with a clear error and the run must end, not retry the attempt forever.
import test from "ava";
import { builtinSkills, registerSkillsInDatabase, SkillRegistry } from "../src/skills/registry.ts";
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
let worker: Awaited<ReturnType<typeof startTestWorker>>;
test.before(async () => {
  db = await createTestDatabase("bad-output");
  await registerSkillsInDatabase(db.pool, new SkillRegistry(builtinSkills()));
  server = await startHttpServer({
    "/nul": (_req, _body, res) =>
      res.writeHead(200, { "content-type": "application/json" }).end(`{"name": "a\\u0000b"}`),
    "/deep": (_req, _body, res) =>
      res
        .writeHead(200, { "content-type": "application/json" })
        .end(`{"x": ${"[".repeat(20_000)}${"]".repeat(20_000)}}`),
    "/ok": (_req, _body, res) => json(res, 200, { ok: true }),
  });
  worker = await startTestWorker(db.url);
});
test.after.always(async () => {
  await worker?.stop();
  await server?.close();
  await db?.drop();
});

for (const [path, code, message] of [
  ["/nul", "22P05", /unsupported Unicode escape sequence/],
  ["/deep", "OUTPUT_NOT_STORABLE", /nest|stack/i],
] as const) {
  test(`a response Postgres cannot store (${path}) fails the step with a clear error, once`, async (t) => {
    const f = await tenantWithAgent(db.pool);
    const runId = await enqueue(
      db.pool,
      f,
      `fetch ${path}`,
      {
        version: 1,
        steps: [
          { skill: "http_call", input: { url: `${server.url}${path}` } },
          { skill: "http_call", input: { url: `${server.url}/ok` } },
        ],
      },
      { maxAttempts: 3 },
    );
    const run = await waitForRun(db.pool, runId, undefined, 20_000);
    t.is(run.status, "failed", run.error);
    t.regex(
      run.error,
      new RegExp(`OUTPUT_NOT_STORABLE: .*${code === "22P05" ? "unsupported Unicode escape sequence" : ""}`),
    );
    const { rows: traces } = await db.pool.query(`select status from runproof.traces where run_id = $1`, [
      runId,
    ]);
    t.deepEqual(
      traces.map((x) => x.status),
      ["failed"],
      "one attempt: the output will not fit on a second try either",
    );
    const { rows: steps } = await db.pool.query(
      `select s.plan_step, s.status, p.error, p.output from runproof.trace_steps s join runproof.step_payloads p using (tenant_id, trace_id, step_index)
        where s.run_id = $1`,
      [runId],
    );
    t.is(steps.length, 1);
    t.like(steps[0], { plan_step: 0, status: "failed", output: null });
    t.regex(steps[0].error, message);
    const { rows: inc } = await db.pool.query(`select kind from runproof.incidents where run_id = $1`, [
      runId,
    ]);
    t.deepEqual(
      inc.map((i) => i.kind),
      ["run_failed"],
    );
    const {
      rows: [p],
    } = await db.pool.query(`select * from runproof.run_proof($1, $2)`, [f.tenantId, runId]);
    t.is(p.verification_status, "VERIFIED");
  });
}
