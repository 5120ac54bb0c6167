// 1. Append: steps/second appended through the ledger (decision row + step row, chain computed
// by the trigger) against plain inserts of the same step rows into an identical table with no
// triggers and no foreign keys (CREATE TABLE ... (LIKE runproof.trace_steps INCLUDING ALL)).
import { randomBytes, randomUUID } from "node:crypto";
import pg from "pg";
import {
  closeTrace,
  figure,
  median,
  inTransaction,
  log,
  newPool,
  now,
  openTrace,
  row,
  BENCH_COMMITMENTS,
  SET_BASED_APPEND,
  STEP_COLUMNS,
  type OpenTrace,
  type Row,
  type Tenant,
} from "./lib.ts";
import { explainTriggers, functionProfile } from "./profile.ts";

export interface AppendOptions {
  trials: number;
  /** Sequential single-row appends per trial. */
  seqSteps: number;
  /** Rows per trial in the batched shape, and rows per statement. */
  batchRows: number;
  batchSize: number;
  /** Concurrent shape: traces, clients, seconds per trial. */
  traces: number;
  clients: number;
  concurrentMs: number;
  /** Client counts of the scaling shape (the goal is read at `clients`). */
  scaling: number[];
}

const DUMMY_HASH = randomBytes(32);

// One round trip per step on both sides. The ledger's statement inserts the policy decision the
// schema requires and the step (prev_hash/step_hash computed by tg_trace_steps__chain).
const LEDGER_ONE = {
  name: "bench_ledger_one",
  text: `with d as (
      insert into runproof.policy_decisions (tenant_id, run_id, trace_id, step_index, plan_step, skill, decision, rule, reason)
      values ($1, $2, $3, $4, $4, 'noop', 'allow', 'daily_budget', 'bench')
      returning tenant_id, run_id, trace_id, step_index, plan_step, skill, decision)
    insert into runproof.trace_steps (${STEP_COLUMNS})
    select tenant_id, run_id, trace_id, step_index, plan_step, skill, 'succeeded', decision,
           ${BENCH_COMMITMENTS},
           now(), now(), 0.125, 0, 'worker', 'INFO'
      from d`,
};
// The same with the NOTIFY every step transaction made before (the step trigger's announcement):
// what PostgreSQL's cluster-wide NOTIFY commit lock costs as clients are added.
const LEDGER_NOTIFY_ONE = {
  name: "bench_ledger_notify_one",
  text: `with d as (
      insert into runproof.policy_decisions (tenant_id, run_id, trace_id, step_index, plan_step, skill, decision, rule, reason)
      values ($1, $2, $3, $4, $4, 'noop', 'allow', 'daily_budget', 'bench')
      returning tenant_id, run_id, trace_id, step_index, plan_step, skill, decision),
    s as (
      insert into runproof.trace_steps (${STEP_COLUMNS})
      select tenant_id, run_id, trace_id, step_index, plan_step, skill, 'succeeded', decision,
             ${BENCH_COMMITMENTS},
             now(), now(), 0.125, 0, 'worker', 'INFO'
        from d
      returning run_id, step_index)
    select pg_notify('runproof:run:' || run_id, json_build_object('event', 'step', 'step_index', step_index)::text) from s`,
};
const PLAIN_ONE = {
  name: "bench_plain_one",
  text: `insert into bench.plain_steps (${STEP_COLUMNS}, prev_hash, step_hash, decision_hash)
    values ($1, $2, $3, $4, $4, 'noop', 'succeeded', 'allow', $5, $5, now(), now(), 0.125, 0, 'worker', 'INFO', $5, $5, $5)`,
};
// Plain copies of both tables: how much of the gap is simply the second row.
const PLAIN2_ONE = {
  name: "bench_plain2_one",
  text: `with d as (
      insert into bench.plain_decisions (tenant_id, run_id, trace_id, step_index, plan_step, skill, decision, rule, reason)
      values ($1, $2, $3, $4, $4, 'noop', 'allow', 'daily_budget', 'bench')
      returning tenant_id, run_id, trace_id, step_index, plan_step, skill, decision)
    insert into bench.plain_steps (${STEP_COLUMNS}, prev_hash, step_hash, decision_hash)
    select tenant_id, run_id, trace_id, step_index, plan_step, skill, 'succeeded', decision, $5::bytea, $5::bytea,
           now(), now(), 0.125, 0, 'worker', 'INFO', $5::bytea, $5::bytea, $5::bytea
      from d`,
};
// Multi-row: decision i and step i alternate inside one statement (see lib.ts SET_BASED_APPEND).
const LEDGER_BATCH = { name: "bench_ledger_batch", text: SET_BASED_APPEND };
const PLAIN_BATCH = {
  name: "bench_plain_batch",
  text: `insert into bench.plain_steps (${STEP_COLUMNS}, prev_hash, step_hash, decision_hash)
    select $1, $2, $3, i, i, 'noop', 'succeeded', 'allow', $6, $6, now(), now(), 0.125, 0, 'worker', 'INFO', $6, $6, $6
      from generate_series($4::int, $5::int - 1) i order by i`,
};

