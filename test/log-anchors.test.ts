// The three anchors against their real local counterparts (a directory, a C2SP witness that checks
// consistency, an RFC 3161 TSA run by `openssl ts`), retries with backoff and the visible backlog;
// and a bundle verified offline with its checkpoint and the public key alone.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import test from "ava";
import * as asn1js from "asn1js";
import { parseTimeStampResponse, timeStampRequest } from "../src/lib/anchors.ts";
import { exportBundle } from "../src/lib/bundle.ts";
import { checkpointNow, generateKeyPem } from "../src/lib/checkpoints.ts";
import type { CheckpointConfig } from "../src/lib/config.ts";
import {
  checkpointBody,
  signerFromPem,
  signNote,
  verifierKey,
  verifyBundleLog,
  verifyCosignature,
} from "../src/lib/offline-checkpoint.ts";
import { verifyBundle } from "../src/lib/offline-verify.ts";
import { nodeSha256 } from "../src/lib/sha256-node.ts";
import { createTestDatabase } from "./helpers/db.ts";
import { completedRun, createTenant } from "./helpers/ledger.ts";
import { startTsa, type TestTsa } from "./helpers/tsa.ts";
import { startWitness, type TestWitness } from "./helpers/witness.ts";

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let witness: TestWitness;
let tsa: TestTsa;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "runproof-anchors-"));
const signer = signerFromPem("runproof.test/log", generateKeyPem());
const vkey = verifierKey(signer.name, signer.publicKey);
let config: CheckpointConfig;

