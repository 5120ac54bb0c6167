// The offline verifier: a second, independent implementation of docs/proof-format.md.
// It needs no database: it recomputes every hash of a bundle from the canonical bytes with
// node:crypto's SHA-256 and reports the same fields, statuses and first bad step as
// runproof.run_proof in PL/pgSQL.
import { createHash } from "node:crypto";
import { bundleSchema, type Bundle, type BundleTrace } from "./bundle.ts";

export type Status = "VERIFIED" | "IN_PROGRESS" | "TAMPERED" | "BROKEN" | "NOT_FOUND" | "INVALID_BUNDLE";

export interface OfflineProof {
  integrity_model: "HASH_CHAIN";
  verification_status: Status;
  tenant_id: string | null;
  run_id: string | null;
  chain_length: number;
  root_hash: string | null;
  trace_count: number;
  step_count: number;
  first_bad_attempt: number | null;
  first_bad_trace_id: string | null;
  first_bad_step_index: number | null;
  reason: string | null;
  /**
   * The database's guard status at export (GUARDED, UNGUARDED, UNAUDITED; from its DDL audit),
   * copied from the bundle's database_proof: reported, not recomputed, since no hash covers it.
   */
  guard_status?: string | null;
  guard_detail?: string | null;
}

const TERMINAL = new Set(["succeeded", "failed", "halted", "cancelled"]);

export const sha256 = (...parts: (Buffer | string)[]): Buffer => {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return h.digest();
};

export const genesisHash = (tenantId: string, runId: string, traceId: string) =>
  sha256(`runproof.genesis/1|${tenantId}|${runId}|${traceId}`);

export const stepHash = (prev: Buffer, canonical: Buffer) => sha256(prev, sha256(canonical));

export const runRootHash = (tenantId: string, runId: string, runCanonical: Buffer, traceRoots: Buffer[]) =>
  sha256(sha256(`runproof.run/1|${tenantId}|${runId}`), sha256(runCanonical), ...traceRoots);

/** Whether the run's hashed content says what the bundle's run fields say (so what is shown is what is proven). */
function runContentMismatch(b: Bundle, canonical: Buffer): string | null {
  let c: unknown;
  try {
    c = JSON.parse(canonical.toString("utf8"));
  } catch {
    return "the run's canonical content is not JSON";
  }
  if (!Array.isArray(c) || c[0] !== "runproof.run/1")
    return "the run's canonical content is not a runproof.run/1 record";
  const [, tenant, id, agent, goal, origin, plan] = c;
  if (tenant !== b.run.tenant_id || id !== b.run_id) return "the run's canonical content names another run";
  if (agent !== b.run.agent_id) return "the run's agent_id differs from its hashed content";
  if (goal !== b.run.goal) return "the run's goal differs from its hashed content";
  if (origin !== b.run.origin_system_id) return "the run's origin_system_id differs from its hashed content";
  if (JSON.stringify(plan) !== JSON.stringify(b.run.plan))
    return "the run's plan differs from its hashed content";
  return null;
}

interface TraceResult {
  status: Status;
  chainLength: number;
  stepCount: number;
  root: Buffer;
  firstBadStep: number | null;
  reason: string | null;
}

/** Verifies one trace of a bundle exactly as runproof_private.verify_trace_row does. */
export function verifyBundleTrace(t: BundleTrace, runId: string): TraceResult {
  const genesis = genesisHash(t.tenant_id, runId, t.id);
  const steps = [...t.steps].sort((a, b) => a.step_index - b.step_index);
  const n = steps.length;
  const root = n ? Buffer.from(steps[n - 1].step_hash, "hex") : genesis;
  const bad = (status: Status, index: number | null, chainLength: number, reason: string): TraceResult => ({
    status,
    chainLength,
    stepCount: n,
    root,
    firstBadStep: index,
    reason,
  });

  for (let i = 0; i < n; i++) {
    const s = steps[i];
    if (s.step_index !== i) {
      return bad(
        "BROKEN",
        i,
        i,
        `step ${i} is missing from the chain (the next stored step is ${s.step_index})`,
      );
    }
    const expectedPrev = i === 0 ? genesis : Buffer.from(steps[i - 1].step_hash, "hex");
    if (s.prev_hash !== expectedPrev.toString("hex")) {
      return bad(
        "TAMPERED",
        i,
        i,
        `step ${i}: prev_hash ${s.prev_hash} does not link to ${i === 0 ? "the trace's genesis hash" : `the step_hash of step ${i - 1}`} ${expectedPrev.toString("hex")}`,
      );
    }
    const canonical = Buffer.from(s.canonical, "base64");
    const recomputed = stepHash(Buffer.from(s.prev_hash, "hex"), canonical);
    if (s.step_hash !== recomputed.toString("hex")) {
      return bad(
        "TAMPERED",
        i,
        i,
        `step ${i}: stored step_hash ${s.step_hash} does not match sha256(prev_hash || sha256(content)) = ${recomputed.toString("hex")}; its content or its hash was changed`,
      );
    }
    // The content must describe this very step (the hash binds it; this names the mismatch).
    const content = parseCanonical(canonical);
    if (
      !content ||
      content[1] !== t.tenant_id ||
      content[2] !== runId ||
      content[3] !== t.id ||
      content[4] !== i
    ) {
      return bad(
        "TAMPERED",
        i,
        i,
        `step ${i}: its canonical content does not describe step ${i} of trace ${t.id}`,
      );
    }
  }
  if (t.status === "running") {
    if (t.step_count !== null || t.root_hash !== null)
      return bad("TAMPERED", null, n, "a running trace carries a seal");
    return { status: "IN_PROGRESS", chainLength: n, stepCount: n, root, firstBadStep: null, reason: null };
  }
  if (t.step_count === null || t.root_hash === null)
    return bad("BROKEN", null, n, `trace is ${t.status} but has no seal`);
  if (t.step_count !== n) {
    const at = Math.min(t.step_count, n);
    return bad(
      "BROKEN",
      at,
      at,
      n < t.step_count
        ? `the seal says ${t.step_count} steps but the chain has ${n}: step ${n} onwards is missing`
        : `the seal says ${t.step_count} steps but the chain has ${n}: step ${t.step_count} onwards was added after the seal`,
    );
  }
  if (t.root_hash !== root.toString("hex")) {
    return bad(
      "TAMPERED",
      null,
      n,
      `the sealed root_hash ${t.root_hash} does not match the chain's root ${root.toString("hex")}`,
    );
  }
  return { status: "VERIFIED", chainLength: n, stepCount: n, root, firstBadStep: null, reason: null };
}

