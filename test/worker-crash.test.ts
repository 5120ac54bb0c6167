// Real worker processes: one SIGKILLed mid-run (its run resumes elsewhere, nothing twice), and
// two sharing the work of one database.
import test from "ava";
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { REPO_ROOT } from "../src/lib/database.ts";
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
const children: ChildProcess[] = [];

test.before(async () => {
  db = await createTestDatabase("worker-crash");
  // Plans may only name registered skills: register them as a deployed worker would have.
  await registerSkillsInDatabase(db.pool, new SkillRegistry(builtinSkills()));
  server = await startHttpServer({
    "/effect": (_req, _body, res) => json(res, 200, { ok: true }),
    "/slow": async (_req, _body, res) => {
      await new Promise((r) => setTimeout(r, 2500));
      json(res, 200, { slow: true });
    },
  });
});
test.after.always(async () => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  await server?.close();
  await db?.drop();
});

/** `runproof worker` as a real child process, with the default heartbeat and staleness settings. */
function spawnWorker(env: Record<string, string> = {}): ChildProcess {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", path.join(REPO_ROOT, "src/bin/runproof.ts"), "worker", "--concurrency", "2"],
    {
      cwd: REPO_ROOT,
      env: { ...process.env, DATABASE_URL: db.url, RUNPROOF_LOG_LEVEL: "warn", ...env },
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  child.stderr!.on("data", () => {});
  children.push(child);
  return child;
}

async function until(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test.serial(
  "a worker SIGKILLed mid-run: the run resumes after its last succeeded step within 30 s, nothing twice",
  async (t) => {
    const f = await tenantWithAgent(db.pool);
    const effect = (i: number) => ({
      skill: "http_call",
      input: { method: "POST", url: `${server.url}/effect`, json: { step: i } },
    });
    const runId = await enqueue(db.pool, f, "five side effects, one slow", {
      version: 1,
      steps: [
        effect(0),
        effect(1),
        { skill: "http_call", input: { url: `${server.url}/slow` } },
        effect(3),
        effect(4),
      ],
    });
    const a = spawnWorker();
    await until(
      () => server.requests.some((r) => r.url === "/slow"),
      30_000,
      "worker A to reach the slow step",
    );
    a.kill("SIGKILL");
    const killedAt = Date.now();
    await new Promise((r) => a.once("exit", r));

    // A second worker with default settings notices the dead one by its stale heartbeat.
    const b = await startTestWorker(db.url, {
      env: { RUNPROOF_HEARTBEAT_MS: "2000", RUNPROOF_STALE_WORKER_MS: "10000" },
    });
    try {
      const run = await waitForRun(db.pool, runId, ["succeeded", "failed", "halted", "cancelled"], 40_000);
      const recoveredIn = Date.now() - killedAt;
      t.is(run.status, "succeeded", String(run.error));
      t.true(recoveredIn < 30_000, `recovered in ${recoveredIn} ms`);
      t.log(`recovered and finished ${recoveredIn} ms after SIGKILL`);

      const { rows: traces } = await db.pool.query(
        `select attempt, status, metadata from runproof.traces where run_id = $1 order by attempt`,
        [runId],
      );
      t.deepEqual(
        traces.map((x) => [x.attempt, x.status]),
        [
          [1, "aborted"],
          [2, "completed"],
        ],
      );
      t.regex(traces[0].metadata.aborted_because, /worker .* stopped/);
      t.is(traces[1].metadata.process_id, b.processId);

      const { rows: steps } = await db.pool.query(
        `select t.attempt, s.plan_step, s.status from runproof.trace_steps s join runproof.traces t on t.id = s.trace_id
        where s.run_id = $1 order by t.attempt, s.step_index`,
        [runId],
      );
      t.deepEqual(
        steps.map((s) => [s.attempt, s.plan_step, s.status]),
        [
          [1, 0, "succeeded"],
          [1, 1, "succeeded"],
          [2, 2, "succeeded"],
          [2, 3, "succeeded"],
          [2, 4, "succeeded"],
        ],
      );
      // No step recorded twice, and the server's own log: no succeeded step executed again.
      const effects = server.requests.filter((r) => r.url === "/effect").map((r) => JSON.parse(r.body).step);
      t.deepEqual(effects, [0, 1, 3, 4]);
      const slow = server.requests.filter((r) => r.url === "/slow");
      t.is(slow.length, 2, "the step in flight at the crash ran again");
      t.deepEqual(
        slow.map((r) => r.headers["idempotency-key"]),
        [`${runId}:2`, `${runId}:2`],
        "with the same idempotency key",
      );

      const { rows: inc } = await db.pool.query(`select kind from runproof.incidents where run_id = $1`, [
        runId,
      ]);
      t.deepEqual(
        inc.map((i) => i.kind),
        ["worker_crashed"],
      );
      const {
        rows: [p],
      } = await db.pool.query(`select * from runproof.run_proof($1, $2)`, [f.tenantId, runId]);
      t.like(p, { verification_status: "VERIFIED", trace_count: 2, step_count: 5 });
      const { rows: locked } = await db.pool.query(
        `select count(*)::int n from graphile_worker.jobs where locked_by is not null`,
      );
      t.is(locked[0].n, 0);
    } finally {
      await b.stop();
    }
  },
);

test.serial("two worker processes share the work of one database without conflicts", async (t) => {
  const f = await tenantWithAgent(db.pool);
  const ids: string[] = [];
  for (let i = 0; i < 24; i++) {
    ids.push(
      await enqueue(db.pool, f, `run ${i}`, {
        version: 1,
        steps: [{ skill: "noop", input: { i } }, { skill: "wait", input: { ms: 30 } }, { skill: "noop" }],
      }),
    );
  }
  const w1 = spawnWorker({ RUNPROOF_HEARTBEAT_MS: "300", RUNPROOF_STALE_WORKER_MS: "3000" });
  const w2 = spawnWorker({ RUNPROOF_HEARTBEAT_MS: "300", RUNPROOF_STALE_WORKER_MS: "3000" });
  try {
    for (const id of ids)
      t.is(
        (await waitForRun(db.pool, id, ["succeeded", "failed", "halted", "cancelled"], 60_000)).status,
        "succeeded",
      );
    const {
      rows: [c],
    } = await db.pool.query(
      `select count(*)::int as traces, count(*) filter (where status = 'completed')::int as completed,
              count(distinct metadata->>'process_id')::int as processes
         from runproof.traces where run_id = any ($1)`,
      [ids],
    );
    t.is(c.traces, 24, "one attempt per run: no run executed twice");
    t.is(c.completed, 24);
    t.is(c.processes, 2, "both processes took work");
    const {
      rows: [s],
    } = await db.pool.query(
      `select count(*)::int n, count(distinct (run_id, plan_step))::int d from runproof.trace_steps where run_id = any ($1)`,
      [ids],
    );
    t.is(s.n, 72);
    t.is(s.d, 72);
    const { rows: bad } = await db.pool.query(`select * from runproof.verify_all() where run_id = any ($1)`, [
      ids,
    ]);
    t.deepEqual(bad, []);
  } finally {
    w1.kill("SIGTERM");
    w2.kill("SIGTERM");
    await Promise.all(
      [w1, w2].map((w) => new Promise((r) => (w.exitCode !== null ? r(null) : w.once("exit", r)))),
    );
  }
});
