// The skills a worker can execute, their mirror in runproof.skills (so SQL can
// refuse a plan that names an unknown skill), and the one way a step calls a
// skill: validated input, a timeout, and errors mapped to retry-or-fail.
import type pg from "pg";
import { z } from "zod";
import { httpCall } from "./http_call.ts";
import { jsonTransform } from "./json_transform.ts";
import { llmComplete } from "./llm_complete.ts";
import { memoryGet } from "./memory_get.ts";
import { memoryPut } from "./memory_put.ts";
import { noop } from "./noop.ts";
import { abortedError, parseSkillInput, SkillError, type Skill, type SkillContext } from "./types.ts";
import { wait } from "./wait.ts";

/** Same rule as the CHECK on runproof.skills.name. */
const SKILL_NAME = /^[a-z][a-z0-9_]{0,62}$/;

export function builtinSkills(): Skill[] {
  return [httpCall, jsonTransform, llmComplete, memoryGet, memoryPut, noop, wait];
}

export class SkillRegistry {
  readonly #skills = new Map<string, Skill>();

  constructor(skills: Skill[]) {
    for (const skill of skills) {
      if (!SKILL_NAME.test(skill.name)) {
        throw new Error(
          `skill name "${skill.name}" must match ${SKILL_NAME} (lower case, digits, underscores)`,
        );
      }
      if (this.#skills.has(skill.name)) throw new Error(`skill "${skill.name}" is registered twice`);
      this.#skills.set(skill.name, skill);
    }
  }

  get(name: string): Skill | undefined {
    return this.#skills.get(name);
  }

  list(): Skill[] {
    return [...this.#skills.values()];
  }

  names(): string[] {
    return [...this.#skills.keys()];
  }
}

/** The JSON Schema of what a plan step may pass: the input side (defaults make fields optional). */
export function skillInputJsonSchema(skill: Skill): Record<string, unknown> {
  try {
    return z.toJSONSchema(skill.input, { io: "input" }) as Record<string, unknown>;
  } catch (err) {
    throw new Error(
      `skill "${skill.name}": its input schema cannot be expressed as JSON Schema: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
}

/**
 * Upserts every skill into runproof.skills (re-enabling it) in one statement. Rows are
 * written in name order so concurrent workers registering at once cannot deadlock.
 * Skills that this worker does not know are left as they are: another worker version
 * may still serve them. Returns the registered names.
 */
export async function registerSkillsInDatabase(
  db: pg.Pool | pg.PoolClient | pg.Client,
  registry: SkillRegistry,
): Promise<string[]> {
  const rows = registry
    .list()
    .map((s) => ({
      name: s.name,
      description: s.description,
      input_schema: skillInputJsonSchema(s),
      side_effects: s.sideEffects,
      default_timeout_ms: s.defaultTimeoutMs,
      cost_cents: s.costCents,
    }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  await db.query(
    `insert into runproof.skills as k (name, description, input_schema, side_effects, default_timeout_ms, cost_cents, enabled, updated_at)
     select name, description, input_schema, side_effects, default_timeout_ms, cost_cents, true, now()
       from jsonb_to_recordset($1::jsonb) as r(name text, description text, input_schema jsonb, side_effects boolean,
                                              default_timeout_ms integer, cost_cents numeric)
      order by name
     on conflict (name) do update
       set description = excluded.description, input_schema = excluded.input_schema, side_effects = excluded.side_effects,
           default_timeout_ms = excluded.default_timeout_ms, cost_cents = excluded.cost_cents, enabled = true, updated_at = now()`,
    [JSON.stringify(rows)],
  );
  return rows.map((r) => r.name);
}

export interface SkillRun {
  output: unknown;
  costCents: number;
  /** Wall time of the call in milliseconds, 3 decimals. */
  durationMs: number;
}

/**
 * Calls a skill for one step: validates the input (INVALID_INPUT, permanent), runs it
 * under `timeoutMs` combined with ctx.signal, and settles as soon as either fires even if
 * the skill ignores its signal (TIMEOUT or ABORTED, transient). A SkillError from the
 * skill passes through; anything else it throws is a bug: SKILL_ERROR, permanent.
 * A thrown SkillError carries durationMs too, for the failed step's record.
 */
export async function runSkill(
  skill: Skill,
  rawInput: unknown,
  ctx: SkillContext,
  timeoutMs: number = skill.defaultTimeoutMs,
): Promise<SkillRun> {
  const started = performance.now();
  const elapsed = () => Math.round((performance.now() - started) * 1000) / 1000;
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = AbortSignal.any([ctx.signal, timeout]);
  const abortError = () =>
    timeout.aborted && !ctx.signal.aborted
      ? new SkillError(`${skill.name} timed out after ${timeoutMs} ms`, {
          code: "TIMEOUT",
          transient: true,
          cause: timeout.reason,
        })
      : abortedError(ctx.signal, skill.name);

  let onAbort: (() => void) | undefined;
  try {
    if (signal.aborted) throw abortError();
    const input = parseSkillInput(skill, rawInput);
    const running = skill.run(input, { ...ctx, signal });
    // The race may settle first; the skill's own late rejection must not go unhandled.
    running.catch(() => {});
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(abortError());
      signal.addEventListener("abort", onAbort, { once: true });
    });
    const result = await Promise.race([running, aborted]);
    const cost = result.costCents ?? skill.costCents;
    if (!Number.isFinite(cost) || cost < 0) {
      throw new SkillError(`${skill.name} reported an invalid cost: ${cost}`, {
        code: "SKILL_ERROR",
        transient: false,
      });
    }
    return {
      output: result.output === undefined ? null : result.output,
      costCents: Math.round(cost * 10000) / 10000,
      durationMs: elapsed(),
    };
  } catch (err) {
    const e =
      err instanceof SkillError
        ? err
        : signal.aborted
          ? abortError()
          : new SkillError(`${skill.name} failed: ${(err as Error)?.message ?? String(err)}`, {
              code: "SKILL_ERROR",
              transient: false,
              cause: err,
            });
    e.durationMs = elapsed();
    throw e;
  } finally {
    if (onAbort) signal.removeEventListener("abort", onAbort);
  }
}
