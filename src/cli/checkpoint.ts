// runproof checkpoint now|keygen|show|list: sign the tenants' logs now (what the worker's cron
// task does), make a signing key, show a tenant's log and its latest checkpoint, list checkpoints
// with their anchors. The key stays outside the database (docs/proof-format.md section 14).
import { createPublicKey } from "node:crypto";
import fs from "node:fs/promises";
import { loadConfig } from "../lib/config.ts";
import { checkpointNow, generateKeyPem, loadSigner } from "../lib/checkpoints.ts";
import { rawPublicKey, verifierKey } from "../lib/offline-checkpoint.ts";
import {
  EXIT,
  err,
  fmtTime,
  kvTable,
  out,
  printJson,
  requireTenant,
  table,
  truncate,
  usageError,
  withDatabase,
} from "./common.ts";

export async function checkpointNowCommand(opts: { json?: boolean }): Promise<void> {
  const config = loadConfig().checkpoint;
  const signer = loadSigner(config);
  await withDatabase(async ({ pool }) => {
    const r = await checkpointNow(pool, config, signer);
    const {
      rows: [b],
    } = await pool.query(
      `select count(*)::int as n from runproof_private.log_anchor_jobs where done_at is null`,
    );
    if (opts.json)
      printJson({ ...r, anchor_backlog: b.n, verifier_key: verifierKey(signer.name, signer.publicKey) });
    else {
      out(`signed ${r.signed} checkpoint(s), anchored ${r.anchored}; anchor backlog ${b.n}`);
      for (const f of r.failed)
        err(
          `anchor ${f.anchor} failed for tenant ${f.tenant_id} at size ${f.tree_size}: ${f.error} (retried with backoff)`,
        );
    }
    process.exitCode = r.failed.length ? EXIT.ERROR : EXIT.OK;
  });
}

export async function checkpointKeygen(opts: {
  output?: string;
  name?: string;
  json?: boolean;
}): Promise<void> {
  const name = opts.name ?? loadConfig().checkpoint.keyName;
  const pem = generateKeyPem();
  const vkey = verifierKey(name, rawPublicKey(createPublicKey(pem)));
  if (opts.output) {
    try {
      await fs.writeFile(opts.output, pem, { flag: "wx", mode: 0o600 });
    } catch (e) {
      throw usageError(
        `cannot write ${opts.output}: ${(e as Error).message}`,
        "keygen never overwrites a key: choose a new file",
      );
    }
  } else if (!opts.json) process.stdout.write(pem);
  if (opts.json)
    printJson({
      key_name: name,
      verifier_key: vkey,
      file: opts.output ?? null,
      ...(opts.output ? {} : { private_key: pem }),
    });
  else {
    err(`key name: ${name}`);
    err(`verifier key (publish it; auditors verify checkpoints with it): ${vkey}`);
    if (opts.output)
      err(
        `set RUNPROOF_CHECKPOINT_KEY_FILE=${opts.output} (and RUNPROOF_CHECKPOINT_KEY_NAME=${name}) for the worker`,
      );
  }
}

export async function checkpointShow(opts: { tenantId: string; json?: boolean }): Promise<void> {
  await withDatabase(async ({ pool }) => {
    await requireTenant(pool, opts.tenantId);
    const {
      rows: [s],
    } = await pool.query(`select * from runproof.log_status($1)`, [opts.tenantId]);
    if (opts.json) return printJson(s);
    out(
      kvTable([
        ["tenant", s.tenant_id],
        ["log size", s.log_size],
        ["checkpoint size", s.checkpoint_size ?? "- (none yet)"],
        ["signed at", fmtTime(s.checkpoint_signed_at)],
        ["not checkpointed", s.not_checkpointed],
        ["key name", s.key_name ?? "-"],
        ["anchor backlog", `${s.anchor_backlog} (${s.anchor_failing} failing)`],
        ["last anchor error", s.anchor_last_error ?? "-"],
      ]),
    );
    // On a line of its own: a table would wrap it, and it is what an auditor copies.
    out(`verifier key: ${s.verifier_key ?? "- (no checkpoint yet)"}`);
    if (s.checkpoint) out(`\n${s.checkpoint}`);
  });
}

export async function checkpointList(opts: {
  tenantId: string;
  limit: number;
  json?: boolean;
}): Promise<void> {
  await withDatabase(async ({ pool }) => {
    await requireTenant(pool, opts.tenantId);
    const { rows } = await pool.query(
      `select c.tree_size, encode(c.root_hash, 'hex') as root_hash, c.signed_at,
              coalesce((select string_agg(r.anchor, ', ' order by r.anchor) from runproof.log_anchor_receipts r
                         where r.tenant_id = c.tenant_id and r.tree_size = c.tree_size), '') as anchored,
              coalesce((select string_agg(j.anchor || ' (' || j.attempts || ' failed)', ', ' order by j.anchor)
                          from runproof_private.log_anchor_jobs j
                         where j.tenant_id = c.tenant_id and j.tree_size = c.tree_size and j.done_at is null), '') as pending
         from runproof.log_checkpoints c where c.tenant_id = $1 order by c.tree_size desc limit $2`,
      [opts.tenantId, opts.limit],
    );
    if (opts.json) return printJson(rows);
    out(
      table(
        ["size", "root", "signed at", "anchored", "pending"],
        rows.map((r) => [
          r.tree_size,
          truncate(r.root_hash, 16),
          fmtTime(r.signed_at),
          r.anchored || "-",
          r.pending || "-",
        ]),
      ),
    );
  });
}

export async function checkpointConsistency(opts: {
  tenantId: string;
  from: number;
  to: number;
  json?: boolean;
}): Promise<void> {
  await withDatabase(async ({ pool }) => {
    await requireTenant(pool, opts.tenantId);
    const {
      rows: [c],
    } = await pool.query<{ proof: string[] }>(`select runproof.log_consistency_proof($1, $2, $3) as proof`, [
      opts.tenantId,
      opts.from,
      opts.to,
    ]);
    if (opts.json)
      return printJson({ tenant_id: opts.tenantId, from_size: opts.from, to_size: opts.to, proof: c.proof });
    out(`consistency proof from size ${opts.from} to ${opts.to} (RFC 9162 2.1.4, ${c.proof.length} hashes):`);
    for (const h of c.proof) out(h);
  });
}
