// Profiles for bench/FINDINGS.md, taken in separate passes after the timed trials (so they do
// not slow the figures): per-function time from pg_stat_user_functions (track_functions = all),
// and per-trigger time, foreign-key triggers included, from EXPLAIN ANALYZE of a multi-row append.
import type pg from "pg";
import { BENCH_DB, log, round, sleep } from "./lib.ts";

export interface FunctionStat {
  function: string;
  calls_per_step: number;
  /** Time inside the function itself (not in functions it calls), microseconds per step. */
  self_us_per_step: number;
  total_us_per_step: number;
}

/**
 * Runs `fn` (which must open its own, new connections and close them) with track_functions = all
 * for the scratch database, and returns each RunProof function's time per step. Needs a superuser;
 * returns an explanation instead otherwise.
 */
export async function functionProfile(
  admin: pg.Pool,
  steps: number,
  fn: () => Promise<void>,
): Promise<FunctionStat[] | string> {
  try {
    await admin.query(`alter database ${BENCH_DB} set track_functions = 'all'`);
    await admin.query(`select pg_stat_reset()`);
  } catch (e) {
    return `no function profile: ${(e as Error).message}`;
  }
  try {
    await fn();
  } finally {
    await admin.query(`alter database ${BENCH_DB} reset track_functions`);
  }
  // Backends flush their counters when they exit; give the ones fn closed a moment.
  await sleep(500);
  await admin.query(`select pg_stat_clear_snapshot()`);
  const { rows } = await admin.query<{ fn: string; calls: string; total: number; self: number }>(
    `select f.funcid::regprocedure::text as fn, f.calls, f.total_time as total, f.self_time as self
       from pg_stat_user_functions f
      where f.schemaname in ('runproof', 'runproof_private')
      order by f.self_time desc`,
  );
  return rows.map((r) => ({
    function: r.fn.replace(/\(.*\)$/, "()"),
    calls_per_step: round(Number(r.calls) / steps, 3),
    self_us_per_step: round((r.self * 1000) / steps, 2),
    total_us_per_step: round((r.total * 1000) / steps, 2),
  }));
}

export interface TriggerStat {
  trigger: string;
  us_per_row: number;
  calls: number;
}

/**
 * EXPLAIN ANALYZE of one statement in a transaction that is rolled back; returns the statement's
 * own time and each trigger's time per row ("Trigger <name> on <table>: time=... calls=...").
 */
export async function explainTriggers(pool: pg.Pool, sql: string, values: unknown[], rowsInserted: number) {
  const c = await pool.connect();
  try {
    await c.query("begin");
    const { rows } = await c.query(`explain (analyze, costs off, buffers off) ${sql}`, values);
    const lines = rows.map((r) => r["QUERY PLAN"] as string);
    const triggers: TriggerStat[] = [];
    let executionMs = NaN;
    for (const line of lines) {
      const m = /^\s*Trigger (.+?): time=([\d.]+) calls=(\d+)/.exec(line);
      if (m)
        triggers.push({
          trigger: m[1],
          us_per_row: round((Number(m[2]) * 1000) / rowsInserted, 2),
          calls: Number(m[3]),
        });
      const e = /^\s*Execution Time: ([\d.]+) ms/.exec(line);
      if (e) executionMs = Number(e[1]);
    }
    const triggerUs = triggers.reduce((a, t) => a + t.us_per_row, 0);
    const totalUs = (executionMs * 1000) / rowsInserted;
    return {
      total_us_per_step: round(totalUs, 2),
      triggers_us_per_step: round(triggerUs, 2),
      rest_us_per_step: round(totalUs - triggerUs, 2),
      triggers,
      plan: lines,
    };
  } catch (e) {
    log(`profile: EXPLAIN ANALYZE failed: ${(e as Error).message}`);
    return { error: (e as Error).message };
  } finally {
    await c.query("rollback").catch(() => {});
    c.release();
  }
}
