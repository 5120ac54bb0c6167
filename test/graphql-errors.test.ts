// Error mapping: errors the ledger raises on purpose (SQLSTATE RP***, 23***, 28000,
// 42501, P0001) and data exceptions about the caller's input (22***) reach the client
// with their message and extensions { code, hint, detail }; anything unexpected is
// masked to a generic message with an error id, and the real error is logged under that id.
import test from "ava";
import { createTestDatabase, type TestDatabase } from "./helpers/db.ts";
import { apiTenant, gql, startTestServer, type ApiTenant, type TestServer } from "./helpers/graphql.ts";
import { completedRun } from "./helpers/ledger.ts";

let db: TestDatabase;
let server: TestServer;
let a: ApiTenant;

test.before(async () => {
  db = await createTestDatabase("graphql-errors");
  server = await startTestServer(db.url);
  a = await apiTenant(db.pool);
});
test.after.always(async () => {
  await server?.stop();
  await db?.drop();
});

const ENQUEUE = `mutation($input: EnqueueRunInput!) { enqueueRun(input: $input) { run { id status } } }`;
const plan = { version: 1, steps: [{ skill: "noop", input: { x: 1 } }] };

async function enqueueError(input: Record<string, unknown>) {
  const r = await gql(server.url, a.apiKey, ENQUEUE, {
    input: { agentId: a.agentId, goal: "a goal", originSystemId: "ava", plan, ...input },
  });
  return { r, error: r.body.errors?.[0] };
}

test("the reserved origin 'legacy-migration' is RPORS with the message, the hint and the reserved list", async (t) => {
  const { r, error } = await enqueueError({ originSystemId: "legacy-migration" });
  t.is(r.status, 200);
  t.deepEqual(r.body.data, { enqueueRun: null });
  t.is(error?.message, "origin_system_id 'legacy-migration' is reserved and cannot be used for new runs");
  t.is(error?.extensions?.code, "RPORS");
  t.regex(error?.extensions?.hint, /^pass origin_system_id: the identifier of the system creating the run/);
  t.regex(error?.extensions?.detail, /^reserved values: legacy-migration, /);
  t.deepEqual(error?.path, ["enqueueRun"]);
});

test("a blank goal is RPVAL with a hint", async (t) => {
  const { error } = await enqueueError({ goal: "   " });
  t.is(error?.message, "goal must not be blank");
  t.is(error?.extensions?.code, "RPVAL");
  t.regex(error?.extensions?.hint, /say what the run is for/);
});

test("a missing origin is the not-null violation (class 23) with its detail and hint", async (t) => {
  const { error } = await enqueueError({ originSystemId: null });
  t.is(error?.extensions?.code, "23502");
  t.regex(error?.message ?? "", /origin_system_id/);
  t.regex(error?.extensions?.detail, /no default on purpose/);
  t.truthy(error?.extensions?.hint);
});

test("a plan naming an unregistered skill is RPSKL, listing the registered ones", async (t) => {
  const { error } = await enqueueError({ plan: { version: 1, steps: [{ skill: "launch_missiles" }] } });
  t.is(error?.extensions?.code, "RPSKL");
  t.regex(error?.message ?? "", /unknown skill 'launch_missiles'/);
  t.regex(error?.extensions?.detail, /^registered skills: .*noop/);
});

test("another tenant's id is 42501", async (t) => {
  const b = await apiTenant(db.pool);
  const { error } = await enqueueError({ tenantId: b.tenantId });
  t.is(error?.extensions?.code, "42501");
  t.is(error?.extensions?.hint, "omit tenant_id, or use an API key of that tenant");
});

test("state errors are RPSTS: archiving twice", async (t) => {
  const {
    traceIds: [trace],
  } = await completedRun(db.pool, { tenantId: a.tenantId, agentId: a.agentId }, { stepsPerTrace: 1 });
  const q = `mutation($t: UUID!) { archiveTrace(input: { traceId: $t }) { trace { archivedAt } } }`;
  const first = await gql(server.url, a.apiKey, q, { t: trace });
  t.truthy(first.body.data.archiveTrace.trace.archivedAt);
  const second = await gql(server.url, a.apiKey, q, { t: trace });
  t.is(second.body.errors?.[0]?.extensions?.code, "RPSTS");
  t.is(second.body.errors?.[0]?.extensions?.hint, "archival happens once");
});

test("input Postgres cannot store (a NUL character) is a clear data exception (22021), not a masked error", async (t) => {
  const { r, error } = await enqueueError({ goal: "bad\u0000goal" });
  t.is(r.status, 200);
  t.deepEqual(r.body.data, { enqueueRun: null });
  t.is(error?.extensions?.code, "22021");
  t.is(error?.message, 'invalid byte sequence for encoding "UTF8": 0x00');
  const raw = JSON.stringify(r.body);
  for (const leak of ["insert", "select", "runproof.", "stack", "at "]) {
    t.false(raw.includes(leak), `response must not contain ${JSON.stringify(leak)}`);
  }
});

test("an unexpected database error is masked: generic message, error id, no SQL, no stack; logged under the id", async (t) => {
  // Break the database under the server: a function its SQL calls disappears (42883, nothing the caller did).
  await db.pool.query(
    `alter function runproof.runs_plan_step_count(runproof.runs) rename to runs_plan_step_count_gone`,
  );
  let r;
  try {
    r = await gql(server.url, a.apiKey, `{ runs { nodes { id planStepCount } } }`);
  } finally {
    await db.pool.query(
      `alter function runproof.runs_plan_step_count_gone(runproof.runs) rename to runs_plan_step_count`,
    );
  }
  const error = r.body.errors?.[0];
  t.is(r.status, 200);
  t.regex(error?.message ?? "", /^An unexpected error occurred \(error id [0-9a-f]{12}\)/);
  const errorId = error?.extensions?.errorId;
  t.regex(errorId, /^[0-9a-f]{12}$/);
  t.deepEqual(error?.extensions, { code: "INTERNAL_SERVER_ERROR", errorId });
  const raw = JSON.stringify(r.body);
  for (const leak of ["runs_plan_step_count", "does not exist", "select", "runproof.", "stack", "at "]) {
    t.false(raw.includes(leak), `response must not contain ${JSON.stringify(leak)}`);
  }
  const logged = server.logs.find((l) => l.errorId === errorId);
  t.truthy(logged, "the masked error is logged with its id");
  t.is(logged?.level, 50);
  t.is(logged?.sqlstate, "42883");
  t.regex(JSON.stringify(logged?.err), /does not exist/);
});

test("GraphQL validation errors are returned as they are", async (t) => {
  const r = await gql(server.url, a.apiKey, `{ runs { nodes { noSuchField } } }`);
  t.regex(r.body.errors?.[0]?.message ?? "", /Cannot query field "noSuchField" on type "Run"/);
});
