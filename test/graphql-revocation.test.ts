// Revocation and expiry (src/graphql/revocation.ts, websocket.ts, auth.ts; sql/api/api_keys.sql):
// a key revoked, deleted or expired while its runUpdated subscription is open ends that
// subscription within the documented bound (RUNPROOF_API_KEY_RECHECK_MS, 2 s by default; at once
// when the database announces it) with its own code, and its next request is refused. Real
// WebSocket subscriptions to a real server; events are NOTIFYs on the run's channel, sent every
// 100 ms for as long as the test runs.
import test from "ava";
import { sleep } from "./helpers/abuse.ts";
import { createTestDatabase, type TestDatabase } from "./helpers/db.ts";
import {
  apiTenant,
  gql,
  startTestServer,
  subscribe,
  type ApiTenant,
  type TestServer,
} from "./helpers/graphql.ts";

/** The bound the docs promise (docs/graphql.md): the re-check interval plus one look-up. */
const BOUND_MS = 5000;

let db: TestDatabase;
let server: TestServer;

test.before(async () => {
  db = await createTestDatabase("graphql-revocation");
  server = await startTestServer(db.url);
});
test.after.always(async () => {
  await server?.stop();
  await db?.drop();
});

const FOLLOW = `subscription($id: UUID!) { runUpdated(runId: $id) { event status } }`;

/** A tenant (with `keyOpts`' key) and a run that stays `planned` (no worker): its subscription stays open. */
async function subscriber(expiresInSeconds?: number): Promise<ApiTenant & { runId: string }> {
  const t = await apiTenant(db.pool);
  if (expiresInSeconds !== undefined) {
    const {
      rows: [k],
    } = await db.pool.query(
      `select key_id, api_key from runproof_private.create_api_key($1, 'expiring', now() + make_interval(secs => $2))`,
      [t.tenantId, expiresInSeconds],
    );
    t.apiKey = k.api_key;
    t.keyId = k.key_id;
  }
  const {
    rows: [r],
  } = await db.pool.query(
    `select id from runproof.enqueue_run($1, $2, 'followed', 'ava', '{"version":1,"steps":[{"skill":"noop"}]}')`,
    [t.tenantId, t.agentId],
  );
  return { ...t, runId: r.id };
}

/** NOTIFYs a RUN event on the run's channel every 100 ms until stop() is called. */
function events(t: ApiTenant & { runId: string }) {
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      await db.pool.query(`select pg_notify($1, $2)`, [
        `runproof:run:${t.runId}`,
        JSON.stringify({ event: "run", tenant_id: t.tenantId, run_id: t.runId, status: "planned" }),
      ]);
      await sleep(100);
    }
  })();
  return async () => {
    stopped = true;
    await loop;
  };
}

async function followUntilEnd(
  t: import("ava").ExecutionContext,
  s: ApiTenant & { runId: string },
  act: () => Promise<unknown>,
) {
  const sub = await subscribe(server.url, s.apiKey, FOLLOW, { id: s.runId });
  const stop = events(s);
  try {
    await sub.waitFor(3); // the SNAPSHOT and live events arrive
    const actedAt = performance.now();
    await act();
    const ended = await Promise.race([
      sub.done.then((d) => ({ ...d, at: performance.now() })),
      sleep(BOUND_MS + 3000).then(() => null),
    ]);
    t.truthy(ended, "the subscription ended");
    const closed = await Promise.race([sub.closed, sleep(2000).then(() => null)]);
    const late = sub.times.filter((x) => x > ended!.at);
    return { ended: ended!, closed, afterMs: ended!.at - actedAt, lateEvents: late.length, sub };
  } finally {
    await stop();
    sub.close();
  }
}

test.serial(
  "revoking a key ends its open subscription at once (NOTIFY), with API_KEY_REVOKED and close 4403; its next request is refused",
  async (t) => {
    const s = await subscriber();
    const r = await followUntilEnd(t, s, () =>
      db.pool.query(`select runproof_private.revoke_api_key($1, $2)`, [s.tenantId, s.keyId]),
    );
    t.false(r.ended.completed, "not a normal completion: the run did not finish");
    t.is(r.ended.errors?.[0]?.extensions?.code, "API_KEY_REVOKED");
    t.regex(
      r.ended.errors?.[0]?.message,
      /^This subscription ended because its API key is no longer valid: API key is revoked/,
    );
    t.is(r.closed?.code, 4403);
    t.is(r.lateEvents, 0, "no event after the error");
    t.true(r.afterMs < BOUND_MS, `${Math.round(r.afterMs)} ms`);
    t.log(`revoked: the subscription ended ${Math.round(r.afterMs)} ms later`);
    // The cache was dropped too: the very next request is refused.
    const next = await gql(server.url, s.apiKey, "{ currentTenant { id } }");
    t.is(next.status, 401);
    t.regex(next.body.errors?.[0]?.message ?? "", /^API key is revoked/);
    const again = await subscribe(server.url, s.apiKey, FOLLOW, { id: s.runId });
    t.is((await again.done).errors?.[0]?.extensions?.code, "UNAUTHENTICATED");
  },
);

