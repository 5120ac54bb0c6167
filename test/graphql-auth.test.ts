// GraphQL authentication: Authorization: Bearer <api key> → tenant; anything else is a 401
// whose JSON error says what to do. The Ruru page itself needs no key.
import test from "ava";
import { createTestDatabase, type TestDatabase } from "./helpers/db.ts";
import {
  apiTenant,
  gql,
  startTestServer,
  subscribe,
  type ApiTenant,
  type TestServer,
} from "./helpers/graphql.ts";

let db: TestDatabase;
let server: TestServer;
let uncached: TestServer;
let a: ApiTenant;

test.before(async () => {
  db = await createTestDatabase("graphql-auth");
  server = await startTestServer(db.url);
  uncached = await startTestServer(db.url, { authCacheMs: 0 });
  a = await apiTenant(db.pool);
});
test.after.always(async () => {
  await server?.stop();
  await uncached?.stop();
  await db?.drop();
});

const QUERY = "{ currentTenant { id name } }";

function assertUnauthenticated(
  t: import("ava").ExecutionContext,
  r: Awaited<ReturnType<typeof gql>>,
  message: RegExp,
) {
  t.is(r.status, 401);
  t.regex(r.headers.get("content-type") ?? "", /application\/json/);
  t.regex(r.headers.get("www-authenticate") ?? "", /^Bearer/);
  t.is(r.body.data, undefined);
  t.is(r.body.errors?.length, 1);
  const [error] = r.body.errors!;
  t.regex(error!.message, message);
  // Every 401 says what to do.
  t.regex(error!.message, /Authorization: Bearer <api key>|create a new key/);
  t.is(error!.extensions?.code, "UNAUTHENTICATED");
  t.truthy(error!.extensions?.hint);
}

test("a valid key reaches its own tenant", async (t) => {
  const r = await gql(server.url, a.apiKey, QUERY);
  t.is(r.status, 200);
  t.deepEqual(r.body.errors, undefined);
  t.is(r.body.data.currentTenant.id, a.tenantId);
});

test("no Authorization header is a 401 that says how to authenticate", async (t) => {
  assertUnauthenticated(
    t,
    await gql(server.url, null, QUERY),
    /^Authentication required: send the header Authorization: Bearer <api key>/,
  );
});

test("an Authorization header that is not Bearer is a 401", async (t) => {
  const res = await fetch(server.url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      authorization: `Basic ${Buffer.from("a:b").toString("base64")}`,
    },
    body: JSON.stringify({ query: QUERY }),
  });
  t.is(res.status, 401);
  const body: any = await res.json();
  t.regex(body.errors[0].message, /^Malformed Authorization header/);
  t.is(body.errors[0].extensions.code, "UNAUTHENTICATED");
});

test("a wrong key is a 401 from runproof_private.authenticate (invalid API key)", async (t) => {
  assertUnauthenticated(t, await gql(server.url, "rp_00000000_not-a-real-key", QUERY), /^Invalid API key/);
  // Failures are never cached: the same wrong key is refused again.
  assertUnauthenticated(t, await gql(server.url, "rp_00000000_not-a-real-key", QUERY), /^Invalid API key/);
});

test("a revoked key is a 401 that says to create a new key", async (t) => {
  const b = await apiTenant(db.pool);
  await db.pool.query(`select runproof_private.revoke_api_key($1, $2)`, [b.tenantId, b.keyId]);
  assertUnauthenticated(t, await gql(server.url, b.apiKey, QUERY), /^API key is revoked: create a new key/);
});

test("a key revoked after use stops working (no cache here; the default cache holds it for at most 5 s)", async (t) => {
  const c = await apiTenant(db.pool);
  const before = await gql(uncached.url, c.apiKey, QUERY);
  t.is(before.status, 200);
  t.is(before.body.data.currentTenant.id, c.tenantId);
  await db.pool.query(`select runproof_private.revoke_api_key($1, $2)`, [c.tenantId, c.keyId]);
  assertUnauthenticated(t, await gql(uncached.url, c.apiKey, QUERY), /^API key is revoked/);
});

test("mutations need a key too", async (t) => {
  const r = await gql(server.url, null, `mutation { createAgent(input: {name: "x"}) { agent { id } } }`);
  t.is(r.status, 401);
  const { rows } = await db.pool.query(`select count(*)::int as n from runproof.agents where name = 'x'`);
  t.is(rows[0].n, 0);
});

test("the Ruru explorer page loads without a key; GraphQL over GET is refused", async (t) => {
  const page = await fetch(server.url, { headers: { accept: "text/html" } });
  t.is(page.status, 200);
  t.regex(page.headers.get("content-type") ?? "", /text\/html/);
  t.regex(await page.text(), /ruru/i);
  const get = await fetch(`${server.url}?query=${encodeURIComponent(QUERY)}`, {
    headers: { accept: "application/json" },
  });
  t.is(get.status, 405);
  const body: any = await get.json();
  t.falsy(body.data);
});

test("subscriptions authenticate with the key in connection_init", async (t) => {
  const sub = await subscribe(
    server.url,
    "rp_00000000_wrong",
    `subscription { runUpdated(runId: "00000000-0000-0000-0000-000000000000") { event } }`,
  );
  const result = await sub.done;
  t.false(result.completed);
  t.is(result.errors?.[0]?.extensions?.code, "UNAUTHENTICATED");
  t.regex(result.errors?.[0]?.message, /^Invalid API key/);
});
