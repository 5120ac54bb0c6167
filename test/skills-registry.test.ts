// The registry, its mirror in runproof.skills, and runSkill (validation, timeouts, error mapping).
import test from "ava";
import { z } from "zod";
import { builtinSkills, registerSkillsInDatabase, runSkill, SkillRegistry } from "../src/skills/registry.ts";
import { defineSkill, SkillError } from "../src/skills/types.ts";
import { createTestDatabase } from "./helpers/db.ts";
import { skillContext } from "./helpers/skills.ts";

let db: Awaited<ReturnType<typeof createTestDatabase>>;
test.before(async () => {
  db = await createTestDatabase("skills-registry");
});
test.after.always(async () => db?.drop());

async function skillError(p: Promise<unknown>): Promise<SkillError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  if (e instanceof SkillError) return e;
  throw e ?? new Error("expected a SkillError, but the call succeeded");
}

const skill = (
  name: string,
  run: (
    input: { x?: number },
    ctx: { signal: AbortSignal },
  ) => Promise<{ output: unknown; costCents?: number }>,
  extra = {},
) =>
  defineSkill({
    name,
    description: `test ${name}`,
    input: z.strictObject({ x: z.number().optional() }),
    sideEffects: false,
    defaultTimeoutMs: 1000,
    costCents: 0.5,
    run,
    ...extra,
  });

test("the built-in skills", (t) => {
  const registry = new SkillRegistry(builtinSkills());
  t.deepEqual(registry.names().sort(), [
    "http_call",
    "json_transform",
    "llm_complete",
    "memory_get",
    "memory_put",
    "noop",
    "wait",
  ]);
  t.is(registry.get("http_call")?.sideEffects, true);
  t.is(registry.get("nope"), undefined);
  t.is(registry.list().length, 7);
});

test("a name registered twice, or one SQL would refuse, is an error at startup", (t) => {
  const noop = builtinSkills().find((s) => s.name === "noop")!;
  t.throws(() => new SkillRegistry([noop, noop]), { message: 'skill "noop" is registered twice' });
  t.throws(() => new SkillRegistry([{ ...noop, name: "Bad-Name" }]), { message: /must match/ });
});

test("registerSkillsInDatabase mirrors every skill into runproof.skills, with a JSON Schema of its input", async (t) => {
  const registry = new SkillRegistry(builtinSkills());
  t.deepEqual((await registerSkillsInDatabase(db.pool, registry)).sort(), registry.names().sort());
  const { rows } = await db.pool.query(
    `select name, description, input_schema, side_effects, default_timeout_ms, enabled, cost_cents::float8 as cost_cents
       from runproof.skills where name = any($1) order by name`,
    [registry.names()],
  );
  t.is(rows.length, 7);
  for (const row of rows) {
    const s = registry.get(row.name)!;
    t.like(row, {
      description: s.description,
      side_effects: s.sideEffects,
      default_timeout_ms: s.defaultTimeoutMs,
      enabled: true,
      cost_cents: s.costCents,
    });
    t.is(row.input_schema.type, "object", row.name);
  }
  const http = rows.find((r) => r.name === "http_call")!.input_schema;
  t.deepEqual(http.required, ["url"]);
  t.false(http.additionalProperties);
  t.deepEqual(http.properties.method.enum, ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);
  t.is(rows.find((r) => r.name === "llm_complete")!.cost_cents, 1);

  // Plans may now name them (the SQL check reads this table).
  await t.notThrowsAsync(
    db.pool.query(`select runproof_private.validate_plan($1)`, [
      {
        version: 1,
        steps: [
          { skill: "memory_put", input: { key: "k", value: 1 } },
          { skill: "llm_complete", input: { prompt: "hi" } },
        ],
      },
    ]),
  );
});

test("registering again updates the row and re-enables a disabled skill", async (t) => {
  const first = skill("registry_probe", async () => ({ output: 1 }));
  await registerSkillsInDatabase(db.pool, new SkillRegistry([first]));
  const {
    rows: [before],
  } = await db.pool.query(
    `select registered_at, updated_at from runproof.skills where name = 'registry_probe'`,
  );
  await db.pool.query(`update runproof.skills set enabled = false where name = 'registry_probe'`);
  const second = skill("registry_probe", async () => ({ output: 2 }), {
    description: "changed",
    costCents: 2.25,
    defaultTimeoutMs: 4000,
  });
  await registerSkillsInDatabase(db.pool, new SkillRegistry([second]));
  const {
    rows: [after],
  } = await db.pool.query(
    `select description, enabled, default_timeout_ms, cost_cents::float8 as cost_cents, registered_at, updated_at from runproof.skills where name = 'registry_probe'`,
  );
  t.like(after, { description: "changed", enabled: true, default_timeout_ms: 4000, cost_cents: 2.25 });
  t.deepEqual(after.registered_at, before.registered_at);
  t.true(after.updated_at >= before.updated_at);
});

