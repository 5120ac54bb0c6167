// Erasing personal data without breaking a proof (docs/proof-format.md section 5): payloads are
// deleted with their salts, the erasure is recorded, every proof stays VERIFIED with the erased
// steps counted, and bundles exported before and after verify offline to the same root.
import test from "ava";
import { exportBundle } from "../src/lib/bundle.ts";
import { verifyBundle } from "../src/lib/offline-verify.ts";
import { nodeSha256 } from "../src/lib/sha256-node.ts";
import { createEraseExpiredPayloadsTask } from "../tasks/erase_expired_payloads.ts";
import { cliJson, runCli } from "./helpers/cli.ts";
import { createTestDatabase } from "./helpers/db.ts";
import { apiTenant, gql, gqlOk, startTestServer, type TestServer } from "./helpers/graphql.ts";
import { completedRun, createTenant, pgError, runProof, type Fixture } from "./helpers/ledger.ts";
import { testConfig } from "./helpers/worker.ts";
import { createLogger } from "../src/lib/log.ts";

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let f: Fixture;
let server: TestServer;
test.before(async () => {
  db = await createTestDatabase("erasure");
  f = await createTenant(db.pool);
  server = await startTestServer(db.url);
});
test.after.always(async () => {
  await server?.stop();
  await db?.drop();
});

const payloadRows = async (runId: string) =>
  (await db.pool.query(`select count(*)::int as n from runproof.step_payloads where run_id = $1`, [runId]))
    .rows[0].n;

test("erasing a run's payloads keeps its proof VERIFIED, counts the erased steps and records who, when, why, which", async (t) => {
  const { runId } = await completedRun(db.pool, f, { attempts: 2, stepsPerTrace: 3 });
  const before = await runProof(db.pool, f.tenantId, runId);
  t.like(before, { verification_status: "VERIFIED", erased_steps: 0, step_count: 6 });
  const bundleBefore = JSON.parse(JSON.stringify(await exportBundle(db.pool, f.tenantId, runId)));

  const {
    rows: [e],
  } = await db.pool.query(
    `select * from runproof.erase_payloads(run_id => $1, reason => 'GDPR request 2026-117', tenant_id => $2)`,
    [runId, f.tenantId],
  );
  t.like(e, { tenant_id: f.tenantId, reason: "GDPR request 2026-117", step_count: 6 });
  t.deepEqual(e.scope, { run_id: runId });
  t.regex(e.erased_by, /postgres/);
  t.is(await payloadRows(runId), 0, "payloads and salts are gone");
  const { rows: steps } = await db.pool.query(
    `select count(*)::int as n from runproof.payload_erasure_steps where erasure_id = $1 and run_id = $2`,
    [e.id, runId],
  );
  t.is(steps[0].n, 6);

  const after = await runProof(db.pool, f.tenantId, runId);
  t.like(after, { verification_status: "VERIFIED", erased_steps: 6, root_hash: before.root_hash });
  const { rows: all } = await db.pool.query(`select * from runproof.verify_all() where run_id = $1`, [runId]);
  t.deepEqual(all, []);

  // Offline: the bundle from before the erasure (payloads and salts) and the one after (none) both
  // verify, to the same root.
  const bundleAfter = JSON.parse(JSON.stringify(await exportBundle(db.pool, f.tenantId, runId)));
  t.true(
    bundleAfter.traces.every((tr: any) =>
      tr.steps.every((s: any) => s.payload === null && s.erasure === e.id),
    ),
  );
  t.is(bundleAfter.erasures.length, 1);
  const offBefore = await verifyBundle(bundleBefore, { sha256: nodeSha256 });
  const offAfter = await verifyBundle(bundleAfter, { sha256: nodeSha256 });
  t.like(offBefore, { verification_status: "VERIFIED", erased_steps: 0, root_hash: before.root_hash });
  t.like(offAfter, { verification_status: "VERIFIED", erased_steps: 6, root_hash: before.root_hash });

  // Erasing again finds nothing left to erase, and says so.
  const {
    rows: [again],
  } = await db.pool.query(
    `select step_count from runproof.erase_payloads(run_id => $1, reason => 'again', tenant_id => $2)`,
    [runId, f.tenantId],
  );
  t.is(again.step_count, 0);
});

