// memory_put / memory_get: per-agent JSON memory in runproof.agent_memory.
import test from "ava";
import { randomUUID } from "node:crypto";
import { memoryGet } from "../src/skills/memory_get.ts";
import { memoryPut } from "../src/skills/memory_put.ts";
import { runSkill } from "../src/skills/registry.ts";
import { SkillError, type SkillContext } from "../src/skills/types.ts";
import { createTestDatabase } from "./helpers/db.ts";
import { skillContext } from "./helpers/skills.ts";

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let tenantId: string;
const agents: string[] = [];

test.before(async () => {
  db = await createTestDatabase("skills-memory");
  ({
    rows: [{ id: tenantId }],
  } = await db.pool.query(`insert into runproof.tenants (name) values ('memory tenant') returning id`));
  for (const name of ["one", "two"]) {
    const {
      rows: [a],
    } = await db.pool.query(`insert into runproof.agents (tenant_id, name) values ($1, $2) returning id`, [
      tenantId,
      name,
    ]);
    agents.push(a.id);
  }
});
test.after.always(async () => db?.drop());

const ctxFor = (agentId: string, extra: Partial<SkillContext> = {}) =>
  skillContext({ tenantId, agentId, pool: db.pool, ...extra });

async function skillError(p: Promise<unknown>): Promise<SkillError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  if (e instanceof SkillError) return e;
  throw e ?? new Error("expected a SkillError, but the call succeeded");
}

test("what is put can be got back, for every kind of JSON value", async (t) => {
  const values = [
    { a: 1, nested: { b: [1, "x", null] } },
    ["x", 2, false],
    "just a string",
    42.5,
    true,
    null,
  ];
  for (const [i, value] of values.entries()) {
    const key = `kind-${i}`;
    t.deepEqual((await memoryPut.run({ key, value }, ctxFor(agents[0]))).output, { key, created: true });
    t.deepEqual((await memoryGet.run({ key }, ctxFor(agents[0]))).output, { found: true, value }, key);
  }
  const {
    rows: [row],
  } = await db.pool.query(`select jsonb_typeof(value) as t from runproof.agent_memory where key = 'kind-2'`);
  t.is(row.t, "string", "a string is stored as a JSON string");
});

test("a missing key is {found: false, value: null}, not an error", async (t) => {
  t.deepEqual((await memoryGet.run({ key: "never-written" }, ctxFor(agents[0]))).output, {
    found: false,
    value: null,
  });
});

test("a second put overwrites and records which run wrote it", async (t) => {
  const runId = randomUUID();
  await memoryPut.run({ key: "counter", value: 1 }, ctxFor(agents[0]));
  const r = await runSkill(memoryPut, { key: "counter", value: 2 }, ctxFor(agents[0], { runId }));
  t.deepEqual(r.output, { key: "counter", created: false });
  t.is(r.costCents, 0);
  t.deepEqual((await memoryGet.run({ key: "counter" }, ctxFor(agents[0]))).output, { found: true, value: 2 });
  const {
    rows: [row],
  } = await db.pool.query(
    `select updated_by_run_id from runproof.agent_memory where tenant_id = $1 and agent_id = $2 and key = 'counter'`,
    [tenantId, agents[0]],
  );
  t.is(row.updated_by_run_id, runId);
});

test("each agent has its own memory", async (t) => {
  await memoryPut.run({ key: "mine", value: "agent one" }, ctxFor(agents[0]));
  t.deepEqual((await memoryGet.run({ key: "mine" }, ctxFor(agents[1]))).output, {
    found: false,
    value: null,
  });
  await memoryPut.run({ key: "mine", value: "agent two" }, ctxFor(agents[1]));
  t.deepEqual((await memoryGet.run({ key: "mine" }, ctxFor(agents[0]))).output, {
    found: true,
    value: "agent one",
  });
  t.deepEqual((await memoryGet.run({ key: "mine" }, ctxFor(agents[1]))).output, {
    found: true,
    value: "agent two",
  });
});

test("writing for an agent that does not exist is AGENT_NOT_FOUND (permanent)", async (t) => {
  const e = await skillError(memoryPut.run({ key: "k", value: 1 }, ctxFor(randomUUID())));
  t.like(e, { code: "AGENT_NOT_FOUND", transient: false });
});

test("keys are 1 to 200 characters, value is required, no extra keys", async (t) => {
  const bad = [
    { key: "", value: 1 },
    { key: "x".repeat(201), value: 1 },
    { key: "k" },
    { key: "k", value: 1, agent_id: agents[1] },
  ];
  for (const input of bad) {
    t.like(
      await skillError(memoryPut.run(input as never, ctxFor(agents[0]))),
      { code: "INVALID_INPUT", transient: false },
      JSON.stringify(input).slice(0, 80),
    );
  }
  t.like(await skillError(memoryGet.run({ key: "" }, ctxFor(agents[0]))), { code: "INVALID_INPUT" });
  t.deepEqual((await memoryPut.run({ key: "x".repeat(200), value: 1 }, ctxFor(agents[0]))).output, {
    key: "x".repeat(200),
    created: true,
  });
});

test("an aborted step does not touch memory", async (t) => {
  const ac = new AbortController();
  ac.abort(new Error("cancelled"));
  t.like(
    await skillError(memoryPut.run({ key: "aborted", value: 1 }, ctxFor(agents[0], { signal: ac.signal }))),
    { code: "ABORTED", transient: true },
  );
  t.deepEqual((await memoryGet.run({ key: "aborted" }, ctxFor(agents[0]))).output, {
    found: false,
    value: null,
  });
});
