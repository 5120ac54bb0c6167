// memory_get: reads a key from the calling agent's memory (runproof.agent_memory).
// A missing key is an answer ({found: false}), not an error, so plans can branch on it.
import { z } from "zod";
import { memoryKey } from "./memory_put.ts";
import { databaseFailure } from "./pg-errors.ts";
import { abortedError, defineSkill } from "./types.ts";

export const memoryGetInput = z.strictObject({ key: memoryKey });

export type MemoryGetInput = z.output<typeof memoryGetInput>;

export const memoryGet = defineSkill({
  name: "memory_get",
  description: "Reads a key from this agent's memory; returns {found, value} (value is null when not found).",
  input: memoryGetInput,
  sideEffects: false,
  defaultTimeoutMs: 10000,
  costCents: 0,
  async run(input, ctx) {
    if (ctx.signal.aborted) throw abortedError(ctx.signal, "memory_get");
    try {
      const { rows } = await ctx.pool.query<{ value: unknown }>(
        `select value from runproof.agent_memory where tenant_id = $1 and agent_id = $2 and key = $3`,
        [ctx.tenantId, ctx.agentId, input.key],
      );
      return { output: rows.length ? { found: true, value: rows[0].value } : { found: false, value: null } };
    } catch (err) {
      throw databaseFailure(err, "memory_get");
    }
  },
});
