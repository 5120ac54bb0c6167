// GraphQL limits (src/graphql/limits.ts, pagination.ts, request-guard.ts, tenant-limits.ts):
// the attacks of issue 13, each refused before execution with its HTTP status and
// extensions { code, hint, limit, actual }, over real HTTP against a real server; and the
// statement timeout, the rate and the per-tenant concurrency limits.
import test from "ava";
import { getIntrospectionQuery } from "postgraphile/graphql";
import {
  aliasesQuery,
  deepLiteralMutation,
  deepSelection,
  nestedRunsQuery,
  request,
  seedTenant,
} from "./helpers/abuse.ts";
import { createTestDatabase, type TestDatabase } from "./helpers/db.ts";
import { gql, gqlOk, startTestServer, subscribe, type TestServer } from "./helpers/graphql.ts";
import { MAX_ATTEMPTS } from "../src/graphql/limits.ts";

let db: TestDatabase;
let server: TestServer;
let small: TestServer;
let tenant: Awaited<ReturnType<typeof seedTenant>>;
let many: Awaited<ReturnType<typeof seedTenant>>;

test.before(async () => {
  db = await createTestDatabase("graphql-limits");
  // The document limits, one request at a time: the tenant's rate and cost per second (which a
  // refused document is charged) are not what this file tests (graphql-tenant-limits does).
  const unmetered = {
    RUNPROOF_TENANT_RATE_PER_SECOND: "100000",
    RUNPROOF_TENANT_COST_PER_SECOND: "1000000000",
  };
  server = await startTestServer(db.url, { env: unmetered });
  // Small limits, to reach each one with a small query.
  small = await startTestServer(db.url, {
    env: {
      ...unmetered,
      RUNPROOF_GRAPHQL_MAX_FIELDS: "40",
      RUNPROOF_GRAPHQL_MAX_COST: "1000",
      RUNPROOF_GRAPHQL_MAX_BODY_BYTES: "4096",
      RUNPROOF_GRAPHQL_MAX_PAGE_SIZE: "10",
    },
  });
  tenant = await seedTenant(db.pool, { runs: 3, steps: 5 });
  many = await seedTenant(db.pool, { runs: 150, steps: 1 });
});
test.after.always(async () => {
  await server?.stop();
  await small?.stop();
  await db?.drop();
});

async function runCount(goal = "deep"): Promise<number> {
  const { rows } = await db.pool.query(`select count(*)::int as n from runproof.runs where goal = $1`, [
    goal,
  ]);
  return rows[0].n;
}

function refused(
  t: import("ava").ExecutionContext,
  r: {
    status: number;
    body: { data?: unknown; errors?: Array<{ message: string; extensions?: Record<string, any> }> };
  },
  status: number,
  code: string,
  message: RegExp,
) {
  t.is(r.status, status, JSON.stringify(r.body));
  t.is(r.body.data, undefined);
  t.is(r.body.errors?.length, 1);
  const e = r.body.errors![0]!;
  t.is(e.extensions?.code, code, e.message);
  t.regex(e.message, message);
  t.truthy(e.extensions?.hint, "every refusal says what to do");
  return e;
}

test("a 20-level nested query is refused with DEPTH_LIMIT_EXCEEDED (not a masked 500)", async (t) => {
  const r = await gql(server.url, tenant.apiKey, nestedRunsQuery(20));
  const e = refused(
    t,
    r,
    400,
    "DEPTH_LIMIT_EXCEEDED",
    /^The query is too deep: .*operation depth 20 exceeds maximum of 12/,
  );
  t.is(e.extensions?.limit, 12);
  t.is(e.extensions?.actual, 20);
  t.regex(e.extensions?.hint, /at most 12 selection sets/);
});

