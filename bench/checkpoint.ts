// Section 6 of `npm run bench`: ledger checkpoints (issue 12).
// - the cost the leaf append adds to a run's seal: the same seal UPDATE with the log trigger on
//   (A) and off (B), alternating blocks of runs, on runs prepared alike (goal: A/B <= 1.05);
// - inclusion proof generation in a log of 1,000,000 leaves (goal <= 5 ms, <= 32 ceil(log2 n) bytes);
// - checkpoint signing for 10,000 tenants whose logs grew (checkpointNow without anchors);
// - verify_against over 1,000,000 sealed runs (the log half of `verify-all --against`).
// The 1M-run ledger is made set-based with the runs' triggers off (bench only), then its log is
// built the way rebuilding one would; the section runs last because of that DDL.
import type pg from "pg";
import { checkpointNow, generateKeyPem } from "../src/lib/checkpoints.ts";
import { signerFromPem } from "../src/lib/offline-checkpoint.ts";
import { createTenant, figure, fmtInt, log, now, openTrace, type Row, row, type Tenant } from "./lib.ts";

export interface CheckpointPlan {
  sealRuns: number;
  sealBlock: number;
  logLeaves: number;
  proofSamples: number;
  tenants: number;
  trials: number;
}

async function prepareRuns(pool: pg.Pool, t: Tenant, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const o = await openTrace(pool, t, 1);
    await pool.query(
      `insert into runproof.policy_decisions (tenant_id, run_id, trace_id, step_index, plan_step, skill, decision, rule, reason)
       values ($1, $2, $3, 0, 0, 'noop', 'allow', 'daily_budget', 'bench')`,
      [o.tenantId, o.runId, o.traceId],
    );
    await pool.query(
      `select 1 from runproof_private.record_step(p_tenant_id => $1, p_run_id => $2, p_trace_id => $3, p_step_index => 0,
         p_plan_step => 0, p_skill => 'noop', p_status => 'succeeded', p_input => '{}', p_output => '{}', p_error => null,
         p_started_at => now(), p_finished_at => now(), p_duration_ms => 0, p_cost_cents => 0)`,
      [o.tenantId, o.runId, o.traceId],
    );
    await pool.query(`select 1 from runproof_private.seal_trace($1, $2, 'completed')`, [
      o.tenantId,
      o.traceId,
    ]);
    ids.push(o.runId);
  }
  return ids;
}

/**
 * Builds a tenant's stored tree (log_nodes) from its leaves, level by level: each level in one
 * ordered pass over the one below (lag pairs each right child with its left sibling).
 */
async function buildNodes(pool: pg.Pool, tenantId: string): Promise<void> {
  await pool.query(
    `insert into runproof_private.log_nodes
     select tenant_id, 1, leaf_index / 2, runproof_private.log_node_hash(l, leaf_hash)
       from (select tenant_id, leaf_index, leaf_hash, lag(leaf_hash) over (order by leaf_index) as l
               from runproof.log_leaves where tenant_id = $1) x
      where leaf_index % 2 = 1`,
    [tenantId],
  );
  for (let level = 1; level < 62; level++) {
    const { rowCount } = await pool.query(
      `insert into runproof_private.log_nodes
       select tenant_id, level + 1, node_index / 2, runproof_private.log_node_hash(l, hash)
         from (select tenant_id, level, node_index, hash, lag(hash) over (order by node_index) as l
                 from runproof_private.log_nodes where tenant_id = $1 and level = $2) x
        where node_index % 2 = 1`,
      [tenantId, level],
    );
    if (!rowCount) break;
  }
}

