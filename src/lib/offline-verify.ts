// The offline verifier: a second, independent implementation of docs/proof-format.md (format 2).
// It needs no database: it recomputes every hash of a bundle from its canonical texts and runs the
// checks of section 9 in the same order as runproof.run_proof, reporting the same fields, verdicts,
// first bad step and reasons. No node: imports: the CLI and the web page run this same module; SHA-256
// comes from Web Crypto unless the caller passes a faster one (the CLI passes node:crypto's).
import { isLosslessNumber, type LosslessNumber, parse as parseLossless } from "lossless-json";
import { type Bundle, type BundleStep, type BundleTrace, bundleSchema } from "./bundle-format.ts";

export type Status = "VERIFIED" | "IN_PROGRESS" | "TAMPERED" | "BROKEN" | "NOT_FOUND" | "INVALID_BUNDLE";

/** The fields of runproof.proof (docs/proof-format.md section 9.4), as the database reports them. */
export interface OfflineProof {
  integrity_model: "HASH_CHAIN";
  proof_format: 2;
  verification_status: Status;
  tenant_id: string | null;
  run_id: string | null;
  chain_length: number;
  root_hash: string | null;
  trace_count: number;
  step_count: number;
  erased_steps: number;
  first_bad_attempt: number | null;
  first_bad_trace_id: string | null;
  first_bad_step_index: number | null;
  reason: string | null;
  /**
   * The database's guard status at export (GUARDED, UNGUARDED, UNAUDITED; from its DDL audit),
   * copied from the bundle's database_proof: reported, not recomputed, since no hash covers it.
   */
  guard_status: string | null;
  guard_detail: string | null;
}

export type Sha256 = (data: Uint8Array) => Uint8Array | Promise<Uint8Array>;

/** SHA-256 through Web Crypto (browsers, and Node 22's globalThis.crypto). */
export const webCryptoSha256: Sha256 = async (data) =>
  new Uint8Array(await globalThis.crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>));

const utf8 = new TextEncoder();
const TERMINAL = new Set(["succeeded", "failed", "halted", "cancelled"]);
const STEP_TAG = "runproof.step/2";
const TRACE_ELEMENTS = [
  "format",
  "tenant_id",
  "run_id",
  "trace_id",
  "attempt",
  "status",
  "started_at",
  "completed_at",
  "step_count",
  "root_hash",
  "metadata",
];
const SEAL_ELEMENTS = [
  "format",
  "tenant_id",
  "run_id",
  "content",
  "status",
  "error",
  "attempts",
  "next_plan_step",
  "cost_cents",
  "planned_at",
  "started_at",
  "finished_at",
  "trace seals",
  "incidents",
];

export const toHex = (b: Uint8Array): string =>
  Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
export const fromHex = (h: string): Uint8Array =>
  Uint8Array.from(h.match(/../g) ?? [], (x) => Number.parseInt(x, 16));
const concat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};

/** The hashes of docs/proof-format.md, over a given SHA-256. */
export function hashes(sha256: Sha256 = webCryptoSha256) {
  const h = async (...parts: Uint8Array[]) => sha256(concat(...parts));
  return {
    sha256: h,
    genesis: (tenantId: string, runId: string, traceId: string) =>
      h(utf8.encode(`runproof.genesis/2|${tenantId}|${runId}|${traceId}`)),
    step: async (prev: Uint8Array, canonical: Uint8Array) => h(prev, await h(canonical)),
    commitment: (kind: string, salt: Uint8Array, text: string) =>
      h(utf8.encode(`runproof.payload/2|${kind}|`), salt, utf8.encode(text)),
  };
}

// ---------------------------------------------------------------------------------------------
// Canonical texts as PostgreSQL's jsonb sees them: decoded without losing a digit, compared and
// printed the way the database compares and prints jsonb values, so the reasons agree.
// ---------------------------------------------------------------------------------------------

type Json = null | boolean | string | LosslessNumber | Json[] | { [k: string]: Json };

function decode(text: string): Json[] | null {
  try {
    const v = parseLossless(text) as Json;
    return Array.isArray(v) ? v : null;
  } catch {
    return null;
  }
}

