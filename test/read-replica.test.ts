// Past one machine: a streaming hot standby of a RunProof database answers proofs, verify_all and
// GraphQL reads, and `runproof serve --read-url` (startServer's readDatabaseUrl) sends queries
// there while mutations stay on the primary. The primary and the standby are clusters of this
// file's own (RUNPROOF_TEST_PG_BIN, else the embedded PostgreSQL 18, which ships no pg_basebackup:
// the standby is then made with the low-level backup API and a copy of the data directory).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import test from "ava";
import pg from "pg";
import { databaseUrlWithName } from "../src/lib/database.ts";
import { migrateDatabase } from "../src/lib/migrate.ts";
import { findFreePort } from "../src/lib/embedded.ts";
import { collect, spawnCli, until } from "./helpers/cli.ts";
import { apiTenant, gqlOk, startTestServer, type ApiTenant } from "./helpers/graphql.ts";
import { completedRun, type Fixture, runProof } from "./helpers/ledger.ts";
import { type PgCluster, startCluster, startStandby, waitForReplay } from "./helpers/pg-cluster.ts";

let tmp: string;
let primary: PgCluster;
let standby: PgCluster;
let primaryUrl: string;
let standbyUrl: string;
let pool: pg.Pool;
let tenant: ApiTenant;
let runId: string;

test.before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runproof-replica-"));
  primary = await startCluster({ dataDir: path.join(tmp, "primary") });
  primaryUrl = databaseUrlWithName(primary.rootUrl, "runproof");
  await migrateDatabase(primaryUrl, { withCurrent: true }); // creates the database
  pool = new pg.Pool({ connectionString: primaryUrl, max: 4 });
  pool.on("error", () => {});
  tenant = await apiTenant(pool, "replica-tenant");
  const f: Fixture = { tenantId: tenant.tenantId, agentId: tenant.agentId };
  ({ runId } = await completedRun(pool, f, { attempts: 2, stepsPerTrace: 3 }));
  standby = await startStandby(primary, { dataDir: path.join(tmp, "standby") });
  standbyUrl = databaseUrlWithName(standby.rootUrl, "runproof");
  await waitForReplay(primary, standby);
});
test.after.always(async () => {
  await pool?.end().catch(() => {});
  await standby?.stop().catch(() => {});
  await primary?.stop().catch(() => {});
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

async function onStandby<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: standbyUrl });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

test.serial("the standby is a read-only hot standby streaming from the primary", async (t) => {
  const r = await onStandby((c) =>
    c.query(`select pg_is_in_recovery() as recovery, (select status from pg_stat_wal_receiver) as receiver`),
  );
  t.deepEqual(r.rows[0], { recovery: true, receiver: "streaming" });
  const e = await t.throwsAsync(
    onStandby((c) => c.query(`insert into runproof.tenants (name) values ('x')`)),
  );
  t.regex(e!.message, /cannot execute INSERT in a read-only transaction/);
});

test.serial(
  "run_proof and verify_all on the standby: the same verdict and root as on the primary",
  async (t) => {
    const onPrimary = await runProof(pool, tenant.tenantId, runId);
    t.is(onPrimary.verification_status, "VERIFIED");
    const replica = await onStandby((c) => runProof(c, tenant.tenantId, runId));
    t.is(replica.integrity_model, "HASH_CHAIN");
    t.is(replica.verification_status, "VERIFIED");
    t.is(replica.root_hash, onPrimary.root_hash);
    t.is(replica.step_count, onPrimary.step_count);
    t.is(
      (replica as { guard_status?: string }).guard_status,
      (onPrimary as { guard_status?: string }).guard_status,
    );
    const all = await onStandby((c) => c.query(`select * from runproof.verify_all()`));
    t.deepEqual(all.rows, [], "empty: every run verifies");
  },
);

const RUNS = `{ runs(first: 10) { nodes { id status proof { integrityModel verificationStatus rootHash } } } }`;

