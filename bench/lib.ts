// Shared pieces of `npm run bench`: the scratch database, fixtures that drive the ledger the
// way the worker does, and the statistics every figure is reported with.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { databaseUrlWithName, REPO_ROOT } from "../src/lib/database.ts";
import { startEmbeddedPostgres } from "../src/lib/embedded.ts";
import { migrateDatabase } from "../src/lib/migrate.ts";
import { builtinSkills, registerSkillsInDatabase, SkillRegistry } from "../src/skills/registry.ts";

export const BENCH_DB = "runproof_bench";

// ---------------------------------------------------------------------------------------------
// Logging and timing
// ---------------------------------------------------------------------------------------------

const t0 = performance.now();
export function log(msg: string): void {
  const s = ((performance.now() - t0) / 1000).toFixed(1).padStart(6);
  process.stderr.write(`[bench ${s}s] ${msg}\n`);
}

export const now = () => performance.now();
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs fn and returns its wall time in milliseconds (and its result). */
export async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const start = now();
  const value = await fn();
  return { ms: now() - start, value };
}

// ---------------------------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------------------------

export function median(xs: number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Percentile by linear interpolation between closest ranks (p in 0..100). */
export function percentile(xs: number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const rank = (p / 100) * (s.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return s[lo] + (s[hi] - s[lo]) * (rank - lo);
}

/** A measured figure: the median of its trials, and the trials themselves. */
export interface Figure {
  value: number;
  unit: string;
  trials: number[];
}

export function figure(trials: number[], unit: string): Figure {
  return { value: median(trials), unit, trials: trials.map((x) => round(x, 3)) };
}

export function round(x: number, digits = 2): number {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** A row of the results table: a RunProof figure next to its baseline from the same run. */
export interface Row {
  section: string;
  id: string;
  measure: string;
  runproof: Figure;
  baseline: Figure | null;
  baselineLabel: string;
  /** runproof / baseline (medians). */
  ratio: number | null;
  /** "higher" when more is better (throughput), "lower" for latency. */
  better: "higher" | "lower";
  goal?: { text: string; met: boolean | null };
  note?: string;
  extra?: Record<string, unknown>;
  /** The server settings the figure was measured under (fsync, synchronous_commit, full_page_writes). */
  settings?: string;
}

export function row(r: Omit<Row, "ratio">): Row {
  const ratio = r.baseline?.value ? r.runproof.value / r.baseline.value : null;
  return { ...r, ratio: ratio === null ? null : round(ratio, 3) };
}

// ---------------------------------------------------------------------------------------------
// Machine and server facts
// ---------------------------------------------------------------------------------------------

export function loadAverage(): number[] {
  return os.loadavg().map((x) => round(x, 2));
}

export function gitRevision(): string | null {
  try {
    const rev = execFileSync("git", ["rev-parse", "--short", "HEAD"], {
      cwd: REPO_ROOT,
      encoding: "utf8",
    }).trim();
    const dirty =
      execFileSync("git", ["status", "--porcelain"], { cwd: REPO_ROOT, encoding: "utf8" }).trim() !== "";
    return dirty ? `${rev} (uncommitted changes)` : rev;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// The scratch database
// ---------------------------------------------------------------------------------------------

export interface BenchDatabase {
  /** Owner (superuser) URL of the scratch database. */
  url: string;
  /** Superuser URL of the server's maintenance database. */
  rootUrl: string;
  embedded: boolean;
  stop(): Promise<void>;
}

/** What a bench cluster runs under: durable (fsync, synchronous_commit, full_page_writes on) or not. */
export type Durability = "durable" | "fsync-off";

/**
 * A throwaway embedded Postgres, durable by default (fsync, synchronous_commit and
 * full_page_writes on, as a production server runs; "fsync-off" turns the three off like the test
 * clusters), or, with DATABASE_URL, a scratch database `runproof_bench` on that server (dropped and
 * recreated; dropped at the end), under whatever settings that server has.
 */
export async function openBenchDatabase(durability: Durability = "durable"): Promise<BenchDatabase> {
  const envUrl = process.env.DATABASE_URL;
  let rootUrl: string;
  let stopServer: () => Promise<void> = async () => {};
  let tmpDir: string | undefined;
  if (envUrl) {
    rootUrl = envUrl;
    log(`DATABASE_URL is set: using a scratch database ${BENCH_DB} on that server`);
  } else {
    tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), "runproof-bench-"));
    log(`starting a throwaway embedded Postgres (${durability}) in ${tmpDir}`);
    const server = await startEmbeddedPostgres({
      dataDir: path.join(tmpDir, "pg"),
      persistent: false,
      durable: durability === "durable",
    });
    rootUrl = server.rootUrl;
    stopServer = server.stop;
  }
  const admin = new pg.Client({ connectionString: rootUrl });
  await admin.connect();
  try {
    await admin.query(`drop database if exists ${BENCH_DB} with (force)`);
    await admin.query(`create database ${BENCH_DB} encoding 'UTF8' template template0`);
  } finally {
    await admin.end();
  }
  const url = databaseUrlWithName(rootUrl, BENCH_DB);
  log("migrating (graphile-worker schema, then migrations/committed)");
  await migrateDatabase(url, { withCurrent: true });

  let stopped: Promise<void> | undefined;
  return {
    url,
    rootUrl,
    embedded: !envUrl,
    stop: () =>
      (stopped ??= (async () => {
        if (envUrl) {
          const c = new pg.Client({ connectionString: rootUrl });
          await c.connect();
          try {
            await c.query(`drop database if exists ${BENCH_DB} with (force)`);
          } finally {
            await c.end();
          }
        }
        await stopServer();
        if (tmpDir) fs.rmSync(tmpDir, { recursive: true, force: true });
      })()),
  };
}

export function newPool(url: string, max = 10): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max });
  pool.on("error", () => {});
  return pool;
}

