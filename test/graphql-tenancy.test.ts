// Tenant isolation over GraphQL: with its API key, tenant A cannot read, list, enqueue
// for, cancel, archive, prove or follow tenant B's runs, agents or traces. Row level
// security hides B's rows; the SECURITY DEFINER functions check the request's tenant.
// B's data is made with raw SQL, as the CLI would.
import test from "ava";
import { createTestDatabase, type TestDatabase } from "./helpers/db.ts";
import {
  apiTenant,
  gql,
  gqlOk,
  startTestServer,
  subscribe,
  type ApiTenant,
  type TestServer,
} from "./helpers/graphql.ts";
import { completedRun, planOf } from "./helpers/ledger.ts";

let db: TestDatabase;
let server: TestServer;
let a: ApiTenant;
let b: ApiTenant;
let aRun: string;
let bPlannedRun: string;
let bFinishedRun: string;
let bTrace: string;

test.before(async () => {
  db = await createTestDatabase("graphql-tenancy");
  server = await startTestServer(db.url);
  a = await apiTenant(db.pool, "tenant-a");
  b = await apiTenant(db.pool, "tenant-b");
  ({
    rows: [{ id: aRun }],
  } = await db.pool.query(
    `select id from runproof.enqueue_run(tenant_id => $1, agent_id => $2, goal => 'a goal', origin_system_id => 'ava', plan => $3)`,
    [a.tenantId, a.agentId, planOf(1)],
  ));
  ({
    rows: [{ id: bPlannedRun }],
  } = await db.pool.query(
    `select id from runproof.enqueue_run(tenant_id => $1, agent_id => $2, goal => 'b secret goal', origin_system_id => 'ava', plan => $3)`,
    [b.tenantId, b.agentId, planOf(1)],
  ));
  const finished = await completedRun(
    db.pool,
    { tenantId: b.tenantId, agentId: b.agentId },
    { stepsPerTrace: 2 },
  );
  bFinishedRun = finished.runId;
  bTrace = finished.traceIds[0]!;
});
test.after.always(async () => {
  await server?.stop();
  await db?.drop();
});

test("A sees its own tenant, runs and agents, and none of B's", async (t) => {
  const data = await gqlOk(
    server.url,
    a.apiKey,
    `{
    currentTenant { id name }
    runs { totalCount nodes { id goal } }
    agents { totalCount nodes { id } }
  }`,
  );
  t.deepEqual(data.currentTenant, { id: a.tenantId, name: "tenant-a" });
  t.deepEqual(
    data.runs.nodes.map((r: { id: string }) => r.id),
    [aRun],
  );
  t.is(data.runs.totalCount, 1);
  t.deepEqual(
    data.agents.nodes.map((x: { id: string }) => x.id),
    [a.agentId],
  );
  t.false(JSON.stringify(data).includes("b secret goal"));
});

test("A cannot read B's run, agent or trace by id (they look like missing ones)", async (t) => {
  const data = await gqlOk(
    server.url,
    a.apiKey,
    `query($run: UUID!, $done: UUID!, $agent: UUID!, $trace: UUID!) {
    planned: run(id: $run) { id goal }
    finished: run(id: $done) { id proof { verificationStatus } traces { nodes { id } } }
    agent(id: $agent) { id }
    trace(id: $trace) { id proof { verificationStatus } }
  }`,
    { run: bPlannedRun, done: bFinishedRun, agent: b.agentId, trace: bTrace },
  );
  t.deepEqual(data, { planned: null, finished: null, agent: null, trace: null });
  // B itself sees them, with a VERIFIED proof: the nulls above are isolation, not missing data.
  const own = await gqlOk(
    server.url,
    b.apiKey,
    `query($done: UUID!, $trace: UUID!) {
    run(id: $done) { id proof { verificationStatus } }
    trace(id: $trace) { id proof { verificationStatus } }
  }`,
    { done: bFinishedRun, trace: bTrace },
  );
  t.is(own.run.proof.verificationStatus, "VERIFIED");
  t.is(own.trace.proof.verificationStatus, "VERIFIED");
});

test("A cannot list B's runs by filtering on B's agent or tenant", async (t) => {
  const data = await gqlOk(
    server.url,
    a.apiKey,
    `query($agent: UUID!, $tenant: UUID!) {
    byAgent: runs(condition: { agentId: $agent }) { totalCount }
    byTenant: runs(condition: { tenantId: $tenant }) { totalCount }
    agents(condition: { tenantId: $tenant }) { totalCount }
  }`,
    { agent: b.agentId, tenant: b.tenantId },
  );
  t.deepEqual(data, { byAgent: { totalCount: 0 }, byTenant: { totalCount: 0 }, agents: { totalCount: 0 } });
});

