// Run.bundle: the proof bundle over GraphQL (for the web explorer's "Download bundle"): the same
// bundle as runproof proof export, verified offline; read as the request's tenant (row level
// security); priced by the cost limit so a page of bundles is refused before any SQL runs.
import test from "ava";
import { exportBundle } from "../src/lib/bundle.ts";
import { verifyBundle } from "../src/lib/offline-verify.ts";
import { nodeSha256 } from "../src/lib/sha256-node.ts";
import { COST_WEIGHTS } from "../src/graphql/limits.ts";
import { createTestDatabase, type TestDatabase } from "./helpers/db.ts";
import {
  type ApiTenant,
  apiTenant,
  gql,
  gqlOk,
  startTestServer,
  type TestServer,
} from "./helpers/graphql.ts";
import { appendStep, completedRun, insertRun, startAttempt } from "./helpers/ledger.ts";

let db: TestDatabase;
let server: TestServer;
let a: ApiTenant;
let b: ApiTenant;

test.before(async () => {
  db = await createTestDatabase("graphql-bundle");
  // The per-second cost budget would refuse a ten-bundle document (429) before the cost limit can (400).
  server = await startTestServer(db.url, { env: { RUNPROOF_TENANT_COST_PER_SECOND: "1000000000" } });
  a = await apiTenant(db.pool);
  b = await apiTenant(db.pool);
});
test.after.always(async () => {
  await server?.stop();
  await db?.drop();
});

const BUNDLE = `query($id: UUID!) { run(id: $id) { id bundle } }`;
/** A bundle without the moments of its export (exported_at, and when the database's proof ran). */
const withoutExportTime = (x: any) => ({
  ...x,
  exported_at: null,
  database_proof: { ...x.database_proof, verified_at: null },
});

test.serial(
  "a run's bundle is the one proof export writes, and the offline verifier finds it VERIFIED",
  async (t) => {
    const { runId } = await completedRun(db.pool, a, { attempts: 2, stepsPerTrace: 3 });
    const data = await gqlOk(server.url, a.apiKey, BUNDLE, { id: runId });
    const bundle = data.run.bundle;
    t.is(bundle.format, "runproof.bundle/2");
    t.is(bundle.run_id, runId);
    t.is(bundle.tenant_id, a.tenantId);
    t.deepEqual(
      withoutExportTime(bundle),
      withoutExportTime(JSON.parse(JSON.stringify(await exportBundle(db.pool, a.tenantId, runId)))),
    );
    const proof = await verifyBundle(bundle, { sha256: nodeSha256 });
    t.is(proof.verification_status, "VERIFIED");
    t.is(proof.trace_count, 2);
    t.is(proof.step_count, 6);
  },
);

test.serial("a running run's bundle is IN_PROGRESS offline too", async (t) => {
  const runId = await insertRun(db.pool, a, { steps: 3 });
  const traceId = await startAttempt(db.pool, a, runId);
  await appendStep(db.pool, a, runId, traceId, 0);
  const data = await gqlOk(server.url, a.apiKey, BUNDLE, { id: runId });
  t.is((await verifyBundle(data.run.bundle, { sha256: nodeSha256 })).verification_status, "IN_PROGRESS");
});

test.serial("another tenant's run has no bundle to give: the run itself is not found", async (t) => {
  const { runId } = await completedRun(db.pool, b, { stepsPerTrace: 2 });
  const r = await gql(server.url, a.apiKey, BUNDLE, { id: runId });
  t.is(r.status, 200);
  t.deepEqual(r.body, { data: { run: null } });
});

test.serial("a page of bundles is refused by the cost limit before anything runs", async (t) => {
  const one = await gql(server.url, a.apiKey, `{ runs(first: 1) { nodes { id bundle } } }`);
  t.is(one.status, 200, JSON.stringify(one.body.errors));
  const r = await gql(server.url, b.apiKey, `{ runs(first: 10) { nodes { id bundle } } }`);
  t.is(r.status, 400);
  t.is(r.body.errors?.[0]?.extensions?.code, "COST_LIMIT_EXCEEDED");
  t.true(COST_WEIGHTS.bundle * 10 >= 100_000, "ten bundles weigh the whole default limit");
  t.regex(r.body.errors?.[0]?.message ?? "", /estimated cost is 1000\d\d, above the limit of 100000/);
});
