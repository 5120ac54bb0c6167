// Task erase_expired_payloads (graphile-worker crontab, RUNPROOF_RETENTION_SCHEDULE): applies every
// tenant's payload retention. SQL decides what is expired and records each erasure
// (runproof_private.erase_expired_payloads); this task only runs it, until nothing is left.
import type { Task } from "graphile-worker";
import type { WorkerContext } from "../src/lib/worker-context.ts";

/** Steps erased per tenant per transaction: keeps each transaction short on a large backlog. */
const BATCH = 10_000;

export function createEraseExpiredPayloadsTask(ctx: WorkerContext): Task {
  return async () => {
    for (;;) {
      const { rows } = await ctx.pool.query<{ tenant_id: string; id: string; step_count: number }>(
        `select tenant_id, id, step_count from runproof_private.erase_expired_payloads($1)`,
        [BATCH],
      );
      for (const e of rows)
        ctx.logger.info(
          { tenant_id: e.tenant_id, erasure_id: e.id, steps: e.step_count },
          "payloads erased by retention",
        );
      if (!rows.some((e) => e.step_count >= BATCH)) return;
    }
  };
}
