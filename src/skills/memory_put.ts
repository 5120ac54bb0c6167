// memory_put: stores a JSON value under a key in the calling agent's memory
// (runproof.agent_memory). The agent comes from the run, never from the input,
// so a plan cannot write another agent's memory. Last write wins.
import { z } from "zod";
import { databaseFailure } from "./pg-errors.ts";
import { abortedError, defineSkill, SkillError } from "./types.ts";

export const MAX_MEMORY_VALUE_BYTES = 1024 * 1024;

export const memoryKey = z.string().min(1).max(200).describe("Memory key, 1 to 200 characters");

export const memoryPutInput = z.strictObject({
  key: memoryKey,
  value: z.json().describe("Any JSON value"),
});

export type MemoryPutInput = z.output<typeof memoryPutInput>;

export const memoryPut = defineSkill({
  name: "memory_put",
  description: "Stores a JSON value under a key in this agent's memory; returns {key, created}.",
  input: memoryPutInput,
  sideEffects: true,
  defaultTimeoutMs: 10000,
  costCents: 0,
  async run(input, ctx) {
    if (ctx.signal.aborted) throw abortedError(ctx.signal, "memory_put");
    // Serialized here: pg would send a JS array as a Postgres array and a string as non-JSON text.
    const json = JSON.stringify(input.value);
    if (Buffer.byteLength(json) > MAX_MEMORY_VALUE_BYTES) {
      throw new SkillError(`memory_put: value is larger than ${MAX_MEMORY_VALUE_BYTES} bytes`, {
        code: "VALUE_TOO_LARGE",
        transient: false,
      });
    }
    try {
      const { rows } = await ctx.pool.query<{ created: boolean }>(
        `insert into runproof.agent_memory (tenant_id, agent_id, key, value, updated_at, updated_by_run_id)
         values ($1, $2, $3, $4::jsonb, now(), $5)
         on conflict (tenant_id, agent_id, key) do update
           set value = excluded.value, updated_at = excluded.updated_at, updated_by_run_id = excluded.updated_by_run_id
         returning (xmax = 0) as created`,
        [ctx.tenantId, ctx.agentId, input.key, json, ctx.runId],
      );
      return { output: { key: input.key, created: rows[0].created } };
    } catch (err) {
      if ((err as { code?: string }).code === "23503") {
        throw new SkillError(`memory_put: agent ${ctx.agentId} does not exist in tenant ${ctx.tenantId}`, {
          code: "AGENT_NOT_FOUND",
          transient: false,
          cause: err,
        });
      }
      throw databaseFailure(err, "memory_put");
    }
  },
});
