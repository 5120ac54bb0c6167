// Task plan_run: turns a pending run's goal into a plan and stores it (which queues execute_run).
import type { Task } from "graphile-worker";
import { builtinPlan } from "../src/planner/builtin.ts";
import { llmPlan } from "../src/planner/llm.ts";
import { parsePlan, PlanError, type Plan } from "../src/planner/plan.ts";
import { runJobPayload, type RunRow, type WorkerContext } from "../src/lib/worker-context.ts";
import { z } from "zod";

export function createPlanRunTask(ctx: WorkerContext): Task {
  return async (payload, helpers) => {
    await ctx.registerWorker(helpers.job.locked_by);
    const { tenant_id, run_id } = runJobPayload.parse(payload);
    const {
      rows: [run],
    } = await ctx.pool.query<RunRow>(`select * from runproof.runs where tenant_id = $1 and id = $2`, [
      tenant_id,
      run_id,
    ]);
    if (run?.status !== "pending") return; // already planned, cancelled or gone
    const names = ctx.registry.names();
    let plan: Plan;
    try {
      plan =
        ctx.config.planner === "llm"
          ? await llmPlan(
              run.goal,
              ctx.registry.list().map((s) => ({
                name: s.name,
                description: s.description,
                inputSchema: z.toJSONSchema(s.input),
              })),
              ctx.config,
              helpers.abortSignal,
            )
          : parsePlan(builtinPlan(run.goal, names), names);
    } catch (e) {
      if (e instanceof PlanError && e.transient) throw e; // graphile-worker retries the job with backoff
      const message = e instanceof Error ? e.message : String(e);
      await ctx.pool.query(`select runproof_private.fail_planning($1, $2, $3)`, [
        tenant_id,
        run_id,
        `planning failed: ${message}`,
      ]);
      ctx.logger.warn({ run_id, err: message }, "planning failed");
      return;
    }
    await ctx.pool.query(`select runproof_private.store_plan($1, $2, $3)`, [tenant_id, run_id, plan]);
    ctx.logger.info({ run_id, steps: plan.steps.length, planner: plan.planner }, "plan stored");
  };
}