export async function createPlainTables(pool: pg.Pool): Promise<void> {
  await pool.query(`
    create schema if not exists bench;
    drop table if exists bench.plain_steps, bench.plain_decisions;
    -- INCLUDING ALL: same columns, defaults, CHECKs and indexes (the primary key); LIKE never copies
    -- foreign keys or triggers, which is the point.
    create table bench.plain_steps (like runproof.trace_steps including all);
    create table bench.plain_decisions (like runproof.policy_decisions including all);`);
}

export async function connect(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  c.on("error", () => {});
  await c.connect();
  return c;
}

export type Shape = "ledger" | "plain" | "plain2" | "worker" | "notify";

/** Sequential single-row appends to one trace from one client; returns steps/s. */
export async function sequential(
  c: pg.Client,
  pool: pg.Pool,
  t: Tenant,
  shape: Shape,
  n: number,
): Promise<number> {
  const o =
    shape === "plain" || shape === "plain2"
      ? { tenantId: t.tenantId, runId: randomUUID(), traceId: randomUUID() }
      : shape === "worker"
        ? await openWorkerTrace(pool, t)
        : await openTrace(pool, t);
  const start = now();
  for (let i = 0; i < n; i++) {
    if (shape === "ledger") await c.query({ ...LEDGER_ONE, values: [o.tenantId, o.runId, o.traceId, i] });
    else if (shape === "plain")
      await c.query({ ...PLAIN_ONE, values: [o.tenantId, o.runId, o.traceId, i, DUMMY_HASH] });
    else if (shape === "plain2")
      await c.query({ ...PLAIN2_ONE, values: [o.tenantId, o.runId, o.traceId, i, DUMMY_HASH] });
    else await workerStep(c, o, i);
  }
  const ms = now() - start;
  if (shape === "ledger") await closeTrace(pool, o);
  if (shape === "worker") await closeTrace(pool, o);
  return n / (ms / 1000);
}

/**
 * What tasks/execute_run.ts does per step: one statement (advance_attempt) that records step i,
 * checks for a cancel request and records the decision for step i+1. Step 0's decision is taken
 * by `openWorkerTrace`.
 */
const WORKER_ONE = {
  name: "bench_advance",
  text: `select decision from runproof_private.advance_attempt(
      p_tenant_id => $1, p_run_id => $2, p_trace_id => $3, p_step_index => $4, p_plan_step => $4,
      p_status => 'succeeded', p_skill => 'noop', p_input => $5, p_output => $6, p_started_at => now(),
      p_finished_at => now(), p_duration_ms => 0.125, p_cost_cents => 0, p_next_skill => 'noop')`,
};

async function workerStep(c: pg.Client, o: OpenTrace, i: number): Promise<void> {
  await c.query({
    ...WORKER_ONE,
    values: [o.tenantId, o.runId, o.traceId, i, JSON.stringify({ i }), JSON.stringify({ echo: { i } })],
  });
}

