// Signing the tenants' logs and sending the checkpoints to the anchors (tasks/checkpoint.ts and
// `runproof checkpoint now`). SQL says which logs grew and checks each note's root; the key stays
// in this process (RUNPROOF_CHECKPOINT_KEY or _KEY_FILE). Anchors never block runs: a failure is
// recorded with its backoff (runproof_private.record_anchor_failure) and retried later.
import { generateKeyPairSync } from "node:crypto";
import fs from "node:fs";
import type pg from "pg";
import { createAnchor } from "./anchors.ts";
import type { CheckpointConfig } from "./config.ts";
import {
  checkpointBody,
  type NoteSigner,
  signerFromPem,
  signNote,
  verifierKey,
} from "./offline-checkpoint.ts";

/** Logs signed per transaction: 10,000 tenants that grew are a few batches. */
const SIGN_BATCH = 2000;
const ANCHOR_BATCH = 500;

export class CheckpointKeyMissing extends Error {}

export function loadSigner(c: CheckpointConfig): NoteSigner {
  const pem = c.key ?? (c.keyFile ? fs.readFileSync(c.keyFile, "utf8") : undefined);
  if (!pem)
    throw new CheckpointKeyMissing(
      "no checkpoint key: set RUNPROOF_CHECKPOINT_KEY_FILE (or RUNPROOF_CHECKPOINT_KEY); make one with npx runproof checkpoint keygen -o FILE",
    );
  return signerFromPem(c.keyName, pem);
}

export function generateKeyPem(): string {
  const { privateKey } = generateKeyPairSync("ed25519");
  return privateKey.export({ format: "pem", type: "pkcs8" }).toString();
}

export const originOf = (keyName: string, tenantId: string) => `${keyName}/${tenantId}`;

export interface CheckpointResult {
  signed: number;
  anchored: number;
  failed: { tenant_id: string; tree_size: number; anchor: string; error: string }[];
}

/** Signs every log that grew since its last checkpoint, then sends the due checkpoints to the anchors. */
export async function checkpointNow(
  pool: pg.Pool,
  c: CheckpointConfig,
  signer: NoteSigner = loadSigner(c),
): Promise<CheckpointResult> {
  const vkey = verifierKey(signer.name, signer.publicKey);
  const anchors = c.anchors.map((a) => createAnchor(a));
  let signed = 0;
  for (;;) {
    const { rows } = await pool.query<{ tenant_id: string; tree_size: string; root_hash: Buffer }>(
      `select tenant_id, tree_size::text, root_hash from runproof_private.log_heads_to_sign($1)`,
      [SIGN_BATCH],
    );
    if (!rows.length) break;
    const notes = rows.map((r) =>
      signNote(checkpointBody(originOf(signer.name, r.tenant_id), r.tree_size, r.root_hash), signer),
    );
    await pool.query(
      `select runproof_private.record_checkpoints(p_tenant_ids => $1, p_sizes => $2, p_notes => $3, p_key_name => $4,
         p_verifier_key => $5, p_anchors => $6)`,
      [
        rows.map((r) => r.tenant_id),
        rows.map((r) => r.tree_size),
        notes,
        signer.name,
        vkey,
        anchors.map((a) => a.name),
      ],
    );
    signed += rows.length;
    if (rows.length < SIGN_BATCH) break;
  }
  const result: CheckpointResult = { signed, anchored: 0, failed: [] };
  if (!anchors.length) return result;
  const byName = new Map(anchors.map((a) => [a.name, a]));
  const { rows: jobs } = await pool.query<{
    tenant_id: string;
    tree_size: string;
    anchor: string;
    note: string;
  }>(`select tenant_id, tree_size::text, anchor, note from runproof_private.due_anchor_jobs($1)`, [
    ANCHOR_BATCH,
  ]);
  // Jobs come per tenant and anchor in size order; after a failure, that pair waits for its retry.
  const blocked = new Set<string>();
  for (const j of jobs) {
    const key = `${j.tenant_id}/${j.anchor}`;
    const anchor = byName.get(j.anchor);
    if (blocked.has(key)) continue;
    try {
      if (!anchor) throw new Error(`anchor ${j.anchor} is not configured (RUNPROOF_CHECKPOINT_ANCHORS)`);
      const receipt = await anchor.submit(
        { tenantId: j.tenant_id, treeSize: Number(j.tree_size), note: j.note },
        pool,
      );
      await pool.query(`select runproof_private.record_anchor_receipt($1, $2, $3, $4, $5)`, [
        j.tenant_id,
        j.tree_size,
        j.anchor,
        anchor.kind,
        receipt,
      ]);
      result.anchored++;
    } catch (e) {
      blocked.add(key);
      const error = (e as Error).message;
      await pool.query(
        `select runproof_private.record_anchor_failure(p_tenant_id => $1, p_tree_size => $2, p_anchor => $3, p_error => $4,
           p_base_ms => $5, p_max_ms => $6)`,
        [j.tenant_id, j.tree_size, j.anchor, error, c.retryBaseMs, c.retryMaxMs],
      );
      result.failed.push({ tenant_id: j.tenant_id, tree_size: Number(j.tree_size), anchor: j.anchor, error });
    }
  }
  return result;
}