export async function serverFacts(pool: pg.Pool): Promise<Record<string, string>> {
  const names = [
    "server_version",
    "shared_buffers",
    "work_mem",
    "max_connections",
    "fsync",
    "synchronous_commit",
    "full_page_writes",
    "max_parallel_workers_per_gather",
    "max_worker_processes",
    "jit",
  ];
  const { rows } = await pool.query<{ name: string; setting: string }>(
    `select name, current_setting(name) as setting from unnest($1::text[]) name`,
    [names],
  );
  const facts: Record<string, string> = {};
  for (const r of rows) facts[r.name] = r.setting;
  const {
    rows: [v],
  } = await pool.query<{ version: string }>(`select version()`);
  facts.version = v.version;
  return facts;
}

// ---------------------------------------------------------------------------------------------
// Fixtures (the same SQL paths the worker and the tests use)
// ---------------------------------------------------------------------------------------------

type Queryable = pg.Pool | pg.PoolClient | pg.Client;

export interface Tenant {
  tenantId: string;
  agentId: string;
}

/** Registers the worker's built-in skills, exactly as a worker does before it takes a job. */
export async function registerBuiltinSkills(db: Queryable): Promise<void> {
  await registerSkillsInDatabase(db, new SkillRegistry(builtinSkills()));
}

export async function createTenant(db: Queryable, name: string, budgetCents = 1e9): Promise<Tenant> {
  const {
    rows: [t],
  } = await db.query(`select id from runproof_private.create_tenant($1, $2)`, [name, budgetCents]);
  const {
    rows: [a],
  } = await db.query(`select id from runproof.create_agent('bench-agent', '', null, $1)`, [t.id]);
  return { tenantId: t.id, agentId: a.id };
}

/** The smallest valid plan: one noop step (runs.plan is validated by a trigger on every insert). */
export const TINY_PLAN = { version: 1, steps: [{ skill: "noop" }] };

export function noopPlan(steps: number): object {
  return {
    version: 1,
    planner: "bench",
    steps: Array.from({ length: steps }, (_, i) => ({ skill: "noop", input: { i } })),
  };
}

export interface OpenTrace {
  tenantId: string;
  runId: string;
  traceId: string;
}

