// Task execute_run: one execution attempt of a run. For each plan step from the run's resume
// point: a policy decision (recorded before the call), the skill call with a timeout and the
// job's abort signal, then one transaction that records the step and the run's progress.
// Every attempt ends with its trace sealed: completed, failed or aborted, never left running.
import type { JobHelpers, Task } from "graphile-worker";
import type pg from "pg";
import { planSchema, type Plan } from "../src/planner/plan.ts";
import { redact } from "../src/lib/redact.ts";
import { runSkill } from "../src/skills/registry.ts";
import { SkillError } from "../src/skills/types.ts";
import {
  inTransaction,
  isConnectionLost,
  runJobPayload,
  type RunRow,
  type WorkerContext,
} from "../src/lib/worker-context.ts";

interface Attempt {
  tenantId: string;
  runId: string;
  traceId: string;
}

interface EndAttempt {
  traceStatus: "completed" | "failed" | "aborted";
  runStatus: "succeeded" | "failed" | "halted" | "cancelled" | "retrying";
  error?: string | null;
  incident?: string | null;
  details?: object;
  /** Backoff base for a retry; SQL scales it by the failed attempts. */
  retryBaseMs?: number;
  metadata?: object | null;
}

async function endAttempt(db: pg.Pool | pg.PoolClient, a: Attempt, e: EndAttempt): Promise<RunRow> {
  const {
    rows: [run],
  } = await db.query<RunRow>(
    `select r.*, runproof_private.is_terminal_status(r.status) as finished
       from runproof_private.end_attempt(
         p_tenant_id => $1, p_run_id => $2, p_trace_id => $3, p_trace_status => $4, p_run_status => $5,
         p_error => $6, p_incident_kind => $7, p_incident_details => $8, p_retry_base_ms => $9,
         p_trace_metadata => $10) r`,
    [
      a.tenantId,
      a.runId,
      a.traceId,
      e.traceStatus,
      e.runStatus,
      e.error ?? null,
      e.incident ?? null,
      e.details ?? {},
      e.retryBaseMs ?? 1000,
      e.metadata ?? null,
    ],
  );
  return run;
}

interface StepRecord {
  stepIndex: number;
  planStep: number;
  skill: string;
  status: "succeeded" | "failed" | "denied";
  input: unknown;
  output: unknown;
  error: string | null;
  startedAt: Date;
  finishedAt: Date;
  durationMs: number;
  costCents: number;
}

async function recordStep(db: pg.Pool | pg.PoolClient, a: Attempt, s: StepRecord): Promise<void> {
  await db.query(
    `select 1 from runproof_private.record_step(
       p_tenant_id => $1, p_run_id => $2, p_trace_id => $3, p_step_index => $4, p_plan_step => $5,
       p_skill => $6, p_status => $7, p_input => $8, p_output => $9, p_error => $10,
       p_started_at => $11, p_finished_at => $12, p_duration_ms => $13, p_cost_cents => $14, p_level => $15)`,
    [
      a.tenantId,
      a.runId,
      a.traceId,
      s.stepIndex,
      s.planStep,
      s.skill,
      s.status,
      JSON.stringify(redact(s.input ?? {})),
      s.output === undefined || s.output === null ? null : JSON.stringify(redact(s.output)),
      s.error,
      s.startedAt,
      s.finishedAt,
      s.durationMs.toFixed(3),
      s.costCents,
      s.status === "succeeded" ? "INFO" : "WARN",
    ],
  );
}