/** An open trace whose step 0 is decided, as the first advance_attempt of an attempt leaves it. */
async function openWorkerTrace(pool: pg.Pool, t: Tenant): Promise<OpenTrace> {
  const o = await openTrace(pool, t);
  await pool.query(`select 1 from runproof_private.decide_step($1, $2, $3, 0, 0, 'noop', 0)`, [
    o.tenantId,
    o.runId,
    o.traceId,
  ]);
  return o;
}

/** Batched multi-row appends to one trace (one transaction per batch); returns steps/s. */
export async function batched(
  c: pg.Client,
  pool: pg.Pool,
  t: Tenant,
  shape: "ledger" | "plain",
  rows: number,
  size: number,
): Promise<number> {
  const o =
    shape === "plain"
      ? { tenantId: t.tenantId, runId: randomUUID(), traceId: randomUUID() }
      : await openTrace(pool, t);
  const start = now();
  for (let from = 0; from < rows; from += size) {
    const to = Math.min(rows, from + size);
    await c.query("begin");
    if (shape === "ledger") {
      await c.query({ ...LEDGER_BATCH, values: [o.tenantId, o.runId, o.traceId, from, to] });
    } else {
      await c.query({ ...PLAIN_BATCH, values: [o.tenantId, o.runId, o.traceId, from, to, DUMMY_HASH] });
    }
    await c.query("commit");
  }
  const ms = now() - start;
  if (shape === "ledger") await closeTrace(pool, o);
  return rows / (ms / 1000);
}

/** `traces` traces appended concurrently by `clients` clients (each owns traces/clients of them, round robin). */
export async function concurrent(
  clients: pg.Client[],
  pool: pg.Pool,
  t: Tenant,
  shape: Shape,
  traces: number,
  ms: number,
): Promise<number> {
  const opened: OpenTrace[] = [];
  for (let i = 0; i < traces; i++) {
    opened.push(
      shape === "plain" || shape === "plain2"
        ? { tenantId: t.tenantId, runId: randomUUID(), traceId: randomUUID() }
        : shape === "worker"
          ? await openWorkerTrace(pool, t)
          : await openTrace(pool, t),
    );
  }
  const next = new Map<string, number>(opened.map((o) => [o.traceId, 0]));
  const start = now();
  const end = start + ms;
  const counts = await Promise.all(
    clients.map(async (c, k) => {
      const mine = opened.filter((_, i) => i % clients.length === k);
      let n = 0;
      while (now() < end) {
        const o = mine[n % mine.length];
        const i = next.get(o.traceId)!;
        if (shape === "ledger") await c.query({ ...LEDGER_ONE, values: [o.tenantId, o.runId, o.traceId, i] });
        else if (shape === "notify")
          await c.query({ ...LEDGER_NOTIFY_ONE, values: [o.tenantId, o.runId, o.traceId, i] });
        else if (shape === "worker") await workerStep(c, o, i);
        else if (shape === "plain2")
          await c.query({ ...PLAIN2_ONE, values: [o.tenantId, o.runId, o.traceId, i, DUMMY_HASH] });
        else await c.query({ ...PLAIN_ONE, values: [o.tenantId, o.runId, o.traceId, i, DUMMY_HASH] });
        next.set(o.traceId, i + 1);
        n++;
      }
      return n;
    }),
  );
  const elapsed = now() - start;
  if (shape !== "plain" && shape !== "plain2") for (const o of opened) await closeTrace(pool, o);
  return counts.reduce((a, b) => a + b, 0) / (elapsed / 1000);
}

