// 5. Scale: run-list latency with many runs in the table (keyset pagination, first page and a page
// deep into the list, as a tenant under row level security, as PostGraphile runs it), and
// runproof.verify_all over a ledger of many runs.
import { execFile } from "node:child_process";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { REPO_ROOT } from "../src/lib/database.ts";
import {
  figure,
  fmtInt,
  inTransaction,
  log,
  median,
  now,
  percentile,
  row,
  BENCH_COMMITMENTS,
  BENCH_INPUT,
  BENCH_OUTPUT,
  BENCH_SALT,
  noopPlan,
  STEP_COLUMNS,
  TINY_PLAN,
  type Figure,
  type Row,
  type Tenant,
} from "./lib.ts";

// ---------------------------------------------------------------------------------------------
// verify_all
// ---------------------------------------------------------------------------------------------

/**
 * `runs` finished runs of `steps` steps each (one trace each), generated set-based through every
 * trigger, `chunk` runs per transaction. Their plans are the one-step minimum: plans are not
 * part of the proof, and each plan step costs a registry look-up per run at insert.
 */
export async function buildManyRuns(
  pool: pg.Pool,
  t: Tenant,
  runs: number,
  steps: number,
  chunk = 1000,
): Promise<number> {
  const start = now();
  for (let done = 0; done < runs; done += chunk) {
    const n = Math.min(chunk, runs - done);
    await inTransaction(pool, async (c) => {
      const {
        rows: [r],
      } = await c.query(
        `with r as (
           insert into runproof.runs (tenant_id, agent_id, goal, origin_system_id, plan, status)
           select $1, $2, 'bench verify_all', 'runproof-bench', $3::jsonb, 'planned' from generate_series(1, $4)
           returning id)
         select array_agg(id) as ids from r`,
        [t.tenantId, t.agentId, JSON.stringify(noopPlan(steps)), n],
      );
      const ids: string[] = r.ids;
      await c.query(`select 1 from unnest($2::uuid[]) id, runproof_private.start_attempt($1, id)`, [
        t.tenantId,
        ids,
      ]);
      // Decision i then step i, trace by trace (see SET_BASED_APPEND in lib.ts).
      await c.query(
        `with d as (
           insert into runproof.policy_decisions (tenant_id, run_id, trace_id, step_index, plan_step, skill, decision, rule, reason)
           select t.tenant_id, t.run_id, t.id, g, g, 'noop', 'allow', 'daily_budget', 'bench'
             from runproof.traces t cross join generate_series(0, $3::int - 1) g
            where t.tenant_id = $1 and t.run_id = any($2::uuid[])
            order by t.id, g
           returning tenant_id, run_id, trace_id, step_index, plan_step, skill, decision)
         insert into runproof.trace_steps (${STEP_COLUMNS})
         select tenant_id, run_id, trace_id, step_index, plan_step, skill, 'succeeded', decision, ${BENCH_COMMITMENTS},
                now(), now(), 0.125, 0, 'worker', 'INFO'
           from d`,
        [t.tenantId, ids, steps],
      );
      await c.query(
        `insert into runproof.step_payloads (tenant_id, run_id, trace_id, step_index, input, input_salt, output, output_salt)
         select s.tenant_id, s.run_id, s.trace_id, s.step_index, ${BENCH_INPUT}, ${BENCH_SALT("input")}, ${BENCH_OUTPUT}, ${BENCH_SALT("output")}
           from runproof.traces t join runproof.trace_steps s on s.tenant_id = t.tenant_id and s.trace_id = t.id
          where t.tenant_id = $1 and t.run_id = any($2::uuid[])`,
        [t.tenantId, ids],
      );
      // Progress with its steps (the run guard checks each run's last steps are plan steps 0 .. steps - 1).
      await c.query(
        `update runproof.runs set next_plan_step = $3 where tenant_id = $1 and id = any($2::uuid[])`,
        [t.tenantId, ids, steps],
      );
      await c.query(
        `select 1 from runproof.traces t, runproof_private.seal_trace(t.tenant_id, t.id, 'completed')
                      where t.tenant_id = $1 and t.run_id = any($2::uuid[])`,
        [t.tenantId, ids],
      );
      await c.query(
        `update runproof.runs set status = 'succeeded' where tenant_id = $1 and id = any($2::uuid[])`,
        [t.tenantId, ids],
      );
    });
    if ((done + n) % Math.max(chunk, Math.floor(runs / 5)) === 0 || done + n === runs) {
      log(`scale:   ${fmtInt(done + n)} / ${fmtInt(runs)} runs of ${steps} steps`);
    }
  }
  return (now() - start) / 1000;
}