export function createExecuteRunTask(ctx: WorkerContext): Task {
  return async (payload, helpers) => {
    await ctx.registerWorker(helpers.job.locked_by);
    const { tenant_id: tenantId, run_id: runId } = runJobPayload.parse(payload);
    const log = ctx.logger.child({ run_id: runId, job_id: helpers.job.id });
    let {
      rows: [run],
    } = await ctx.pool.query<RunRow>(
      `select r.*, runproof.runs_is_finished(r) as finished from runproof.runs r where tenant_id = $1 and id = $2`,
      [tenantId, runId],
    );
    if (!run || run.finished) return;
    if (run.status === "pending")
      throw new Error(`run ${runId} has no plan yet; plan_run must store one first`);
    if (run.status === "running") {
      // The previous holder of this job died mid-attempt: close its trace as aborted first.
      ({
        rows: [run],
      } = await ctx.pool.query<RunRow>(
        `select r.*, runproof.runs_is_finished(r) as finished from runproof_private.recover_orphan($1, $2, $3) r`,
        [tenantId, runId, helpers.job.locked_by],
      ));
      log.warn(
        { resume_at: run.next_plan_step, status: run.status },
        "recovered a run abandoned by a dead worker",
      );
      // Abandoned too often without progress: recover_orphan failed the run.
      if (run.finished) return;
    }
    const cancelReason = await cancelRequested(ctx, tenantId, runId);
    if (cancelReason !== null) {
      await ctx.pool.query(`select runproof.cancel_run($1, $2, $3)`, [runId, cancelReason, tenantId]);
      return;
    }

    // Stored plans were validated in SQL; a skill this worker lacks fails its step (SKILL_NOT_LOADED).
    const plan = planSchema.parse(run.plan);
    const {
      rows: [trace],
    } = await ctx.pool.query<{ id: string; attempt: number }>(
      `select id, attempt from runproof_private.start_attempt($1, $2, $3)`,
      [
        tenantId,
        runId,
        { process_id: ctx.processId, worker_id: helpers.job.locked_by, job_id: String(helpers.job.id) },
      ],
    );
    const a: Attempt = { tenantId, runId, traceId: trace.id };
    log.info(
      { attempt: trace.attempt, from_plan_step: run.next_plan_step, steps: plan.steps.length },
      "attempt started",
    );

    try {
      await executeSteps(ctx, helpers, a, run, plan, log);
    } catch (e) {
      // Something outside a skill failed (the database, a bug): never leave the trace running.
      log.error({ err: (e as Error).message }, "attempt failed unexpectedly");
      try {
        await endAttempt(ctx.pool, a, {
          traceStatus: "aborted",
          runStatus: "retrying",
          error: `worker error: ${(e as Error).message}`,
          incident: "step_failed",
          retryBaseMs: ctx.config.retryBaseMs,
        });
      } catch (e2) {
        // The database is unreachable (or the close failed): fail the job, so graphile-worker runs
        // it again later and recover_orphan closes this attempt then. Returning normally would
        // complete the job and leave the run running with no job to finish it.
        log.error(
          { err: (e2 as Error).message },
          "could not close the attempt; the job will be retried and recover it",
        );
        throw e;
      }
    }
  };
}

async function cancelRequested(ctx: WorkerContext, tenantId: string, runId: string): Promise<string | null> {
  const {
    rows: [r],
  } = await ctx.pool.query<{ reason: string | null }>(
    `select runproof_private.cancel_requested($1, $2) as reason`,
    [tenantId, runId],
  );
  return r.reason;
}

