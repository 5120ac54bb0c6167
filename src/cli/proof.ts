// runproof proof RUN_ID | proof export RUN_ID: the database's verdict (runproof.run_proof,
// PL/pgSQL recomputing every hash) and the bundle an auditor can check offline.
import fs from "node:fs/promises";
import { EXIT, kvTable, notFound, out, printJson, tenantOfRun, toJson, withDatabase } from "./common.ts";

export const PROOF_FIELDS: [string, string][] = [
  ["integrity_model", "integrity model"],
  ["verification_status", "verification status"],
  ["tenant_id", "tenant"],
  ["run_id", "run"],
  ["chain_length", "chain length"],
  ["root_hash", "root hash"],
  ["trace_count", "traces"],
  ["step_count", "steps"],
];

/** The proof as a two-column table; the first bad step and the reason only when not verified. */
export function proofTable(p: Record<string, unknown>): string {
  const pairs: [string, unknown][] = PROOF_FIELDS.map(([k, label]) => [label, p[k]]);
  if (p.verification_status !== "VERIFIED") {
    pairs.push(["first bad attempt", p.first_bad_attempt ?? "-"]);
    pairs.push(["first bad trace", p.first_bad_trace_id ?? "-"]);
    pairs.push(["first bad step", p.first_bad_step_index ?? "-"]);
    pairs.push(["reason", p.reason ?? "-"]);
  }
  // Whether the guards were live while the run was written (the DDL audit, sql/audit/).
  if (p.guard_status) {
    pairs.push(["guards", p.guard_status]);
    if (p.guard_status !== "GUARDED" && p.guard_detail) pairs.push(["guard detail", p.guard_detail]);
  }
  if (p.verified_at) pairs.push(["verified at", p.verified_at]);
  // Its place in the tenant's signed log (docs/proof-format.md section 13).
  if (p.leaf_index !== null && p.leaf_index !== undefined) {
    pairs.push(["log leaf", p.leaf_index]);
    pairs.push([
      "checkpointed",
      p.inclusion_proof
        ? `yes, in the checkpoint of size ${p.checkpoint_size} (inclusion proof of ${(p.inclusion_proof as string[]).length} hashes)`
        : `not yet (latest checkpoint: ${p.checkpoint_size ?? "none"})`,
    ]);
  }
  return kvTable(pairs);
}

export function exitCodeForStatus(status: string): number {
  if (status === "VERIFIED") return EXIT.OK;
  if (status === "NOT_FOUND") return EXIT.NOT_FOUND;
  return EXIT.VERIFY_FAILED;
}

export async function proofShow(runId: string, opts: { tenantId?: string; json?: boolean }): Promise<void> {
  await withDatabase(async ({ pool }) => {
    const tenantId = await tenantOfRun(pool, runId, opts.tenantId);
    const {
      rows: [p],
    } = await pool.query(`select * from runproof.run_proof($1, $2)`, [tenantId, runId]);
    if (opts.json) printJson(p);
    else out(proofTable(p));
    process.exitCode = exitCodeForStatus(p.verification_status);
  });
}

export async function proofExport(
  runId: string,
  opts: { tenantId?: string; output?: string; consistencyFrom?: number[] },
): Promise<void> {
  await withDatabase(async ({ pool }) => {
    const tenantId = await tenantOfRun(pool, runId, opts.tenantId);
    const { exportBundle } = await import("../lib/bundle.ts");
    const {
      rows: [exists],
    } = await pool.query(`select 1 from runproof.runs where tenant_id = $1 and id = $2`, [tenantId, runId]);
    if (!exists) {
      throw notFound(
        `run ${runId} not found for tenant ${tenantId}`,
        "a bundle needs the run row; npx runproof proof shows what is left of it",
      );
    }
    const bundle = await exportBundle(pool, tenantId, runId, { consistencyFrom: opts.consistencyFrom });
    const text = `${toJson(bundle)}\n`;
    if (!opts.output || opts.output === "-") {
      process.stdout.write(text);
      return;
    }
    await fs.writeFile(opts.output, text);
    const steps = bundle.traces.reduce((n, t) => n + t.steps.length, 0);
    process.stderr.write(
      `wrote ${opts.output}: run ${runId}, ${bundle.traces.length} trace(s), ${steps} step(s); the database said ${String(bundle.database_proof.verification_status)}\n`,
    );
    process.stderr.write(`check it anywhere, without a database: npx runproof proof verify ${opts.output}\n`);
  });
}
