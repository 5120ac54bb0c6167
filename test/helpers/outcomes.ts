// Finished runs of each outcome, ended the way the worker ends them (runproof_private.end_attempt:
// the incident first, then the status change that seals the run), for the verification and tamper tests.
import type pg from "pg";
import { appendStep, type Fixture, insertRun, startAttempt } from "./ledger.ts";

type Queryable = pg.Pool | pg.PoolClient | pg.Client;

async function endAttempt(
  db: Queryable,
  f: Fixture,
  runId: string,
  traceId: string,
  traceStatus: string,
  runStatus: string,
  error: string | null,
  incident: string | null,
): Promise<void> {
  await db.query(
    `select runproof_private.end_attempt(p_tenant_id => $1, p_run_id => $2, p_trace_id => $3, p_trace_status => $4,
       p_run_status => $5, p_error => $6, p_incident_kind => $7)`,
    [f.tenantId, runId, traceId, traceStatus, runStatus, error, incident],
  );
}

/**
 * A failed run of a 3-step plan, two attempts: attempt 1 succeeds at plan step 0 and fails at plan
 * step 1 (incident step_failed, the run retries); attempt 2 fails at plan step 1 again (incident
 * run_failed, the run fails with its error). Two incidents.
 */
export async function failedRun(db: Queryable, f: Fixture): Promise<{ runId: string; traceIds: string[] }> {
  const runId = await insertRun(db, f, { steps: 3 });
  const first = await startAttempt(db, f, runId);
  await appendStep(db, f, runId, first, 0);
  await appendStep(db, f, runId, first, 1, { status: "failed" });
  await endAttempt(db, f, runId, first, "failed", "retrying", "step 1 failed: boom", "step_failed");
  const second = await startAttempt(db, f, runId);
  await appendStep(db, f, runId, second, 0, { status: "failed" });
  await endAttempt(db, f, runId, second, "failed", "failed", "step 1 failed: boom", "run_failed");
  return { runId, traceIds: [first, second] };
}

/** A halted run of a 3-step plan: plan step 0 succeeds, the policy denies plan step 1 (incident skill_denied). */
export async function haltedRun(db: Queryable, f: Fixture): Promise<{ runId: string; traceIds: string[] }> {
  const runId = await insertRun(db, f, { steps: 3 });
  const traceId = await startAttempt(db, f, runId);
  await appendStep(db, f, runId, traceId, 0);
  await appendStep(db, f, runId, traceId, 1, { status: "denied" });
  await endAttempt(
    db,
    f,
    runId,
    traceId,
    "failed",
    "halted",
    "denied: skill noop is not allowed",
    "skill_denied",
  );
  return { runId, traceIds: [traceId] };
}

/** A run still executing: plan step 0 of 3 recorded in its running attempt. */
export async function runningRun(db: Queryable, f: Fixture): Promise<{ runId: string; traceIds: string[] }> {
  const runId = await insertRun(db, f, { steps: 3 });
  const traceId = await startAttempt(db, f, runId);
  await appendStep(db, f, runId, traceId, 0);
  return { runId, traceIds: [traceId] };
}
