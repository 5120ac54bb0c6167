// 3. Execute: steps executed and recorded per second by the RunProof worker with the no-op skill,
// against bare graphile-worker no-op jobs per second on the same database in the same run; and
// the latency from enqueue_run to a completed 1-step run, against add_job to a completed job.
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { Logger as WorkerLogger, run, type Runner } from "graphile-worker";
import pg from "pg";
import { databaseUrlWithName, REPO_ROOT } from "../src/lib/database.ts";
import { loadConfig } from "../src/lib/config.ts";
import { createLogger } from "../src/lib/log.ts";
import { startWorker, type WorkerHandle } from "../src/worker.ts";
import { figure, log, noopPlan, now, percentile, round, row, sleep, type Row, type Tenant } from "./lib.ts";
import { functionProfile } from "./profile.ts";

export interface ExecuteOptions {
  trials: number;
  concurrency: number;
  /** Throughput: runs of `stepsPerRun` noop steps per trial, 1-step runs per trial, bare jobs per trial. */
  runs: number;
  stepsPerRun: number;
  oneStepRuns: number;
  /** Long plans: runs of `longSteps` steps (the run row, plan included, is updated once per step). */
  longRuns: number;
  longSteps: number;
  bareJobs: number;
  latencySamples: number;
}

const silentGraphileLogger = new WorkerLogger(() => () => {});

/** Resolves when `count` jobs of `task` have completed (result written back) on this runner. */
function completions(
  runner: Runner,
  task: string,
): { waitFor(count: number, timeoutMs?: number): Promise<void>; stop(): void; errors: unknown[] } {
  let done = 0;
  const errors: unknown[] = [];
  let waiter: { count: number; resolve(): void } | null = null;
  const onComplete = ({ job, error }: { job: { task_identifier: string }; error: unknown }) => {
    if (job.task_identifier !== task) return;
    done++;
    if (error) errors.push(error);
    if (waiter && done >= waiter.count) {
      const w = waiter;
      waiter = null;
      w.resolve();
    }
  };
  runner.events.on("job:complete", onComplete);
  return {
    errors,
    waitFor(count: number, timeoutMs = 600_000) {
      return new Promise<void>((resolve, reject) => {
        if (done >= count) return resolve();
        const timer = setTimeout(
          () => reject(new Error(`only ${done} of ${count} ${task} jobs completed in ${timeoutMs} ms`)),
          timeoutMs,
        );
        waiter = {
          count,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        };
      });
    },
    stop() {
      runner.events.off("job:complete", onComplete);
    },
  };
}

async function startBare(url: string, concurrency: number): Promise<{ runner: Runner; pool: pg.Pool }> {
  const pool = new pg.Pool({ connectionString: url, max: concurrency + 4 });
  pool.on("error", () => {});
  const runner = await run({
    pgPool: pool,
    concurrency,
    noHandleSignals: true,
    pollInterval: 1000,
    logger: silentGraphileLogger,
    taskList: { bench_noop: async () => {} },
  });
  return { runner, pool };
}

async function stopBare(b: { runner: Runner; pool: pg.Pool }): Promise<void> {
  await b.runner.stop();
  await b.pool.end();
}

export async function startRunProofWorker(url: string, concurrency: number): Promise<WorkerHandle> {
  const config = loadConfig({ RUNPROOF_LOG_LEVEL: "silent" });
  return startWorker({
    connectionString: url,
    config,
    concurrency,
    logger: createLogger(config, "bench-worker"),
  });
}

/** Bare graphile-worker: `n` no-op jobs added in bulk (one add_jobs call); jobs/s from commit to the last completion. */
async function bareThroughput(pool: pg.Pool, b: { runner: Runner }, n: number): Promise<number> {
  const c = completions(b.runner, "bench_noop");
  try {
    await pool.query(
      `select count(*) from graphile_worker.add_jobs(array(
         select row('bench_noop', '{}'::json, null, null, null, null, null, null)::graphile_worker.job_spec from generate_series(1, $1)))`,
      [n],
    );
    const start = now();
    await c.waitFor(n);
    const ms = now() - start;
    if (c.errors.length) throw new Error(`bare jobs failed: ${String(c.errors[0])}`);
    return n / (ms / 1000);
  } finally {
    c.stop();
  }
}