/** A planned run inserted directly (no job, so no worker picks it up) with its first attempt open. */
export async function openTrace(db: Queryable, t: Tenant, planSteps = 1): Promise<OpenTrace> {
  const {
    rows: [run],
  } = await db.query(
    `insert into runproof.runs (tenant_id, agent_id, goal, origin_system_id, plan, status)
     values ($1, $2, 'bench', 'runproof-bench', $3, 'planned') returning id`,
    [t.tenantId, t.agentId, planSteps === 1 ? TINY_PLAN : noopPlan(Math.min(planSteps, 1000))],
  );
  const {
    rows: [trace],
  } = await db.query(`select id from runproof_private.start_attempt($1, $2)`, [t.tenantId, run.id]);
  return { tenantId: t.tenantId, runId: run.id, traceId: trace.id };
}

/**
 * Ends the attempt. A run whose plan is done (its plan has as many steps as were recorded)
 * succeeds; any other (bench traces are longer than a plan may be) ends the way a run does at a
 * permanent failure: one failed step at the next plan step, the trace sealed failed, the run failed.
 */
export async function closeTrace(db: Queryable, o: OpenTrace): Promise<void> {
  const {
    rows: [r],
  } = await db.query(
    `select next_plan_step, jsonb_array_length(plan -> 'steps') as plan_steps,
            (select coalesce(max(step_index) + 1, 0) from runproof.trace_steps s where s.tenant_id = $1 and s.trace_id = $3) as steps
       from runproof.runs where tenant_id = $1 and id = $2`,
    [o.tenantId, o.runId, o.traceId],
  );
  if (r.next_plan_step < r.steps) {
    // Steps appended without their progress (the bare ledger statements): the run's progress
    // catches up in one bulk move, which the run guard accepts for succeeded steps in order.
    await db.query(`update runproof.runs set next_plan_step = $3 where tenant_id = $1 and id = $2`, [
      o.tenantId,
      o.runId,
      r.steps,
    ]);
    r.next_plan_step = r.steps;
  }
  if (r.next_plan_step === r.plan_steps) {
    await db.query(`select 1 from runproof_private.seal_trace($1, $2, 'completed')`, [o.tenantId, o.traceId]);
    await db.query(`update runproof.runs set status = 'succeeded' where tenant_id = $1 and id = $2`, [
      o.tenantId,
      o.runId,
    ]);
    return;
  }
  await db.query(
    `insert into runproof.policy_decisions (tenant_id, run_id, trace_id, step_index, plan_step, skill, decision, rule, reason)
     values ($1, $2, $3, $4, $5, 'noop', 'allow', 'daily_budget', 'bench')
     on conflict do nothing`,
    [o.tenantId, o.runId, o.traceId, r.steps, r.next_plan_step],
  );
  await db.query(
    `select 1 from runproof_private.record_step(p_tenant_id => $1, p_run_id => $2, p_trace_id => $3, p_step_index => $4,
       p_plan_step => $5, p_skill => 'noop', p_status => 'failed', p_input => '{}', p_output => null, p_error => 'bench: end',
       p_started_at => now(), p_finished_at => now(), p_duration_ms => 0, p_cost_cents => 0)`,
    [o.tenantId, o.runId, o.traceId, r.steps, r.next_plan_step],
  );
  await db.query(`select 1 from runproof_private.seal_trace($1, $2, 'failed')`, [o.tenantId, o.traceId]);
  await db.query(
    `update runproof.runs set status = 'failed', error = 'bench' where tenant_id = $1 and id = $2`,
    [o.tenantId, o.runId],
  );
}

/** Columns of a step row as the worker records a noop step (input {i}, output {echo: {i}}, by commitment). */
export const STEP_COLUMNS =
  "tenant_id, run_id, trace_id, step_index, plan_step, skill, status, policy_decision, input_commitment, output_commitment, started_at, finished_at, duration_ms, cost_cents, source, level";

/** A bench payload's salt: fixed by trace, step and kind, so the payload rows can be made after the steps. */
export const BENCH_SALT = (kind: string, t = "trace_id", i = "step_index") =>
  `sha256(convert_to(${t}::text || ':' || ${i} || ':${kind}', 'UTF8'))`;