/** A JSON number as PostgreSQL's numeric prints it: plain decimal, scale kept (1.50e1 is 15.0). */
function numericText(text: string): string {
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (!m) return text;
  const [, sign, int, frac = "", exp = "0"] = m;
  const e = Number.parseInt(exp, 10);
  const scale = Math.max(0, frac.length - e);
  let digits = (int + frac).replace(/^0+(?=\d)/, "");
  const point = int.length + e; // position of the decimal point within int+frac
  let whole: string;
  let fraction: string;
  const all = int + frac;
  if (point <= 0) {
    whole = "0";
    fraction = "0".repeat(-point) + all;
  } else if (point >= all.length) {
    whole = all + "0".repeat(point - all.length);
    fraction = "";
  } else {
    whole = all.slice(0, point);
    fraction = all.slice(point);
  }
  whole = whole.replace(/^0+(?=\d)/, "");
  fraction = (fraction + "0".repeat(scale)).slice(0, scale);
  digits = fraction ? `${whole}.${fraction}` : whole;
  const zero = /^[0.]+$/.test(digits);
  return (zero ? "" : sign) + digits;
}

const decimalCompare = (a: string, b: string): number => {
  const norm = (t: string) => {
    const s = numericText(t);
    const neg = s.startsWith("-");
    const [w, f = ""] = (neg ? s.slice(1) : s).split(".");
    return { neg, w: w.replace(/^0+(?=\d)/, ""), f: f.replace(/0+$/, "") };
  };
  const x = norm(a);
  const y = norm(b);
  if (x.neg !== y.neg) return x.neg ? -1 : 1;
  const mag =
    x.w.length !== y.w.length
      ? x.w.length - y.w.length
      : x.w !== y.w
        ? x.w < y.w
          ? -1
          : 1
        : x.f.padEnd(y.f.length, "0") === y.f.padEnd(x.f.length, "0")
          ? 0
          : x.f.padEnd(y.f.length, "0") < y.f.padEnd(x.f.length, "0")
            ? -1
            : 1;
  return x.neg ? -mag : mag;
};

/** Whether two decoded values are the same jsonb value (numbers by value, object keys unordered). */
function jsonbEqual(a: Json, b: Json): boolean {
  if (isLosslessNumber(a) || isLosslessNumber(b))
    return isLosslessNumber(a) && isLosslessNumber(b) && decimalCompare(a.value, b.value) === 0;
  if (Array.isArray(a) || Array.isArray(b))
    return (
      Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => jsonbEqual(x, b[i]))
    );
  if (a && b && typeof a === "object" && typeof b === "object") {
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    return ka.length === kb.length && ka.every((k) => k in b && jsonbEqual(a[k], b[k]));
  }
  return a === b;
}

const keyOrder = (x: string, y: string) => {
  const bx = utf8.encode(x);
  const by = utf8.encode(y);
  if (bx.length !== by.length) return bx.length - by.length;
  for (let i = 0; i < bx.length; i++) if (bx[i] !== by[i]) return bx[i] - by[i];
  return 0;
};