export interface VerifyAllMeasure {
  seconds: Figure;
  /** `runproof verify-all --jobs 1` and `--jobs <cores>`: the scan's own time (its JSON `seconds`). */
  cli: { jobs: number; seconds: Figure }[];
  runs: number;
  traces: number;
  steps: number;
  bad: number;
  /** Rows of verify_all that are not about a broken chain (guard status). */
  other: number;
}

/** One `runproof verify-all --json` over the bench database; the seconds it reports. */
async function cliVerifyAll(url: string, jobs: number): Promise<number> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [
      "--import",
      "tsx",
      path.join(REPO_ROOT, "src/bin/runproof.ts"),
      "verify-all",
      "--json",
      "--no-progress",
      "--jobs",
      String(jobs),
    ],
    { cwd: REPO_ROOT, env: { ...process.env, DATABASE_URL: url }, maxBuffer: 64 << 20 },
  ).catch((e) => {
    // Exit 3 (problems) still prints the report; the caller checks it.
    if (e.code === 3 && e.stdout) return { stdout: e.stdout as string };
    throw e;
  });
  const j = JSON.parse(stdout);
  if (!j.ok)
    throw new Error(`verify-all --jobs ${jobs} found problems on a clean ledger: ${stdout.slice(0, 500)}`);
  return j.seconds;
}

export async function measureVerifyAll(
  pool: pg.Pool,
  url: string,
  trials: number,
): Promise<VerifyAllMeasure> {
  const {
    rows: [c],
  } = await pool.query(
    `select (select count(*) from runproof.runs)::int as runs, (select count(*) from runproof.traces)::int as traces,
            (select count(*) from runproof.trace_steps)::int as steps`,
  );
  const secs: number[] = [];
  const jobsList = [...new Set([1, os.availableParallelism()])];
  const cliSecs = new Map(jobsList.map((j) => [j, [] as number[]]));
  let bad = 0;
  let other = 0;
  for (let k = 0; k < trials; k++) {
    // Interleaved with the SQL function's trials; the order alternates.
    const order = k % 2 ? [...jobsList].reverse() : jobsList;
    for (const j of order) cliSecs.get(j)!.push(await cliVerifyAll(url, j));
    const s = now();
    // Chain problems fail the bench; other rows (guard status: e.g. functions replaced by --sql
    // outside a migration show up as schema drift) are only counted.
    const {
      rows: [r],
    } = await pool.query(
      `select count(*) filter (where v.verification_status is not null and v.verification_status not in ('VERIFIED', 'IN_PROGRESS'))::int as bad,
              count(*)::int as rows
         from runproof.verify_all() v`,
    );
    secs.push((now() - s) / 1000);
    bad = r.bad;
    other = r.rows - r.bad;
  }
  return {
    seconds: figure(secs, "s"),
    cli: jobsList.map((j) => ({ jobs: j, seconds: figure(cliSecs.get(j)!, "s") })),
    runs: c.runs,
    traces: c.traces,
    steps: c.steps,
    bad,
    other,
  };
}

// ---------------------------------------------------------------------------------------------
// Run list
// ---------------------------------------------------------------------------------------------