function parseCanonical(bytes: Buffer): unknown[] | null {
  try {
    const v = JSON.parse(bytes.toString("utf8"));
    return Array.isArray(v) && v[0] === "runproof.step/1" ? v : null;
  } catch {
    return null;
  }
}

/** Verifies a whole bundle (parsed JSON) like runproof.run_proof. */
export function verifyBundle(raw: unknown): OfflineProof {
  const parsed = bundleSchema.safeParse(raw);
  const out: OfflineProof = {
    integrity_model: "HASH_CHAIN",
    verification_status: "VERIFIED",
    tenant_id: null,
    run_id: null,
    chain_length: 0,
    root_hash: null,
    trace_count: 0,
    step_count: 0,
    first_bad_attempt: null,
    first_bad_trace_id: null,
    first_bad_step_index: null,
    reason: null,
    guard_status: null,
    guard_detail: null,
  };
  if (!parsed.success) {
    out.verification_status = "INVALID_BUNDLE";
    out.reason = parsed.error.issues
      .slice(0, 5)
      .map((i) => `${i.path.join(".") || "(bundle)"}: ${i.message}`)
      .join("; ");
    return out;
  }
  const b: Bundle = parsed.data;
  out.tenant_id = b.tenant_id;
  out.run_id = b.run_id;
  const reported = (k: string) =>
    typeof b.database_proof[k] === "string" ? (b.database_proof[k] as string) : null;
  out.guard_status = reported("guard_status");
  out.guard_detail = reported("guard_detail");
  let status: Status | null = null;
  const fail = (
    s: Status,
    reason: string,
    attempt: number | null = null,
    traceId: string | null = null,
    step: number | null = null,
  ) => {
    if (status !== null) return;
    status = s;
    out.reason = reason;
    out.first_bad_attempt = attempt;
    out.first_bad_trace_id = traceId;
    out.first_bad_step_index = step;
  };
  const traces = [...b.traces].sort((x, y) => x.attempt - y.attempt || x.id.localeCompare(y.id));
  const roots: Buffer[] = [];
  let inProgress = false;
  let expected = 1;
  for (const t of traces) {
    out.trace_count++;
    if (t.tenant_id !== b.run.tenant_id) {
      fail(
        "TAMPERED",
        `trace ${t.id} (attempt ${t.attempt}) belongs to tenant ${t.tenant_id} but the run to tenant ${b.run.tenant_id}`,
        t.attempt,
        t.id,
      );
    }
    if (t.attempt !== expected) {
      fail(
        "BROKEN",
        t.attempt < expected
          ? `attempt ${t.attempt} appears twice`
          : `the trace of attempt ${expected} is missing`,
        expected,
      );
    }
    expected = t.attempt + 1;
    const r = verifyBundleTrace(t, b.run_id);
    out.step_count += r.stepCount;
    // chain_length counts the steps verified in chain order, up to the first fault.
    if (status === null) out.chain_length += r.chainLength;
    roots.push(r.root);
    if (r.status === "IN_PROGRESS") inProgress = true;
    else if (r.status !== "VERIFIED")
      fail(r.status, `attempt ${t.attempt}: ${r.reason}`, t.attempt, t.id, r.firstBadStep);
  }
  const runCanonical = Buffer.from(b.run.canonical, "base64");
  const root = runRootHash(b.run.tenant_id, b.run_id, runCanonical, roots);
  out.root_hash = root.toString("hex");
  if (out.trace_count < b.run.attempts) {
    fail(
      "BROKEN",
      `the run made ${b.run.attempts} attempts but ${out.trace_count} traces exist: the trace of attempt ${out.trace_count + 1} is missing`,
      out.trace_count + 1,
    );
  }
  if (TERMINAL.has(b.run.status)) {
    if (b.run.trace_count !== out.trace_count) {
      fail(
        "BROKEN",
        `the run seal says ${b.run.trace_count} traces but ${out.trace_count} exist`,
        Math.min(b.run.trace_count ?? 0, out.trace_count) + 1,
      );
    } else if (b.run.root_hash !== out.root_hash) {
      fail(
        "TAMPERED",
        `the run's sealed root_hash ${b.run.root_hash ?? "NULL"} does not match the root recomputed from its traces ${out.root_hash}`,
      );
    }
  }
  const contentProblem = runContentMismatch(b, runCanonical);
  if (contentProblem) fail("TAMPERED", contentProblem);
  if (b.run.tenant_id !== b.tenant_id) {
    fail("TAMPERED", `the run belongs to tenant ${b.run.tenant_id} but the bundle to tenant ${b.tenant_id}`);
  }
  out.verification_status =
    status ?? (inProgress || !TERMINAL.has(b.run.status) ? "IN_PROGRESS" : "VERIFIED");
  return out;
}