/** A decoded value as PostgreSQL prints jsonb. */
export function jsonbText(v: Json): string {
  if (v === null) return "null";
  if (isLosslessNumber(v)) return numericText(v.value);
  if (typeof v === "string" || typeof v === "boolean") return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(jsonbText).join(", ")}]`;
  return `{${Object.keys(v)
    .sort(keyOrder)
    .map((k) => `${JSON.stringify(k)}: ${jsonbText(v[k])}`)
    .join(", ")}}`;
}

const str = (v: Json | undefined): string | null => (typeof v === "string" ? v : null);
const int = (v: Json | undefined): number | null => (isLosslessNumber(v) ? Number(v.value) : null);

/** Exact decimal sums of 4-decimal costs (numeric(14, 4) columns). */
const cents = (v: Json | undefined): bigint => {
  if (!isLosslessNumber(v)) return 0n;
  const s = numericText(v.value);
  const neg = s.startsWith("-");
  const [w, f = ""] = (neg ? s.slice(1) : s).split(".");
  const n = BigInt(w) * 10000n + BigInt(`${f}0000`.slice(0, 4));
  return neg ? -n : n;
};
const centsText = (n: bigint): string => {
  const neg = n < 0n;
  const a = neg ? -n : n;
  const f = (a % 10000n).toString().padStart(4, "0");
  return `${neg ? "-" : ""}${a / 10000n}.${f}`;
};

/** The first element in which a record's text now differs from its seal: [index, name, now, sealed]. */
function sealDifference(
  now: Json[] | null,
  sealed: Json[] | null,
  names: string[],
): [number, string, string, string] {
  if (!now || !sealed || sealed.length !== names.length) return [-1, "text", "", ""];
  for (let k = 0; k < names.length; k++) {
    if (!jsonbEqual(now[k] ?? null, sealed[k] ?? null))
      return [k, names[k], jsonbText(now[k] ?? null), jsonbText(sealed[k] ?? null)];
  }
  return [-1, "text", "", ""];
}

// ---------------------------------------------------------------------------------------------
// The checks of docs/proof-format.md section 9
// ---------------------------------------------------------------------------------------------

type Fault =
  | "gap"
  | "link"
  | "hash"
  | "decision_missing"
  | "decision_hash"
  | "decision_other"
  | "payload_input"
  | "payload_output"
  | "payload_error"
  | "payload_missing"
  | "order"
  | "after_end";
const BROKEN_FAULTS = new Set<Fault>(["gap", "decision_missing", "payload_missing", "order", "after_end"]);

interface TraceResult {
  status: Status;
  chainLength: number;
  stepCount: number;
  erased: number;
  succeeded: number;
  cost: bigint;
  lastStepStatus: string | null;
  firstBadStep: number | null;
  reason: string | null;
}

interface DecodedTrace {
  raw: BundleTrace;
  state: Json[];
  id: string;
  tenantId: string;
  runId: string;
  attempt: number;
  status: string;
}

async function checkTrace(
  t: DecodedTrace,
  resume: number,
  erasedSteps: Set<string>,
  H: ReturnType<typeof hashes>,
): Promise<TraceResult> {
  const genesis = await H.genesis(t.tenantId, t.runId, t.id);
  const steps = [...t.raw.steps].sort((a, b) => a.step_index - b.step_index);
  const n = steps.length;
  const decoded = steps.map((s) => decode(s.canonical));
  let succeeded = 0;
  let cost = 0n;
  let erased = 0;
  for (const [i, s] of steps.entries()) {
    const c = decoded[i];
    if (c?.[7] === "succeeded") succeeded++;
    cost += cents(c?.[16]);
    if (s.payload === null && s.erasure !== null && erasedSteps.has(`${t.id}:${s.step_index}`)) erased++;
  }
  const last = n ? steps[n - 1] : null;
  const lastStepStatus = n ? str(decoded[n - 1]?.[7]) : null;
  const root = last ? last.step_hash : toHex(genesis);
  const base = { stepCount: n, erased, succeeded, cost, lastStepStatus };

  // Checks 3 to 6, step by step: the first step with a fault, with the first check that fails.
  let succeededBefore = 0;
  for (let k = 0; k < n; k++) {
    const s = steps[k];
    const c = decoded[k];
    const fault = await stepFault(s, c, k, k === 0 ? genesis : fromHex(steps[k - 1].step_hash));
    let f = fault;
    if (!f && int(c?.[5]) !== resume + succeededBefore) f = "order";
    if (!f && c?.[7] !== "succeeded" && k < n - 1) f = "after_end";
    if (f) {
      const at = f === "gap" ? k : s.step_index;
      return {
        ...base,
        status: BROKEN_FAULTS.has(f) ? "BROKEN" : "TAMPERED",
        chainLength: at,
        firstBadStep: at,
        reason: await stepReason(
          f,
          s,
          c,
          at,
          k === 0 ? genesis : fromHex(steps[k - 1].step_hash),
          resume + succeededBefore,
          H,
        ),
      };
    }
    if (c?.[7] === "succeeded") succeededBefore++;
  }

  async function stepFault(
    s: BundleStep,
    c: Json[] | null,
    k: number,
    expectedPrev: Uint8Array,
  ): Promise<Fault | null> {
    if (s.step_index !== k) return "gap";
    if (s.prev_hash !== toHex(expectedPrev)) return "link";
    if (s.step_hash !== toHex(await H.step(fromHex(s.prev_hash), utf8.encode(s.canonical)))) return "hash";
    // The content must describe this very step (the hash binds it; this names the mismatch).
    if (
      c?.length !== 20 ||
      c[0] !== STEP_TAG ||
      c[1] !== t.tenantId ||
      c[2] !== t.runId ||
      c[3] !== t.id ||
      int(c[4]) !== k
    )
      return "hash";
    if (s.decision === null) return "decision_missing";
    if (toHex(await H.sha256(utf8.encode(s.decision))) !== c[9]) return "decision_hash";
    const d = decode(s.decision);
    if (
      !d ||
      d[1] !== t.tenantId ||
      d[2] !== c[2] ||
      d[3] !== t.id ||
      int(d[4]) !== k ||
      !jsonbEqual(d[5], c[5]) ||
      d[6] !== c[6] ||
      d[7] !== c[8]
    )
      return "decision_other";
    if (s.payload) {
      for (const [kind, el] of [
        ["input", 10],
        ["output", 11],
        ["error", 12],
      ] as const) {
        const p = s.payload[kind];
        const recomputed = p ? toHex(await H.commitment(kind, fromHex(p.salt), p.text)) : null;
        if (recomputed !== (c[el] ?? null)) return `payload_${kind}`;
      }
    } else if (!(s.erasure !== null && erasedSteps.has(`${t.id}:${s.step_index}`))) {
      return "payload_missing";
    }
    return null;
  }

  async function stepReason(
    f: Fault,
    s: BundleStep,
    c: Json[] | null,
    at: number,
    expectedPrev: Uint8Array,
    before: number,
    hs: ReturnType<typeof hashes>,
  ): Promise<string> {
    switch (f) {
      case "gap":
        return `step ${at} is missing from the chain (the next stored step is ${s.step_index})`;
      case "link":
        return `step ${at}: prev_hash ${s.prev_hash} does not link to ${at === 0 ? "the trace's genesis hash" : `the step_hash of step ${at - 1}`} ${toHex(expectedPrev)}`;
      case "hash":
        return `step ${at}: stored step_hash ${s.step_hash} does not match sha256(prev_hash || sha256(content)) = ${toHex(await hs.step(fromHex(s.prev_hash), utf8.encode(s.canonical)))}; its content or its hash was changed`;
      case "decision_missing":
        return `step ${at}: its policy decision is missing`;
      case "decision_hash":
        return `step ${at}: its policy decision was changed: the step holds decision_hash ${str(c?.[9])}, the decision hashes to ${toHex(await hs.sha256(utf8.encode(s.decision ?? "")))}`;
      case "decision_other":
        return `step ${at}: its policy decision describes another step`;
      case "payload_input":
      case "payload_output":
      case "payload_error":
        return `step ${at}: its ${f.slice(8)} payload does not match the commitment its hash covers`;
      case "payload_missing":
        return `step ${at}: its payloads are missing and no erasure of them is recorded`;
      case "order":
        return `step ${at} executed plan step ${int(c?.[5])}, but ${before} plan steps had succeeded before it`;
      default:
        return `step ${at} ${str(c?.[7])}, but the trace goes on after it`;
    }
  }

  const bad = (
    status: Status,
    reason: string,
    firstBadStep: number | null = null,
    chainLength = n,
  ): TraceResult => ({
    ...base,
    status,
    chainLength,
    firstBadStep,
    reason,
  });
  // Check 7: the status is what the steps say happened.
  if (
    (t.status === "completed" && lastStepStatus !== "succeeded" && lastStepStatus !== null) ||
    (t.status === "failed" && lastStepStatus !== "failed" && lastStepStatus !== "denied") ||
    (t.status === "aborted" && lastStepStatus === "denied")
  ) {
    return bad(
      "BROKEN",
      `the trace is ${t.status} but its last step ${lastStepStatus === null ? "does not exist" : `is ${lastStepStatus}`}`,
    );
  }
  // Check 8: the seal.
  const stepCount = int(t.state[8]);
  const rootHash = str(t.state[9]);
  if (t.status === "running") {
    if (stepCount !== null || rootHash !== null || t.raw.seal !== null || t.raw.seal_hash !== null)
      return bad("TAMPERED", "a running trace carries a seal");
    return { ...base, status: "IN_PROGRESS", chainLength: n, firstBadStep: null, reason: null };
  }
  if (stepCount === null || rootHash === null || t.raw.seal === null || t.raw.seal_hash === null)
    return bad("BROKEN", `the trace is ${t.status} but has no seal`);
  if (stepCount !== n) {
    const at = Math.min(stepCount, n);
    return bad(
      "BROKEN",
      n < stepCount
        ? `the seal says ${stepCount} steps but the chain has ${n}: step ${n} onwards is missing`
        : `the seal says ${stepCount} steps but the chain has ${n}: step ${stepCount} onwards was added after the seal`,
      at,
      at,
    );
  }
  if (rootHash !== root)
    return bad("TAMPERED", `the sealed root_hash ${rootHash} does not match the chain's root ${root}`);
  const sealHash = toHex(await H.sha256(utf8.encode(t.raw.seal)));
  if (t.raw.seal_hash !== sealHash)
    return bad(
      "TAMPERED",
      `the trace's seal_hash ${t.raw.seal_hash} does not match sha256 of its seal ${sealHash}`,
    );
  if (t.raw.seal !== t.raw.state) {
    const [k, name, now, sealed] = sealDifference(t.state, decode(t.raw.seal), TRACE_ELEMENTS);
    return bad(
      "TAMPERED",
      k >= 0
        ? `the trace's ${name} is ${now} but its seal says ${sealed}`
        : "the trace's seal is not its canonical text",
    );
  }
  return { ...base, status: "VERIFIED", chainLength: n, firstBadStep: null, reason: null };
}