test.serial("serve with a read URL: queries read the standby, mutations write the primary", async (t) => {
  const server = await startTestServer(primaryUrl, { readDatabaseUrl: standbyUrl });
  t.teardown(() => server.stop());
  t.true(server.logs.some((l) => l.msg === "GraphQL queries go to the read replica"));
  const first = await gqlOk(server.url, tenant.apiKey, RUNS);
  t.deepEqual(
    first.runs.nodes.map((n: { id: string; proof: { verificationStatus: string } }) => [
      n.id,
      n.proof.verificationStatus,
    ]),
    [[runId, "VERIFIED"]],
  );

  // Hold the standby's replay: what the primary writes now, a query does not see yet.
  await onStandby((c) => c.query(`select pg_wal_replay_pause()`));
  let resumed = false;
  t.teardown(async () => {
    if (!resumed) await onStandby((c) => c.query(`select pg_wal_replay_resume()`)).catch(() => {});
  });
  const enq = await gqlOk(
    server.url,
    tenant.apiKey,
    `mutation($input: EnqueueRunInput!) { enqueueRun(input: $input) { run { id status } } }`,
    {
      input: {
        agentId: tenant.agentId,
        goal: "a run written while the standby is paused",
        originSystemId: "replica-test",
        plan: { version: 1, steps: [{ skill: "noop" }] },
      },
    },
  );
  const newRun = enq.enqueueRun.run.id as string;
  t.is(enq.enqueueRun.run.status, "planned", "the mutation ran on the primary (the standby is read-only)");
  const { rowCount } = await pool.query(`select 1 from runproof.runs where id = $1`, [newRun]);
  t.is(rowCount, 1);
  const paused = await gqlOk(server.url, tenant.apiKey, RUNS);
  t.deepEqual(
    paused.runs.nodes.map((n: { id: string }) => n.id),
    [runId],
    "the query was answered by the standby, which has not replayed the new run",
  );

  await onStandby((c) => c.query(`select pg_wal_replay_resume()`));
  resumed = true;
  await waitForReplay(primary, standby);
  const after = await gqlOk(server.url, tenant.apiKey, RUNS);
  t.deepEqual(after.runs.nodes.map((n: { id: string }) => n.id).sort(), [runId, newRun].sort());
});

test.serial(
  "serve with a read URL: a query's Run.bundle is read on the standby, as the run's other fields",
  async (t) => {
    const server = await startTestServer(primaryUrl, { readDatabaseUrl: standbyUrl });
    t.teardown(() => server.stop());
    const {
      rows: [r],
    } = await pool.query(
      `select id from runproof.enqueue_run($1, $2, 'ended while the standby is paused', 'replica-test', $3)`,
      [tenant.tenantId, tenant.agentId, { version: 1, steps: [{ skill: "noop" }] }],
    );
    await waitForReplay(primary, standby);
    await onStandby((c) => c.query(`select pg_wal_replay_pause()`));
    try {
      await pool.query(`select runproof.cancel_run($1, 'cancelled on the primary', $2)`, [
        r.id,
        tenant.tenantId,
      ]);
      const { run } = await gqlOk(
        server.url,
        tenant.apiKey,
        `query($id: UUID!) { run(id: $id) { status bundle } }`,
        {
          id: r.id,
        },
      );
      t.is(run.status, "planned", "the standby has not replayed the cancel");
      const state = JSON.stringify(run.bundle.run);
      t.regex(state, /planned/, state);
      t.notRegex(state, /cancelled/, "the bundle is the standby's, not the primary's");
    } finally {
      await onStandby((c) => c.query(`select pg_wal_replay_resume()`));
    }
    await waitForReplay(primary, standby);
    const { run } = await gqlOk(
      server.url,
      tenant.apiKey,
      `query($id: UUID!) { run(id: $id) { status bundle } }`,
      {
        id: r.id,
      },
    );
    t.is(run.status, "cancelled");
    t.regex(run.bundle.run.state, /"cancelled"/);
  },
);

test.serial(
  "runproof serve --read-url: a query does not see what the primary wrote while the standby is paused",
  async (t) => {
    const port = await findFreePort();
    const server = spawnCli(["serve", "--port", String(port), "--read-url", standbyUrl], {
      env: { DATABASE_URL: primaryUrl, RUNPROOF_LOG_LEVEL: "info" },
    });
    const output = collect(server);
    t.teardown(() => {
      if (server.exitCode === null) server.kill("SIGKILL");
    });
    const url = (await until(
      () => output.stdout.match(/^GraphQL: (\S+)$/m) || (server.exitCode !== null && "exited"),
      90_000,
      "the URL",
    )) as RegExpMatchArray | string;
    if (typeof url === "string") return t.fail(output.stderr);
    t.regex(output.stderr, /GraphQL queries go to the read replica/);
    const ids = async () =>
      ((await gqlOk(url[1]!, tenant.apiKey, RUNS)).runs.nodes as { id: string }[]).map((n) => n.id).sort();
    const before = await ids();
    await onStandby((c) => c.query(`select pg_wal_replay_pause()`));
    try {
      const {
        rows: [r],
      } = await pool.query(
        `select id from runproof.enqueue_run($1, $2, 'written on the primary', 'replica-test', $3)`,
        [tenant.tenantId, tenant.agentId, { version: 1, steps: [{ skill: "noop" }] }],
      );
      t.deepEqual(
        await ids(),
        before,
        `run ${r.id} is on the primary, not yet on the standby the query read`,
      );
    } finally {
      await onStandby((c) => c.query(`select pg_wal_replay_resume()`));
    }
    await waitForReplay(primary, standby);
    t.is((await ids()).length, before.length + 1);
    server.kill("SIGINT");
  },
);

test.serial("serve with a read URL that cannot be reached fails at start, naming the replica", async (t) => {
  const e = await t.throwsAsync(
    startTestServer(primaryUrl, { readDatabaseUrl: "postgres://x:y@127.0.0.1:1/runproof" }),
  );
  t.regex(e!.message, /cannot use the read replica at 127\.0\.0\.1:1: .*ECONNREFUSED/);
});
