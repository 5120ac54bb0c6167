// The tenant's log over GraphQL: Run.proof gives the leaf index, the inclusion proof and the
// latest checkpoint; logCheckpoints lists the tenant's checkpoints (only its own) with their
// anchors' receipts; logConsistencyProof links two of them; currentTenant.logStatus shows the key
// and the anchor backlog.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import test from "ava";
import { checkpointNow, generateKeyPem } from "../src/lib/checkpoints.ts";
import {
  leafHash,
  rootFromInclusionProof,
  signerFromPem,
  verifierKey,
  verifyCheckpoint,
  verifyConsistency,
} from "../src/lib/offline-checkpoint.ts";
import { createTestDatabase } from "./helpers/db.ts";
import { apiTenant, gqlOk, startTestServer, type TestServer } from "./helpers/graphql.ts";
import { completedRun } from "./helpers/ledger.ts";

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let server: TestServer;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "runproof-gql-anchor-"));
const signer = signerFromPem("runproof.test/log", generateKeyPem());
const vkey = verifierKey(signer.name, signer.publicKey);
const config = {
  schedule: "* * * * *",
  key: undefined,
  keyFile: undefined,
  keyName: signer.name,
  anchors: [{ name: "files", kind: "directory" as const, path: dir }],
  retryBaseMs: 1000,
  retryMaxMs: 1000,
};

test.before(async () => {
  db = await createTestDatabase("gql_log");
  server = await startTestServer(db.url);
});
test.after.always(async () => {
  await server?.stop();
  await db?.drop();
  fs.rmSync(dir, { recursive: true, force: true });
});

test("Run.proof carries the inclusion proof to the latest checkpoint; checkpoints, consistency and the log status are the tenant's own", async (t) => {
  const a = await apiTenant(db.pool);
  const b = await apiTenant(db.pool);
  const f = { tenantId: a.tenantId, agentId: a.agentId };
  const runs: string[] = [];
  for (let i = 0; i < 3; i++) runs.push((await completedRun(db.pool, f, { stepsPerTrace: 1 })).runId);
  await checkpointNow(db.pool, config, signer);
  await completedRun(db.pool, f, { stepsPerTrace: 1 });
  await completedRun(db.pool, { tenantId: b.tenantId, agentId: b.agentId }, { stepsPerTrace: 1 });
  await checkpointNow(db.pool, config, signer);

  const d = await gqlOk(
    server.url,
    a.apiKey,
    `query($id: UUID!) {
       run(id: $id) { proof { verificationStatus leafIndex checkpointSize inclusionProof checkpoint } }
       logCheckpoints { nodes { treeSize note anchorReceipts { nodes { anchor kind } } } }
       currentTenant { logStatus { logSize checkpointSize notCheckpointed keyName verifierKey anchorBacklog } }
     }`,
    { id: runs[1] },
  );
  const p = d.run.proof;
  t.is(p.verificationStatus, "VERIFIED");
  t.is(p.leafIndex, "1");
  t.is(p.checkpointSize, "4");
  const cp = verifyCheckpoint(p.checkpoint, vkey);
  const {
    rows: [l],
  } = await db.pool.query(`select leaf from runproof.log_leaves where tenant_id = $1 and run_id = $2`, [
    a.tenantId,
    runs[1],
  ]);
  const root = rootFromInclusionProof(
    1n,
    4n,
    leafHash(l.leaf),
    p.inclusionProof.map((h: string) => Buffer.from(h, "hex")),
  );
  t.deepEqual(root, cp.root);
  t.deepEqual(
    d.logCheckpoints.nodes.map((n: any) => n.treeSize),
    ["4", "3"],
    "only the tenant's own checkpoints, newest first",
  );
  t.deepEqual(d.logCheckpoints.nodes[0].anchorReceipts.nodes, [{ anchor: "files", kind: "directory" }]);
  t.like(d.currentTenant.logStatus, {
    logSize: "4",
    checkpointSize: "4",
    notCheckpointed: "0",
    keyName: signer.name,
    verifierKey: vkey,
    anchorBacklog: "0",
  });

  const c = await gqlOk(server.url, a.apiKey, `{ logConsistencyProof(fromSize: "3", toSize: "4") }`);
  const old = verifyCheckpoint(d.logCheckpoints.nodes[1].note, vkey);
  t.true(
    verifyConsistency(
      3n,
      4n,
      old.root,
      cp.root,
      c.logConsistencyProof.map((h: string) => Buffer.from(h, "hex")),
    ),
  );
});