test("a payload is never changed, and removed only with its erasure recorded", async (t) => {
  const { runId } = await completedRun(db.pool, f, { stepsPerTrace: 2 });
  const upd = await pgError(
    db.pool.query(`update runproof.step_payloads set input = '{"x": 1}' where run_id = $1`, [runId]),
  );
  t.is(upd.code, "RPIMM");
  t.regex(upd.message, /^S6_IMMUTABILITY_VIOLATION: UPDATE on runproof\.step_payloads/);
  const del = await pgError(db.pool.query(`delete from runproof.step_payloads where run_id = $1`, [runId]));
  t.is(del.code, "RPIMM");
  t.is(del.hint, "erase payloads with runproof.erase_payloads, which records who erased what, when and why");
  const trunc = await pgError(db.pool.query(`truncate runproof.step_payloads cascade`));
  t.is(trunc.code, "RPIMM");
  // Nor can an erasure record be changed or removed.
  await db.pool.query(`select runproof.erase_payloads(run_id => $1, reason => 'test', tenant_id => $2)`, [
    runId,
    f.tenantId,
  ]);
  const er = await pgError(
    db.pool.query(`delete from runproof.payload_erasures where tenant_id = $1`, [f.tenantId]),
  );
  t.is(er.code, "RPIMM");
  const ers = await pgError(
    db.pool.query(`update runproof.payload_erasure_steps set step_index = 9 where run_id = $1`, [runId]),
  );
  t.is(ers.code, "RPIMM");
});

test("bad erasure requests are refused with a clear error and erase nothing", async (t) => {
  const { runId } = await completedRun(db.pool, f, { stepsPerTrace: 1 });
  const other = await createTenant(db.pool);
  const cases: [string, unknown[], string, RegExp][] = [
    [
      `select runproof.erase_payloads(run_id => $1, tenant_id => $2)`,
      [runId, f.tenantId],
      "RPVAL",
      /needs a reason/,
    ],
    [
      `select runproof.erase_payloads(run_id => $1, reason => '  ', tenant_id => $2)`,
      [runId, f.tenantId],
      "RPVAL",
      /needs a reason/,
    ],
    [
      `select runproof.erase_payloads(reason => 'x', tenant_id => $1)`,
      [f.tenantId],
      "RPVAL",
      /either run_id or older_than/,
    ],
    [
      `select runproof.erase_payloads(run_id => $1, older_than => '1 day', reason => 'x', tenant_id => $2)`,
      [runId, f.tenantId],
      "RPVAL",
      /either run_id or older_than/,
    ],
    [
      `select runproof.erase_payloads(older_than => '-1 day', reason => 'x', tenant_id => $1)`,
      [f.tenantId],
      "RPVAL",
      /must not be negative/,
    ],
    [
      `select runproof.erase_payloads(run_id => $1, reason => 'x', tenant_id => $2)`,
      [runId, other.tenantId],
      "RPNFD",
      /not found for tenant/,
    ],
  ];
  for (const [sql, params, code, message] of cases) {
    const e = await pgError(db.pool.query(sql, params));
    t.is(e.code, code, sql);
    t.regex(e.message, message, sql);
    t.truthy(e.hint, `${sql} has a hint`);
  }
  t.is(await payloadRows(runId), 1);
});

test("the tenant's payload retention, applied by the worker's task", async (t) => {
  const g = await createTenant(db.pool);
  const old = (await completedRun(db.pool, g, { stepsPerTrace: 2 })).runId;
  await new Promise((r) => setTimeout(r, 1000));
  const recent = (await completedRun(db.pool, g, { stepsPerTrace: 2 })).runId;
  // A retention that falls between the two runs' ends: half a second after the recent one.
  const {
    rows: [r],
  } = await db.pool.query(
    `select (now() - (select finished_at from runproof.runs where id = $1) - interval '0.5 seconds')::text as keep`,
    [old],
  );
  const bad = await pgError(
    db.pool.query(`select runproof_private.set_payload_retention($1, '-1 day')`, [g.tenantId]),
  );
  t.is(bad.code, "RPVAL");
  await db.pool.query(`select runproof_private.set_payload_retention($1, $2::interval)`, [
    g.tenantId,
    r.keep,
  ]);
  const task = createEraseExpiredPayloadsTask({
    pool: db.pool,
    config: testConfig(),
    logger: createLogger(testConfig({ RUNPROOF_LOG_LEVEL: "silent" }), "test"),
  } as never);
  await task({}, {} as never);
  t.is(await payloadRows(old), 0, "the run that finished before the retention lost its payloads");
  t.is(await payloadRows(recent), 2, "the recent one kept them");
  const {
    rows: [e],
  } = await db.pool.query(
    `select reason, scope, step_count from runproof.payload_erasures where tenant_id = $1`,
    [g.tenantId],
  );
  t.deepEqual(e, { reason: "retention", scope: { retention: r.keep }, step_count: 2 });
  t.is((await runProof(db.pool, g.tenantId, old)).verification_status, "VERIFIED");
  await task({}, {} as never); // nothing more to do
  // The same cut by hand, for one request: erase_payloads(older_than).
  const h = await createTenant(db.pool);
  const hOld = (await completedRun(db.pool, h, { stepsPerTrace: 1 })).runId;
  await new Promise((res) => setTimeout(res, 1000));
  const hRecent = (await completedRun(db.pool, h, { stepsPerTrace: 1 })).runId;
  const {
    rows: [byAge],
  } = await db.pool.query(
    `select e.step_count, e.scope from runproof.erase_payloads(
       older_than => now() - (select finished_at from runproof.runs where id = $1) - interval '0.5 seconds',
       reason => 'by age', tenant_id => $2) e`,
    [hOld, h.tenantId],
  );
  t.is(byAge.step_count, 1);
  t.truthy(byAge.scope.older_than);
  t.is(await payloadRows(hOld), 0);
  t.is(await payloadRows(hRecent), 1);
  t.is(
    (
      await db.pool.query(`select count(*)::int n from runproof.payload_erasures where tenant_id = $1`, [
        g.tenantId,
      ])
    ).rows[0].n,
    1,
  );
});