export async function benchAppend(
  url: string,
  pool: pg.Pool,
  t: Tenant,
  opts: AppendOptions,
): Promise<Row[]> {
  await createPlainTables(pool);
  const one = await connect(url);
  const rows: Row[] = [];
  try {
    // Warm-up: prepare the statements and touch the tables on both paths.
    await sequential(one, pool, t, "ledger", 50);
    await sequential(one, pool, t, "plain", 50);
    await sequential(one, pool, t, "plain2", 50);
    await sequential(one, pool, t, "worker", 20);

    log(`append: 1 trace, sequential single-row, ${opts.seqSteps} steps x ${opts.trials} trials`);
    const seq: Record<Shape, number[]> = { ledger: [], plain: [], plain2: [], worker: [], notify: [] };
    const order: Shape[] = ["plain", "ledger", "plain2", "worker"];
    for (let k = 0; k < opts.trials; k++) {
      // Alternate the order so that drift in the machine's load does not favour one side.
      for (const shape of k % 2 ? [...order].reverse() : order)
        seq[shape].push(await sequential(one, pool, t, shape, opts.seqSteps));
    }
    const plainSeq = figure(seq.plain, "rows/s");
    rows.push(
      row({
        section: "append",
        id: "append.sequential",
        measure: "Append, 1 trace, sequential single-row inserts (1 client)",
        runproof: figure(seq.ledger, "steps/s"),
        baseline: plainSeq,
        baselineLabel: "plain INSERT of the step row",
        better: "higher",
        goal: goal(seq.ledger, seq.plain),
        note: "one statement per step: the decision row and the step row (CTE), prepared",
        extra: { plain_step_and_decision_rows: figure(seq.plain2, "rows/s") },
      }),
    );
    rows.push(
      row({
        section: "append",
        id: "append.worker_path",
        measure: "Append, 1 trace, worker path: advance_attempt (1 round trip per step)",
        runproof: figure(seq.worker, "steps/s"),
        baseline: plainSeq,
        baselineLabel: "plain INSERT of the step row",
        better: "higher",
        note: "what tasks/execute_run.ts does per step: records step i (redaction, payloads, run progress), checks for a cancel request and records the decision for step i+1, one statement and one transaction",
      }),
    );

    log(
      `append: 1 trace, batched ${opts.batchSize} rows/statement, ${opts.batchRows} steps x ${opts.trials} trials`,
    );
    await batched(one, pool, t, "ledger", opts.batchSize, opts.batchSize);
    await batched(one, pool, t, "plain", opts.batchSize, opts.batchSize);
    const bat = { ledger: [] as number[], plain: [] as number[] };
    for (let k = 0; k < opts.trials; k++) {
      for (const shape of k % 2 ? (["ledger", "plain"] as const) : (["plain", "ledger"] as const)) {
        bat[shape].push(await batched(one, pool, t, shape, opts.batchRows, opts.batchSize));
      }
    }
    rows.push(
      row({
        section: "append",
        id: "append.batched",
        measure: `Append, 1 trace, batched multi-row inserts (${opts.batchSize} rows/statement)`,
        runproof: figure(bat.ledger, "steps/s"),
        baseline: figure(bat.plain, "rows/s"),
        baselineLabel: "plain multi-row INSERT",
        better: "higher",
        goal: goal(bat.ledger, bat.plain),
        note: "per batch one statement: INSERT ... SELECT generate_series of the decisions in a CTE feeding the INSERT of the steps (decision i, then step i), one transaction",
      }),
    );
  } finally {
    await one.end();
  }

  // Scaling: 1, 4, 16, 32 clients appending at once (two traces per client), durable commits
  // group-flushed by the WAL writer. The four shapes interleave within each trial.
  const shapes: Shape[] = ["plain2", "ledger", "worker", "notify", "plain"];
  for (const n of opts.scaling) {
    const traces = 2 * n;
    log(
      `append: ${traces} traces from ${n} clients, ${opts.concurrentMs} ms x ${opts.trials} trials x ${shapes.length} shapes`,
    );
    const clients = await Promise.all(Array.from({ length: n }, () => connect(url)));
    try {
      for (const shape of shapes) await concurrent(clients, pool, t, shape, traces, 200);
      const con: Record<Shape, number[]> = { ledger: [], plain: [], plain2: [], worker: [], notify: [] };
      for (let k = 0; k < opts.trials; k++) {
        for (const shape of k % 2 ? [...shapes].reverse() : shapes) {
          con[shape].push(await concurrent(clients, pool, t, shape, traces, opts.concurrentMs));
        }
      }
      const plain2 = figure(con.plain2, "rows/s");
      const plain = figure(con.plain, "rows/s");
      rows.push(
        row({
          section: "append",
          id: `append.clients.${n}`,
          measure: `Append, ${n} client${n > 1 ? "s" : ""} at once (${traces} traces, single-row, autocommit)`,
          runproof: figure(con.ledger, "steps/s"),
          baseline: plain2,
          baselineLabel: "plain INSERTs of the same rows (decision + step), same clients",
          better: "higher",
          goal: n === opts.clients ? goal(con.ledger, con.plain2) : undefined,
          note:
            n === opts.clients
              ? "the ledger statement: decision row and step row (chain trigger, guards, foreign keys) in one CTE; the baseline inserts the same two rows into plain copies of both tables (no triggers, no foreign keys)"
              : undefined,
          extra: {
            plain_step_row_only: plain,
            ledger_with_notify_per_step: figure(con.notify, "steps/s"),
            clients: n,
            traces,
          },
        }),
      );
      rows.push(
        row({
          section: "append",
          id: `append.notify_clients.${n}`,
          measure: `Append, the ledger statement with a NOTIFY per step (as before issue 14), ${n} client${n > 1 ? "s" : ""}`,
          runproof: figure(con.notify, "steps/s"),
          baseline: figure(con.ledger, "steps/s"),
          baselineLabel: "the same statement without the NOTIFY",
          better: "higher",
          note:
            n === opts.clients
              ? "PreCommit_Notify takes a cluster-wide lock held across the commit's WAL flush: NOTIFYing commits are serialised, so they cannot share a flush"
              : undefined,
        }),
      );
      rows.push(
        row({
          section: "append",
          id: `append.worker_clients.${n}`,
          measure: `Append, worker path (advance_attempt), ${n} client${n > 1 ? "s" : ""} at once`,
          runproof: figure(con.worker, "steps/s"),
          baseline: plain2,
          baselineLabel: "plain INSERTs of decision + step, same clients",
          better: "higher",
          note:
            n === opts.clients
              ? "the worker's one statement per step also writes the payload row and the run's progress, redacts and checks for a cancel request"
              : undefined,
          extra: { plain_step_row_only: plain, clients: n, traces },
        }),
      );
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  }
  await inTransaction(pool, async (c) => {
    await c.query(`truncate bench.plain_steps, bench.plain_decisions`);
  });
  return rows;
}

function goal(ledger: number[], plain: number[]): { text: string; met: boolean } {
  const r = median(ledger) / median(plain);
  return { text: "≥ 0.6× plain", met: r >= 0.6 };
}

/**
 * Where an append's time goes (not timed with the figures): EXPLAIN ANALYZE of a 10,000-step
 * multi-row append, ledger and plain (per-trigger time, foreign keys included), and per-function
 * time from pg_stat_user_functions for single-row, multi-row and worker-path appends.
 */
export async function profileAppend(url: string, pool: pg.Pool, t: Tenant, steps: number, batchSize: number) {
  await createPlainTables(pool);
  const n = 10_000;
  const o = await openTrace(pool, t);
  const ledger = await explainTriggers(pool, SET_BASED_APPEND, [o.tenantId, o.runId, o.traceId, 0, n], n);
  await closeTrace(pool, o); // the EXPLAIN was rolled back: an empty trace
  const plain = await explainTriggers(
    pool,
    PLAIN_BATCH.text,
    [t.tenantId, randomUUID(), randomUUID(), 0, n, DUMMY_HASH],
    n,
  );
  const own = async (fn: (c: pg.Client, p: pg.Pool) => Promise<unknown>) => {
    const c = await connect(url);
    const p = newPool(url, 2);
    try {
      await fn(c, p);
    } finally {
      await c.end();
      await p.end();
    }
  };
  const single = await functionProfile(pool, steps, () =>
    own((c, p) => sequential(c, p, t, "ledger", steps)),
  );
  const multi = await functionProfile(pool, steps * 5, () =>
    own((c, p) => batched(c, p, t, "ledger", steps * 5, batchSize)),
  );
  const worker = await functionProfile(pool, steps, () =>
    own((c, p) => sequential(c, p, t, "worker", steps)),
  );
  await inTransaction(pool, async (c) => {
    await c.query(`truncate bench.plain_steps, bench.plain_decisions`);
  });
  return {
    explain_multi_row_10000: { ledger, plain },
    functions_single_row: single,
    functions_multi_row: multi,
    functions_worker_path: worker,
  };
}