test("concurrent registrations (several workers starting at once) all succeed", async (t) => {
  const registry = new SkillRegistry(builtinSkills());
  await t.notThrowsAsync(
    Promise.all(Array.from({ length: 6 }, () => registerSkillsInDatabase(db.pool, registry))),
  );
});

test("runSkill returns output, cost and a duration in ms with at most 3 decimals", async (t) => {
  const r = await runSkill(
    skill("ok", async (input) => ({ output: { got: input.x } })),
    { x: 2 },
    skillContext(),
  );
  t.deepEqual(r.output, { got: 2 });
  t.is(r.costCents, 0.5, "the estimate when the skill reports no cost");
  t.true(r.durationMs >= 0);
  t.is(r.durationMs, Math.round(r.durationMs * 1000) / 1000);
  const paid = await runSkill(
    skill("paid", async () => ({ output: undefined, costCents: 0.123456 })),
    {},
    skillContext(),
  );
  t.deepEqual(paid, { output: null, costCents: 0.1235, durationMs: paid.durationMs });
});

test("runSkill refuses bad input before running the skill (INVALID_INPUT, permanent, readable)", async (t) => {
  let ran = false;
  const s = skill("strict", async () => {
    ran = true;
    return { output: null };
  });
  const e = await skillError(runSkill(s, { x: "two", y: 1 }, skillContext()));
  t.like(e, { code: "INVALID_INPUT", transient: false });
  t.is(
    e.message,
    'invalid input for strict: x: Invalid input: expected number, received string; (input): Unrecognized key: "y"',
  );
  t.false(ran);
  t.is(typeof e.durationMs, "number");
});

test("runSkill times out even a skill that ignores its signal (TIMEOUT, transient)", async (t) => {
  let sawAbort = false;
  const stubborn = skill("stubborn", async (_input, ctx) => {
    ctx.signal.addEventListener("abort", () => (sawAbort = true));
    await new Promise((r) => setTimeout(r, 2000));
    return { output: "too late" };
  });
  const started = performance.now();
  const e = await skillError(runSkill(stubborn, {}, skillContext(), 60));
  t.like(e, { code: "TIMEOUT", transient: true, message: "stubborn timed out after 60 ms" });
  t.true(performance.now() - started < 1000);
  t.true(sawAbort, "the skill was told to stop");
  t.true(e.durationMs! >= 55);
});

test("runSkill: cancellation is ABORTED (transient); a SkillError passes through; any other throw is SKILL_ERROR (permanent)", async (t) => {
  const slow = skill(
    "slow",
    (_i, ctx) =>
      new Promise((_r, reject) => ctx.signal.addEventListener("abort", () => reject(new Error("stopped")))),
  );
  const ac = new AbortController();
  setTimeout(() => ac.abort(new Error("job cancelled")), 20);
  t.like(await skillError(runSkill(slow, {}, skillContext({ signal: ac.signal }), 5000)), {
    code: "ABORTED",
    transient: true,
    message: "slow was aborted: job cancelled",
  });
  // Already cancelled: the skill does not start.
  let started = false;
  const s = skill("never", async () => {
    started = true;
    return { output: 1 };
  });
  t.like(await skillError(runSkill(s, {}, skillContext({ signal: ac.signal }))), { code: "ABORTED" });
  t.false(started);

  const own = skill("own", async () => {
    throw new SkillError("rate limited", { code: "UPSTREAM", transient: true });
  });
  t.like(await skillError(runSkill(own, {}, skillContext())), {
    code: "UPSTREAM",
    transient: true,
    message: "rate limited",
  });
  const buggy = skill("buggy", async () => {
    throw new TypeError("x is not a function");
  });
  const e = await skillError(runSkill(buggy, {}, skillContext()));
  t.like(e, { code: "SKILL_ERROR", transient: false, message: "buggy failed: x is not a function" });
  t.true(e.cause instanceof TypeError);
});

test("the step timeout defaults to the skill default_timeout_ms", async (t) => {
  const s = skill(
    "short",
    (_i, ctx) =>
      new Promise((_r, reject) => ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason))),
    { defaultTimeoutMs: 40 },
  );
  t.like(await skillError(runSkill(s, {}, skillContext())), {
    code: "TIMEOUT",
    message: "short timed out after 40 ms",
  });
});
