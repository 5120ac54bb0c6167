// What one tenant may make the server do at once (src/graphql/tenant-limits.ts, request-guard.ts,
// the statement timeout in server.ts): requests per second (429 RATE_LIMITED, Retry-After),
// requests in flight (a queue, then 429 TOO_MANY_CONCURRENT_REQUESTS), open subscriptions
// (TOO_MANY_SUBSCRIPTIONS), and how long one statement may run (STATEMENT_TIMEOUT, SQLSTATE
// 57014, instead of a masked error). Another tenant is never held up by the first one's limits.
import test from "ava";
import { postQuery, seedTenant, type SeededTenant } from "./helpers/abuse.ts";
import { createTestDatabase, type TestDatabase } from "./helpers/db.ts";
import { startTestServer, subscribe, type TestServer } from "./helpers/graphql.ts";

let db: TestDatabase;
let slow: SeededTenant;
let other: SeededTenant;

test.before(async () => {
  db = await createTestDatabase("graphql-tenant-limits");
  // One run whose proof hashes 60,000 steps: a request that takes a while in Postgres.
  slow = await seedTenant(db.pool, { runs: 1, steps: 60_000 });
  other = await seedTenant(db.pool, { runs: 1, steps: 1 });
});
test.after.always(async () => db?.drop());

const PROOF = "{ runs(first: 1) { nodes { id proof { verificationStatus stepCount } } } }";
const TRIVIAL = "{ currentTenant { name } }";

async function withServer(env: Record<string, string>, fn: (s: TestServer) => Promise<void>) {
  const s = await startTestServer(db.url, { env });
  try {
    await fn(s);
  } finally {
    await s.stop();
  }
}

test.serial(
  "a statement running past RUNPROOF_GRAPHQL_STATEMENT_TIMEOUT_MS is cancelled: STATEMENT_TIMEOUT, not a masked error",
  async (t) => {
    await withServer({ RUNPROOF_GRAPHQL_STATEMENT_TIMEOUT_MS: "100" }, async (s) => {
      const r = await postQuery(s.url, slow.apiKey, PROOF);
      t.is(r.status, 200, r.text);
      const e = r.json.errors?.[0];
      t.is(e?.extensions?.code, "STATEMENT_TIMEOUT", r.text);
      t.is(e?.extensions?.sqlstate, "57014");
      t.is(e?.extensions?.limit, 100);
      t.regex(
        e?.message,
        /^The request took longer than the statement timeout of 100 ms and was cancelled\.$/,
      );
      t.regex(e?.extensions?.hint, /fewer rows/);
      t.false(s.logs.some((l) => l.msg === "unexpected GraphQL error (masked for the client)"));
      // Cheap requests of the same tenant are unaffected.
      const ok = await postQuery(s.url, slow.apiKey, TRIVIAL);
      t.is(ok.status, 200);
      t.is(ok.json.data.currentTenant.name.length > 0, true);
    });
  },
);

test.serial("the same request completes under the default timeout (10 s)", async (t) => {
  await withServer({}, async (s) => {
    const r = await postQuery(s.url, slow.apiKey, PROOF);
    t.is(r.status, 200, r.text);
    t.falsy(r.json.errors, r.text);
    t.is(r.json.data.runs.nodes[0].proof.stepCount, 60_000);
    t.is(r.json.data.runs.nodes[0].proof.verificationStatus, "VERIFIED");
  });
});