test("a field nested inside itself three times is refused even within the depth limit", async (t) => {
  // runs > nodes > agent > runs > nodes > agent > runs > nodes > id: depth 9, Agent.runs twice, lists 3 deep.
  const q =
    "{ runs(first: 1) { nodes { agent { runs(first: 1) { nodes { agent { runs(first: 1) { nodes { agent { id } } } } } } } } } }";
  const r = await gql(server.url, tenant.apiKey, q);
  refused(t, r, 400, "DEPTH_LIMIT_EXCEEDED", /nested 3 times which exceeds self referential maximum of 2/);
});

test("the queries of the docs and the tour pass the limits", async (t) => {
  const tour = await gqlOk(
    server.url,
    tenant.apiKey,
    "{ runs(first: 5, orderBy: CREATED_AT_DESC) { nodes { id status goal traces { nodes { attempt status stepCount } } proof { integrityModel verificationStatus chainLength rootHash } } } }",
  );
  t.is(tour.runs.nodes.length, 3);
  t.is(tour.runs.nodes[0].proof.verificationStatus, "VERIFIED");
  const withSteps = await gqlOk(
    server.url,
    tenant.apiKey,
    `query($id: UUID!) { run(id: $id) { id traces { nodes { attempt rootHash steps { nodes { stepIndex skill status input output prevHash stepHash decision { decision reason } } } } } proof { verificationStatus } } }`,
    { id: tenant.runIds[0] },
  );
  t.is(withSteps.run.traces.nodes[0].steps.nodes.length, 5);
});

test("a selection set nested 5,000 deep is refused before parsing (QUERY_NESTING_TOO_DEEP, not a stack overflow)", async (t) => {
  const r = await gql(server.url, tenant.apiKey, deepSelection(5000));
  const e = refused(
    t,
    r,
    400,
    "QUERY_NESTING_TOO_DEEP",
    /^The query nests brackets more than 256 levels deep/,
  );
  t.is(e.extensions?.limit, 256);
  t.false(JSON.stringify(r.body).includes("call stack"));
});

test("a plan literal nested 5,000 deep in the query text is refused and stores nothing", async (t) => {
  const r = await gql(server.url, tenant.apiKey, deepLiteralMutation(tenant.agentId, 5000));
  refused(t, r, 400, "QUERY_NESTING_TOO_DEEP", /more than 256 levels deep/);
  t.is(await runCount("deep"), 0);
  // The same mutation nested 20 deep goes through: the limit is on nesting, not on literals.
  const ok = await gql(server.url, tenant.apiKey, deepLiteralMutation(tenant.agentId, 20));
  t.is(ok.status, 200, JSON.stringify(ok.body));
  t.is(await runCount("deep"), 1);
});

test("first: 1000000 is refused (PAGE_SIZE_LIMIT_EXCEEDED), as a literal and as a variable, on any connection", async (t) => {
  const literal = await gql(server.url, many.apiKey, "{ runs(first: 1000000) { nodes { id } } }");
  const e = refused(
    t,
    literal,
    400,
    "PAGE_SIZE_LIMIT_EXCEEDED",
    /^first: 1000000 on Query\.runs is above the page size limit of 100/,
  );
  t.is(e.extensions?.limit, 100);
  t.is(e.extensions?.actual, 1000000);
  const variable = await gql(server.url, many.apiKey, "query($n: Int) { runs(last: $n) { nodes { id } } }", {
    n: 5000,
  });
  refused(t, variable, 400, "PAGE_SIZE_LIMIT_EXCEEDED", /^last: 5000 on Query\.runs/);
  const nested = await gql(
    server.url,
    many.apiKey,
    `query($id: UUID!) { run(id: $id) { traces { nodes { steps(first: 101) { nodes { stepIndex } } } } } }`,
    { id: many.runIds[0] },
  );
  refused(t, nested, 400, "PAGE_SIZE_LIMIT_EXCEEDED", /^first: 101 on Trace\.steps/);
});