async function executeSteps(
  ctx: WorkerContext,
  helpers: JobHelpers,
  a: Attempt,
  run: RunRow,
  plan: Plan,
  log: WorkerContext["logger"],
): Promise<void> {
  let stepIndex = 0;
  for (let planStep = run.next_plan_step; planStep < plan.steps.length; planStep++, stepIndex++) {
    // Between steps: a cancel request or a worker shutdown stops the attempt cleanly.
    const cancelReason = await cancelRequested(ctx, a.tenantId, a.runId);
    if (cancelReason !== null) {
      await endAttempt(ctx.pool, a, {
        traceStatus: "aborted",
        runStatus: "cancelled",
        error: cancelReason,
        metadata: { cancelled: cancelReason },
      });
      log.info("run cancelled between steps");
      return;
    }
    if (helpers.abortSignal.aborted) {
      await endAttempt(ctx.pool, a, {
        traceStatus: "aborted",
        runStatus: "retrying",
        error: "worker shut down",
        metadata: { aborted_because: "worker shutdown" },
      });
      return;
    }

    const step = plan.steps[planStep];
    const skill = ctx.registry.get(step.skill);
    const {
      rows: [decision],
    } = await ctx.pool.query<{ decision: string; reason: string }>(
      `select decision, reason from runproof_private.decide_step(
         p_tenant_id => $1, p_run_id => $2, p_trace_id => $3, p_step_index => $4, p_plan_step => $5,
         p_skill => $6, p_estimated_cents => $7)`,
      [a.tenantId, a.runId, a.traceId, stepIndex, planStep, step.skill, skill?.costCents ?? 0],
    );
    if (decision.decision === "deny") {
      // SQL records the denied step and halts the run, with the incident the rule calls for.
      await ctx.pool.query(
        `select 1 from runproof_private.record_denial(
           p_tenant_id => $1, p_run_id => $2, p_trace_id => $3, p_step_index => $4, p_input => $5)`,
        [a.tenantId, a.runId, a.traceId, stepIndex, JSON.stringify(redact(step.input ?? {}))],
      );
      log.warn({ plan_step: planStep, reason: decision.reason }, "run halted by policy");
      return;
    }

    const startedAt = new Date();
    // A failed step ends the attempt: recorded with its error, the run retried (transient) or failed.
    const failStep = async (err: SkillError) => {
      const finishedAt = new Date();
      const message = `${err.code}: ${err.message}`;
      // A worker shutting down aborts the call: the attempt is abandoned (aborted), not failed,
      // so it does not count against max_attempts, and the run resumes at once elsewhere.
      const shutdown = err.code === "ABORTED" && helpers.abortSignal.aborted;
      await inTransaction(ctx.pool, async (c) => {
        await recordStep(c, a, {
          stepIndex,
          planStep,
          skill: step.skill,
          status: "failed",
          input: step.input,
          output: err.details ? { error: err.toJSON() } : null,
          error: message,
          startedAt,
          finishedAt,
          durationMs: err.durationMs ?? finishedAt.getTime() - startedAt.getTime(),
          costCents: 0,
        });
        await endAttempt(
          c,
          a,
          shutdown
            ? {
                traceStatus: "aborted",
                runStatus: "retrying",
                error: `step ${planStep} (${step.skill}) interrupted: the worker shut down`,
                metadata: { aborted_because: "worker shutdown" },
              }
            : {
                traceStatus: "failed",
                runStatus: err.transient ? "retrying" : "failed",
                error: `step ${planStep} (${step.skill}) failed: ${message}`,
                incident: err.transient ? "step_failed" : "run_failed",
                details: { plan_step: planStep, skill: step.skill, code: err.code, transient: err.transient },
                retryBaseMs: ctx.config.retryBaseMs,
              },
        );
      });
      log.warn({ plan_step: planStep, code: err.code, transient: err.transient }, "step failed");
    };

    let result: Awaited<ReturnType<typeof runSkill>>;
    try {
      if (!skill)
        throw new SkillError(`skill ${step.skill} is not loaded in this worker`, {
          code: "SKILL_NOT_LOADED",
          transient: false,
        });
      result = await runSkill(
        skill,
        step.input,
        {
          tenantId: a.tenantId,
          agentId: run.agent_id,
          runId: a.runId,
          traceId: a.traceId,
          planStep,
          stepIndex,
          idempotencyKey: `${a.runId}:${planStep}`,
          signal: helpers.abortSignal,
          pool: ctx.pool,
          config: ctx.config,
        },
        step.timeout_ms ?? skill.defaultTimeoutMs,
      );
    } catch (e) {
      await failStep(
        e instanceof SkillError
          ? e
          : new SkillError((e as Error).message ?? String(e), {
              code: "SKILL_ERROR",
              transient: false,
              cause: e,
            }),
      );
      return;
    }
    try {
      await recordStep(ctx.pool, a, {
        stepIndex,
        planStep,
        skill: step.skill,
        status: "succeeded",
        input: step.input,
        output: result.output ?? null,
        error: null,
        startedAt,
        finishedAt: new Date(),
        durationMs: result.durationMs,
        costCents: result.costCents ?? 0,
      });
    } catch (e) {
      // A lost database connection is not the step's failure: end the attempt like any worker
      // error (the outer catch), and a later attempt repeats the step with the same idempotency key.
      if (isConnectionLost(e)) throw e;
      // Anything else will not go better next time: an output Postgres refuses (a NUL character
      // in a JSON string, nesting too deep to serialise). The step fails with that reason.
      const pe = e as { code?: string; message?: string };
      await failStep(
        new SkillError(
          `the output could not be recorded${pe.code ? ` (${pe.code})` : ""}: ${pe.message ?? String(e)}`,
          { code: "OUTPUT_NOT_STORABLE", transient: false, cause: e },
        ),
      );
      return;
    }
  }
  await endAttempt(ctx.pool, a, { traceStatus: "completed", runStatus: "succeeded" });
  log.info("run succeeded");
}