export const BENCH_INPUT = "jsonb_build_object('i', step_index)";
export const BENCH_OUTPUT = "jsonb_build_object('echo', jsonb_build_object('i', step_index))";
export const BENCH_COMMITMENTS = `runproof_private.payload_commitment('input', ${BENCH_SALT("input")}, (${BENCH_INPUT})::text),
         runproof_private.payload_commitment('output', ${BENCH_SALT("output")}, (${BENCH_OUTPUT})::text)`;

/**
 * Appends steps [from, to) to an open trace, set-based, through the chain trigger, in one
 * statement: each policy decision row (the schema requires one, taken just before its step) is
 * inserted by the CTE as the outer INSERT pulls it, so decision i and step i alternate. No ORDER BY
 * on the outer query: a sort would pull every decision before the first step. Steps execute plan
 * steps from..to-1 (step index = plan step: one attempt).
 */
export const SET_BASED_APPEND = `
  with d as (
    insert into runproof.policy_decisions (tenant_id, run_id, trace_id, step_index, plan_step, skill, decision, rule, reason)
    select $1, $2, $3, g, g, 'noop', 'allow', 'daily_budget', 'bench' from generate_series($4::int, $5::int - 1) g
    returning tenant_id, run_id, trace_id, step_index, plan_step, skill, decision)
  insert into runproof.trace_steps (${STEP_COLUMNS})
  select tenant_id, run_id, trace_id, step_index, plan_step, skill, 'succeeded', decision,
         ${BENCH_COMMITMENTS},
         now(), now(), 0.125, 0, 'worker', 'INFO'
    from d`;

/** The payload rows of steps [from, to) appended by SET_BASED_APPEND, and the run's progress with them. */
export const SET_BASED_PAYLOADS = `
  insert into runproof.step_payloads (tenant_id, run_id, trace_id, step_index, input, input_salt, output, output_salt)
  select tenant_id, run_id, trace_id, step_index, ${BENCH_INPUT}, ${BENCH_SALT("input")}, ${BENCH_OUTPUT}, ${BENCH_SALT("output")}
    from runproof.trace_steps where tenant_id = $1 and trace_id = $2 and step_index >= $3 and step_index < $4`;
export const SET_BASED_PROGRESS = `
  update runproof.runs set next_plan_step = $4 where tenant_id = $1 and id = $2 and next_plan_step = $3`;

export async function appendStepsSetBased(
  db: Queryable,
  o: OpenTrace,
  from: number,
  to: number,
): Promise<void> {
  await db.query(SET_BASED_APPEND, [o.tenantId, o.runId, o.traceId, from, to]);
  await db.query(SET_BASED_PAYLOADS, [o.tenantId, o.traceId, from, to]);
  await db.query(SET_BASED_PROGRESS, [o.tenantId, o.runId, from, to]);
}

/** A sealed run of `steps` steps (closeTrace), generated set-based in chunks of `chunk` steps per transaction. */
export async function generateTrace(
  pool: pg.Pool,
  t: Tenant,
  steps: number,
  chunk = 100_000,
  progress?: (done: number) => void,
): Promise<OpenTrace> {
  const o = await openTrace(pool, t);
  // steps - 1 succeeded steps, then closeTrace's failed one: the trace is longer than any plan.
  for (let from = 0; from < steps - 1; from += chunk) {
    const to = Math.min(steps - 1, from + chunk);
    const c = await pool.connect();
    try {
      await c.query("begin");
      await appendStepsSetBased(c, o, from, to);
      await c.query("commit");
    } catch (e) {
      await c.query("rollback").catch(() => {});
      throw e;
    } finally {
      c.release();
    }
    progress?.(to);
  }
  await closeTrace(pool, o);
  return o;
}

// One transaction helper for the project: the worker's.
export { inTransaction } from "../src/lib/worker-context.ts";

export function fmtInt(x: number): string {
  return Math.round(x).toLocaleString("en-US");
}