test.before(async () => {
  db = await createTestDatabase("anchors");
  witness = await startWitness(vkey);
  tsa = await startTsa();
  config = {
    schedule: "* * * * *",
    key: undefined,
    keyFile: undefined,
    keyName: signer.name,
    anchors: [
      { name: "files", kind: "directory", path: dir },
      { name: "w1", kind: "witness", url: witness.url, key: witness.vkey },
      { name: "tsa", kind: "rfc3161", url: tsa.url },
    ],
    retryBaseMs: 1,
    retryMaxMs: 1,
  };
});
test.after.always(async () => {
  await db?.drop();
  await witness?.close();
  await tsa?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const receipts = async (tenantId: string, size: number) =>
  Object.fromEntries(
    (
      await db.pool.query(
        `select anchor, kind, receipt from runproof.log_anchor_receipts where tenant_id = $1 and tree_size = $2`,
        [tenantId, size],
      )
    ).rows.map((r) => [r.anchor, r.receipt]),
  );
const note = async (tenantId: string, size: number) =>
  (
    await db.pool.query(`select note from runproof.log_checkpoints where tenant_id = $1 and tree_size = $2`, [
      tenantId,
      size,
    ])
  ).rows[0].note as string;

test.serial(
  "each anchor takes each checkpoint: an append-only file, a witness's cosignature after its consistency check, an RFC 3161 token",
  async (t) => {
    const f = await createTenant(db.pool);
    await completedRun(db.pool, f, { stepsPerTrace: 1 });
    await completedRun(db.pool, f, { stepsPerTrace: 1 });
    let r = await checkpointNow(db.pool, config, signer);
    t.deepEqual(r.failed, []);
    const n2 = await note(f.tenantId, 2);
    let got = await receipts(f.tenantId, 2);
    t.is(fs.readFileSync(got.files, "utf8"), n2);
    t.throws(() => fs.writeFileSync(got.files, "x", { flag: "wx" }));
    const body = n2.slice(0, n2.indexOf("\n\n") + 1);
    t.true(verifyCosignature(body, got.w1, witness.vkey) > 0);
    t.regex(tsa.verify(got.tsa, n2), /Verification: OK/);

    // The log grows: the witness gets the consistency proof from size 2 and checks it.
    for (let i = 0; i < 3; i++) await completedRun(db.pool, f, { stepsPerTrace: 1 });
    r = await checkpointNow(db.pool, config, signer);
    t.deepEqual(r.failed, []);
    got = await receipts(f.tenantId, 5);
    const n5 = await note(f.tenantId, 5);
    t.true(verifyCosignature(n5.slice(0, n5.indexOf("\n\n") + 1), got.w1, witness.vkey) > 0);
    t.is(witness.state.get(`${signer.name}/${f.tenantId}`)?.size, 5n);
    t.regex(tsa.verify(got.tsa, n5), /Verification: OK/);
    t.true(fs.existsSync(path.join(dir, f.tenantId, "000000000002-000000000005.leaves")));
  },
);

test.serial("the witness refuses a forked checkpoint: the consistency proof does not verify", async (t) => {
  const f = await createTenant(db.pool);
  for (let i = 0; i < 3; i++) await completedRun(db.pool, f, { stepsPerTrace: 1 });
  t.deepEqual((await checkpointNow(db.pool, config, signer)).failed, []);
  // A checkpoint of size 4 signed with the key but over another tree: no consistency proof leads there.
  const fake = signNote(checkpointBody(`${signer.name}/${f.tenantId}`, 4, Buffer.alloc(32, 7)), signer);
  const res = await fetch(new URL("add-checkpoint", witness.url), {
    method: "POST",
    body: `old 3\n${Buffer.alloc(32, 1).toString("base64")}\n\n${fake}`,
  });
  t.is(res.status, 422);
  const res2 = await fetch(new URL("add-checkpoint", witness.url), {
    method: "POST",
    body: `old 0\n\n${fake}`,
  });
  t.is(res2.status, 409);
  t.is(await res2.text(), "3\n");
});

test("every TimeStampReq nonce is a minimal DER INTEGER, so a strict TSA never refuses it as badly formatted", async (t) => {
  // A random nonce starting with 0x00 then a byte below 0x80 is not DER; openssl answered
  // "Bad request format" to about one request in 256 before the encoding was fixed.
  for (let i = 0; i < 4000; i++) {
    const { der, nonce } = timeStampRequest(Buffer.from(`n${i}`));
    const req = asn1js.fromBER(new Uint8Array(der).buffer).result as asn1js.Sequence;
    const encoded = (req.valueBlock.value[2] as asn1js.Integer).valueBlock.valueHexView;
    const minimal = encoded[0] >= 0x01 && encoded[0] <= 0x7f;
    t.true(minimal, `nonce ${nonce.toString("hex")}`);
    if (!minimal) return;
  }
  // And the local openssl TSA grants a batch of them.
  for (let i = 0; i < 200; i++) {
    const { der } = timeStampRequest(Buffer.from(`m${i}`));
    const res = await fetch(tsa.url, { method: "POST", body: new Uint8Array(der) });
    parseTimeStampResponse(Buffer.from(await res.arrayBuffer()));
  }
  t.pass();
});

test.serial(
  "a failing anchor never blocks runs, is retried with backoff, and its backlog is visible until it recovers",
  async (t) => {
    const f = await createTenant(db.pool);
    await completedRun(db.pool, f, { stepsPerTrace: 1 });
    const down = {
      ...config,
      anchors: [
        ...config.anchors.slice(0, 2),
        { name: "tsa", kind: "rfc3161" as const, url: "http://127.0.0.1:9/" },
      ],
    };
    const r = await checkpointNow(db.pool, down, signer);
    t.is(r.failed.length, 1);
    t.is(r.failed[0].anchor, "tsa");
    // Runs go on sealing meanwhile.
    const { runId } = await completedRun(db.pool, f, { stepsPerTrace: 1 });
    t.truthy(runId);
    const {
      rows: [s],
    } = await db.pool.query(`select * from runproof.log_status($1)`, [f.tenantId]);
    t.is(Number(s.anchor_backlog), 1);
    t.is(Number(s.anchor_failing), 1);
    t.regex(s.anchor_last_error, /^tsa: /);
    const { rows: va } = await db.pool.query(`select * from runproof.verify_all() where tenant_id = $1`, [
      f.tenantId,
    ]);
    t.is(va.length, 1);
    t.is(va[0].verification_status, "ANCHOR_BACKLOG");
    const {
      rows: [j],
    } = await db.pool.query(
      `select attempts, next_attempt_at > now() as later from runproof_private.log_anchor_jobs where tenant_id = $1 and anchor = 'tsa'`,
      [f.tenantId],
    );
    t.is(j.attempts, 1);
    // The TSA is back: the next round takes the backlog (and the new checkpoint).
    await new Promise((res) => setTimeout(res, 20));
    t.deepEqual((await checkpointNow(db.pool, config, signer)).failed, []);
    const {
      rows: [s2],
    } = await db.pool.query(`select * from runproof.log_status($1)`, [f.tenantId]);
    t.is(Number(s2.anchor_backlog), 0);
    t.is(
      (await db.pool.query(`select * from runproof.verify_all() where tenant_id = $1`, [f.tenantId])).rows
        .length,
      0,
    );
  },
);

test.serial(
  "a bundle verifies offline with its checkpoint and the public key alone, and fails with a forged or inconsistent one",
  async (t) => {
    const f = await createTenant(db.pool);
    const runs: string[] = [];
    for (let i = 0; i < 3; i++) runs.push((await completedRun(db.pool, f, { stepsPerTrace: 2 })).runId);
    await checkpointNow(db.pool, config, signer);
    const kept = await note(f.tenantId, 3);
    for (let i = 0; i < 2; i++) await completedRun(db.pool, f, { stepsPerTrace: 1 });
    await checkpointNow(db.pool, config, signer);
    const bundle = JSON.parse(
      JSON.stringify(await exportBundle(db.pool, f.tenantId, runs[1], { consistencyFrom: [3] })),
    );
    t.is((await verifyBundle(bundle, { sha256: nodeSha256 })).verification_status, "VERIFIED");
    const run = { tenantId: f.tenantId, runId: runs[1], sealText: bundle.run.seal };
    const ok = verifyBundleLog(bundle.log, run, { verifierKey: vkey, kept });
    t.is(ok.status, "CHECKPOINTED", ok.reason);
    t.is(ok.checkpoint_size, 5);
    t.is(ok.consistent_with, 3);

    // Another key: the checkpoint is not signed by the key the auditor trusts.
    const other = signerFromPem(signer.name, generateKeyPem());
    t.is(
      verifyBundleLog(bundle.log, run, { verifierKey: verifierKey(other.name, other.publicKey) }).status,
      "BAD_CHECKPOINT",
    );
    // A forged checkpoint: its root changed, its signature kept.
    const forged = {
      ...bundle.log,
      checkpoint: bundle.log.checkpoint.replace(
        /\n[A-Za-z0-9+/]{43}=\n/,
        `\n${Buffer.alloc(32, 9).toString("base64")}\n`,
      ),
    };
    t.is(verifyBundleLog(forged, run, { verifierKey: vkey }).status, "BAD_CHECKPOINT");
    // A forged root signed with a stolen key: the inclusion proof does not lead to it.
    const resigned = {
      ...bundle.log,
      checkpoint: signNote(checkpointBody(`${signer.name}/${f.tenantId}`, 5, Buffer.alloc(32, 9)), signer),
    };
    t.is(verifyBundleLog(resigned, run, { verifierKey: vkey }).status, "NOT_INCLUDED");
    // An inconsistent kept checkpoint (a fork at size 3 the auditor saw).
    const fork = signNote(checkpointBody(`${signer.name}/${f.tenantId}`, 3, Buffer.alloc(32, 5)), signer);
    t.is(verifyBundleLog(bundle.log, run, { verifierKey: vkey, kept: fork }).status, "INCONSISTENT");
    // A bundle whose run was rewritten: its leaf is not the one in the log.
    const seal = JSON.parse(bundle.run.seal);
    seal[11] = "2030-01-01T00:00:00";
    t.is(
      verifyBundleLog(
        bundle.log,
        { ...run, sealText: JSON.stringify(seal).replaceAll(",", ", ") },
        { verifierKey: vkey },
      ).status,
      "NOT_INCLUDED",
    );
  },
);