/** `count` planned runs with created_at 100 ms apart, `chunk` per transaction (every insert trigger runs). */
export async function generateRuns(
  pool: pg.Pool,
  t: Tenant,
  count: number,
  chunk = 100_000,
): Promise<number> {
  const start = now();
  const base = new Date();
  for (let from = 0; from < count; from += chunk) {
    const to = Math.min(count, from + chunk);
    await pool.query(
      `insert into runproof.runs (tenant_id, agent_id, goal, origin_system_id, plan, status, created_at)
       select $1, $2, 'bench list ' || g, 'runproof-bench', $3::jsonb, 'planned', $4::timestamptz - make_interval(secs => g / 10.0)
         from generate_series($5::int, $6::int - 1) g`,
      [t.tenantId, t.agentId, JSON.stringify(TINY_PLAN), base, from, to],
    );
    if (count >= 500_000) log(`scale:   ${fmtInt(to)} / ${fmtInt(count)} runs`);
  }
  await pool.query(`analyze runproof.runs`);
  return (now() - start) / 1000;
}

const COLUMNS = "id, agent_id, goal, status, origin_system_id, created_at, attempts, next_plan_step, plan";
const FIRST_PAGE = `select ${COLUMNS} from runproof.runs order by created_at desc, id desc limit 51`;
const NEXT_PAGE = `select ${COLUMNS} from runproof.runs where (created_at, id) < ($1::timestamptz, $2::uuid)
  order by created_at desc, id desc limit 51`;
const OFFSET_PAGE = `select ${COLUMNS} from runproof.runs order by created_at desc, id desc limit 51 offset $1`;

/** A client acting as the tenant, the way PostGraphile runs a request (role + tenant setting, RLS on). */
async function tenantClient(url: string, tenantId: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  c.on("error", () => {});
  await c.connect();
  await c.query(`begin`);
  await c.query(
    `select set_config('role', 'runproof_tenant', true), set_config('runproof.tenant_id', $1, true)`,
    [tenantId],
  );
  return c;
}

async function sampleLatency(
  c: pg.Client,
  q: { name: string; text: string; values?: unknown[] },
  n: number,
): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = now();
    const r = await c.query(q);
    out.push(now() - s);
    if (r.rows.length !== 51) throw new Error(`${q.name}: expected 51 rows, got ${r.rows.length}`);
  }
  return out;
}

export interface RunListOptions {
  runs: number;
  smallRuns: number;
  trials: number;
  samples: number;
}

export interface RunListResult {
  rows: Row[];
  generationSeconds: number;
  explain: string[];
}

