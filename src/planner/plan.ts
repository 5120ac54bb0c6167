// The plan format, checked here with zod and again in SQL (runproof_private.validate_plan) when stored.
import { z } from "zod";

export const planStepSchema = z.strictObject({
  skill: z.string().regex(/^[a-z][a-z0-9_]{0,62}$/, "a registered skill name"),
  input: z.record(z.string(), z.unknown()).default({}),
  title: z.string().max(500).optional(),
  timeout_ms: z.number().int().min(1).max(3_600_000).optional(),
});

export const planSchema = z.strictObject({
  version: z.literal(1),
  planner: z.string().min(1).max(100).optional(),
  steps: z.array(planStepSchema).min(1).max(1000),
  notes: z.string().max(10_000).optional(),
});

export type Plan = z.infer<typeof planSchema>;
export type PlanStep = z.infer<typeof planStepSchema>;

export class PlanError extends Error {
  constructor(
    message: string,
    readonly transient = false,
  ) {
    super(message);
    this.name = "PlanError";
  }
}

/** Parses a plan and checks every step names one of `skills`; throws PlanError saying what is wrong. */
export function parsePlan(raw: unknown, skills: readonly string[]): Plan {
  const parsed = planSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join(".") || "(plan)"}: ${i.message}`).join("; ");
    throw new PlanError(`invalid plan: ${issues}`);
  }
  parsed.data.steps.forEach((s, i) => {
    if (!skills.includes(s.skill)) {
      throw new PlanError(
        `invalid plan: step ${i} names unknown skill '${s.skill}' (registered: ${skills.join(", ")})`,
      );
    }
  });
  return parsed.data;
}