test("over GraphQL a tenant erases its own run's payloads and sees the erasure; another tenant's run is not found", async (t) => {
  const a = await apiTenant(db.pool);
  const b = await apiTenant(db.pool);
  const { runId } = await completedRun(
    db.pool,
    { tenantId: a.tenantId, agentId: a.agentId },
    { stepsPerTrace: 2 },
  );
  const stepsQuery = `query($id: UUID!) { run(id: $id) { payloadErasures { nodes { reason stepCount } }
      traces { nodes { steps { nodes { stepIndex input output error erasure { reason erasedBy } } } } }
      proof { verificationStatus erasedSteps } } }`;
  const before = await gqlOk(server.url, a.apiKey, stepsQuery, { id: runId });
  t.deepEqual(before.run.traces.nodes[0].steps.nodes[0].input, { i: 0 });
  t.is(before.run.traces.nodes[0].steps.nodes[0].erasure, null);

  const denied = await gql(
    server.url,
    b.apiKey,
    `mutation($id: UUID!) { erasePayloads(input: { runId: $id, reason: "not mine" }) { erasure { id } } }`,
    { id: runId },
  );
  t.is(denied.body.errors?.[0].extensions?.code, "RPNFD");
  const done = await gqlOk(
    server.url,
    a.apiKey,
    `mutation($id: UUID!) { erasePayloads(input: { runId: $id, reason: "user asked" }) { erasure { stepCount reason erasedBy } } }`,
    { id: runId },
  );
  t.deepEqual(done.erasePayloads.erasure, {
    stepCount: 2,
    reason: "user asked",
    erasedBy: `tenant ${a.tenantId} (API request)`,
  });
  const after = await gqlOk(server.url, a.apiKey, stepsQuery, { id: runId });
  const s0 = after.run.traces.nodes[0].steps.nodes[0];
  t.deepEqual(s0, {
    stepIndex: 0,
    input: null,
    output: null,
    error: null,
    erasure: { reason: "user asked", erasedBy: `tenant ${a.tenantId} (API request)` },
  });
  t.deepEqual(after.run.payloadErasures.nodes, [{ reason: "user asked", stepCount: 2 }]);
  t.deepEqual(after.run.proof, { verificationStatus: "VERIFIED", erasedSteps: 2 });
});

test("the CLI erases a run's payloads and sets a tenant's retention", async (t) => {
  const { runId } = await completedRun(db.pool, f, { stepsPerTrace: 2 });
  const env = { DATABASE_URL: db.url };
  const e = await cliJson(["erase", "--run", runId, "--reason", "GDPR request 7"], { env });
  t.like(e, { step_count: 2, reason: "GDPR request 7", tenant_id: f.tenantId });
  const human = await runCli(["proof", runId], { env });
  t.is(human.code, 0, human.stderr);
  const r = await cliJson(["tenant", "retention", f.tenantId, "--keep", "180 days"], { env });
  t.is(r.payload_retention, "180 days");
  const keep = await cliJson(["tenant", "retention", f.tenantId, "--forever"], { env });
  t.is(keep.payload_retention, null);
  const usage = await runCli(["erase", "--reason", "x"], { env });
  t.is(usage.code, 2, usage.stderr);
});
