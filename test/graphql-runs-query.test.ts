// Listing runs: conditions on status, agent, origin and creation time, ordering, and
// cursor pagination; plus the cheap polling query for one run.
import test from "ava";
import { createTestDatabase, type TestDatabase } from "./helpers/db.ts";
import { apiTenant, gqlOk, startTestServer, type ApiTenant, type TestServer } from "./helpers/graphql.ts";
import { planOf } from "./helpers/ledger.ts";

let db: TestDatabase;
let server: TestServer;
let a: ApiTenant;
let secondAgent: string;
/** Runs in creation order: [id, origin, agent]. */
const runs: Array<{ id: string; origin: string; agentId: string; createdAt: string }> = [];

test.before(async () => {
  db = await createTestDatabase("graphql-runs-query");
  server = await startTestServer(db.url);
  a = await apiTenant(db.pool);
  ({
    rows: [{ id: secondAgent }],
  } = await db.pool.query(`select id from runproof.create_agent('second', tenant_id => $1)`, [a.tenantId]));
  for (let i = 0; i < 6; i++) {
    const origin = i % 2 === 0 ? "billing-service" : "runproof-cli";
    const agentId = i < 4 ? a.agentId : secondAgent;
    const {
      rows: [r],
    } = await db.pool.query(
      `select id, created_at from runproof.enqueue_run(tenant_id => $1, agent_id => $2, goal => $3, origin_system_id => $4, plan => $5)`,
      [a.tenantId, agentId, `goal ${i}`, origin, planOf(2)],
    );
    runs.push({ id: r.id, origin, agentId, createdAt: r.created_at.toISOString() });
  }
  // Two of them cancelled (a final status), the rest stay planned.
  for (const i of [1, 4])
    await db.pool.query(`select runproof.cancel_run($1, 'test', $2)`, [runs[i]!.id, a.tenantId]);
});
test.after.always(async () => {
  await server?.stop();
  await db?.drop();
});

const ids = (conn: { nodes: Array<{ id: string }> }) => conn.nodes.map((n) => n.id);
const newestFirst = () => [...runs].reverse().map((r) => r.id);

test("runs are newest first by default", async (t) => {
  const data = await gqlOk(server.url, a.apiKey, `{ runs { totalCount nodes { id } } }`);
  t.is(data.runs.totalCount, 6);
  t.deepEqual(ids(data.runs), newestFirst());
});

test("orderBy CREATED_AT_ASC reverses it", async (t) => {
  const data = await gqlOk(server.url, a.apiKey, `{ runs(orderBy: [CREATED_AT_ASC]) { nodes { id } } }`);
  t.deepEqual(
    ids(data.runs),
    runs.map((r) => r.id),
  );
});

test("filter by status, statusIn, agent and origin", async (t) => {
  const data = await gqlOk(
    server.url,
    a.apiKey,
    `query($agent: UUID!) {
    cancelled: runs(condition: { status: "cancelled" }) { nodes { id status } }
    open: runs(condition: { statusIn: ["planned", "running", "retrying"] }) { totalCount }
    byAgent: runs(condition: { agentId: $agent }) { nodes { id } }
    byOrigin: runs(condition: { originSystemId: "billing-service" }) { nodes { id originSystemId } }
    combined: runs(condition: { originSystemId: "runproof-cli", status: "planned" }) { nodes { id } }
  }`,
    { agent: secondAgent },
  );
  t.deepEqual(
    data.cancelled.nodes.map((n: { id: string }) => n.id).sort(),
    [runs[1]!.id, runs[4]!.id].sort(),
  );
  t.is(data.open.totalCount, 4);
  t.deepEqual(ids(data.byAgent), [runs[5]!.id, runs[4]!.id]);
  t.deepEqual(ids(data.byOrigin), [runs[4]!.id, runs[2]!.id, runs[0]!.id]);
  t.deepEqual(ids(data.combined), [runs[5]!.id, runs[3]!.id]);
});

test("filter by creation time: createdFrom is inclusive, createdBefore exclusive", async (t) => {
  const data = await gqlOk(
    server.url,
    a.apiKey,
    `query($from: Datetime!, $before: Datetime!) {
    window: runs(condition: { createdFrom: $from, createdBefore: $before }, orderBy: [CREATED_AT_ASC]) { nodes { id } }
    future: runs(condition: { createdFrom: "2999-01-01T00:00:00Z" }) { totalCount }
  }`,
    { from: runs[1]!.createdAt, before: runs[4]!.createdAt },
  );
  t.deepEqual(ids(data.window), [runs[1]!.id, runs[2]!.id, runs[3]!.id]);
  t.is(data.future.totalCount, 0);
});

test("cursor pagination walks every run once, forwards and backwards", async (t) => {
  const seen: string[] = [];
  let after: string | null = null;
  for (let page = 0; page < 10; page++) {
    const data: any = await gqlOk(
      server.url,
      a.apiKey,
      `query($after: Cursor) {
      runs(first: 4, after: $after) { nodes { id } pageInfo { hasNextPage endCursor } }
    }`,
      { after },
    );
    seen.push(...ids(data.runs));
    if (!data.runs.pageInfo.hasNextPage) break;
    after = data.runs.pageInfo.endCursor;
  }
  t.deepEqual(seen, newestFirst());

  const last = await gqlOk(
    server.url,
    a.apiKey,
    `{ runs(last: 2) { nodes { id } pageInfo { hasPreviousPage startCursor } } }`,
  );
  t.deepEqual(ids(last.runs), newestFirst().slice(4));
  t.true(last.runs.pageInfo.hasPreviousPage);
  const before = await gqlOk(
    server.url,
    a.apiKey,
    `query($c: Cursor) { runs(last: 2, before: $c) { nodes { id } } }`,
    { c: last.runs.pageInfo.startCursor },
  );
  t.deepEqual(ids(before.runs), newestFirst().slice(2, 4));
});

test("the polling query: one indexed row, with the fields a poller needs", async (t) => {
  const poll = `query Poll($id: UUID!) { run(id: $id) { status nextPlanStep planStepCount attempts isFinished updatedAt } }`;
  const planned = await gqlOk(server.url, a.apiKey, poll, { id: runs[0]!.id });
  t.like(planned.run, {
    status: "planned",
    nextPlanStep: 0,
    planStepCount: 2,
    attempts: 0,
    isFinished: false,
  });
  t.truthy(Date.parse(planned.run.updatedAt));
  const cancelled = await gqlOk(server.url, a.apiKey, poll, { id: runs[1]!.id });
  t.like(cancelled.run, { status: "cancelled", isFinished: true });
});

test("agents and skills are listed too", async (t) => {
  const data = await gqlOk(
    server.url,
    a.apiKey,
    `{
    agents { nodes { name runs(first: 1) { totalCount } } }
    skills(condition: { enabled: true }) { nodes { name } }
    skill(name: "noop") { name description }
  }`,
  );
  t.deepEqual(data.agents.nodes, [
    { name: "agent", runs: { totalCount: 4 } },
    { name: "second", runs: { totalCount: 2 } },
  ]);
  t.true(data.skills.nodes.some((s: { name: string }) => s.name === "noop"));
  t.is(data.skill.name, "noop");
});