export async function benchRunList(
  url: string,
  pool: pg.Pool,
  big: Tenant,
  small: Tenant,
  opts: RunListOptions,
): Promise<RunListResult> {
  log(
    `scale: generating ${fmtInt(opts.runs)} runs (INSERT ... SELECT, every insert trigger) and ${fmtInt(opts.smallRuns)} for the small tenant`,
  );
  const generationSeconds = await generateRuns(pool, big, opts.runs);
  await generateRuns(pool, small, opts.smallRuns);
  const depth = Math.floor(opts.runs * 0.9);
  const {
    rows: [cur],
  } = await pool.query(
    `select created_at, id from runproof.runs where tenant_id = $1 order by created_at desc, id desc offset $2 limit 1`,
    [big.tenantId, depth - 1],
  );

  log(
    `scale: run list latency, ${opts.trials} trials x ${opts.samples} samples (first page, small tenant, page at depth ${fmtInt(depth)})`,
  );
  const cBig = await tenantClient(url, big.tenantId);
  const cSmall = await tenantClient(url, small.tenantId);
  const first = { p50: [] as number[], p99: [] as number[] };
  const deep = { p50: [] as number[], p99: [] as number[] };
  const smallFirst = { p50: [] as number[], p99: [] as number[] };
  let offsetMs: number[] = [];
  const firstQ = { name: "bench_first", text: FIRST_PAGE };
  const deepQ = { name: "bench_next", text: NEXT_PAGE, values: [cur.created_at, cur.id] };
  try {
    await sampleLatency(cBig, firstQ, 20);
    await sampleLatency(cBig, deepQ, 20);
    await sampleLatency(cSmall, firstQ, 20);
    for (let k = 0; k < opts.trials; k++) {
      const a = await sampleLatency(cBig, firstQ, opts.samples);
      const b = await sampleLatency(cBig, deepQ, opts.samples);
      const s = await sampleLatency(cSmall, firstQ, opts.samples);
      first.p50.push(percentile(a, 50));
      first.p99.push(percentile(a, 99));
      deep.p50.push(percentile(b, 50));
      deep.p99.push(percentile(b, 99));
      smallFirst.p50.push(percentile(s, 50));
      smallFirst.p99.push(percentile(s, 99));
    }
    // The same depth with OFFSET (what offset-based paging would cost): a few samples, it is slow.
    offsetMs = await sampleLatency(cBig, { name: "bench_offset", text: OFFSET_PAGE, values: [depth] }, 3);
  } finally {
    await cBig.query("rollback").catch(() => {});
    await cSmall.query("rollback").catch(() => {});
    await cBig.end();
    await cSmall.end();
  }
  // The plan of the deep page, as the tenant.
  const explain = await explainAsTenant(url, big.tenantId, NEXT_PAGE, [cur.created_at, cur.id]);

  const n = fmtInt(opts.runs);
  const note = `as runproof_tenant under row level security (role + runproof.tenant_id in a transaction, like PostGraphile), prepared, ${opts.trials} trials x ${opts.samples} sequential samples`;
  return {
    generationSeconds,
    explain,
    rows: [
      row({
        section: "scale",
        id: "scale.first_page.p50",
        measure: `Run list, first page of 50 (tenant with ${n} runs), p50`,
        runproof: figure(first.p50, "ms"),
        baseline: figure(smallFirst.p50, "ms"),
        baselineLabel: `same query, tenant with ${fmtInt(opts.smallRuns)} runs`,
        better: "lower",
        note,
      }),
      row({
        section: "scale",
        id: "scale.first_page.p99",
        measure: `Run list, first page of 50 (tenant with ${n} runs), p99`,
        runproof: figure(first.p99, "ms"),
        baseline: figure(smallFirst.p99, "ms"),
        baselineLabel: `same query, tenant with ${fmtInt(opts.smallRuns)} runs`,
        better: "lower",
      }),
      row({
        section: "scale",
        id: "scale.deep_page.p50",
        measure: `Run list, keyset page at depth ${fmtInt(depth)} of ${n}, p50`,
        runproof: figure(deep.p50, "ms"),
        baseline: figure(first.p50, "ms"),
        baselineLabel: "first page, same tenant",
        better: "lower",
        note: "where (created_at, id) < ($cursor) order by created_at desc, id desc limit 51",
        extra: {
          offset_page_ms: offsetMs.map((x) => Math.round(x * 100) / 100),
          offset_page_median_ms: Math.round(median(offsetMs) * 100) / 100,
        },
      }),
      row({
        section: "scale",
        id: "scale.deep_page.p99",
        measure: `Run list, keyset page at depth ${fmtInt(depth)} of ${n}, p99`,
        runproof: figure(deep.p99, "ms"),
        baseline: figure(first.p99, "ms"),
        baselineLabel: "first page, same tenant",
        better: "lower",
      }),
    ],
  };
}

async function explainAsTenant(
  url: string,
  tenantId: string,
  sql: string,
  values: unknown[],
): Promise<string[]> {
  const c = await tenantClient(url, tenantId);
  try {
    const { rows } = await c.query(`explain (analyze, buffers) ${sql}`, values);
    return [rows.map((r) => r["QUERY PLAN"]).join("\n")];
  } catch (e) {
    return [`explain failed: ${(e as Error).message}`];
  } finally {
    await c.query("rollback").catch(() => {});
    await c.end();
  }
}