/** The proof of a file that is not a format-2 bundle (INVALID_BUNDLE, docs/proof-format.md section 9). */
export function invalid(reason: string, b?: { tenant_id?: unknown; run_id?: unknown }): OfflineProof {
  return {
    integrity_model: "HASH_CHAIN",
    proof_format: 2,
    verification_status: "INVALID_BUNDLE",
    tenant_id: typeof b?.tenant_id === "string" ? b.tenant_id : null,
    run_id: typeof b?.run_id === "string" ? b.run_id : null,
    chain_length: 0,
    root_hash: null,
    trace_count: 0,
    step_count: 0,
    erased_steps: 0,
    first_bad_attempt: null,
    first_bad_trace_id: null,
    first_bad_step_index: null,
    reason,
    guard_status: null,
    guard_detail: null,
  };
}

/** Verifies a whole bundle (parsed JSON) like runproof.run_proof. */
export async function verifyBundle(raw: unknown, opts: { sha256?: Sha256 } = {}): Promise<OfflineProof> {
  const parsed = bundleSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues
      .slice(0, 5)
      .map((i) => `${i.path.join(".") || "(bundle)"}: ${i.message}`)
      .join("; ");
    const r = raw as { format?: unknown };
    return invalid(
      r && typeof r === "object" && r.format === "runproof.bundle/1"
        ? "this is a format-1 bundle (runproof.bundle/1); this verifier reads format 2 only: export the run again"
        : issues,
      raw as object,
    );
  }
  const b: Bundle = parsed.data;
  const H = hashes(opts.sha256);
  const content = decode(b.run.content);
  const state = decode(b.run.state);
  if (content?.[0] !== "runproof.run/2" || content.length !== 10)
    return invalid("run.content is not a runproof.run/2 text", b);
  if (state?.[0] !== "runproof.run-seal/2" || state.length !== 14)
    return invalid("run.state is not a runproof.run-seal/2 text", b);
  const traces: DecodedTrace[] = [];
  for (const [i, t] of b.traces.entries()) {
    const s = decode(t.state);
    if (s?.[0] !== "runproof.trace/2" || s.length !== 11)
      return invalid(`traces.${i}.state is not a runproof.trace/2 text`, b);
    traces.push({
      raw: t,
      state: s,
      id: str(s[3]) ?? "",
      tenantId: str(s[1]) ?? "",
      runId: str(s[2]) ?? "",
      attempt: int(s[4]) ?? 0,
      status: str(s[5]) ?? "",
    });
  }
  traces.sort((x, y) => x.attempt - y.attempt || (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
  const erasedSteps = new Set(b.erasures.flatMap((e) => e.steps.map((s) => `${s.trace_id}:${s.step_index}`)));
  const runTenant = str(content[1]);
  const runStatus = str(state[4]) ?? "";
  const dbProof = b.database_proof as Record<string, unknown>;

  const out: OfflineProof = {
    integrity_model: "HASH_CHAIN",
    proof_format: 2,
    verification_status: "VERIFIED",
    tenant_id: b.tenant_id,
    run_id: b.run_id,
    chain_length: 0,
    root_hash: toHex(await H.sha256(utf8.encode(b.run.state))),
    trace_count: 0,
    step_count: 0,
    erased_steps: 0,
    first_bad_attempt: null,
    first_bad_trace_id: null,
    first_bad_step_index: null,
    reason: null,
    guard_status: typeof dbProof.guard_status === "string" ? dbProof.guard_status : null,
    guard_detail: typeof dbProof.guard_detail === "string" ? dbProof.guard_detail : null,
  };
  let status: Status | null = null;
  const fail = (
    s: Status,
    reason: string,
    where: { attempt?: number | null; traceId?: string | null; step?: number | null } = {},
  ) => {
    status = s;
    out.reason = reason;
    out.first_bad_attempt = where.attempt ?? null;
    out.first_bad_trace_id = where.traceId ?? null;
    out.first_bad_step_index = where.step ?? null;
  };

  // What the bundle's texts must say of each other (the database computes them from one row each).
  if (
    str(content[2]) !== b.run_id ||
    runTenant !== b.tenant_id ||
    state[1] !== runTenant ||
    state[2] !== b.run_id
  )
    fail("TAMPERED", "the bundle's run texts describe another run");
  else if (str(state[3]) !== toHex(await H.sha256(utf8.encode(b.run.content))))
    fail("TAMPERED", "the run's content is not the content its state was computed from");
  else {
    // The state lists the traces' stored seal hashes (in attempt order) and the incidents' hashes;
    // the database computes it from those very rows, so a bundle whose traces or incidents say
    // otherwise was edited (and would keep its root: the root hashes the state).
    const sealsListed = Array.isArray(state[12]) ? state[12] : [];
    const seals = traces.map((t) => t.raw.seal_hash);
    const listed = Array.isArray(state[13]) ? state[13] : [];
    const incidentHashes = await Promise.all(
      b.incidents.map(async (i) => toHex(await H.sha256(utf8.encode(i)))),
    );
    if (sealsListed.length !== seals.length || sealsListed.some((h, i) => h !== seals[i]))
      fail("TAMPERED", "the bundle's trace seals are not the ones its run state lists");
    else if (listed.length !== incidentHashes.length || listed.some((h, i) => h !== incidentHashes[i]))
      fail("TAMPERED", "the bundle's incidents are not the ones its run state lists");
  }

  // Checks 2 to 8: each trace, in attempt order.
  let expectedAttempt = 1;
  let succeeded = 0;
  let cost = 0n;
  let runningAttempt: number | null = null;
  let lastTrace: DecodedTrace | null = null;
  let lastStep: string | null = null;
  for (const t of traces) {
    out.trace_count++;
    if (status === null && t.tenantId !== runTenant)
      fail(
        "TAMPERED",
        `trace ${t.id} (attempt ${t.attempt}) belongs to tenant ${t.tenantId} but the run to tenant ${runTenant}`,
        {
          attempt: t.attempt,
          traceId: t.id,
        },
      );
    if (status === null && t.runId !== b.run_id)
      fail("TAMPERED", `trace ${t.id} (attempt ${t.attempt}) belongs to run ${t.runId}`, {
        attempt: t.attempt,
        traceId: t.id,
      });
    if (status === null && t.attempt !== expectedAttempt)
      fail(
        "BROKEN",
        t.attempt < expectedAttempt
          ? `attempt ${t.attempt} appears twice`
          : `the trace of attempt ${expectedAttempt} is missing`,
        {
          attempt: expectedAttempt,
        },
      );
    if (status === null && runningAttempt !== null)
      fail("BROKEN", `attempt ${runningAttempt} is still running but a later attempt exists`, {
        attempt: runningAttempt,
      });
    expectedAttempt = t.attempt + 1;
    const r = await checkTrace(t, succeeded, erasedSteps, H);
    out.step_count += r.stepCount;
    out.erased_steps += r.erased;
    if (status === null) out.chain_length += r.chainLength;
    if (r.status !== "VERIFIED" && r.status !== "IN_PROGRESS" && status === null)
      fail(r.status, `attempt ${t.attempt}: ${r.reason}`, {
        attempt: t.attempt,
        traceId: t.id,
        step: r.firstBadStep,
      });
    if (t.status === "running") runningAttempt = t.attempt;
    succeeded += r.succeeded;
    cost += r.cost;
    lastTrace = t;
    lastStep = r.lastStepStatus;
  }

  const attempts = int(state[6]) ?? 0;
  const progress = int(state[7]) ?? 0;
  const runCost = cents(state[8]);
  // Check 9: one trace per attempt.
  if (status === null && out.trace_count !== attempts) {
    if (out.trace_count < attempts)
      fail(
        "BROKEN",
        `the run made ${attempts} attempts but ${out.trace_count} traces exist: the trace of attempt ${out.trace_count + 1} is missing`,
        {
          attempt: out.trace_count + 1,
        },
      );
    else
      fail(
        "BROKEN",
        `the run made ${attempts} attempts but ${out.trace_count} traces exist: attempt ${attempts + 1} onwards is not one of its attempts`,
        {
          attempt: attempts + 1,
        },
      );
  }
  if (status === null && b.run.trace_count !== null && b.run.trace_count !== out.trace_count)
    fail("BROKEN", `the run's trace_count says ${b.run.trace_count} but ${out.trace_count} traces exist`);
  // Check 10: progress and cost are the steps'.
  if (status === null && progress !== succeeded)
    fail(
      "BROKEN",
      `the run's progress says ${progress} plan steps succeeded but its steps show ${succeeded}`,
    );
  if (status === null && runCost !== cost)
    fail("BROKEN", `the run's cost is ${centsText(runCost)} cents but its steps cost ${centsText(cost)}`);
  // Check 11: the outcome is what the steps say happened.
  if (status === null) {
    const plan = content[6];
    const planSteps =
      plan &&
      typeof plan === "object" &&
      !Array.isArray(plan) &&
      !isLosslessNumber(plan) &&
      Array.isArray(plan.steps)
        ? plan.steps.length
        : null;
    const lt = lastTrace as DecodedTrace | null;
    let reason: string | null = null;
    if (runStatus === "succeeded") {
      if (succeeded !== (planSteps ?? -1))
        reason = `the run succeeded but ${succeeded} of ${planSteps ?? 0} plan steps succeeded`;
      else if (lt?.status !== "completed")
        reason = `the run succeeded but its last attempt ${lt ? `is ${lt.status}` : "does not exist"}`;
    } else if (runStatus === "halted") {
      if (lt?.status !== "failed" || lastStep !== "denied")
        reason = "the run halted but its last attempt did not end with a denied step";
    } else if (runStatus === "failed") {
      if (
        lt &&
        !(lt.status === "failed" && lastStep === "failed") &&
        !(lt.status === "aborted" && lastStep === null)
      )
        reason = "the run failed but its last attempt did not end with a failed step";
    } else if (runStatus === "cancelled") {
      if (lt && lt.status !== "aborted" && lt.status !== "failed")
        reason = `the run was cancelled but its last attempt is ${lt.status}`;
    } else if (runStatus === "running") {
      if (lt?.status !== "running") reason = "the run is running but its last attempt is not";
    } else if (runningAttempt !== null) {
      reason = `the run is ${runStatus} but attempt ${runningAttempt} is still running`;
    }
    if (reason) fail("BROKEN", reason);
  }
  // Check 12: the seal.
  if (status === null) {
    if (!TERMINAL.has(runStatus)) {
      if (b.run.seal !== null || b.run.root_hash !== null || b.run.trace_count !== null)
        fail("TAMPERED", "an unfinished run carries a seal");
    } else if (b.run.seal === null || b.run.root_hash === null) {
      fail("BROKEN", `the run is ${runStatus} but has no seal`);
    } else {
      const sealHash = toHex(await H.sha256(utf8.encode(b.run.seal)));
      if (b.run.root_hash !== sealHash) {
        fail(
          "TAMPERED",
          `the run's root_hash ${b.run.root_hash} does not match sha256 of its seal ${sealHash}`,
        );
      } else if (b.run.seal !== b.run.state) {
        const sealed = decode(b.run.seal);
        const [k, name, now, was] = sealDifference(state, sealed, SEAL_ELEMENTS);
        let reason: string;
        if (k === 3)
          reason =
            "the run's content (agent, goal, origin, plan, idempotency key, max attempts or creation time) differs from its seal";
        else if (k >= 4 && k <= 11) reason = `the run's ${name} is ${now} but its seal says ${was}`;
        else if (k === 12 || k === 13) {
          const a = (state[k] as Json[]) ?? [];
          const s = ((sealed?.[k] as Json[]) ?? []) as Json[];
          const first = a.findIndex((x, i) => !jsonbEqual(x, s[i] ?? null));
          if (k === 12)
            reason =
              a.length !== s.length
                ? `the run's seal lists ${s.length} traces but ${a.length} exist`
                : `the seal of attempt ${first + 1} differs from the one in the run's seal`;
          else
            reason =
              a.length !== s.length
                ? `the run's incidents differ from its seal: ${s.length} in the seal, ${a.length} now`
                : `incident ${str(decode(b.incidents[first])?.[2])} differs from the one in the run's seal`;
        } else if (k >= 0) reason = "the run's seal is not the seal of this run";
        else reason = "the run's seal is not its canonical text";
        fail("TAMPERED", reason);
      }
    }
  }
  out.verification_status =
    status ?? (runningAttempt !== null || !TERMINAL.has(runStatus) ? "IN_PROGRESS" : "VERIFIED");
  return out;
}

/** What a bundle says, decoded from its canonical texts (what a reader is shown is what is proven). */
export interface DecodedRun {
  tenantId: string;
  runId: string;
  agentId: string | null;
  goal: string | null;
  originSystemId: string | null;
  /** The plan as its JSON text (numbers exactly as recorded). */
  planText: string | null;
  status: string | null;
  error: string | null;
  attempts: number | null;
  createdAt: string | null;
  finishedAt: string | null;
  rootHash: string | null;
  traces: {
    id: string;
    attempt: number;
    status: string;
    steps: {
      stepIndex: number;
      planStep: number | null;
      skill: string | null;
      status: string | null;
      erased: boolean;
      input: string | null;
      output: string | null;
      error: string | null;
    }[];
  }[];
}

export function decodeBundle(b: Bundle): DecodedRun {
  const c = decode(b.run.content) ?? [];
  const s = decode(b.run.state) ?? [];
  return {
    tenantId: b.tenant_id,
    runId: b.run_id,
    agentId: str(c[3]),
    goal: str(c[4]),
    originSystemId: str(c[5]),
    planText: c[6] === undefined || c[6] === null ? null : jsonbText(c[6]),
    status: str(s[4]),
    error: str(s[5]),
    attempts: int(s[6]),
    createdAt: str(c[9]),
    finishedAt: str(s[11]),
    rootHash: b.run.root_hash,
    traces: b.traces.map((t) => {
      const ts = decode(t.state) ?? [];
      return {
        id: str(ts[3]) ?? "",
        attempt: int(ts[4]) ?? 0,
        status: str(ts[5]) ?? "",
        steps: t.steps.map((st) => {
          const sc = decode(st.canonical) ?? [];
          return {
            stepIndex: st.step_index,
            planStep: int(sc[5]),
            skill: str(sc[6]),
            status: str(sc[7]),
            erased: st.payload === null,
            input: st.payload?.input?.text ?? null,
            output: st.payload?.output?.text ?? null,
            error: st.payload?.error?.text ?? null,
          };
        }),
      };
    }),
  };
}
