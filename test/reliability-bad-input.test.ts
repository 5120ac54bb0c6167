// The bad-input catalogue: malformed, oversized, hostile and odd-Unicode input through every
// interface (SQL, GraphQL over HTTP, the CLI). Each case gets a clear error (a code and a
// message, never a 500 or a masked "unexpected error"), and the row counts of every table a
// write could touch prove nothing was half-written. The tests are serial: the counts are global.
import test from "ava";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { builtinSkills, registerSkillsInDatabase, SkillRegistry } from "../src/skills/registry.ts";
import { runCli } from "./helpers/cli.ts";
import { createTestDatabase, type TestDatabase } from "./helpers/db.ts";
import { apiTenant, gql, startTestServer, type ApiTenant, type TestServer } from "./helpers/graphql.ts";
import { appendStep, completedRun, insertRun, startAttempt } from "./helpers/ledger.ts";

let db: TestDatabase;
let server: TestServer;
let a: ApiTenant;
let tmp: string;
let finishedRun: string;
let runningTrace: string;

test.before(async () => {
  db = await createTestDatabase("bad-input");
  await registerSkillsInDatabase(db.pool, new SkillRegistry(builtinSkills()));
  // Many refused documents in quick succession, each charged the cost limit: this file checks what
  // each refusal says, not the cost per second (test/graphql-tenant-limits.test.ts does), so the
  // tenant may spend more per second here.
  server = await startTestServer(db.url, { env: { RUNPROOF_TENANT_COST_PER_SECOND: "100000000" } });
  a = await apiTenant(db.pool, "bad-input-tenant");
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "runproof-bad-input-"));
  const f = { tenantId: a.tenantId, agentId: a.agentId };
  finishedRun = (await completedRun(db.pool, f, { stepsPerTrace: 1 })).runId;
  const open = await insertRun(db.pool, f, { steps: 2 });
  runningTrace = await startAttempt(db.pool, f, open);
  await appendStep(db.pool, f, open, runningTrace, 0);
  // A run with an idempotency key, for the "same key, different request" case.
  await db.pool.query(`select runproof.enqueue_run($1, $2, 'the original request', 'ava', $3, 'key-1')`, [
    a.tenantId,
    a.agentId,
    JSON.stringify(PLAN),
  ]);
});
test.after.always(async () => {
  await server?.stop();
  await db?.drop();
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
});

const PLAN = { version: 1, steps: [{ skill: "noop", input: { a: 1 } }] };
const INJECTION_1 = "'; drop table runproof.runs; --";
const INJECTION_2 = `" or 1=1 --`;
const RTL_OVERRIDE = "\u202e";
const ZERO_WIDTH = "\u200b";
const EMOJI = "\u{1F680}"; // 4 bytes in UTF-8, 2 UTF-16 code units, 1 character for Postgres
const COMBINING = "e\u0301"; // 2 characters that render as one

const COUNTS = `select (select count(*) from runproof.runs)::int as runs, (select count(*) from runproof.traces)::int as traces,
  (select count(*) from runproof.trace_steps)::int as steps, (select count(*) from runproof.policy_decisions)::int as decisions,
  (select count(*) from runproof.incidents)::int as incidents, (select count(*) from graphile_worker.jobs)::int as jobs,
  (select count(*) from runproof.agents)::int as agents, (select count(*) from runproof.tenants)::int as tenants,
  (select count(*) from runproof_private.api_keys)::int as api_keys`;

interface Outcome {
  code: string;
  message: string;
  status?: number;
}

const cases: Array<{ iface: "SQL" | "GraphQL" | "CLI"; name: string }> = [];
function badInput(
  iface: "SQL" | "GraphQL" | "CLI",
  name: string,
  code: string | RegExp,
  message: RegExp,
  attempt: () => Promise<Outcome>,
) {
  cases.push({ iface, name });
  test.serial(`${iface}: ${name} -> ${code}`, async (t) => {
    const before = (await db.pool.query(COUNTS)).rows[0];
    const o = await attempt();
    if (typeof code === "string") t.is(o.code, code, o.message);
    else t.regex(o.code, code, o.message);
    t.regex(o.message, message);
    if (o.status !== undefined)
      t.true(o.status < 500, `HTTP ${o.status}: a caller's mistake, not a server error`);
    t.notRegex(o.message, /unexpected error/i, "never the masked internal error");
    t.deepEqual((await db.pool.query(COUNTS)).rows[0], before, "nothing was written, not even in part");
    const {
      rows: [r],
    } = await db.pool.query(`select to_regclass('runproof.runs') is not null as ok`);
    t.true(r.ok, "runproof.runs is still there");
  });
}

