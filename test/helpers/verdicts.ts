// The four verifiers of a run side by side: runproof.run_proof, runproof.verify_trace (for a fault
// inside a trace), runproof.verify_all and the offline verifier on an exported bundle. They must agree
// field for field (docs/proof-format.md section 9).
import type { ExecutionContext } from "ava";
import type pg from "pg";
import { exportBundle } from "../../src/lib/bundle.ts";
import { type OfflineProof, verifyBundle } from "../../src/lib/offline-verify.ts";
import { nodeSha256 } from "../../src/lib/sha256-node.ts";
import { type Proof, runProof, verifyTrace } from "./ledger.ts";

/** The fields a proof reports that the offline verifier recomputes (guard_status is copied, not recomputed). */
export const PROOF_FIELDS = [
  "verification_status",
  "proof_format",
  "chain_length",
  "root_hash",
  "trace_count",
  "step_count",
  "erased_steps",
  "first_bad_attempt",
  "first_bad_trace_id",
  "first_bad_step_index",
  "reason",
] as const;

export type FullProof = Proof & { guard_status: string | null; guard_detail: string | null };

/** Exports the run (as a file would carry it: through JSON) and verifies the bundle offline. */
export async function offlineProof(pool: pg.Pool, tenantId: string, runId: string): Promise<OfflineProof> {
  const bundle = JSON.parse(JSON.stringify(await exportBundle(pool, tenantId, runId)));
  return verifyBundle(bundle, { sha256: nodeSha256 });
}

/**
 * Asserts that run_proof, the offline verifier, verify_all and (for a fault inside a trace)
 * verify_trace say the same of a run, and returns run_proof's answer.
 */
export async function agreeingProof(
  t: ExecutionContext,
  pool: pg.Pool,
  tenantId: string,
  runId: string,
  label = "",
): Promise<FullProof> {
  const sql = (await runProof(pool, tenantId, runId)) as FullProof;
  const offline = await offlineProof(pool, tenantId, runId);
  for (const k of PROOF_FIELDS) t.deepEqual(offline[k], sql[k], `${label}: offline ${k} (${sql.reason})`);
  t.is(offline.guard_status, sql.guard_status, `${label}: offline guard_status`);
  t.is(offline.guard_detail, sql.guard_detail, `${label}: offline guard_detail`);

  const rows = (
    await pool.query(
      `select * from runproof.verify_all() where run_id = $1 and trace_id is not distinct from $2`,
      [runId, sql.first_bad_trace_id],
    )
  ).rows;
  if (sql.verification_status === "VERIFIED" || sql.verification_status === "IN_PROGRESS") {
    t.true(
      rows.every((r) => r.guard_status === "UNGUARDED"),
      `${label}: verify_all lists the run only when UNGUARDED`,
    );
  } else {
    t.like(
      rows[0] ?? {},
      {
        tenant_id: tenantId,
        verification_status: sql.verification_status,
        first_bad_attempt: sql.first_bad_attempt,
        first_bad_step_index: sql.first_bad_step_index,
        reason: sql.reason,
      },
      `${label}: verify_all`,
    );
  }

  // A fault inside a trace is that trace's own verdict, without the "attempt N: " of the run's reason.
  const inTrace = sql.first_bad_trace_id && /^attempt \d+: /.exec(sql.reason ?? "");
  if (inTrace && sql.first_bad_trace_id) {
    const v = await verifyTrace(pool, sql.first_bad_trace_id);
    t.like(
      v,
      {
        verification_status: sql.verification_status,
        first_bad_attempt: sql.first_bad_attempt,
        first_bad_step_index: sql.first_bad_step_index,
        reason: (sql.reason ?? "").slice(inTrace[0].length),
      },
      `${label}: verify_trace`,
    );
  }
  // Large traces are checked by a parallel pass (runproof_private.step_faults_parallel): it must find what
  // the single pass finds. Forced here on every trace of the run by its size hint.
  const { rows: passes } = await pool.query(
    `select t.attempt, to_jsonb(s) as single, to_jsonb(p) as parallel
       from runproof.traces t,
            lateral runproof_private.step_faults(t.tenant_id, t.id, runproof_private.genesis_hash(t.tenant_id, t.run_id, t.id), 0, 0) s,
            lateral runproof_private.step_faults(t.tenant_id, t.id, runproof_private.genesis_hash(t.tenant_id, t.run_id, t.id), 0, 1000000) p
      where t.run_id = $1`,
    [runId],
  );
  for (const r of passes)
    t.deepEqual(r.parallel, r.single, `${label}: the parallel pass of attempt ${r.attempt}`);
  return sql;
}