/** RunProof: `n` runs of `steps` noop steps enqueued in one transaction; returns [steps/s, runs/s]. */
export async function runProofThroughput(
  pool: pg.Pool,
  w: WorkerHandle,
  t: Tenant,
  n: number,
  steps: number,
  label: string,
): Promise<[number, number]> {
  const c = completions(w.runner, "execute_run");
  try {
    await pool.query(
      `select count(*) from (select runproof.enqueue_run($1, $2, $3, 'runproof-bench', $4::jsonb) from generate_series(1, $5)) x`,
      [t.tenantId, t.agentId, label, JSON.stringify(noopPlan(steps)), n],
    );
    const start = now();
    await c.waitFor(n);
    const ms = now() - start;
    const {
      rows: [r],
    } = await pool.query(
      `select count(*) filter (where status = 'succeeded')::int as ok, count(*)::int as total,
              sum(next_plan_step)::int as steps
         from runproof.runs where tenant_id = $1 and goal = $2`,
      [t.tenantId, label],
    );
    if (r.ok !== n || r.steps !== n * steps)
      throw new Error(`execute: ${JSON.stringify(r)} of ${n} runs x ${steps} steps succeeded`);
    return [(n * steps) / (ms / 1000), n / (ms / 1000)];
  } finally {
    c.stop();
  }
}

/** enqueue_run -> the run's `succeeded` notification on runproof:tenant:<id>, one run at a time. */
export async function runProofLatency(
  url: string,
  pool: pg.Pool,
  t: Tenant,
  samples: number,
  warmup: number,
): Promise<number[]> {
  const listener = new pg.Client({ connectionString: url });
  await listener.connect();
  const finished = new Map<string, number>();
  let wake: (() => void) | null = null;
  listener.on("notification", (n) => {
    const at = now();
    try {
      const p = JSON.parse(n.payload ?? "{}");
      if (p.event === "run" && p.status === "succeeded") {
        finished.set(p.run_id, at);
        wake?.();
      }
    } catch {
      /* not ours */
    }
  });
  await listener.query(`listen ${listener.escapeIdentifier(`runproof:tenant:${t.tenantId}`)}`);
  const plan = JSON.stringify(noopPlan(1));
  const out: number[] = [];
  try {
    for (let i = 0; i < samples + warmup; i++) {
      const start = now();
      const {
        rows: [r],
      } = await pool.query(
        `select id from runproof.enqueue_run($1, $2, 'bench latency', 'runproof-bench', $3::jsonb)`,
        [t.tenantId, t.agentId, plan],
      );
      const deadline = start + 30_000;
      while (!finished.has(r.id)) {
        if (now() > deadline) throw new Error(`run ${r.id} did not finish in 30 s`);
        await new Promise<void>((res) => {
          wake = res;
          setTimeout(res, 50);
        });
      }
      if (i >= warmup) out.push(finished.get(r.id)! - start);
    }
  } finally {
    await listener.end();
  }
  return out;
}

/** add_job -> job:complete (its result written back), one job at a time. */
async function bareLatency(
  pool: pg.Pool,
  runner: Runner,
  samples: number,
  warmup: number,
): Promise<number[]> {
  const finished = new Map<string, number>();
  let wake: (() => void) | null = null;
  const onComplete = ({ job }: { job: { id: string; task_identifier: string } }) => {
    if (job.task_identifier === "bench_noop") {
      finished.set(String(job.id), now());
      wake?.();
    }
  };
  runner.events.on("job:complete", onComplete);
  const out: number[] = [];
  try {
    for (let i = 0; i < samples + warmup; i++) {
      const start = now();
      const {
        rows: [r],
      } = await pool.query(`select id from graphile_worker.add_job('bench_noop', '{}'::json)`);
      const id = String(r.id);
      const deadline = start + 30_000;
      while (!finished.has(id)) {
        if (now() > deadline) throw new Error(`job ${id} did not finish in 30 s`);
        await new Promise<void>((res) => {
          wake = res;
          setTimeout(res, 50);
        });
      }
      if (i >= warmup) out.push(finished.get(id)! - start);
    }
  } finally {
    runner.events.off("job:complete", onComplete);
  }
  return out;
}

const DBOS_DB = "runproof_bench_dbos";

interface DbosTrial {
  steps_per_s: number;
  workflows_per_s: number;
  latency_ms: number[];
}

/** One trial of the DBOS peer (bench/dbos-peer.ts) in a child process, on the same server. */
async function dbosTrial(
  url: string,
  workflows: number,
  steps: number,
  concurrency: number,
  samples: number,
): Promise<DbosTrial> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [
      "--import=tsx",
      path.join(REPO_ROOT, "bench/dbos-peer.ts"),
      databaseUrlWithName(url, DBOS_DB),
      String(workflows),
      String(steps),
      String(concurrency),
      String(samples),
    ],
    { cwd: REPO_ROOT, maxBuffer: 16 * 2 ** 20, timeout: 600_000 },
  );
  return JSON.parse(stdout.trim().split("\n").at(-1)!) as DbosTrial;
}