test("a connection without first or last returns one page (100 rows) and says there is more", async (t) => {
  const all = await gqlOk(
    server.url,
    many.apiKey,
    "{ runs { totalCount pageInfo { hasNextPage endCursor } nodes { id } } }",
  );
  t.is(all.runs.totalCount, 150);
  t.is(all.runs.nodes.length, 100);
  t.true(all.runs.pageInfo.hasNextPage);
  const rest = await gqlOk(
    server.url,
    many.apiKey,
    "query($after: Cursor) { runs(after: $after) { pageInfo { hasNextPage } nodes { id } } }",
    {
      after: all.runs.pageInfo.endCursor,
    },
  );
  t.is(rest.runs.nodes.length, 50);
  t.false(rest.runs.pageInfo.hasNextPage);
  const ids = new Set([...all.runs.nodes, ...rest.runs.nodes].map((n: { id: string }) => n.id));
  t.is(ids.size, 150);
  // last alone is not turned into "the last 5 of the first 100".
  const last = await gqlOk(server.url, many.apiKey, "{ runs(last: 5) { nodes { id } } }");
  t.deepEqual(
    last.runs.nodes.map((n: { id: string }) => n.id),
    rest.runs.nodes.slice(-5).map((n: { id: string }) => n.id),
  );
  const three = await gqlOk(server.url, many.apiKey, "{ runs(first: 3) { nodes { id } } }");
  t.is(three.runs.nodes.length, 3);
});

test("500 aliases with different arguments are refused (ALIAS_LIMIT_EXCEEDED) without planning them", async (t) => {
  const r = await gql(server.url, tenant.apiKey, aliasesQuery(500));
  const e = refused(
    t,
    r,
    400,
    "ALIAS_LIMIT_EXCEEDED",
    /^The query has 500 aliased fields, above the limit of 20/,
  );
  t.is(e.extensions?.actual, 500);
});

test("fields are counted with each fragment expanded where it is used (FIELD_LIMIT_EXCEEDED)", async (t) => {
  // 8 fields per use, used 6 times: 48 fields after expansion in a document that lists 8.
  const q = `fragment R on Run { id goal status originSystemId createdAt updatedAt attempts maxAttempts }
    { runs(first: 1) { nodes { ...R agent { runs(first: 1) { nodes { ...R ...R ...R ...R ...R } } } } } }`;
  const r = await gql(small.url, tenant.apiKey, q);
  const e = refused(
    t,
    r,
    400,
    "FIELD_LIMIT_EXCEEDED",
    /^The query selects more than 40 fields \(counting each fragment where it is used\)/,
  );
  t.is(e.extensions?.limit, 40);
  const ok = await gql(small.url, tenant.apiKey, "{ runs(first: 1) { nodes { id goal } } }");
  t.is(ok.status, 200);
});

test("the cost is estimated before execution, multiplied by page sizes (COST_LIMIT_EXCEEDED)", async (t) => {
  // 100 runs x at most 20 traces x 100 steps x (input 5 + output 5 + 1 + 1): about 2.4 million.
  const q =
    "{ runs(first: 100) { nodes { traces { nodes { steps(first: 100) { nodes { input output } } } } } } }";
  const r = await gql(server.url, tenant.apiKey, q);
  const e = refused(
    t,
    r,
    400,
    "COST_LIMIT_EXCEEDED",
    /^The query's estimated cost is \d+, above the limit of 100000/,
  );
  t.true(e.extensions?.actual > 2_000_000, String(e.extensions?.actual));
  // Through variables too, and without first (the page size, 10 on this server, is the multiplier).
  const v = await gql(
    small.url,
    tenant.apiKey,
    "query($n: Int) { runs(first: $n) { nodes { traces { nodes { steps { nodes { input } } } } } } }",
    { n: 10 },
  );
  refused(t, v, 400, "COST_LIMIT_EXCEEDED", /above the limit of 1000/);
  const cheap = await gql(small.url, tenant.apiKey, "query($n: Int) { runs(first: $n) { nodes { id } } }", {
    n: 10,
  });
  t.is(cheap.status, 200);
});

