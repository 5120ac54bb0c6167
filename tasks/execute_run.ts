// Task execute_run: one execution attempt of a run. For each plan step from the run's resume
// point: the skill call with a timeout and the job's abort signal, then one statement
// (advance_attempt) that records the step and the run's progress, checks for a cancel request and
// records the policy decision for the next step before its skill is called. Every attempt ends
// with its trace sealed: completed, failed or aborted, never left running.
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

interface Advance {
  trace_id: string;
  attempt: number | null;
  run_status: string;
  finished: boolean;
  decision: string | null;
  reason: string | null;
  announce_channels: string[] | null;
  announce_payloads: string[] | null;
}

interface NextStep {
  skill: string;
  estimatedCents: number;
  input: unknown;
}

/**
 * The one statement per step (runproof_private.advance_attempt): records the succeeded step (if
 * any), checks for a cancel request and decides the next step (recorded before its skill is
 * called), or ends the attempt; opens it when traceId is null.
 */
async function advance(
  db: pg.Pool,
  a: { tenantId: string; runId: string; traceId: string | null },
  at: { stepIndex: number; planStep: number },
  done: Omit<StepRecord, "stepIndex" | "planStep" | "status" | "error"> | null,
  next: NextStep | null,
  traceMetadata: object = {},
): Promise<Advance> {
  const {
    rows: [r],
  } = await db.query<Advance>(
    `select * from runproof_private.advance_attempt(
       p_tenant_id => $1, p_run_id => $2, p_trace_id => $3, p_step_index => $4, p_plan_step => $5,
       p_status => $6, p_skill => $7, p_input => $8, p_output => $9, p_started_at => $10, p_finished_at => $11,
       p_duration_ms => $12, p_cost_cents => $13, p_next_skill => $14, p_next_estimated_cents => $15,
       p_next_input => $16, p_trace_metadata => $17)`,
    [
      a.tenantId,
      a.runId,
      a.traceId,
      at.stepIndex,
      at.planStep,
      done ? "succeeded" : null,
      done?.skill ?? null,
      done ? JSON.stringify(redact(done.input ?? {})) : null,
      done && done.output !== undefined && done.output !== null ? JSON.stringify(redact(done.output)) : null,
      done?.startedAt ?? null,
      done?.finishedAt ?? null,
      done ? done.durationMs.toFixed(3) : null,
      done?.costCents ?? null,
      next?.skill ?? null,
      next?.estimatedCents ?? 0,
      next ? JSON.stringify(redact(next.input ?? {})) : null,
      traceMetadata,
    ],
  );
  return r;
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
    } = await ctx.pool.query<RunRow & { cancel_reason: string | null }>(
      `select r.*, runproof.runs_is_finished(r) as finished,
              runproof_private.cancel_requested(r.tenant_id, r.id) as cancel_reason
         from runproof.runs r where tenant_id = $1 and id = $2`,
      [tenantId, runId],
    );
    if (!run || run.finished) return;
    if (run.status === "pending")
      throw new Error(`run ${runId} has no plan yet; plan_run must store one first`);
    if (run.status === "running") {
      // The previous holder of this job died mid-attempt: close its trace as aborted first.
      ({
        rows: [run],
      } = await ctx.pool.query<RunRow & { cancel_reason: string | null }>(
        `select r.*, runproof.runs_is_finished(r) as finished,
                runproof_private.cancel_requested(r.tenant_id, r.id) as cancel_reason
           from runproof_private.recover_orphan($1, $2, $3) r`,
        [tenantId, runId, helpers.job.locked_by],
      ));
      log.warn(
        { resume_at: run.next_plan_step, status: run.status },
        "recovered a run abandoned by a dead worker",
      );
      // Abandoned too often without progress: recover_orphan failed the run.
      if (run.finished) return;
    }
    if (run.cancel_reason !== null) {
      await ctx.pool.query(`select runproof.cancel_run($1, $2, $3)`, [runId, run.cancel_reason, tenantId]);
      return;
    }

    // Stored plans were validated in SQL; a skill this worker lacks fails its step (SKILL_NOT_LOADED).
    const plan = planSchema.parse(run.plan);
    // One statement opens the attempt and decides its first step.
    const first = await advance(
      ctx.pool,
      { tenantId, runId, traceId: null },
      { stepIndex: 0, planStep: run.next_plan_step },
      null,
      nextStep(ctx, plan, run.next_plan_step),
      { process_id: ctx.processId, worker_id: helpers.job.locked_by, job_id: String(helpers.job.id) },
    );
    const a: Attempt = { tenantId, runId, traceId: first.trace_id };
    log.info(
      { attempt: first.attempt, from_plan_step: run.next_plan_step, steps: plan.steps.length },
      "attempt started",
    );

    try {
      await executeSteps(ctx, helpers, a, run, plan, log, first);
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

/** The plan step to decide next (its skill's cost estimate and input), or null when the plan is done. */
function nextStep(ctx: WorkerContext, plan: Plan, planStep: number): NextStep | null {
  const step = plan.steps[planStep];
  if (!step) return null;
  return {
    skill: step.skill,
    estimatedCents: ctx.registry.get(step.skill)?.costCents ?? 0,
    input: step.input,
  };
}

async function executeSteps(
  ctx: WorkerContext,
  helpers: JobHelpers,
  a: Attempt,
  run: RunRow,
  plan: Plan,
  log: WorkerContext["logger"],
  first: Advance,
): Promise<void> {
  let adv = first;
  let stepIndex = 0;
  for (let planStep = run.next_plan_step; ; planStep++, stepIndex++) {
    // The last statement ended the attempt: the plan is done, a cancel request was found, or the
    // policy denied the next step (SQL recorded the denied step and halted the run).
    if (adv.decision !== "allow") {
      if (adv.run_status === "succeeded") log.info("run succeeded");
      else if (adv.run_status === "cancelled") log.info("run cancelled between steps");
      else log.warn({ plan_step: planStep, status: adv.run_status }, "run halted by policy");
      return;
    }
    // Between steps: a worker shutdown stops the attempt cleanly (the decision stays recorded).
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
    const startedAt = new Date();
    // A failed step ends the attempt: recorded with its error, the run retried (transient) or failed.
    const failStep = async (err: SkillError) => {
      const finishedAt = new Date();
      const message = `${err.code}: ${err.message}`;
      // A worker shutting down aborts the call: the attempt is abandoned (aborted), not failed,
      // so it does not count against max_attempts, and the run resumes at once elsewhere.
      const shutdown = err.code === "ABORTED" && helpers.abortSignal.aborted;
      // The failed step is announced in its own transaction (it ends the attempt), after what went before.
      await ctx.announcer.flush();
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
    const next = nextStep(ctx, plan, planStep + 1);
    // The statement that ends the attempt announces its step itself, after what went before.
    if (!next) await ctx.announcer.flush();
    try {
      adv = await advance(
        ctx.pool,
        a,
        { stepIndex, planStep },
        {
          skill: step.skill,
          input: step.input,
          output: result.output ?? null,
          startedAt,
          finishedAt: new Date(),
          durationMs: result.durationMs,
          costCents: result.costCents ?? 0,
        },
        next,
      );
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
    ctx.announcer.announce(adv.announce_channels, adv.announce_payloads);
  }
}
