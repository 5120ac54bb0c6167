// Ledger checkpoints (issue 12): the per-tenant Merkle log, its proofs, signed checkpoints, and
// verification against the directory anchor. Every attack of the point 5 is made as a
// superuser with every guard and event trigger off, after the run was checkpointed, and detected.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import test from "ava";
import type pg from "pg";
import { readAgainst } from "../src/lib/anchor-dir.ts";
import { checkpointNow, generateKeyPem } from "../src/lib/checkpoints.ts";
import type { CheckpointConfig } from "../src/lib/config.ts";
import {
  checkpointBody,
  leafHash,
  logLeaf,
  rootFromInclusionProof,
  signerFromPem,
  signNote,
  treeRoot,
  verifierKey,
  verifyCheckpoint,
  verifyConsistency,
} from "../src/lib/offline-checkpoint.ts";
import { createTestDatabase } from "./helpers/db.ts";
import { completedRun, createTenant, type Fixture, runProof } from "./helpers/ledger.ts";

let db: Awaited<ReturnType<typeof createTestDatabase>>;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "runproof-anchor-"));
const signer = signerFromPem("runproof.test/log", generateKeyPem());
const vkey = verifierKey(signer.name, signer.publicKey);
const config: CheckpointConfig = {
  schedule: "* * * * *",
  key: undefined,
  keyFile: undefined,
  keyName: signer.name,
  anchors: [{ name: "files", kind: "directory", path: dir }],
  retryBaseMs: 1000,
  retryMaxMs: 60_000,
};