export async function benchCheckpoint(
  pool: pg.Pool,
  p: CheckpointPlan,
): Promise<{ rows: Row[]; extra: Record<string, unknown> }> {
  const rows: Row[] = [];
  const extra: Record<string, unknown> = {};

  // 1. The seal, with and without the leaf append.
  const t = await createTenant(pool, "bench-checkpoint-seal");
  log(`checkpoint: preparing ${fmtInt(p.sealRuns * 2 * p.trials)} runs to seal`);
  // Paired blocks: each pair seals sealBlock runs with the append and sealBlock without, in
  // alternating order; the ratio is the median of the pairs' ratios (the machine's load drifts
  // between pairs, not within one).
  const on: number[] = [];
  const off: number[] = [];
  const ratios: number[] = [];
  const sealBlock = async (ids: string[], append: boolean) => {
    await pool.query(
      `alter table runproof.runs ${append ? "enable always" : "disable"} trigger tg_runs__log_append`,
    );
    const s = now();
    for (const id of ids)
      await pool.query(`update runproof.runs set status = 'succeeded' where tenant_id = $1 and id = $2`, [
        t.tenantId,
        id,
      ]);
    return (now() - s) / ids.length;
  };
  for (let trial = 0; trial < p.trials; trial++) {
    const ids = await prepareRuns(pool, t, p.sealRuns * 2);
    await pool.query(`vacuum analyze runproof.runs, runproof.log_leaves, runproof_private.log_nodes`);
    for (let k = 0; (k + 1) * 2 * p.sealBlock <= ids.length; k++) {
      const first = ids.slice(2 * k * p.sealBlock, (2 * k + 1) * p.sealBlock);
      const second = ids.slice((2 * k + 1) * p.sealBlock, (2 * k + 2) * p.sealBlock);
      const withFirst = k % 2 === 0;
      const x = await sealBlock(first, withFirst);
      const y = await sealBlock(second, !withFirst);
      const [w, wo] = withFirst ? [x, y] : [y, x];
      on.push(w);
      off.push(wo);
      ratios.push(w / wo);
    }
  }
  await pool.query(`alter table runproof.runs enable always trigger tg_runs__log_append`);
  // The append alone, server-side: log_append into a scratch tenant's log, 2,000 times.
  const scratch = await createTenant(pool, "bench-checkpoint-append");
  const {
    rows: [alone],
  } = await pool.query<{ us: number }>(
    `select extract(epoch from (clock_timestamp() - t0)) * 1e6 / 2000 as us
       from (select clock_timestamp() as t0) s,
            lateral (select count(runproof_private.log_append($1, gen_random_uuid(), convert_to('bench ' || g, 'UTF8'))) from generate_series(1, 2000) g) x`,
    [scratch.tenantId],
  );
  extra.append_alone_us = Math.round(alone.us);
  const sorted = [...ratios].sort((x, y) => x - y);
  const medianRatio = sorted[Math.floor(sorted.length / 2)];
  extra.seal_pair_ratio_median = Math.round(medianRatio * 1000) / 1000;
  extra.seal_pairs = ratios.length;
  const seal = row({
    section: "checkpoint",
    id: "checkpoint.seal_overhead",
    measure: "a run's seal (UPDATE to succeeded) with its leaf appended to the tenant's log",
    runproof: figure(on, "ms"),
    baseline: figure(off, "ms"),
    baselineLabel: "the same seal with the log trigger off",
    better: "lower",
    note: `${ratios.length} pairs of blocks of ${p.sealBlock} runs prepared alike (1 step, trace sealed), order alternating; median pair ratio ${medianRatio.toFixed(3)}; the append alone (log_append, server-side) ${Math.round(alone.us)} µs`,
    extra: {
      samples: ratios.length,
      pair_ratios: sorted.map((r) => Math.round(r * 1000) / 1000),
      append_alone_us: Math.round(alone.us),
    },
  });
  seal.ratio = Math.round(medianRatio * 1000) / 1000;
  seal.goal = { text: "≤ 1.05×", met: seal.ratio <= 1.05 };
  log(
    `checkpoint: seal ${seal.runproof.value.toFixed(3)} ms with the append, ${seal.baseline?.value.toFixed(3)} ms without; median pair ratio ${medianRatio.toFixed(3)} over ${ratios.length} pairs; the append alone ${Math.round(alone.us)} µs`,
  );
  rows.push(seal);

  // 2. A log of logLeaves sealed runs: inclusion proofs, then verify_against.
  const big = await createTenant(pool, "bench-checkpoint-log");
  log(`checkpoint: building ${fmtInt(p.logLeaves)} sealed runs and their log`);
  const genStart = now();
  // The runs' triggers off while the rows are made, and back exactly as they were after.
  const { rows: trig } = await pool.query<{ tgname: string; tgenabled: string }>(
    `select tgname, tgenabled from pg_trigger where tgrelid = 'runproof.runs'::regclass and not tgisinternal`,
  );
  for (const tg of trig) await pool.query(`alter table runproof.runs disable trigger ${tg.tgname}`);
  try {
    for (let from = 0; from < p.logLeaves; from += 100_000) {
      const to = Math.min(p.logLeaves, from + 100_000);
      await pool.query(
        `insert into runproof.runs (tenant_id, agent_id, goal, origin_system_id, plan, status, trace_count, seal, root_hash, finished_at, created_at, updated_at)
         select $1, $2, 'bench log ' || g, 'runproof-bench', '{"version": 1, "steps": []}'::jsonb, 'succeeded', 0,
                convert_to('seal ' || g, 'UTF8'), sha256(convert_to('seal ' || g, 'UTF8')),
                timestamptz '2026-01-01' + make_interval(secs => g), timestamptz '2026-01-01' + make_interval(secs => g),
                timestamptz '2026-01-01' + make_interval(secs => g)
           from generate_series($3::int, $4::int - 1) g`,
        [big.tenantId, big.agentId, from, to],
      );
    }
  } finally {
    for (const tg of trig)
      if (tg.tgenabled !== "D")
        await pool.query(
          `alter table runproof.runs enable ${tg.tgenabled === "A" ? "always" : tg.tgenabled === "R" ? "replica" : ""} trigger ${tg.tgname}`,
        );
  }
  await pool.query(
    `insert into runproof.log_leaves (tenant_id, leaf_index, run_id, leaf, leaf_hash)
     select r.tenant_id, row_number() over (order by r.finished_at, r.id) - 1, r.id, l.leaf, runproof_private.log_leaf_hash(l.leaf)
       from runproof.runs r cross join lateral (select runproof_private.log_leaf(r.tenant_id, r.id, r.root_hash, r.status, r.finished_at) as leaf) l
      where r.tenant_id = $1`,
    [big.tenantId],
  );
  await buildNodes(pool, big.tenantId);
  await pool.query(`vacuum analyze runproof.runs, runproof.log_leaves, runproof_private.log_nodes`);
  extra.log_generation_seconds = Math.round((now() - genStart) / 100) / 10;

  const times: number[] = [];
  let bytes = 0;
  for (let i = 0; i < p.proofSamples; i++) {
    const leaf = Math.floor(Math.random() * p.logLeaves);
    const s = now();
    const {
      rows: [r],
    } = await pool.query<{ p: string[] }>(`select runproof.log_inclusion_proof($1, $2, $3) as p`, [
      big.tenantId,
      leaf,
      p.logLeaves,
    ]);
    times.push(now() - s);
    bytes = Math.max(bytes, r.p.length * 32);
  }
  const bound = 32 * Math.ceil(Math.log2(p.logLeaves));
  const incl = row({
    section: "checkpoint",
    id: "checkpoint.inclusion_proof",
    measure: `inclusion proof of a random leaf in a log of ${fmtInt(p.logLeaves)} leaves (round trip)`,
    runproof: figure(times, "ms"),
    baseline: null,
    baselineLabel: "–",
    better: "lower",
    note: `largest proof ${bytes} bytes (bound 32·⌈log2 n⌉ = ${bound})`,
    extra: { samples: p.proofSamples, proof_bytes: bytes, bound_bytes: bound },
  });
  log(`checkpoint: inclusion proof median ${incl.runproof.value.toFixed(2)} ms, ${bytes} bytes`);
  incl.goal = { text: "≤ 5 ms, ≤ 32·⌈log2 n⌉ bytes", met: incl.runproof.value <= 5 && bytes <= bound };
  rows.push(incl);

  // 3. Signing the logs of `tenants` tenants that grew (one new leaf each).
  log(`checkpoint: ${fmtInt(p.tenants)} tenants whose logs grew`);
  await pool.query(
    `with t as (insert into runproof.tenants (name) select 'bench-cp-' || g || '-' || gen_random_uuid() from generate_series(1, $1) g returning id)
     insert into runproof.log_leaves (tenant_id, leaf_index, run_id, leaf, leaf_hash)
     select t.id, 0, gen_random_uuid(), convert_to('bench', 'UTF8'), runproof_private.log_leaf_hash(convert_to('bench', 'UTF8')) from t`,
    [p.tenants],
  );
  const signer = signerFromPem("runproof.bench/log", generateKeyPem());
  const config = {
    schedule: "* * * * *",
    key: undefined,
    keyFile: undefined,
    keyName: signer.name,
    anchors: [],
    retryBaseMs: 1,
    retryMaxMs: 1,
  };
  const s = now();
  const signed = await checkpointNow(pool, config, signer);
  const signSeconds = (now() - s) / 1000;
  log(`checkpoint: signed ${signed.signed} checkpoints in ${signSeconds.toFixed(2)} s`);
  rows.push(
    row({
      section: "checkpoint",
      id: "checkpoint.sign_tenants",
      measure: `checkpoint now: sign and store the checkpoints of ${fmtInt(signed.signed)} tenants whose logs grew`,
      runproof: figure([signSeconds], "s"),
      baseline: null,
      baselineLabel: "–",
      better: "lower",
      note: `${Math.round(signed.signed / signSeconds)} checkpoints/s (Ed25519 in node:crypto, roots from the stored nodes, batches of 2,000)`,
    }),
  );

  // 4. verify_against over the big log, with the checkpoint and the anchored leaf hashes.
  const {
    rows: [cp],
  } = await pool.query(`select note from runproof.log_checkpoints where tenant_id = $1`, [big.tenantId]);
  const {
    rows: [lv],
  } = await pool.query(
    `select jsonb_build_object($2::text, jsonb_agg(encode(leaf_hash, 'hex') order by leaf_index)) as l from runproof.log_leaves where tenant_id = $1`,
    [big.tenantId, big.tenantId],
  );
  const va: number[] = [];
  const vaMirror: number[] = [];
  for (let trial = 0; trial < p.trials; trial++) {
    let s1 = now();
    const { rows: r1 } = await pool.query(
      `select status from runproof.verify_against($1) where tenant_id = $2`,
      [[cp.note], big.tenantId],
    );
    va.push((now() - s1) / 1000);
    if (r1[0]?.status !== "CONSISTENT") throw new Error(`verify_against: ${JSON.stringify(r1)}`);
    s1 = now();
    const { rows: r2 } = await pool.query(
      `select status from runproof.verify_against($1, $2) where tenant_id = $3`,
      [[cp.note], lv.l, big.tenantId],
    );
    vaMirror.push((now() - s1) / 1000);
    if (r2[0]?.status !== "CONSISTENT") throw new Error(`verify_against with leaves: ${JSON.stringify(r2)}`);
    log(
      `checkpoint: verify_against ${va[va.length - 1].toFixed(2)} s, with the leaf hashes ${vaMirror[vaMirror.length - 1].toFixed(2)} s`,
    );
  }
  rows.push(
    row({
      section: "checkpoint",
      id: "checkpoint.verify_against",
      measure: `verify_against: the tree of ${fmtInt(p.logLeaves)} runs recomputed and checked against the anchored checkpoint`,
      runproof: figure(va, "s"),
      baseline: figure(vaMirror, "s"),
      baselineLabel: "the same with the anchored leaf hashes passed too (first bad leaf located)",
      better: "lower",
      note: `${Math.round(p.logLeaves / va[Math.floor(va.length / 2)])} runs/s; the run chains themselves are verify_all's (section 5)`,
    }),
  );
  return { rows, extra };
}