/** Per-function time per executed step (pg_stat_user_functions), in a separate, untimed pass. */
export async function profileExecute(url: string, pool: pg.Pool, t: Tenant, opts: ExecuteOptions) {
  const runs = Math.max(20, Math.floor(opts.runs / 2));
  return functionProfile(pool, runs * opts.stepsPerRun, async () => {
    const w = await startRunProofWorker(url, opts.concurrency);
    try {
      await runProofThroughput(pool, w, t, runs, opts.stepsPerRun, "bench profile");
    } finally {
      await w.stop();
    }
  });
}

export async function benchExecute(
  url: string,
  pool: pg.Pool,
  t: Tenant,
  opts: ExecuteOptions,
): Promise<Row[]> {
  const bare: number[] = [];
  const steps: number[] = [];
  const oneStep: number[] = [];
  const long: number[] = [];
  const dbos: number[] = [];
  let dbosLat: number[] = [];
  await pool.query(`drop database if exists ${DBOS_DB} with (force)`);
  await pool.query(`create database ${DBOS_DB}`);
  log(
    `execute: concurrency ${opts.concurrency}; per trial ${opts.bareJobs} bare jobs, ${opts.runs} runs x ${opts.stepsPerRun} noop steps, ${opts.oneStepRuns} 1-step runs, ${opts.longRuns} runs x ${opts.longSteps} steps; ${opts.trials} trials`,
  );
  for (let k = 0; k < opts.trials; k++) {
    // Only one runner is alive at a time: an idle one would still answer every jobs:insert.
    const b = await startBare(url, opts.concurrency);
    try {
      if (k === 0) await bareThroughput(pool, b, Math.min(200, opts.bareJobs));
      bare.push(await bareThroughput(pool, b, opts.bareJobs));
    } finally {
      await stopBare(b);
    }
    const w = await startRunProofWorker(url, opts.concurrency);
    try {
      if (k === 0) await runProofThroughput(pool, w, t, 20, opts.stepsPerRun, "bench warmup");
      const [sps] = await runProofThroughput(pool, w, t, opts.runs, opts.stepsPerRun, `bench exec ${k}`);
      steps.push(sps);
      const [, rps] = await runProofThroughput(pool, w, t, opts.oneStepRuns, 1, `bench exec1 ${k}`);
      oneStep.push(rps);
      const [lps] = await runProofThroughput(
        pool,
        w,
        t,
        opts.longRuns,
        opts.longSteps,
        `bench execlong ${k}`,
      );
      long.push(lps);
    } finally {
      await w.stop();
    }
    const d = await dbosTrial(
      url,
      opts.runs,
      opts.stepsPerRun,
      opts.concurrency,
      k === 0 ? opts.latencySamples : 0,
    );
    dbos.push(d.steps_per_s);
    if (k === 0) dbosLat = d.latency_ms;
    log(
      `execute:   trial ${k + 1}: bare ${Math.round(bare[k])} jobs/s, RunProof ${Math.round(steps[k])} steps/s, DBOS ${Math.round(dbos[k])} steps/s, ${Math.round(oneStep[k])} 1-step runs/s, ${Math.round(long[k])} steps/s in ${opts.longSteps}-step runs`,
    );
  }

  log(`execute: latency, ${opts.latencySamples} sequential samples each`);
  const b = await startBare(url, opts.concurrency);
  let bareLat: number[];
  try {
    bareLat = await bareLatency(pool, b.runner, opts.latencySamples, 5);
  } finally {
    await stopBare(b);
  }
  const w = await startRunProofWorker(url, opts.concurrency);
  let rpLat: number[];
  try {
    await sleep(200);
    rpLat = await runProofLatency(url, pool, t, opts.latencySamples, 5);
  } finally {
    await w.stop();
  }

  const bareFig = figure(bare, "jobs/s");
  const r: Row[] = [];
  r.push(
    row({
      section: "execute",
      id: "execute.steps",
      measure: `Execute, noop steps/s (runs of ${opts.stepsPerRun} steps, worker concurrency ${opts.concurrency})`,
      runproof: figure(steps, "steps/s"),
      baseline: bareFig,
      baselineLabel: "bare graphile-worker no-op jobs/s",
      better: "higher",
      goal: { text: "≥ 0.5× bare", met: figure(steps, "").value / bareFig.value >= 0.5 },
      note: `${opts.runs} runs enqueued with enqueue_run in one transaction; timed from commit to the last job's completion`,
    }),
  );
  const dbosFig = figure(dbos, "steps/s");
  r.push(
    row({
      section: "execute",
      id: "execute.steps_vs_dbos",
      measure: `Execute, noop steps/s (runs of ${opts.stepsPerRun} steps, concurrency ${opts.concurrency}) against DBOS`,
      runproof: figure(steps, "steps/s"),
      baseline: dbosFig,
      baselineLabel: `DBOS Transact workflows of ${opts.stepsPerRun} DBOS.runStep no-op steps, ${opts.concurrency} at a time`,
      better: "higher",
      goal: { text: "≥ 1.0× DBOS", met: figure(steps, "").value / dbosFig.value >= 1 },
      note: "DBOS (@dbos-inc/dbos-sdk) in a child process on the same server (its system database beside the ledger's), the same trials interleaved; DBOS runs each workflow in the process that starts it (no queue hop), and checkpoints each step's output",
    }),
  );
  r.push(
    row({
      section: "execute",
      id: "execute.long_plans",
      measure: `Execute, noop steps/s (runs of ${opts.longSteps} steps, worker concurrency ${opts.concurrency})`,
      runproof: figure(long, "steps/s"),
      baseline: bareFig,
      baselineLabel: "bare graphile-worker no-op jobs/s",
      better: "higher",
      goal: { text: "≥ 0.5× bare", met: figure(long, "").value / bareFig.value >= 0.5 },
      note: `${opts.longRuns} runs per trial; the plan of each is ~${Math.round(JSON.stringify(noopPlan(opts.longSteps)).length / 1024)} kB of JSON`,
    }),
  );
  r.push(
    row({
      section: "execute",
      id: "execute.runs",
      measure: `Execute, 1-step runs/s (worker concurrency ${opts.concurrency})`,
      runproof: figure(oneStep, "runs/s"),
      baseline: bareFig,
      baselineLabel: "bare graphile-worker no-op jobs/s",
      better: "higher",
      note: "per run: the job, the run loaded (with its cancel check), one statement opening the attempt and deciding step 0, the skill, one statement recording step 0 and ending the attempt, the job's completion",
    }),
  );
  const lat = (xs: number[], p: number) => round(percentile(xs, p), 2);
  r.push(
    row({
      section: "execute",
      id: "execute.latency.p50",
      measure: "Latency enqueue_run → 1-step run succeeded, p50",
      runproof: { value: lat(rpLat, 50), unit: "ms", trials: [] },
      baseline: { value: lat(bareLat, 50), unit: "ms", trials: [] },
      baselineLabel: "add_job → no-op job completed, p50",
      better: "lower",
      goal: { text: "≤ 3× bare", met: percentile(rpLat, 50) / percentile(bareLat, 50) <= 3 },
      note: `${opts.latencySamples} sequential samples each (after 5 warm-up); RunProof's end is the run's NOTIFY on runproof:tenant:<id>`,
      extra: {
        samples: rpLat.length,
        runproof_ms: rpLat.map((x) => round(x, 2)),
        bare_ms: bareLat.map((x) => round(x, 2)),
      },
    }),
  );
  r.push(
    row({
      section: "execute",
      id: "execute.latency_vs_dbos.p50",
      measure: "Latency enqueue_run → 1-step run succeeded, p50, against DBOS",
      runproof: { value: lat(rpLat, 50), unit: "ms", trials: [] },
      baseline: { value: lat(dbosLat, 50), unit: "ms", trials: [] },
      baselineLabel: "DBOS: a 1-step workflow started → its result, p50",
      better: "lower",
      extra: {
        samples: dbosLat.length,
        dbos_ms: dbosLat.map((x) => round(x, 2)),
        dbos_p99: lat(dbosLat, 99),
      },
    }),
  );
  r.push(
    row({
      section: "execute",
      id: "execute.latency.p99",
      measure: "Latency enqueue_run → 1-step run succeeded, p99",
      runproof: { value: lat(rpLat, 99), unit: "ms", trials: [] },
      baseline: { value: lat(bareLat, 99), unit: "ms", trials: [] },
      baselineLabel: "add_job → no-op job completed, p99",
      better: "lower",
      extra: { samples: rpLat.length },
    }),
  );
  await pool.query(`drop database if exists ${DBOS_DB} with (force)`);
  return r;
}
