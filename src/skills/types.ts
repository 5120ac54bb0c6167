// The contract between plan steps and the code that executes them.
import type pg from "pg";
import type { z } from "zod";
import type { Config } from "../lib/config.ts";

export interface SkillContext {
  tenantId: string;
  agentId: string;
  runId: string;
  traceId: string;
  planStep: number;
  stepIndex: number;
  /** `${runId}:${planStep}`: stable across attempts, sent to side-effecting services. */
  idempotencyKey: string;
  /** Aborted on timeout or when the job is cancelled / the worker shuts down. */
  signal: AbortSignal;
  /** Owner connection (memory skills). */
  pool: pg.Pool;
  config: Config;
}

export interface SkillResult {
  output: unknown;
  costCents?: number;
}

// biome-ignore lint/suspicious/noExplicitAny: a registry holds skills of every input type
export interface Skill<I = any> {
  name: string;
  description: string;
  input: z.ZodType<I>;
  sideEffects: boolean;
  defaultTimeoutMs: number;
  /** Estimated cost per call, used by the budget policy before the call. */
  costCents: number;
  run(input: I, ctx: SkillContext): Promise<SkillResult>;
}

/**
 * A failed skill call. `transient` tells the worker whether another attempt may succeed
 * (timeouts, 5xx, lost connections) or the run should fail now (bad input, 4xx).
 */
export class SkillError extends Error {
  readonly code: string;
  readonly transient: boolean;
  /** Small, JSON-safe facts about the failure (an HTTP status), for the step's error record. */
  readonly details: Record<string, unknown> | undefined;
  /** Set by runSkill: how long the call ran before it failed. */
  durationMs?: number;

  constructor(
    message: string,
    opts: { code: string; transient: boolean; cause?: unknown; details?: Record<string, unknown> },
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "SkillError";
    this.code = opts.code;
    this.transient = opts.transient;
    this.details = opts.details;
  }

  toJSON(): { code: string; message: string; transient: boolean; details?: Record<string, unknown> } {
    return {
      code: this.code,
      message: this.message,
      transient: this.transient,
      ...(this.details && { details: this.details }),
    };
  }
}

/** "url: Invalid URL; headers.accept: expected string" — one line, fit for an error column. */
export function formatZodError(error: z.ZodError): string {
  return error.issues
    .map((i) => `${i.path.length ? i.path.map(String).join(".") : "(input)"}: ${issueText(i)}`)
    .join("; ");
}

// zod's top-level message for record keys and unions is generic ("Invalid key in
// record", "Invalid input"); the nested issues say what is actually wrong.
function issueText(issue: z.core.$ZodIssue): string {
  if (issue.code === "invalid_key" || issue.code === "invalid_element") {
    return `key ${issue.issues.map(issueText).join(", ")}`;
  }
  if (issue.code === "invalid_union" && issue.errors.length) {
    return issue.errors
      .map((alt) =>
        alt.map((i) => (i.path.length ? `${i.path.map(String).join(".")}: ` : "") + issueText(i)).join(", "),
      )
      .join(" or ");
  }
  return issue.message;
}

export function parseSkillInput<I>(skill: Pick<Skill<I>, "name" | "input">, raw: unknown): I {
  const parsed = skill.input.safeParse(raw);
  if (parsed.success) return parsed.data;
  throw new SkillError(`invalid input for ${skill.name}: ${formatZodError(parsed.error)}`, {
    code: "INVALID_INPUT",
    transient: false,
    cause: parsed.error,
  });
}

/** A skill from defineSkill: its run() also takes raw input (what a plan holds) and validates it. */
export type DefinedSkill<O, In = O> = Skill<O> & {
  input: z.ZodType<O, In>;
  run(input: In | O, ctx: SkillContext): Promise<SkillResult>;
};

/**
 * Builds a skill whose run() validates its input itself, so a direct call (a test, a
 * script) gets the same INVALID_INPUT error as a call through runSkill.
 */
export function defineSkill<O, In>(
  def: Omit<Skill<O>, "input"> & { input: z.ZodType<O, In> },
): DefinedSkill<O, In> {
  const skill: DefinedSkill<O, In> = {
    ...def,
    run: async (input: unknown, ctx: SkillContext) => def.run(parseSkillInput(skill, input), ctx),
  };
  return Object.freeze(skill);
}

/** The SkillError for an aborted signal: TIMEOUT if a timeout fired, else ABORTED (both transient). */
export function abortedError(signal: AbortSignal, what: string): SkillError {
  const reason = signal.reason as { name?: string; message?: string } | undefined;
  if (reason?.name === "TimeoutError") {
    return new SkillError(`${what} timed out`, { code: "TIMEOUT", transient: true, cause: reason });
  }
  return new SkillError(`${what} was aborted${reason?.message ? `: ${reason.message}` : ""}`, {
    code: "ABORTED",
    transient: true,
    cause: reason,
  });
}