test(`the cost model's traces-per-run bound (${MAX_ATTEMPTS}) is the database's max_attempts bound`, async (t) => {
  const other = await seedTenant(db.pool, { runs: 0, steps: 0 });
  const enqueue = (n: number) =>
    db.pool.query(
      `select id from runproof.enqueue_run($1, $2, 'g', 'ava', '{"version":1,"steps":[{"skill":"noop"}]}', null, $3)`,
      [other.tenantId, other.agentId, n],
    );
  await t.notThrowsAsync(enqueue(MAX_ATTEMPTS));
  const e = await t.throwsAsync(enqueue(MAX_ATTEMPTS + 1));
  t.is((e as { code?: string }).code, "RPVAL");
});

test("a body over the limit is refused with 413 BODY_TOO_LARGE naming the limit", async (t) => {
  const big = JSON.stringify({ query: `{ runs { nodes { id } } } # ${"x".repeat(5000)}` });
  const r = await request(small.url, { key: tenant.apiKey, body: big });
  t.is(r.status, 413);
  t.is(r.json.errors[0].extensions.code, "BODY_TOO_LARGE");
  t.regex(r.json.errors[0].message, /larger than the limit of 4096 bytes/);
  t.is(r.json.errors[0].extensions.limit, 4096);
  // Without a Content-Length (chunked), counted while reading.
  const chunked = await fetch(small.url, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${tenant.apiKey}` },
    body: new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode(big));
        c.close();
      },
    }),
    duplex: "half",
  } as RequestInit);
  t.is(chunked.status, 413);
  t.is(((await chunked.json()) as any).errors[0].extensions.code, "BODY_TOO_LARGE");
});

test("GraphQL over GET is refused with METHOD_NOT_ALLOWED; browsers still get Ruru", async (t) => {
  const r = await request(`${server.url}?query=${encodeURIComponent("{ currentTenant { id } }")}`, {
    method: "GET",
    key: tenant.apiKey,
  });
  t.is(r.status, 405);
  t.is(r.json.errors[0].extensions.code, "METHOD_NOT_ALLOWED");
  const page = await request(server.url, { method: "GET", accept: "text/html" });
  t.is(page.status, 200);
  t.regex(page.text, /ruru/i);
});

test("introspection needs no key (Ruru's docs pane loads before a key is typed), everything else does", async (t) => {
  const anonymous = await gql(server.url, null, getIntrospectionQuery());
  t.is(anonymous.status, 200);
  t.is(anonymous.body.errors, undefined);
  t.true(anonymous.body.data.__schema.types.some((ty: { name: string }) => ty.name === "Run"));
  // What Ruru sends before the placeholder in its Headers tab is replaced.
  const placeholder = await fetch(server.url, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: "Bearer <your API key>" },
    body: JSON.stringify({ query: getIntrospectionQuery() }),
  });
  t.is(placeholder.status, 200);
  const withKey = await gql(server.url, tenant.apiKey, getIntrospectionQuery());
  t.is(withKey.status, 200);
  // A fragment on Query that reaches real fields is not "introspection only".
  const sneaky = await gql(
    server.url,
    null,
    "query { __typename ...F } fragment F on Query { currentTenant { id } }",
  );
  t.is(sneaky.status, 401);
  t.is(sneaky.body.errors?.[0]?.extensions?.code, "UNAUTHENTICATED");
  const mixed = await gql(server.url, null, "{ __schema { queryType { name } } currentTenant { id } }");
  t.is(mixed.status, 401);
});

test("the WebSocket carries subscriptions only, with the same document limits", async (t) => {
  const query = await subscribe(server.url, tenant.apiKey, "{ currentTenant { id } }");
  const q = await query.done;
  t.is(q.errors?.[0]?.extensions?.code, "SUBSCRIPTIONS_ONLY");
  const deep = await subscribe(server.url, tenant.apiKey, `subscription ${deepSelection(300)}`);
  const d = await deep.done;
  t.is(d.errors?.[0]?.extensions?.code, "QUERY_NESTING_TOO_DEEP");
});
