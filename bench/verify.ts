// 2. Verify: runproof.run_proof / runproof.verify_trace steps/second on traces of growing size,
// against the floor: node:crypto SHA-256 over the very same canonical bytes (fetched from
// runproof_private.step_canonical), recomputing the chain and comparing every stored hash.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import os from "node:os";
import type pg from "pg";
import {
  figure,
  fmtInt,
  median,
  generateTrace,
  log,
  now,
  row,
  type OpenTrace,
  type Row,
  type Tenant,
} from "./lib.ts";

export interface VerifyOptions {
  sizes: number[];
  /** Trials per size (fewer for huge sizes). */
  trialsFor(size: number): number;
  /** Capture EXPLAIN (ANALYZE, BUFFERS) of the verifier's statements on the largest trace. */
  explain: boolean;
}

export interface VerifyResult {
  rows: Row[];
  generation: { steps: number; seconds: number; steps_per_s: number }[];
  explain?: string[];
  /** steps/s of run_proof at the largest size (the per-step rate verify_all is compared with). */
  largest?: { steps: number; steps_per_s: number };
}

const sha256 = (...parts: Buffer[]) => {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return h.digest();
};

interface Fetched {
  canonical: Buffer[];
  stepHash: Buffer[];
  prevHash: Buffer[];
  fetchMs: number;
}

/** The canonical bytes and stored hashes of a trace, in chain order, through a binary cursor. */
async function fetchCanonical(pool: pg.Pool, o: OpenTrace): Promise<Fetched> {
  const c = await pool.connect();
  const out: Fetched = { canonical: [], stepHash: [], prevHash: [], fetchMs: 0 };
  const start = now();
  try {
    await c.query("begin");
    await c.query({
      text: `declare bench_canon no scroll cursor for
               select runproof_private.step_canonical(s), s.prev_hash, s.step_hash from runproof.trace_steps s
                where s.tenant_id = $1 and s.trace_id = $2 order by s.step_index`,
      values: [o.tenantId, o.traceId],
    });
    for (;;) {
      // binary: bytea arrives as raw bytes (pg supports it per query; @types/pg does not declare it).
      const r = await c.query({
        text: "fetch 50000 from bench_canon",
        rowMode: "array",
        binary: true,
      } as pg.QueryArrayConfig);
      if (!r.rows.length) break;
      for (const [canon, prev, hash] of r.rows as [Buffer, Buffer, Buffer][]) {
        out.canonical.push(canon);
        out.prevHash.push(prev);
        out.stepHash.push(hash);
      }
    }
    await c.query("commit");
  } finally {
    c.release();
  }
  out.fetchMs = now() - start;
  return out;
}

/** `openssl speed sha256` at one message size on this machine, one core: bytes/s (null without openssl). */
function opensslSha256(bytes: number): number | null {
  try {
    const out = execFileSync("openssl", ["speed", "-seconds", "1", "-bytes", String(bytes), "sha256"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
      timeout: 30_000,
    });
    const m = /^sha256\s+([\d.]+)k\s*$/m.exec(out);
    return m ? Number(m[1]) * 1000 : null;
  } catch {
    return null;
  }
}

/**
 * The physical limit: the two SHA-256 of each step of the floor (its canonical bytes, then the
 * 64-byte link) at openssl's speed, on every core of this machine. Steps/s.
 */
export function physicalLimit(canonicalBytesPerStep: number): { perCore: number; cores: number } | null {
  const big = opensslSha256(Math.max(1, Math.round(canonicalBytesPerStep)));
  const link = opensslSha256(64);
  if (!big || !link) return null;
  const perCore = 1 / (canonicalBytesPerStep / big + 64 / link);
  return { perCore, cores: os.cpus().length };
}

/** The floor: the whole chain recomputed in node, every link and every stored hash compared. */
function hashChain(o: OpenTrace, f: Fetched): { ms: number; root: string; ok: boolean } {
  const start = now();
  let prev = sha256(Buffer.from(`runproof.genesis/2|${o.tenantId}|${o.runId}|${o.traceId}`, "utf8"));
  let ok = true;
  for (let i = 0; i < f.canonical.length; i++) {
    if (!f.prevHash[i].equals(prev)) ok = false;
    const h = sha256(prev, sha256(f.canonical[i]));
    if (!h.equals(f.stepHash[i])) ok = false;
    prev = h;
  }
  return { ms: now() - start, root: prev.toString("hex"), ok };
}