test.serial(
  "a revocation the database does not announce (replica mode: no NOTIFY) is still found by the re-check within the bound",
  async (t) => {
    const s = await subscriber();
    const r = await followUntilEnd(t, s, async () => {
      const c = await db.pool.connect();
      try {
        await c.query("begin");
        await c.query("set local session_replication_role = replica");
        await c.query(`update runproof_private.api_keys set revoked_at = now() where id = $1`, [s.keyId]);
        await c.query("commit");
      } finally {
        c.release();
      }
    });
    t.is(r.ended.errors?.[0]?.extensions?.code, "API_KEY_REVOKED");
    t.is(r.closed?.code, 4403);
    t.true(r.afterMs < BOUND_MS, `${Math.round(r.afterMs)} ms`);
    t.log(`revoked without NOTIFY: the subscription ended ${Math.round(r.afterMs)} ms later`);
    const next = await gql(server.url, s.apiKey, "{ currentTenant { id } }");
    t.is(next.status, 401);
  },
);

test.serial("deleting a key (as deleting its tenant does, by cascade) ends its subscription", async (t) => {
  const s = await subscriber();
  const r = await followUntilEnd(t, s, () =>
    db.pool.query(`delete from runproof_private.api_keys where id = $1`, [s.keyId]),
  );
  t.is(r.ended.errors?.[0]?.extensions?.code, "API_KEY_REVOKED");
  t.regex(r.ended.errors?.[0]?.message, /Invalid API key/);
  t.true(r.afterMs < BOUND_MS);
});

test.serial(
  "a key that expires ends its subscription with API_KEY_EXPIRED, and is refused with its own code",
  async (t) => {
    const s = await subscriber(3);
    const before = await gql(server.url, s.apiKey, "{ currentTenant { id } }");
    t.is(before.status, 200);
    const {
      rows: [k],
    } = await db.pool.query(
      `select extract(epoch from expires_at - now()) * 1000 as ms from runproof_private.api_keys where id = $1`,
      [s.keyId],
    );
    const r = await followUntilEnd(t, s, () => sleep(Math.max(0, Number(k.ms))));
    t.is(r.ended.errors?.[0]?.extensions?.code, "API_KEY_EXPIRED");
    t.regex(r.ended.errors?.[0]?.message, /API key expired at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/);
    t.is(r.closed?.code, 4403);
    t.true(r.afterMs < BOUND_MS, `${Math.round(r.afterMs)} ms after expiry`);
    const after = await gql(server.url, s.apiKey, "{ currentTenant { id } }");
    t.is(after.status, 401);
    t.is(after.body.errors?.[0]?.extensions?.code, "API_KEY_EXPIRED");
    t.regex(after.body.errors?.[0]?.extensions?.hint ?? "", /create a new key/);
  },
);

test.serial(
  "SQL: authenticate refuses an expired key with RPKEX; create_api_key refuses an expiry in the past",
  async (t) => {
    const s = await apiTenant(db.pool);
    const {
      rows: [k],
    } = await db.pool.query(
      `select api_key, key_id from runproof_private.create_api_key($1, 'short', now() + interval '1 second')`,
      [s.tenantId],
    );
    // Expire it without waiting: move the expiry back (the owner may; the table is not a ledger).
    await db.pool.query(
      `update runproof_private.api_keys set expires_at = now() - interval '1 second' where id = $1`,
      [k.key_id],
    );
    const e = await db.pool.query(`select runproof_private.authenticate($1)`, [k.api_key]).catch((x) => x);
    t.is(e.code, "RPKEX");
    t.regex(e.message, /^API key expired at /);
    t.regex(e.hint, /create a new key/);
    const past = await db.pool
      .query(`select runproof_private.create_api_key($1, 'past', now() - interval '1 minute')`, [s.tenantId])
      .catch((x) => x);
    t.is(past.code, "RPVAL");
    t.regex(past.message, /is not in the future/);
    const long = await db.pool
      .query(`select runproof_private.create_api_key($1, $2)`, [s.tenantId, "l".repeat(201)])
      .catch((x) => x);
    t.is(long.code, "RPVAL");
    t.is(long.message, "API key label is 201 characters long; at most 200 are allowed");
  },
);

test.serial("another tenant's key is untouched by a revocation", async (t) => {
  const keep = await subscriber();
  const drop = await subscriber();
  const sub = await subscribe(server.url, keep.apiKey, FOLLOW, { id: keep.runId });
  const stop = events(keep);
  try {
    await sub.waitFor(2);
    await db.pool.query(`select runproof_private.revoke_api_key($1, $2)`, [drop.tenantId, drop.keyId]);
    const seen = sub.events.length;
    // Two re-check intervals later it still receives events.
    await sleep(4500);
    t.true(sub.events.length > seen + 10, `${sub.events.length - seen} more events`);
    t.is(await Promise.race([sub.done.then(() => "ended"), sleep(0).then(() => "open")]), "open");
  } finally {
    await stop();
    sub.close();
  }
});
