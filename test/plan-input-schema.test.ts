// Plan step inputs are checked against the input schema each skill registered
// (runproof.skills.input_schema, zod's JSON Schema of the built-in skills) when the plan is stored,
// by runproof_private.json_schema_problem (sql/common/json_schema.sql) inside validate_plan: a
// `wait` of "abc" ms is RPPLN naming the step and the field at enqueue, not a failure at run time.
import test from "ava";
import { builtinSkills, registerSkillsInDatabase, SkillRegistry } from "../src/skills/registry.ts";
import { createTestDatabase, type TestDatabase } from "./helpers/db.ts";
import { pgError } from "./helpers/ledger.ts";
import { tenantWithAgent } from "./helpers/worker.ts";

let db: TestDatabase;
let f: { tenantId: string; agentId: string };

test.before(async () => {
  db = await createTestDatabase("plan-input-schema");
  await registerSkillsInDatabase(db.pool, new SkillRegistry(builtinSkills()));
  f = await tenantWithAgent(db.pool);
});
test.after.always(async () => db?.drop());

const enqueue = (steps: unknown[]) =>
  db.pool.query(`select id, status from runproof.enqueue_run($1, $2, 'schema test', 'ava', $3::jsonb)`, [
    f.tenantId,
    f.agentId,
    JSON.stringify({ version: 1, steps }),
  ]);

const refused: Array<[string, unknown, string]> = [
  ["wait", { ms: "abc" }, 'plan step 0 (wait) input.ms must be an integer, got "abc"'],
  ["wait", { ms: 1.5 }, "plan step 0 (wait) input.ms must be an integer, got 1.5"],
  ["wait", {}, "plan step 0 (wait) input.ms is required"],
  ["wait", { ms: 700000 }, "plan step 0 (wait) input.ms must be at most 600000, got 700000"],
  ["wait", { ms: -1 }, "plan step 0 (wait) input.ms must be at least 0, got -1"],
  ["wait", { ms: 5, seconds: 1 }, "plan step 0 (wait) input has unknown key 'seconds' (known: ms)"],
  [
    "http_call",
    { url: "http://127.0.0.1/", method: "FETCH" },
    'plan step 0 (http_call) input.method must be one of "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", got "FETCH"',
  ],
  [
    "http_call",
    { url: "not a url" },
    'plan step 0 (http_call) input.url must be a URI with a scheme (e.g. https://...), got "not a url"',
  ],
  ["http_call", { method: "GET" }, "plan step 0 (http_call) input.url is required"],
  [
    "http_call",
    { url: "http://127.0.0.1/", headers: { "bad key": "v" } },
    `plan step 0 (http_call) the key "bad key" of input.headers must match the pattern ^[!#$%&'*+\\-.^_\`|~0-9A-Za-z]+$, got "bad key"`,
  ],
  [
    "http_call",
    { url: "http://127.0.0.1/", headers: { "x-a": 5 } },
    "plan step 0 (http_call) input.headers.x-a must be a string, got 5",
  ],
  [
    "http_call",
    { url: "http://127.0.0.1/", headers: { "x-a": "a\r\nx-injected: 1" } },
    'plan step 0 (http_call) input.headers.x-a must match the pattern ^[^\\r\\n\\0]*$, got "a\\r\\nx-injected: 1"',
  ],
  [
    "http_call",
    { url: "http://127.0.0.1/", expect_status: "200" },
    'plan step 0 (http_call) input.expect_status does not match any of its allowed forms, got "200"',
  ],
  [
    "http_call",
    { url: "http://127.0.0.1/", expect_status: [] },
    "plan step 0 (http_call) input.expect_status does not match any of its allowed forms, got []",
  ],
  [
    "llm_complete",
    { messages: [{ role: "robot", content: "hi" }] },
    'plan step 0 (llm_complete) input.messages[0].role must be one of "system", "user", "assistant", got "robot"',
  ],
  [
    "llm_complete",
    { prompt: "hi", temperature: 3 },
    "plan step 0 (llm_complete) input.temperature must be at most 2, got 3",
  ],
  [
    "json_transform",
    { expression: "" },
    "plan step 0 (json_transform) input.expression must be at least 1 characters long, got 0",
  ],
  [
    "memory_get",
    { key: "k".repeat(201) },
    "plan step 0 (memory_get) input.key must be at most 200 characters long, got 201",
  ],
  ["memory_put", { key: "k" }, "plan step 0 (memory_put) input.value is required"],
];

for (const [skill, input, message] of refused) {
  test.serial(
    `${skill} ${JSON.stringify(input).slice(0, 60)} is refused when stored: ${message.slice(0, 70)}`,
    async (t) => {
      const before = (await db.pool.query(`select count(*)::int as n from runproof.runs`)).rows[0].n;
      const e = await pgError(enqueue([{ skill, input }]));
      t.is(e.code, "RPPLN");
      t.is(e.message, message);
      t.regex(e.hint ?? "", new RegExp(`input_schema from runproof.skills where name = '${skill}'`));
      t.is(
        (await db.pool.query(`select count(*)::int as n from runproof.runs`)).rows[0].n,
        before,
        "nothing stored",
      );
    },
  );
}

test.serial("the step named is the one that is wrong", async (t) => {
  const e = await pgError(
    enqueue([
      { skill: "noop", input: { a: 1 } },
      { skill: "wait", input: { ms: 10 } },
      { skill: "wait", input: { ms: "abc" } },
    ]),
  );
  t.is(e.message, 'plan step 2 (wait) input.ms must be an integer, got "abc"');
});

test.serial(
  "inputs that fit their skill's schema are stored, including recursive and alternative forms",
  async (t) => {
    const { rows } = await enqueue([
      { skill: "noop" },
      { skill: "noop", input: { anything: [1, { b: null }] } },
      { skill: "wait", input: { ms: 0 } },
      { skill: "wait", input: { ms: 2.0 } },
      {
        skill: "http_call",
        input: {
          url: "http://127.0.0.1:9/x",
          method: "POST",
          headers: { "content-type": "application/json", "x-trace": "a b" },
          json: { deep: { ok: true } },
          expect_status: [200, 201],
          timeout_ms: 500,
          follow_redirects: false,
        },
      },
      { skill: "http_call", input: { url: "https://example.test", expect_status: 204 } },
      { skill: "json_transform", input: { expression: "a.b", data: { a: { b: 1 } }, bindings: { x: 1 } } },
      { skill: "llm_complete", input: { messages: [{ role: "user", content: "hi" }], max_tokens: 10 } },
      { skill: "memory_put", input: { key: "k", value: { list: [1, "two", { three: [null, true] }] } } },
      { skill: "memory_get", input: { key: "k" } },
    ]);
    t.is(rows[0].status, "planned");
  },
);

test.serial("a skill registered without a schema ({}) takes any object input", async (t) => {
  await db.pool.query(
    `insert into runproof.skills (name, description) values ('free_form', 'no schema') on conflict (name) do nothing`,
  );
  const { rows } = await enqueue([{ skill: "free_form", input: { whatever: "x", n: 1 } }]);
  t.is(rows[0].status, "planned");
});

test.serial(
  "json_schema_problem: $ref cycles that never reach the value stop instead of recursing for ever",
  async (t) => {
    const {
      rows: [r],
    } = await db.pool.query(
      `select runproof_private.json_schema_problem('{"$ref": "#/$defs/a", "$defs": {"a": {"$ref": "#/$defs/a"}}}'::jsonb, '1'::jsonb) as p`,
    );
    t.is(r.p, null);
  },
);