// ---- SQL: the functions every interface calls ----------------------------------------------

async function sql(text: string, args: unknown[] = []): Promise<Outcome> {
  try {
    await db.pool.query(text, args);
  } catch (e) {
    const pe = e as { code?: string; message: string };
    return { code: pe.code ?? "?", message: pe.message };
  }
  return { code: "OK", message: "the statement succeeded" };
}
const enqueue = (
  o: {
    tenant?: unknown;
    agent?: unknown;
    goal?: unknown;
    origin?: unknown;
    plan?: unknown;
    key?: unknown;
    attempts?: unknown;
  } = {},
) =>
  sql(`select runproof.enqueue_run($1, $2, $3, $4, $5, $6, $7)`, [
    "tenant" in o ? o.tenant : a.tenantId,
    "agent" in o ? o.agent : a.agentId,
    "goal" in o ? o.goal : "a goal",
    "origin" in o ? o.origin : "ava",
    "plan" in o ? o.plan : JSON.stringify(PLAN),
    o.key ?? null,
    o.attempts ?? 3,
  ]);
const planWith = (steps: unknown[]) => JSON.stringify({ version: 1, steps });

badInput("SQL", "NULL tenant", "RPVAL", /^tenant_id is required$/, () => enqueue({ tenant: null }));
badInput(
  "SQL",
  "a tenant id that is not a UUID",
  "22P02",
  /^invalid input syntax for type uuid: "not-a-uuid"$/,
  () => enqueue({ tenant: "not-a-uuid" }),
);
badInput(
  "SQL",
  `an injection string as the tenant id: ${INJECTION_1}`,
  "22P02",
  /invalid input syntax for type uuid/,
  () => enqueue({ tenant: INJECTION_1 }),
);
badInput(
  "SQL",
  `an injection string as the agent id: ${INJECTION_2}`,
  "22P02",
  /invalid input syntax for type uuid/,
  () => enqueue({ agent: INJECTION_2 }),
);
badInput("SQL", "NULL goal", "RPVAL", /^goal must not be blank$/, () => enqueue({ goal: null }));
badInput("SQL", "a goal of spaces, tabs and newlines", "RPVAL", /^goal must not be blank$/, () =>
  enqueue({ goal: " \t\r\n " }),
);
badInput("SQL", "a goal of zero-width spaces and a BOM", "RPVAL", /^goal must not be blank$/, () =>
  enqueue({ goal: `${ZERO_WIDTH}${ZERO_WIDTH}\ufeff` }),
);
badInput(
  "SQL",
  "a goal of 10,001 4-byte emoji (characters are counted, not bytes)",
  "RPVAL",
  /^goal is 10001 characters long; at most 10000 are allowed$/,
  () => enqueue({ goal: EMOJI.repeat(10_001) }),
);
badInput("SQL", "a NUL byte in the goal", "22021", /^invalid byte sequence for encoding "UTF8": 0x00$/, () =>
  enqueue({ goal: "before\u0000after" }),
);
badInput(
  "SQL",
  "a lone surrogate as UTF-8 bytes (Postgres refuses it; a JS driver would send U+FFFD instead)",
  "22021",
  /^invalid byte sequence for encoding "UTF8": 0xed 0xa0 0x80$/,
  () =>
    sql(`select runproof.enqueue_run($1, $2, convert_from('\\xeda080'::bytea, 'UTF8'), 'ava', $3)`, [
      a.tenantId,
      a.agentId,
      JSON.stringify(PLAN),
    ]),
);
badInput("SQL", "NULL origin_system_id", "23502", /origin_system_id/, () => enqueue({ origin: null }));
badInput("SQL", "a blank origin_system_id", "RPOBL", /^origin_system_id must not be blank$/, () =>
  enqueue({ origin: "" }),
);
badInput(
  "SQL",
  "an RTL override inside origin_system_id",
  "RPOCH",
  /has leading or trailing whitespace, or control or invisible characters/,
  () => enqueue({ origin: `billing${RTL_OVERRIDE}ecivres` }),
);
badInput(
  "SQL",
  "a zero-width space inside origin_system_id",
  "RPOCH",
  /control or invisible characters/,
  () => enqueue({ origin: `billing${ZERO_WIDTH}service` }),
);
badInput(
  "SQL",
  "an origin_system_id of 129 characters",
  "RPOLN",
  /^origin_system_id is 129 characters long; at most 128 are allowed$/,
  () => enqueue({ origin: "x".repeat(129) }),
);
badInput(
  "SQL",
  "the reserved origin LEGACY-MIGRATION, upper case",
  "RPORS",
  /is reserved and cannot be used for new runs/,
  () => enqueue({ origin: "LEGACY-MIGRATION" }),
);
badInput("SQL", "a plan that is not JSON", "22P02", /^invalid input syntax for type json$/, () =>
  enqueue({ plan: `{"version": 1, "steps": [` }),
);
badInput("SQL", "a plan that is a JSON array", "RPPLN", /^plan must be a JSON object, got array$/, () =>
  enqueue({ plan: "[1, 2]" }),
);
badInput("SQL", "a plan of 1,001 steps", "RPPLN", /^plan has 1001 steps; at most 1000 are allowed$/, () =>
  enqueue({ plan: planWith(Array.from({ length: 1001 }, () => ({ skill: "noop" }))) }),
);
badInput("SQL", "a plan over 1 MiB", "RPPLN", /^plan is \d+ bytes; at most 1 MiB is allowed$/, () =>
  enqueue({ plan: planWith([{ skill: "noop", input: { blob: "x".repeat(1_100_000) } }]) }),
);
badInput(
  "SQL",
  "a plan step input nested 65 levels deep (the worker could not record it; was retried forever)",
  "RPPLN",
  /^plan step 0 input is nested more than 64 levels deep$/,
  () =>
    enqueue({
      plan: `{"version": 1, "steps": [{"skill": "noop", "input": {"x": ${"[".repeat(65)}${"]".repeat(65)}}}]}`,
    }),
);
badInput("SQL", "a plan nested 100,000 levels deep", "54001", /^stack depth limit exceeded$/, () =>
  enqueue({
    plan: `{"version": 1, "steps": [{"skill": "noop", "input": {"x": ${"[".repeat(100_000)}${"]".repeat(100_000)}}}]}`,
  }),
);
badInput(
  "SQL",
  "an unknown skill named by an injection string",
  "RPSKL",
  /^plan step 0 names unknown skill '''; drop table runproof\.runs; --'$/,
  () => enqueue({ plan: planWith([{ skill: INJECTION_1 }]) }),
);
badInput(
  "SQL",
  "\\u0000 inside a JSON string of the plan",
  "22P05",
  /^unsupported Unicode escape sequence$/,
  () => enqueue({ plan: planWith([{ skill: "noop", input: { x: "a\u0000b" } }]) }),
);
badInput(
  "SQL",
  "a lone surrogate escape (\\ud800) in the plan",
  "22P02",
  /^invalid input syntax for type json$/,
  () => enqueue({ plan: `{"version": 1, "steps": [{"skill": "noop", "input": {"x": "\\ud800"}}]}` }),
);
badInput(
  "SQL",
  "a negative step timeout",
  "RPPLN",
  /timeout_ms must be a number of milliseconds from 1 to 3600000/,
  () => enqueue({ plan: planWith([{ skill: "noop", timeout_ms: -1 }]) }),
);
badInput("SQL", "max_attempts -1", "RPVAL", /^max_attempts must be from 1 to 20, got -1$/, () =>
  enqueue({ attempts: -1 }),
);
badInput(
  "SQL",
  "an idempotency key of 201 characters",
  "RPVAL",
  /^idempotency_key must be 1 to 200 non-blank characters$/,
  () => enqueue({ key: "k".repeat(201) }),
);
badInput(
  "SQL",
  "an idempotency key reused for a different request",
  "RPIDM",
  /^idempotency_key 'key-1' was already used for a different run$/,
  () => enqueue({ goal: "another request", key: "key-1" }),
);
badInput(
  "SQL",
  "a negative daily budget",
  "RPVAL",
  /^daily budget must be a number of cents from 0 to 9999999999\.9999, got -1$/,
  () => sql(`select runproof_private.create_tenant('neg', -1)`),
);
badInput("SQL", "a NaN daily budget (was accepted: an unlimited budget)", "RPVAL", /got NaN$/, () =>
  sql(`select runproof_private.create_tenant('nan', 'NaN')`),
);
badInput("SQL", "an infinite daily budget", "RPVAL", /got Infinity$/, () =>
  sql(`select runproof_private.create_tenant('inf', 'Infinity')`),
);
badInput("SQL", "a tenant name of ideographic spaces", "RPVAL", /^tenant name must not be blank$/, () =>
  sql(`select runproof_private.create_tenant($1)`, ["\u3000\u3000"]),
);
badInput(
  "SQL",
  "a tenant name that already exists",
  "RPVAL",
  /^a tenant named 'bad-input-tenant' already exists$/,
  () => sql(`select runproof_private.create_tenant('bad-input-tenant')`),
);
badInput(
  "SQL",
  "an agent name of 201 characters made of combining accents (code points are counted)",
  "RPVAL",
  /^agent name is 402 characters long; at most 200 are allowed$/,
  () => sql(`select runproof.create_agent($1, tenant_id => $2)`, [COMBINING.repeat(201), a.tenantId]),
);
badInput(
  "SQL",
  "an agent allowed an unknown skill (an injection string)",
  "RPSKL",
  /^allowed_skills names unknown skills: /,
  () => sql(`select runproof.create_agent('x', '', $1, $2)`, [[INJECTION_2], a.tenantId]),
);
badInput(
  "SQL",
  "a tenant name with a bidi isolate (U+2067)",
  "RPVAL",
  /^tenant name "acme\\u2067x" contains control, invisible or bidirectional formatting characters$/,
  () => sql(`select runproof_private.create_tenant($1)`, ["acme\u2067x"]),
);
badInput(
  "SQL",
  "an agent name with a control character (ESC)",
  "RPVAL",
  /^agent name .* contains control, invisible or bidirectional formatting characters$/,
  () => sql(`select runproof.create_agent($1, tenant_id => $2)`, ["bell\u001b[31m", a.tenantId]),
);
badInput(
  "SQL",
  "an agent allowed 101 skills",
  "RPVAL",
  /^allowed_skills lists 101 skills; at most 100 are allowed$/,
  () =>
    sql(`select runproof.create_agent('many', '', $1, $2)`, [
      Array.from({ length: 101 }, () => "noop"),
      a.tenantId,
    ]),
);
badInput(
  "SQL",
  "an API key that expired before it was made",
  "RPVAL",
  /^API key expiry .* is not in the future$/,
  () => sql(`select runproof_private.create_api_key($1, 'x', now() - interval '1 day')`, [a.tenantId]),
);
badInput(
  "SQL",
  "a plan step whose input does not fit its skill's schema",
  "RPPLN",
  /^plan step 0 \(http_call\) input has unknown key 'uri' \(known: /,
  () =>
    enqueue({
      plan: { version: 1, steps: [{ skill: "http_call", input: { url: "http://127.0.0.1/", uri: "x" } }] },
    }),
);
badInput(
  "SQL",
  "an API key for a tenant that does not exist",
  "RPNFD",
  /^tenant 00000000-0000-0000-0000-000000000000 not found$/,
  () => sql(`select runproof_private.create_api_key('00000000-0000-0000-0000-000000000000')`),
);
badInput(
  "SQL",
  "cancelling a run that does not exist",
  "RPNFD",
  /^run 00000000-0000-0000-0000-000000000000 not found for tenant/,
  () =>
    sql(`select runproof.cancel_run('00000000-0000-0000-0000-000000000000', tenant_id => $1)`, [a.tenantId]),
);
badInput(
  "SQL",
  "a cancel reason of 2,001 characters (it becomes the run's error)",
  "RPVAL",
  /^cancel reason is 2001 characters long; at most 2000 are allowed$/,
  () => sql(`select runproof.cancel_run($1, $2, $3)`, [finishedRun, "r".repeat(2001), a.tenantId]),
);
badInput("SQL", "cancelling a finished run", "RPSTS", /^run .* is already succeeded$/, () =>
  sql(`select runproof.cancel_run($1, tenant_id => $2)`, [finishedRun, a.tenantId]),
);
badInput("SQL", "archiving a trace that is still running", "RPSTS", /^trace .* is still running$/, () =>
  sql(`select runproof.archive_trace($1, $2)`, [runningTrace, a.tenantId]),
);

// ---- GraphQL over HTTP: the same functions behind an API key -------------------------------

const ENQUEUE = `mutation($input: EnqueueRunInput!) { enqueueRun(input: $input) { run { id } } }`;
async function graphql(
  query: string,
  variables?: Record<string, unknown>,
  rawBody?: string,
): Promise<Outcome> {
  let status: number;
  let body: any;
  if (rawBody !== undefined) {
    const res = await fetch(server.url, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${a.apiKey}` },
      body: rawBody,
    });
    status = res.status;
    body = JSON.parse(await res.text());
  } else {
    const r = await gql(server.url, a.apiKey, query, variables);
    status = r.status;
    body = r.body;
  }
  const e = body.errors?.[0];
  if (!e) return { code: "OK", message: JSON.stringify(body.data), status };
  // Errors GraphQL itself raises carry no SQLSTATE: a malformed or oversized body has its HTTP status
  // (400, 413); a query or variables that do not fit the schema are GraphQL validation errors.
  return {
    code:
      e.extensions?.code ??
      (e.extensions?.statusCode ? String(e.extensions.statusCode) : "GRAPHQL_VALIDATION"),
    message: e.message,
    status,
  };
}
const enqueueGql = (input: Record<string, unknown>) =>
  graphql(ENQUEUE, {
    input: { agentId: a.agentId, goal: "a goal", originSystemId: "ava", plan: PLAN, ...input },
  });
const rawEnqueue = (inputJson: string) =>
  graphql("", undefined, `{"query": ${JSON.stringify(ENQUEUE)}, "variables": {"input": ${inputJson}}}`);

badInput(
  "GraphQL",
  "an agent id that is not a UUID",
  "GRAPHQL_VALIDATION",
  /^Variable "\$input" got invalid value "not-a-uuid" at "input\.agentId"; Invalid UUID/,
  () => enqueueGql({ agentId: "not-a-uuid" }),
);
badInput(
  "GraphQL",
  `an injection string as a run id: ${INJECTION_1}`,
  "GRAPHQL_VALIDATION",
  /Invalid UUID/,
  () => graphql(`mutation($r: UUID!) { cancelRun(input: { runId: $r }) { run { id } } }`, { r: INJECTION_1 }),
);
badInput(
  "GraphQL",
  "a NUL character in the goal",
  "22021",
  /^invalid byte sequence for encoding "UTF8": 0x00$/,
  () => enqueueGql({ goal: "a\u0000b" }),
);
badInput("GraphQL", "\\u0000 inside the plan", "22P05", /^unsupported Unicode escape sequence$/, () =>
  enqueueGql({ plan: { version: 1, steps: [{ skill: "noop", input: { x: "a\u0000b" } }] } }),
);
badInput(
  "GraphQL",
  "a lone surrogate in the goal (the driver would have stored U+FFFD)",
  "INVALID_UNICODE",
  /\.variables\.input\.goal contains a lone UTF-16 surrogate/,
  () =>
    rawEnqueue(
      `{"agentId": "${a?.agentId}", "goal": "x\\ud800y", "originSystemId": "ava", "plan": ${JSON.stringify(PLAN)}}`,
    ),
);
badInput(
  "GraphQL",
  "a plan nested 20,000 levels deep",
  "JSON_TOO_DEEP",
  /^The request nests JSON more than 256 levels deep/,
  () =>
    rawEnqueue(
      `{"agentId": "${a?.agentId}", "goal": "x", "originSystemId": "ava", "plan": {"version": 1, "steps": [{"skill": "noop", "input": {"x": ${"[".repeat(20_000)}${"]".repeat(20_000)}}}]}}`,
    ),
);
badInput(
  "GraphQL",
  "a body that is not valid UTF-8",
  "INVALID_UTF8",
  /^The request body is not valid UTF-8/,
  async () => {
    const body = Buffer.concat([
      Buffer.from(
        `{"query": ${JSON.stringify(ENQUEUE)}, "variables": {"input": {"agentId": "${a.agentId}", "goal": "`,
      ),
      Buffer.from([0xff, 0xfe]),
      Buffer.from(`", "originSystemId": "ava"}}}`),
    ]);
    const res = await fetch(server.url, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${a.apiKey}` },
      body,
    });
    const e = JSON.parse(await res.text()).errors[0];
    return { code: e.extensions.code, message: e.message, status: res.status };
  },
);
badInput("GraphQL", "malformed JSON", "400", /^Parsing failed/, () =>
  graphql("", undefined, `{"query": "mutation {`),
);
badInput(
  "GraphQL",
  "a body over 2 MiB",
  "BODY_TOO_LARGE",
  /^The request body is larger than the limit of 2097152 bytes\.$/,
  () => enqueueGql({ goal: "x".repeat(3_000_000) }),
);
badInput(
  "GraphQL",
  "an application/graphql body with bytes FF FE in the goal (it bypassed the UTF-8 check)",
  "INVALID_UTF8",
  /^The request body is not valid UTF-8/,
  async () => {
    const body = Buffer.concat([
      Buffer.from(`mutation { enqueueRun(input: { agentId: "${a.agentId}", originSystemId: "ava", goal: "`),
      Buffer.from([0xff, 0xfe]),
      Buffer.from(`" }) { run { id } } }`),
    ]);
    const res = await fetch(server.url, {
      method: "POST",
      headers: { "content-type": "application/graphql", authorization: `Bearer ${a.apiKey}` },
      body,
    });
    const e = JSON.parse(await res.text()).errors[0];
    return { code: e.extensions.code, message: e.message, status: res.status };
  },
);
badInput(
  "GraphQL",
  "a plan literal nested 5,000 deep in the query text (was: Maximum call stack size exceeded)",
  "QUERY_NESTING_TOO_DEEP",
  /^The query nests brackets more than 256 levels deep/,
  () =>
    graphql(
      `mutation { enqueueRun(input: { agentId: "${a?.agentId}", goal: "g", originSystemId: "ava", plan: { version: 1, steps: [{ skill: "noop", input: ${"{ a: ".repeat(5000)}1${" }".repeat(5000)} }] } }) { run { id } } }`,
    ),
);
badInput(
  "GraphQL",
  "an agent description of 2,001 characters (was: the raw constraint name)",
  "RPVAL",
  /^agent description is 2001 characters long; at most 2000 are allowed$/,
  () =>
    graphql(
      `mutation($d: String) { createAgent(input: { name: "long-desc", description: $d }) { agent { id } } }`,
      {
        d: "d".repeat(2001),
      },
    ),
);
badInput(
  "GraphQL",
  "allowedSkills: [null]",
  "RPVAL",
  /^allowed_skills must not contain null \(element 1 is null\)$/,
  () =>
    graphql(
      `mutation { createAgent(input: { name: "null-skill", allowedSkills: [null] }) { agent { id } } }`,
    ),
);
badInput(
  "GraphQL",
  "an agent name with a right-to-left override",
  "RPVAL",
  /^agent name "evil\\u202egnp\.exe" contains control, invisible or bidirectional formatting characters$/,
  () =>
    graphql(`mutation($n: String!) { createAgent(input: { name: $n }) { agent { id } } }`, {
      n: `evil${RTL_OVERRIDE}gnp.exe`,
    }),
);
badInput(
  "GraphQL",
  'a wait step of "abc" ms (was: failed only at run time)',
  "RPPLN",
  /^plan step 0 \(wait\) input\.ms must be an integer, got "abc"$/,
  () => enqueueGql({ plan: { version: 1, steps: [{ skill: "wait", input: { ms: "abc" } }] } }),
);
badInput("GraphQL", "a GraphQL syntax error", "GRAPHQL_VALIDATION", /^Syntax Error/, () =>
  graphql(`mutation { enqueueRun(`),
);
badInput(
  "GraphQL",
  "max_attempts beyond a 32-bit integer",
  "GRAPHQL_VALIDATION",
  /Int cannot represent non 32-bit signed integer value/,
  () => enqueueGql({ maxAttempts: 99_999_999_999 }),
);
badInput("GraphQL", "a goal of 10,001 characters", "RPVAL", /^goal is 10001 characters long/, () =>
  enqueueGql({ goal: "g".repeat(10_001) }),
);
badInput("GraphQL", "an RTL override in originSystemId", "RPOCH", /control or invisible characters/, () =>
  enqueueGql({ originSystemId: `a${RTL_OVERRIDE}b` }),
);
badInput("GraphQL", "a plan that is a JSON string", "RPPLN", /^plan must be a JSON object, got string$/, () =>
  enqueueGql({ plan: "not a plan" }),
);
badInput(
  "GraphQL",
  "a plan naming an unknown skill",
  "RPSKL",
  /^plan step 0 names unknown skill 'http_cal'$/,
  () => enqueueGql({ plan: { version: 1, steps: [{ skill: "http_cal" }] } }),
);
badInput("GraphQL", "a negative maxAttempts", "RPVAL", /^max_attempts must be from 1 to 20, got -5$/, () =>
  enqueueGql({ maxAttempts: -5 }),
);
badInput("GraphQL", "an agent name of zero-width spaces", "RPVAL", /^agent name must not be blank$/, () =>
  graphql(`mutation($n: String!) { createAgent(input: { name: $n }) { agent { id } } }`, {
    n: ZERO_WIDTH.repeat(3),
  }),
);
badInput(
  "GraphQL",
  "an agent allowed an injection string as a skill",
  "RPSKL",
  /^allowed_skills names unknown skills: '; drop table runproof\.runs; --$/,
  () =>
    graphql(
      `mutation($s: [String]) { createAgent(input: { name: "x", allowedSkills: $s }) { agent { id } } }`,
      { s: [INJECTION_1] },
    ),
);

// ---- The CLI: the same functions from a terminal (exit 2: usage or invalid input, 4: not found) ----

async function cli(args: string[]): Promise<Outcome> {
  const r = await runCli(args, { env: { DATABASE_URL: db.url } });
  return { code: `exit ${r.code}`, message: r.stderr.trim() };
}
badInput("CLI", "run --tenant-id that is not a UUID", "exit 2", /"not-a-uuid" is not a UUID/, () =>
  cli(["run", "--tenant-id", "not-a-uuid", "--agent", "agent", "--goal", "g"]),
);
badInput(
  "CLI",
  "run --plan-file with malformed JSON",
  "exit 2",
  /^runproof: the plan file .*bad-plan\.json is not JSON: /,
  async () => {
    const file = path.join(tmp, "bad-plan.json");
    await fs.writeFile(file, `{"version": 1, "steps": [`);
    return cli(["run", "--tenant-id", a.tenantId, "--agent", "agent", "--goal", "g", "--plan-file", file]);
  },
);
badInput(
  "CLI",
  "run --origin-system-id with a zero-width space",
  "exit 2",
  /control or invisible characters/,
  () =>
    cli([
      "run",
      "--tenant-id",
      a.tenantId,
      "--agent",
      "agent",
      "--goal",
      "g",
      "--origin-system-id",
      `cli${ZERO_WIDTH}x`,
    ]),
);
badInput(
  "CLI",
  "run --plan-file with bytes that are not UTF-8 (was: stored as U+FFFD)",
  "exit 2",
  /^runproof: the plan file .*latin1-plan\.json is not valid UTF-8\n\s+hint: save the file as UTF-8/,
  async () => {
    const file = path.join(tmp, "latin1-plan.json");
    await fs.writeFile(
      file,
      Buffer.concat([
        Buffer.from(`{"version": 1, "steps": [{"skill": "noop", "input": {"x": "`),
        Buffer.from([0xff, 0xfe]),
        Buffer.from(`"}}]}`),
      ]),
    );
    return cli(["run", "--tenant-id", a.tenantId, "--agent", "agent", "--goal", "g", "--plan-file", file]);
  },
);
badInput(
  "CLI",
  "run --plan-file nested 20,000 levels deep",
  "exit 2",
  /^runproof: the plan file .*deep-plan\.json: The request nests JSON more than 256 levels deep/,
  async () => {
    const file = path.join(tmp, "deep-plan.json");
    await fs.writeFile(
      file,
      `{"version": 1, "steps": [{"skill": "noop", "input": {"x": ${"[".repeat(20_000)}${"]".repeat(20_000)}}}]}`,
    );
    return cli(["run", "--tenant-id", a.tenantId, "--agent", "agent", "--goal", "g", "--plan-file", file]);
  },
);
badInput(
  "CLI",
  "agent create --name with a right-to-left override",
  "exit 2",
  /agent name "x\\u202ey" contains control, invisible or bidirectional formatting characters/,
  () => cli(["agent", "create", "--tenant-id", a.tenantId, "--name", `x${RTL_OVERRIDE}y`]),
);
badInput("CLI", "run with a blank goal", "exit 2", /goal must not be blank/, () =>
  cli(["run", "--tenant-id", a.tenantId, "--agent", "agent", "--goal", "   "]),
);
badInput("CLI", "tenant create --budget-cents NaN", "exit 2", /"NaN" is not an amount of cents/, () =>
  cli(["tenant", "create", "nan-tenant", "--budget-cents", "NaN"]),
);
badInput(
  "CLI",
  "agent create --allowed-skills with an unknown skill",
  "exit 2",
  /allowed_skills names unknown skills: nope/,
  () =>
    cli(["agent", "create", "--tenant-id", a.tenantId, "--name", "cli-agent", "--allowed-skills", "nope"]),
);

test.serial(
  "injection strings and odd Unicode in free-text fields are data: stored verbatim, nothing else happens",
  async (t) => {
    const goal = `${INJECTION_1} ${INJECTION_2} ${RTL_OVERRIDE}${COMBINING}${EMOJI}${ZERO_WIDTH} done`;
    const before = (await db.pool.query(COUNTS)).rows[0];
    const {
      rows: [r],
    } = await db.pool.query(`select id, goal from runproof.enqueue_run($1, $2, $3, $4, $5, $6)`, [
      a.tenantId,
      a.agentId,
      goal,
      `svc-${EMOJI}-${COMBINING}`,
      JSON.stringify(PLAN),
      INJECTION_2,
    ]);
    t.is(r.goal, goal, "byte for byte");
    const after = (await db.pool.query(COUNTS)).rows[0];
    t.deepEqual(
      after,
      { ...before, runs: before.runs + 1, jobs: before.jobs + 1 },
      "exactly one run and its job",
    );
    const {
      rows: [{ n }],
    } = await db.pool.query(
      `select count(*)::int as n from runproof.runs where goal = $1 and idempotency_key = $2`,
      [goal, INJECTION_2],
    );
    t.is(n, 1);
  },
);

test.serial("the catalogue covers at least 30 bad inputs across SQL, GraphQL and the CLI", (t) => {
  const by = (i: string) => cases.filter((c) => c.iface === i).length;
  t.true(cases.length >= 30, `${cases.length} cases`);
  for (const i of ["SQL", "GraphQL", "CLI"]) t.true(by(i) > 0, i);
  t.log(
    `${cases.length} bad inputs: ${by("SQL")} SQL, ${by("GraphQL")} GraphQL, ${by("CLI")} CLI; each a clear error, nothing written`,
  );
});
