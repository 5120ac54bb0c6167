// runproof proof verify BUNDLE_FILE: offline. This module must not reach a database: it
// imports no database code, and needs neither DATABASE_URL nor an embedded Postgres. It
// recomputes every hash of the bundle (src/lib/offline-verify.ts, with node:crypto's SHA-256).
import fs from "node:fs/promises";
import { type BundleLog, type LogVerdict, verifyBundleLog } from "../lib/offline-checkpoint.ts";
import { invalid, type OfflineProof, verifyBundle } from "../lib/offline-verify.ts";
import { nodeSha256 } from "../lib/sha256-node.ts";
import { EXIT, kvTable, out, printJson, usageError } from "./common.ts";

export async function proofVerify(
  file: string,
  opts: { json?: boolean; expectRoot?: string; key?: string; checkpoint?: string },
): Promise<void> {
  const vkey = opts.key ?? process.env.RUNPROOF_CHECKPOINT_VERIFIER_KEY;
  if (opts.checkpoint && !vkey)
    throw usageError(
      "--checkpoint needs the log's verifier key",
      "pass --key NAME+ID+KEY (runproof checkpoint show prints it)",
    );
  let kept: string | undefined;
  if (opts.checkpoint) {
    try {
      kept = await fs.readFile(opts.checkpoint, "utf8");
    } catch (e) {
      throw usageError(`cannot read the checkpoint ${opts.checkpoint}: ${(e as Error).message}`);
    }
  }
  let text: string;
  try {
    text = file === "-" ? await readStdin() : await fs.readFile(file, "utf8");
  } catch (e) {
    throw usageError(
      `cannot read the bundle ${file}: ${(e as Error).message}`,
      "export one with: npx runproof proof export RUN_ID -o bundle.json",
    );
  }
  let proof: OfflineProof;
  let databaseSaid: Record<string, unknown> | null = null;
  let log: LogVerdict | null = null;
  try {
    const raw = JSON.parse(text);
    proof = await verifyBundle(raw, { sha256: nodeSha256 });
    // The run's place in its tenant's signed log (docs/proof-format.md section 13), with the key given.
    if (vkey && proof.verification_status !== "INVALID_BUNDLE")
      log = verifyBundleLog(
        raw.log as BundleLog | null,
        { tenantId: raw.tenant_id, runId: raw.run_id, sealText: raw.run?.seal ?? null },
        {
          verifierKey: vkey,
          kept,
        },
      );
    if (raw && typeof raw === "object" && raw.database_proof && typeof raw.database_proof === "object")
      databaseSaid = raw.database_proof;
  } catch (e) {
    proof = invalid(`the file is not JSON: ${(e as Error).message}`);
  }
  // A root recorded elsewhere: a consistent rewrite of the whole run (seals included) changes it.
  if (
    opts.expectRoot &&
    proof.verification_status === "VERIFIED" &&
    proof.root_hash !== opts.expectRoot.toLowerCase()
  ) {
    proof = {
      ...proof,
      verification_status: "TAMPERED",
      reason: `the bundle's recomputed run root ${proof.root_hash} is not the expected root ${opts.expectRoot.toLowerCase()}`,
    };
  }

  if (opts.json) {
    printJson({ file, ...proof, expected_root: opts.expectRoot ?? null, log });
  } else {
    out(`offline verification of ${file} (no database; SHA-256 only)`);
    const pairs: [string, unknown][] = [
      ["integrity model", proof.integrity_model],
      ["verification status", proof.verification_status],
      ["tenant", proof.tenant_id],
      ["run", proof.run_id],
      ["chain length", proof.chain_length],
      ["root hash", proof.root_hash],
      ["traces", proof.trace_count],
      ["steps", proof.step_count],
      ["erased steps", proof.erased_steps],
    ];
    if (proof.verification_status !== "VERIFIED") {
      pairs.push(
        ["first bad attempt", proof.first_bad_attempt ?? "-"],
        ["first bad trace", proof.first_bad_trace_id ?? "-"],
        ["first bad step", proof.first_bad_step_index ?? "-"],
        ["reason", proof.reason ?? "-"],
      );
    }
    out(kvTable(pairs));
    if (databaseSaid?.verification_status) {
      const same = databaseSaid.root_hash === proof.root_hash;
      out(
        `at export the database said ${String(databaseSaid.verification_status)}, root ${String(databaseSaid.root_hash ?? "-")}` +
          (proof.root_hash ? (same ? " (the same root)" : " (a different root)") : ""),
      );
    }
    if (opts.expectRoot && proof.verification_status === "VERIFIED")
      out(`the root matches the expected root`);
    if (log) out(`log: ${log.status}: ${log.reason}`);
  }
  process.exitCode =
    proof.verification_status === "VERIFIED" && (!log || log.ok) ? EXIT.OK : EXIT.VERIFY_FAILED;
}

async function readStdin(): Promise<string> {
  let s = "";
  for await (const chunk of process.stdin) s += chunk;
  return s;
}