test("A cannot enqueue a run for B's agent, nor for B's tenant id", async (t) => {
  const forAgent = await gql(
    server.url,
    a.apiKey,
    `mutation($agent: UUID!) {
    enqueueRun(input: { agentId: $agent, goal: "steal", originSystemId: "ava", plan: { version: 1, steps: [{ skill: "noop" }] } }) { run { id } }
  }`,
    { agent: b.agentId },
  );
  t.is(forAgent.body.errors?.[0]?.extensions?.code, "RPNFD");
  t.regex(forAgent.body.errors![0]!.message, /^agent .* not found for tenant/);

  const forTenant = await gql(
    server.url,
    a.apiKey,
    `mutation($tenant: UUID!, $agent: UUID!) {
    enqueueRun(input: { tenantId: $tenant, agentId: $agent, goal: "steal", originSystemId: "ava" }) { run { id } }
  }`,
    { tenant: b.tenantId, agent: b.agentId },
  );
  t.is(forTenant.body.errors?.[0]?.extensions?.code, "42501");
  t.regex(forTenant.body.errors![0]!.message, /is not the tenant of this request/);

  const { rows } = await db.pool.query(`select count(*)::int as n from runproof.runs where goal = 'steal'`);
  t.is(rows[0].n, 0);
});

test("A cannot create an agent in B's tenant", async (t) => {
  const r = await gql(
    server.url,
    a.apiKey,
    `mutation($tenant: UUID!) {
    createAgent(input: { tenantId: $tenant, name: "intruder" }) { agent { id } }
  }`,
    { tenant: b.tenantId },
  );
  t.is(r.body.errors?.[0]?.extensions?.code, "42501");
  const { rows } = await db.pool.query(
    `select count(*)::int as n from runproof.agents where name = 'intruder'`,
  );
  t.is(rows[0].n, 0);
});

test("A cannot cancel B's run", async (t) => {
  const r = await gql(
    server.url,
    a.apiKey,
    `mutation($run: UUID!) { cancelRun(input: { runId: $run }) { run { id status } } }`,
    { run: bPlannedRun },
  );
  t.is(r.body.errors?.[0]?.extensions?.code, "RPNFD");
  t.is(r.body.data?.cancelRun, null);
  const { rows } = await db.pool.query(`select status from runproof.runs where id = $1`, [bPlannedRun]);
  t.is(rows[0].status, "planned");
  // With B's own id passed explicitly it is refused as another tenant's.
  const explicit = await gql(
    server.url,
    a.apiKey,
    `mutation($run: UUID!, $tenant: UUID!) { cancelRun(input: { runId: $run, tenantId: $tenant }) { run { id } } }`,
    { run: bPlannedRun, tenant: b.tenantId },
  );
  t.is(explicit.body.errors?.[0]?.extensions?.code, "42501");
});

test("A cannot archive B's trace", async (t) => {
  const r = await gql(
    server.url,
    a.apiKey,
    `mutation($trace: UUID!) { archiveTrace(input: { traceId: $trace }) { trace { id archivedAt } } }`,
    { trace: bTrace },
  );
  t.is(r.body.errors?.[0]?.extensions?.code, "RPNFD");
  const { rows } = await db.pool.query(`select archived_at from runproof.traces where id = $1`, [bTrace]);
  t.is(rows[0].archived_at, null);
});

test("A cannot follow B's run live", async (t) => {
  const sub = await subscribe(
    server.url,
    a.apiKey,
    `subscription($run: UUID!) { runUpdated(runId: $run) { event status } }`,
    { run: bPlannedRun },
  );
  const result = await sub.done;
  // Refused when the source stream is created: graphql-ws sends the error as the only result.
  const errors = result.errors ?? sub.events.flatMap((e) => e.errors ?? []);
  t.is(errors[0]?.extensions?.code, "RPNFD");
  t.regex(errors[0]?.message, /^run .* not found/);
  t.deepEqual(
    sub.events.filter((e) => e.data?.runUpdated),
    [],
  );
});

test("B's own key can do what A's could not", async (t) => {
  // Runs of its own, so the tests above (run concurrently) still see B's fixtures untouched.
  const {
    rows: [{ id: run }],
  } = await db.pool.query(
    `select id from runproof.enqueue_run(tenant_id => $1, agent_id => $2, goal => 'b goal', origin_system_id => 'ava', plan => $3)`,
    [b.tenantId, b.agentId, planOf(1)],
  );
  const {
    traceIds: [trace],
  } = await completedRun(db.pool, { tenantId: b.tenantId, agentId: b.agentId }, { stepsPerTrace: 1 });
  const data = await gqlOk(
    server.url,
    b.apiKey,
    `mutation($run: UUID!, $trace: UUID!) {
    cancelRun(input: { runId: $run, reason: "by B" }) { run { id status error } }
    archiveTrace(input: { traceId: $trace }) { trace { id archivedAt proof { verificationStatus } } }
  }`,
    { run, trace },
  );
  t.deepEqual(data.cancelRun.run, { id: run, status: "cancelled", error: "by B" });
  t.truthy(data.archiveTrace.trace.archivedAt);
  t.is(data.archiveTrace.trace.proof.verificationStatus, "VERIFIED");
});