export async function benchVerify(pool: pg.Pool, t: Tenant, opts: VerifyOptions): Promise<VerifyResult> {
  const result: VerifyResult = { rows: [], generation: [] };
  for (const size of opts.sizes) {
    log(
      `verify: generating a trace of ${fmtInt(size)} steps (set-based INSERT ... SELECT through the chain trigger)`,
    );
    const g0 = now();
    const o = await generateTrace(pool, t, size, 100_000, (done) => {
      if (size >= 500_000) log(`verify:   ${fmtInt(done)} / ${fmtInt(size)} steps`);
    });
    const genS = (now() - g0) / 1000;
    // Statistics as autovacuum would have them by the time anyone verifies this trace.
    await pool.query(`analyze runproof.trace_steps`);
    result.generation.push({
      steps: size,
      seconds: Math.round(genS * 10) / 10,
      steps_per_s: Math.round(size / genS),
    });

    const trials = opts.trialsFor(size);
    log(`verify: ${fmtInt(size)} steps, ${trials} trials each of run_proof, verify_trace and the node floor`);
    // Warm the cache and the function's plans once, as a second verification would find them.
    await pool.query(`select verification_status from runproof.run_proof($1, $2)`, [o.tenantId, o.runId]);

    const runProof: number[] = [];
    const verifyTrace: number[] = [];
    let proofRoot = "";
    for (let k = 0; k < trials; k++) {
      let s = now();
      const {
        rows: [p],
      } = await pool.query(`select verification_status, step_count from runproof.run_proof($1, $2)`, [
        o.tenantId,
        o.runId,
      ]);
      runProof.push(size / ((now() - s) / 1000));
      if (p.verification_status !== "VERIFIED" || p.step_count !== size)
        throw new Error(`run_proof: ${JSON.stringify(p)}`);
      s = now();
      const {
        rows: [v],
      } = await pool.query(`select verification_status, root_hash from runproof.verify_trace($1)`, [
        o.traceId,
      ]);
      verifyTrace.push(size / ((now() - s) / 1000));
      if (v.verification_status !== "VERIFIED") throw new Error(`verify_trace: ${JSON.stringify(v)}`);
      proofRoot = v.root_hash;
    }

    const fetched = await fetchCanonical(pool, o);
    const floor: number[] = [];
    for (let k = 0; k < Math.max(3, trials); k++) {
      const h = hashChain(o, fetched);
      if (!h.ok || h.root !== proofRoot)
        throw new Error(`the node floor disagrees with verify_trace (root ${h.root} vs ${proofRoot})`);
      floor.push(size / (h.ms / 1000));
    }
    const bytes = fetched.canonical.reduce((a, b) => a + b.length, 0);
    const floorFig = figure(floor, "steps/s");
    const met = (xs: number[]) => ({ text: "≥ 500,000 steps/s", met: median(xs) >= 500_000 });
    const extra = {
      steps: size,
      canonical_bytes_per_step: Math.round(bytes / size),
      fetch_canonical_seconds: Math.round(fetched.fetchMs) / 1000,
      floor_agrees_with_verify_trace: true,
      root_hash: proofRoot,
    };
    result.rows.push(
      row({
        section: "verify",
        id: `verify.run_proof.${size}`,
        measure: `Verify run_proof, 1 trace of ${fmtInt(size)} steps`,
        runproof: figure(runProof, "steps/s"),
        baseline: floorFig,
        baselineLabel: "node:crypto SHA-256 chain over the same canonical bytes",
        better: "higher",
        goal: met(runProof),
        extra,
      }),
    );
    result.rows.push(
      row({
        section: "verify",
        id: `verify.verify_trace.${size}`,
        measure: `Verify verify_trace, ${fmtInt(size)} steps`,
        runproof: figure(verifyTrace, "steps/s"),
        baseline: floorFig,
        baselineLabel: "node:crypto SHA-256 chain over the same canonical bytes",
        better: "higher",
        goal: met(verifyTrace),
      }),
    );
    const physical = size === opts.sizes[opts.sizes.length - 1] ? physicalLimit(bytes / size) : null;
    if (physical) {
      result.rows.push(
        row({
          section: "verify",
          id: `verify.physical.${size}`,
          measure: `Verify verify_trace, ${fmtInt(size)} steps, against the physical limit`,
          runproof: figure(verifyTrace, "steps/s"),
          baseline: { value: physical.perCore * physical.cores, unit: "steps/s", trials: [] },
          baselineLabel: `openssl speed sha256 on this machine: the floor's two hashes per step on all ${physical.cores} cores (${fmtInt(physical.perCore)} steps/s per core)`,
          better: "higher",
          extra: { physical_per_core_steps_per_s: Math.round(physical.perCore), cores: physical.cores },
        }),
      );
    }
    result.largest = { steps: size, steps_per_s: median(runProof) };
    fetched.canonical.length = 0;

    if (opts.explain && size === opts.sizes[opts.sizes.length - 1]) {
      result.explain = await explainNested(
        pool,
        `select verification_status from runproof.verify_trace($1)`,
        [o.traceId],
      );
    }
  }
  return result;
}

/**
 * EXPLAIN (ANALYZE, BUFFERS) of every statement a function runs, via auto_explain with
 * log_nested_statements sent to the client as NOTICEs. Needs a superuser (LOAD); returns a
 * note instead when that is not possible.
 */
export async function explainNested(pool: pg.Pool, sql: string, values: unknown[]): Promise<string[]> {
  const c = await pool.connect();
  const notices: string[] = [];
  const onNotice = (n: { message?: string }) => {
    if (n.message) notices.push(n.message);
  };
  c.on("notice", onNotice);
  try {
    await c.query(`load 'auto_explain'`);
    await c.query(`set auto_explain.log_min_duration = 0; set auto_explain.log_analyze = on; set auto_explain.log_buffers = on;
                   set auto_explain.log_nested_statements = on; set auto_explain.log_timing = on; set auto_explain.log_level = notice`);
    await c.query(sql, values);
    await c.query(`set auto_explain.log_min_duration = -1`);
  } catch (e) {
    notices.push(`auto_explain unavailable: ${(e as Error).message}`);
  } finally {
    c.removeListener("notice", onNotice);
    // A session with auto_explain loaded must not go back to the pool.
    c.release(true);
  }
  return notices;
}