test.before(async () => {
  db = await createTestDatabase("log");
});
test.after.always(async () => {
  await db?.drop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const hexes = (a: string[]) => a.map((h) => Buffer.from(h, "hex"));

/** A tenant with n sealed runs, checkpointed and anchored in the directory. */
async function checkpointedTenant(n = 4): Promise<{ f: Fixture; runs: string[] }> {
  const f = await createTenant(db.pool);
  const runs: string[] = [];
  for (let i = 0; i < n; i++) runs.push((await completedRun(db.pool, f, { stepsPerTrace: 2 })).runId);
  const r = await checkpointNow(db.pool, config, signer);
  if (r.failed.length) throw new Error(JSON.stringify(r.failed));
  return { f, runs };
}

/** The attacker: a superuser with every guard, trigger, foreign key and event trigger off. */
async function asSuperuserAttacker(fn: (c: pg.PoolClient) => Promise<unknown>): Promise<void> {
  const c = await db.pool.connect();
  try {
    await c.query("select pg_advisory_lock(7212346)");
    const { rows: evts } = await c.query<{ evtname: string }>(
      `select evtname from pg_event_trigger where evtenabled <> 'D'`,
    );
    for (const e of evts) await c.query(`alter event trigger ${e.evtname} disable`);
    await c.query("begin");
    await c.query("set local session_replication_role = replica");
    const { rows: tables } = await c.query<{ t: string }>(
      `select format('%I.%I', n.nspname, c.relname) as t from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname in ('runproof', 'runproof_private') and c.relkind = 'r'`,
    );
    for (const { t } of tables) await c.query(`alter table ${t} disable trigger all`);
    await fn(c);
    for (const { t } of tables) await c.query(`alter table ${t} enable trigger all`);
    await c.query("commit");
    for (const e of evts) await c.query(`alter event trigger ${e.evtname} enable always`);
  } catch (e) {
    await c.query("rollback").catch(() => {});
    throw e;
  } finally {
    await c.query("select pg_advisory_unlock(7212346)").catch(() => {});
    c.release();
  }
}

/** Rebuilds a tenant's stored tree from its (possibly rewritten) leaves: the attacker covers their tracks. */
async function rebuildLog(c: pg.PoolClient, tenantId: string): Promise<void> {
  await c.query(
    `update runproof.log_leaves l set leaf = runproof_private.log_leaf(r.tenant_id, r.id, r.root_hash, r.status, r.finished_at),
            leaf_hash = runproof_private.log_leaf_hash(runproof_private.log_leaf(r.tenant_id, r.id, r.root_hash, r.status, r.finished_at))
       from runproof.runs r where r.tenant_id = l.tenant_id and r.id = l.run_id and l.tenant_id = $1`,
    [tenantId],
  );
  await c.query(`delete from runproof_private.log_nodes where tenant_id = $1`, [tenantId]);
  for (let level = 1; level < 40; level++) {
    const { rowCount } = await c.query(
      level === 1
        ? `insert into runproof_private.log_nodes select a.tenant_id, 1, a.leaf_index / 2, runproof_private.log_node_hash(a.leaf_hash, b.leaf_hash)
             from runproof.log_leaves a join runproof.log_leaves b on b.tenant_id = a.tenant_id and b.leaf_index = a.leaf_index + 1
            where a.tenant_id = $1 and a.leaf_index % 2 = 0`
        : `insert into runproof_private.log_nodes select a.tenant_id, a.level + 1, a.node_index / 2, runproof_private.log_node_hash(a.hash, b.hash)
             from runproof_private.log_nodes a join runproof_private.log_nodes b on b.tenant_id = a.tenant_id and b.level = a.level and b.node_index = a.node_index + 1
            where a.tenant_id = $1 and a.level = ${level - 1} and a.node_index % 2 = 0`,
      [tenantId],
    );
    if (!rowCount) break;
  }
}

/** Renumbers a tenant's leaves in the order given (run ids), as an attacker rewriting the log would. */
async function relog(c: pg.PoolClient, tenantId: string, order: string[]): Promise<void> {
  await c.query(
    `update runproof.log_leaves set leaf_index = leaf_index + 1000000000000 where tenant_id = $1`,
    [tenantId],
  );
  await c.query(
    `update runproof.log_leaves l set leaf_index = o.i - 1 from unnest($2::uuid[]) with ordinality o(run_id, i)
      where l.tenant_id = $1 and l.run_id = o.run_id`,
    [tenantId, order],
  );
  await c.query(`delete from runproof.log_leaves where tenant_id = $1 and leaf_index >= 1000000000000`, [
    tenantId,
  ]);
  await rebuildLog(c, tenantId);
}

/** A consistent rewrite of a run's outcome: its seal and root recomputed, so run_proof still says VERIFIED. */
async function rewriteRun(c: pg.PoolClient, tenantId: string, runId: string): Promise<void> {
  await c.query(
    `update runproof.runs set finished_at = finished_at + interval '1 hour' where tenant_id = $1 and id = $2`,
    [tenantId, runId],
  );
  await c.query(
    `update runproof.runs r set seal = runproof_private.run_seal_canonical(r), root_hash = sha256(runproof_private.run_seal_canonical(r))
      where tenant_id = $1 and id = $2`,
    [tenantId, runId],
  );
}

async function deleteRun(c: pg.PoolClient, tenantId: string, runId: string): Promise<void> {
  for (const t of ["step_payloads", "trace_steps", "policy_decisions", "incidents", "traces"])
    await c.query(`delete from runproof.${t} where tenant_id = $1 and run_id = $2`, [tenantId, runId]);
  await c.query(`delete from runproof.runs where tenant_id = $1 and id = $2`, [tenantId, runId]);
}

async function against(tenantId: string, opts: { mirror?: boolean; extra?: string[] } = {}) {
  const a = await readAgainst(dir, vkey);
  const { rows } = await db.pool.query(`select * from runproof.verify_against($1, $2) where tenant_id = $3`, [
    [...a.checkpoints, ...(opts.extra ?? [])],
    opts.mirror === false ? null : a.leaves,
    tenantId,
  ]);
  return rows.map((r) => ({
    status: r.status,
    first_bad_leaf: r.first_bad_leaf === null ? null : Number(r.first_bad_leaf),
    run_id: r.run_id,
  }));
}

const logOrder = async (tenantId: string) =>
  (
    await db.pool.query(`select run_id from runproof.log_leaves where tenant_id = $1 order by leaf_index`, [
      tenantId,
    ])
  ).rows.map((r) => r.run_id);

test.serial("SQL and the offline verifier agree on the leaf bytes, the roots and every proof", async (t) => {
  const f = await createTenant(db.pool);
  const runs: string[] = [];
  for (let i = 0; i < 7; i++) runs.push((await completedRun(db.pool, f, { stepsPerTrace: 1 })).runId);
  const { rows } = await db.pool.query(
    `select l.leaf_index::int, convert_from(l.leaf, 'UTF8') as leaf, l.leaf_hash, r.id, encode(r.root_hash, 'hex') as root, r.status,
            (r.seal::text) as seal
       from runproof.log_leaves l join runproof.runs r on r.tenant_id = l.tenant_id and r.id = l.run_id
      where l.tenant_id = $1 order by l.leaf_index`,
    [f.tenantId],
  );
  t.deepEqual(
    rows.map((r) => r.id),
    runs,
    "leaf i is the i-th run sealed",
  );
  const hashes: Buffer[] = [];
  for (const r of rows) {
    const seal = JSON.parse(Buffer.from(r.seal.slice(2), "hex").toString("utf8"));
    const leaf = logLeaf(f.tenantId, r.id, r.root, r.status, seal[11]);
    t.is(leaf.toString("utf8"), r.leaf);
    t.deepEqual(leafHash(leaf), r.leaf_hash);
    hashes.push(r.leaf_hash);
  }
  for (let n = 1; n <= 7; n++) {
    const {
      rows: [root],
    } = await db.pool.query(`select runproof_private.log_root($1, $2) as r`, [f.tenantId, n]);
    t.deepEqual(root.r, treeRoot(hashes.slice(0, n)), `root at size ${n}`);
    for (let i = 0; i < n; i++) {
      const {
        rows: [p],
      } = await db.pool.query(`select runproof.log_inclusion_proof($1, $2, $3) as p`, [f.tenantId, i, n]);
      t.deepEqual(
        rootFromInclusionProof(BigInt(i), BigInt(n), hashes[i], hexes(p.p)),
        treeRoot(hashes.slice(0, n)),
        `inclusion ${i} in ${n}`,
      );
    }
    for (let m = 1; m <= n; m++) {
      const {
        rows: [p],
      } = await db.pool.query(`select runproof.log_consistency_proof($1, $2, $3) as p`, [f.tenantId, m, n]);
      t.true(
        verifyConsistency(
          BigInt(m),
          BigInt(n),
          treeRoot(hashes.slice(0, m)),
          treeRoot(hashes.slice(0, n)),
          hexes(p.p),
        ),
        `consistency ${m} -> ${n}`,
      );
      if (m < n && m > 0)
        t.false(
          verifyConsistency(
            BigInt(m),
            BigInt(n),
            treeRoot(hashes.slice(1, m + 1)),
            treeRoot(hashes.slice(0, n)),
            hexes(p.p),
          ),
        );
    }
  }
});

test.serial("the known-answer leaf of docs/proof-format.md section 13", async (t) => {
  const tenant = "00000000-0000-0000-0000-00000000000a";
  const run = "00000000-0000-0000-0000-0000000000c1";
  const root = "2b449a3851014cec79968f2cea905945f70605b738863b924e10f18855809a98";
  const {
    rows: [r],
  } = await db.pool.query(
    `select convert_from(runproof_private.log_leaf($1, $2, decode($3, 'hex'), 'succeeded', '2026-12-01 10:00:09.5+00'), 'UTF8') as leaf,
            encode(runproof_private.log_leaf_hash(runproof_private.log_leaf($1, $2, decode($3, 'hex'), 'succeeded', '2026-12-01 10:00:09.5+00')), 'hex') as h`,
    [tenant, run, root],
  );
  const leaf = logLeaf(tenant, run, root, "succeeded", "2026-12-01T10:00:09.5");
  t.is(r.leaf, leaf.toString("utf8"));
  t.is(
    r.leaf,
    `["runproof.log-leaf/1", "${tenant}", "${run}", "${root}", "succeeded", "2026-12-01T10:00:09.5"]`,
  );
  t.is(r.h, leafHash(leaf).toString("hex"));
  t.is(r.h, "0ef7591e1db7f833bf8d3bcba83b6383c2b4314cfa137626ba4bf31b01a450db");
});

test.serial(
  "the checkpoint is a C2SP signed note of the log's root, stored append-only, and run_proof carries the inclusion proof",
  async (t) => {
    const { f, runs } = await checkpointedTenant(3);
    const {
      rows: [c],
    } = await db.pool.query(`select * from runproof.log_checkpoints where tenant_id = $1`, [f.tenantId]);
    const cp = verifyCheckpoint(c.note, vkey);
    t.is(cp.origin, `runproof.test/log/${f.tenantId}`);
    t.is(cp.size, 3n);
    t.deepEqual(cp.root, c.root_hash);
    t.is(c.verifier_key, vkey);
    t.regex(
      c.note,
      /^runproof\.test\/log\/[0-9a-f-]{36}\n3\n[A-Za-z0-9+/]{43}=\n\n\u2014 runproof\.test\/log [A-Za-z0-9+/=]+\n$/,
    );
    const p = (await runProof(db.pool, f.tenantId, runs[1])) as any;
    t.is(p.verification_status, "VERIFIED");
    t.is(Number(p.leaf_index), 1);
    t.is(Number(p.checkpoint_size), 3);
    t.is(p.checkpoint, c.note);
    t.is(p.inclusion_proof.length, 2);
    const e = await db.pool
      .query(`update runproof.log_checkpoints set note = 'x' where tenant_id = $1`, [f.tenantId])
      .catch((x) => x);
    t.is(e.code, "RPIMM");
    const e2 = await db.pool
      .query(`delete from runproof.log_leaves where tenant_id = $1`, [f.tenantId])
      .catch((x) => x);
    t.is(e2.code, "RPIMM");
    // Nothing new: no new checkpoint. A run sealed after it is reported as not checkpointed yet.
    t.is((await checkpointNow(db.pool, config, signer)).signed, 0);
    await completedRun(db.pool, f, { stepsPerTrace: 1 });
    t.deepEqual(await against(f.tenantId), [
      { status: "NOT_CHECKPOINTED", first_bad_leaf: 3, run_id: null },
      { status: "CONSISTENT", first_bad_leaf: null, run_id: null },
    ]);
    const {
      rows: [s],
    } = await db.pool.query(`select * from runproof.log_status($1)`, [f.tenantId]);
    t.is(Number(s.log_size), 4);
    t.is(Number(s.not_checkpointed), 1);
    t.is(s.verifier_key, vkey);
  },
);

test.serial(
  "attack: a checkpointed run rewritten with every hash, seal and the log recomputed is detected (REWRITTEN)",
  async (t) => {
    const { f, runs } = await checkpointedTenant();
    t.deepEqual(await against(f.tenantId), [{ status: "CONSISTENT", first_bad_leaf: null, run_id: null }]);
    await asSuperuserAttacker(async (c) => {
      await rewriteRun(c, f.tenantId, runs[2]);
      await rebuildLog(c, f.tenantId);
    });
    t.is(
      (await runProof(db.pool, f.tenantId, runs[2])).verification_status,
      "VERIFIED",
      "the database alone cannot tell",
    );
    t.deepEqual(await against(f.tenantId), [{ status: "REWRITTEN", first_bad_leaf: 2, run_id: runs[2] }]);
    // With the checkpoints alone (no anchored leaves): the root differs, between the checkpoints.
    t.deepEqual(await against(f.tenantId, { mirror: false }), [
      { status: "ROOT_MISMATCH", first_bad_leaf: 0, run_id: null },
    ]);
  },
);

test.serial(
  "attack: a rewritten run whose log was left alone is detected by the stored leaf (REWRITTEN)",
  async (t) => {
    const { f, runs } = await checkpointedTenant();
    await asSuperuserAttacker((c) => rewriteRun(c, f.tenantId, runs[1]));
    const r = await against(f.tenantId);
    t.deepEqual(r[0], { status: "REWRITTEN", first_bad_leaf: 1, run_id: runs[1] });
  },
);

test.serial(
  "attack: a checkpointed run deleted with its traces, its leaf removed and the log recomputed (DELETED)",
  async (t) => {
    const { f, runs } = await checkpointedTenant();
    await asSuperuserAttacker(async (c) => {
      await deleteRun(c, f.tenantId, runs[1]);
      await relog(c, f.tenantId, [runs[0], runs[2], runs[3]]);
    });
    // A new run brings the log back to the anchored size: only the leaves can tell.
    await completedRun(db.pool, f, { stepsPerTrace: 1 });
    t.deepEqual(await against(f.tenantId), [{ status: "DELETED", first_bad_leaf: 1, run_id: null }]);
  },
);

test.serial("attack: a run deleted under its leaf (DELETED)", async (t) => {
  const { f, runs } = await checkpointedTenant();
  await asSuperuserAttacker((c) => deleteRun(c, f.tenantId, runs[3]));
  t.deepEqual((await against(f.tenantId))[0], { status: "DELETED", first_bad_leaf: 3, run_id: runs[3] });
});

test.serial("attack: a run inserted into the checkpointed part of the log (INSERTED)", async (t) => {
  const { f, runs } = await checkpointedTenant();
  const extra = (await completedRun(db.pool, f, { stepsPerTrace: 1 })).runId;
  await asSuperuserAttacker((c) => relog(c, f.tenantId, [runs[0], extra, runs[1], runs[2], runs[3]]));
  t.deepEqual(await against(f.tenantId), [
    { status: "INSERTED", first_bad_leaf: 1, run_id: extra },
    { status: "NOT_CHECKPOINTED", first_bad_leaf: 4, run_id: null },
  ]);
});

test.serial("attack: a sealed run inserted around the log (no leaf) is detected (INSERTED)", async (t) => {
  const { f } = await checkpointedTenant(2);
  const extra = (await completedRun(db.pool, f, { stepsPerTrace: 1 })).runId;
  await asSuperuserAttacker((c) =>
    c.query(`delete from runproof.log_leaves where tenant_id = $1 and run_id = $2`, [f.tenantId, extra]),
  );
  t.deepEqual(await against(f.tenantId), [{ status: "INSERTED", first_bad_leaf: null, run_id: extra }]);
});

test.serial("attack: the log reordered and its tree recomputed (REORDERED)", async (t) => {
  const { f, runs } = await checkpointedTenant();
  await asSuperuserAttacker((c) => relog(c, f.tenantId, [runs[0], runs[2], runs[1], runs[3]]));
  t.deepEqual(await logOrder(f.tenantId), [runs[0], runs[2], runs[1], runs[3]]);
  t.deepEqual(await against(f.tenantId), [{ status: "REORDERED", first_bad_leaf: 1, run_id: runs[2] }]);
});

test.serial("attack: a fork, two checkpoints of one size with different roots (FORK)", async (t) => {
  const { f, runs } = await checkpointedTenant();
  // The attacker holds the signing key too: rewrites the log and replaces the stored checkpoint.
  await asSuperuserAttacker(async (c) => {
    await rewriteRun(c, f.tenantId, runs[0]);
    await rebuildLog(c, f.tenantId);
    const {
      rows: [h],
    } = await c.query(`select runproof_private.log_root($1, 4) as r`, [f.tenantId]);
    const note = signNote(checkpointBody(`${signer.name}/${f.tenantId}`, 4, h.r), signer);
    await c.query(`delete from runproof.log_checkpoints where tenant_id = $1`, [f.tenantId]);
    await c.query(
      `insert into runproof.log_checkpoints (tenant_id, tree_size, root_hash, note, key_name, verifier_key) values ($1, 4, $2, $3, $4, $5)`,
      [f.tenantId, h.r, note, signer.name, vkey],
    );
  });
  const r = await against(f.tenantId);
  t.deepEqual(r[0], { status: "FORK", first_bad_leaf: null, run_id: null });
  t.deepEqual(r[1], { status: "REWRITTEN", first_bad_leaf: 0, run_id: runs[0] });
  // Two outside checkpoints of one size (e.g. the directory's and a witness's) that disagree.
  const {
    rows: [s],
  } = await db.pool.query(`select note from runproof.log_checkpoints where tenant_id = $1`, [f.tenantId]);
  const a = await readAgainst(dir, vkey);
  const { rows } = await db.pool.query(
    `select status from runproof.verify_against($1) where tenant_id = $2 and status = 'FORK'`,
    [[...a.checkpoints, s.note], f.tenantId],
  );
  t.is(rows.length, 1);
});

test.serial("attack: the log rolled back below an anchored size (ROLLED_BACK)", async (t) => {
  const { f, runs } = await checkpointedTenant();
  await asSuperuserAttacker(async (c) => {
    await deleteRun(c, f.tenantId, runs[3]);
    await c.query(`delete from runproof.log_leaves where tenant_id = $1 and leaf_index = 3`, [f.tenantId]);
    await c.query(`delete from runproof.log_checkpoints where tenant_id = $1`, [f.tenantId]);
    await rebuildLog(c, f.tenantId);
  });
  t.deepEqual(await against(f.tenantId), [{ status: "ROLLED_BACK", first_bad_leaf: 3, run_id: null }]);
});

test.serial("a forged checkpoint in the directory is refused before it is used", async (t) => {
  const { f } = await checkpointedTenant(1);
  const file = path.join(dir, f.tenantId, "000000000001.checkpoint");
  const note = fs.readFileSync(file, "utf8");
  const other = signerFromPem("runproof.test/log", generateKeyPem());
  const forged = path.join(dir, "forged.checkpoint");
  fs.writeFileSync(forged, signNote(note.slice(0, note.indexOf("\n\n") + 1), other));
  const a = await readAgainst(dir, vkey);
  fs.rmSync(forged);
  t.true(a.rejected.some((r) => r.file === forged && /not signed by/.test(r.reason)));
});