test.serial(
  "requests beyond a tenant's concurrency wait in its queue, beyond the queue 429; another tenant goes straight through",
  async (t) => {
    await withServer({ RUNPROOF_TENANT_MAX_CONCURRENT: "1", RUNPROOF_TENANT_MAX_QUEUED: "1" }, async (s) => {
      await postQuery(s.url, slow.apiKey, TRIVIAL); // the key is cached from here on
      const flood = Array.from({ length: 4 }, () => postQuery(s.url, slow.apiKey, PROOF));
      // While the first is running (and the second waits), the other tenant is answered.
      await new Promise((r) => setTimeout(r, 50));
      const bystander = await postQuery(s.url, other.apiKey, TRIVIAL);
      const results = await Promise.all(flood);
      t.is(bystander.status, 200);
      t.truthy(bystander.json.data.currentTenant);
      const ok = results.filter((r) => r.status === 200);
      const refused = results.filter((r) => r.status === 429);
      t.is(ok.length, 2, "one ran, one waited its turn and ran");
      t.is(refused.length, 2);
      for (const r of ok) t.is(r.json.data.runs.nodes[0].proof.verificationStatus, "VERIFIED");
      for (const r of refused) {
        t.is(r.json.errors[0].extensions.code, "TOO_MANY_CONCURRENT_REQUESTS");
        t.regex(r.json.errors[0].message, /may run 1 GraphQL requests at once, and 1 more may wait/);
        t.is(r.headers.get("retry-after"), "1");
      }
      t.true(bystander.ms < Math.max(...ok.map((r) => r.ms)), "the bystander did not wait for the flood");
    });
  },
);

test.serial(
  "a tenant over its request rate gets 429 RATE_LIMITED with Retry-After; another tenant does not",
  async (t) => {
    await withServer(
      { RUNPROOF_TENANT_RATE_PER_SECOND: "2", RUNPROOF_TENANT_MAX_QUEUED: "100" },
      async (s) => {
        const burst = await Promise.all(
          Array.from({ length: 30 }, () => postQuery(s.url, other.apiKey, TRIVIAL)),
        );
        const limited = burst.filter((r) => r.status === 429);
        // Fixed one-second windows of 2 requests: even a burst the server takes 5 s to read gets
        // at most 12 through.
        t.true(limited.length >= 18, `${limited.length} of 30 refused`);
        t.is(burst.filter((r) => r.status === 200).length + limited.length, 30);
        for (const r of limited) t.is(r.json.errors[0].extensions.code, "RATE_LIMITED");
        const e = limited[0]!.json.errors[0];
        t.is(e.extensions.limit, 2);
        t.regex(e.message, /may send 2 GraphQL requests per second/);
        t.true(Number(limited[0]!.headers.get("retry-after")) >= 1);
        const neighbour = await postQuery(s.url, slow.apiKey, TRIVIAL);
        t.is(neighbour.status, 200);
      },
    );
  },
);

test.serial(
  "open subscriptions per tenant are capped (TOO_MANY_SUBSCRIPTIONS); closing one frees its place",
  async (t) => {
    await withServer({ RUNPROOF_TENANT_MAX_SUBSCRIPTIONS: "2" }, async (s) => {
      const {
        rows: [run],
      } = await db.pool.query(
        `select id from runproof.enqueue_run($1, $2, 'followed', 'ava', '{"version":1,"steps":[{"skill":"noop"}]}')`,
        [other.tenantId, other.agentId],
      );
      const follow = () =>
        subscribe(s.url, other.apiKey, `subscription($id: UUID!) { runUpdated(runId: $id) { event } }`, {
          id: run.id,
        });
      const a = await follow();
      const b = await follow();
      await a.waitFor(1);
      await b.waitFor(1);
      const c = await follow();
      const refused = await c.done;
      t.is(refused.errors?.[0]?.extensions?.code, "TOO_MANY_SUBSCRIPTIONS");
      t.regex(refused.errors?.[0]?.message, /may hold 2 at once/);
      a.close();
      await a.closed;
      // The server notices the close on its side shortly after.
      let d: Awaited<ReturnType<typeof follow>> | undefined;
      for (let i = 0; i < 20; i++) {
        d = await follow();
        const first = await Promise.race([d.waitFor(1).then(() => "event"), d.done.then(() => "refused")]);
        if (first === "event") break;
        await new Promise((r) => setTimeout(r, 100));
      }
      t.is(d?.events[0]?.data?.runUpdated?.event, "SNAPSHOT");
      b.close();
      d?.close();
    });
  },
);
