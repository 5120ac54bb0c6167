// json_transform: a JSONata expression over `data` — reshaping one step's output
// into the next step's input without writing code. Pure and deterministic, so
// every failure is permanent; jsonata's own guardrails bound runaway expressions.
import jsonata from "jsonata";
import { z } from "zod";
import { abortedError, defineSkill, SkillError } from "./types.ts";

const GUARDRAILS = { timeout: 5000, stack: 1000, sequence: 1_000_000 };

export const jsonTransformInput = z.strictObject({
  expression: z.string().min(1).max(100_000).describe("JSONata expression, e.g. items[price > 10].name"),
  data: z.unknown().optional().describe("The JSON the expression is evaluated against"),
  bindings: z
    .record(z.string().regex(/^[A-Za-z_]\w*$/), z.unknown())
    .optional()
    .describe("Extra $variables"),
});

export type JsonTransformInput = z.output<typeof jsonTransformInput>;

interface JsonataError {
  code?: string;
  message?: string;
  position?: number;
  token?: string;
}

function describe(err: unknown): string {
  const e = err as JsonataError;
  const where = e.position !== undefined ? ` at position ${e.position}` : "";
  return `${e.code ? `${e.code} ` : ""}${e.message ?? String(err)}${where}`;
}

export const jsonTransform = defineSkill({
  name: "json_transform",
  description: "Evaluates a JSONata expression over `data` and returns {result} (null when nothing matches).",
  input: jsonTransformInput,
  sideEffects: false,
  defaultTimeoutMs: 10000,
  costCents: 0,
  async run(input, ctx) {
    let expr: jsonata.Expression;
    try {
      expr = jsonata(input.expression, GUARDRAILS);
    } catch (err) {
      throw new SkillError(`invalid JSONata expression: ${describe(err)}`, {
        code: "INVALID_EXPRESSION",
        transient: false,
        cause: err,
      });
    }
    // Evaluation is CPU-bound; checking the signal at each node lets a cancelled step stop early.
    // (jsonata looks the hook up by symbol; its typings only admit string names.)
    expr.assign(Symbol.for("jsonata.__evaluate_entry") as unknown as string, () => {
      if (ctx.signal.aborted) throw abortedError(ctx.signal, "json_transform");
    });
    let result: unknown;
    try {
      result = await expr.evaluate(input.data, input.bindings);
    } catch (err) {
      if (err instanceof SkillError) throw err;
      throw new SkillError(`JSONata evaluation failed: ${describe(err)}`, {
        code: "EVALUATION_ERROR",
        transient: false,
        cause: err,
      });
    }
    // Round-trip through JSON: jsonata returns sequences with extra properties and may
    // return functions; the ledger stores plain JSON. No match is null, not undefined.
    const json = result === undefined ? undefined : JSON.stringify(result);
    return { output: { result: json === undefined ? null : JSON.parse(json) } };
  },
});
