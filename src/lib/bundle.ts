// Exports a run as a proof bundle (format runproof.bundle/2, src/lib/bundle-format.ts): every record
// as the canonical text SQL produces (runproof_private.*_canonical), stored seals and hashes as they
// are, so the offline verifier hashes exactly what the database hashed.
import type pg from "pg";
import type { Bundle } from "./bundle-format.ts";

export { type Bundle, bundleSchema } from "./bundle-format.ts";

type Queryable = pg.Pool | pg.PoolClient | pg.Client;
const hex = (b: Buffer | null) => (b ? b.toString("hex") : null);
const text = (b: Buffer | null) => (b ? b.toString("utf8") : null);

/**
 * Exports a run as a bundle, reading as the caller (row level security applies to tenants).
 * Given a pool, it reads in one REPEATABLE READ snapshot, so a run that is still recording cannot
 * give a bundle whose records come from different moments; given a client, it reads in the
 * caller's transaction.
 */
export async function exportBundle(
  db: Queryable,
  tenantId: string,
  runId: string,
  opts: {
    consistencyFrom?: number[];
    /** With a pool: settings for the snapshot's transaction (GraphQL's role and tenant: RLS applies). */
    settings?: Record<string, string>;
  } = {},
): Promise<Bundle> {
  if (!("totalCount" in db)) return readBundle(db, tenantId, runId, opts);
  const client = await db.connect();
  try {
    await client.query("begin isolation level repeatable read read only");
    for (const [name, value] of Object.entries(opts.settings ?? {}))
      await client.query("select set_config($1, $2, true)", [name, value]);
    // The step query joins four tables by (tenant, trace, step_index): with stale statistics the
    // planner picks nested loops that rescan the trace per step (quadratic on long traces).
    await client.query("set local enable_nestloop = off");
    const bundle = await readBundle(client, tenantId, runId, opts);
    await client.query("commit");
    return bundle;
  } catch (err) {
    await client.query("rollback").catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

async function readBundle(
  db: pg.PoolClient | pg.Client,
  tenantId: string,
  runId: string,
  opts: { consistencyFrom?: number[] },
): Promise<Bundle> {
  const {
    rows: [run],
  } = await db.query(
    `select runproof_private.run_canonical(r) as content, runproof_private.run_seal_canonical(r) as state,
            r.seal, r.root_hash, r.trace_count
       from runproof.runs r where r.tenant_id = $1 and r.id = $2`,
    [tenantId, runId],
  );
  if (!run) throw new Error(`run ${runId} not found for tenant ${tenantId}`);
  const { rows: traces } = await db.query(
    `select t.id, runproof_private.trace_canonical(t) as state, t.seal, t.seal_hash
       from runproof.traces t where t.tenant_id = $1 and t.run_id = $2 order by t.attempt, t.id`,
    [tenantId, runId],
  );
  const { rows: steps } = await db.query(
    `select s.trace_id, s.step_index, s.prev_hash, s.step_hash, runproof_private.step_canonical(s) as canonical,
            runproof_private.decision_canonical(d) as decision, d.tenant_id is not null as has_decision,
            p.tenant_id is not null as has_payload,
            p.input::text as input, p.input_salt, p.output::text as output, p.output_salt, p.error, p.error_salt,
            e.erasure_id
       from runproof.traces t
       join runproof.trace_steps s on s.tenant_id = t.tenant_id and s.trace_id = t.id
       left join runproof.policy_decisions d on d.tenant_id = s.tenant_id and d.trace_id = s.trace_id and d.step_index = s.step_index
       left join runproof.step_payloads p on p.tenant_id = s.tenant_id and p.trace_id = s.trace_id and p.step_index = s.step_index
       left join runproof.payload_erasure_steps e on e.tenant_id = s.tenant_id and e.trace_id = s.trace_id and e.step_index = s.step_index
      where t.tenant_id = $1 and t.run_id = $2
      order by s.trace_id, s.step_index`,
    [tenantId, runId],
  );
  const { rows: incidents } = await db.query(
    `select runproof_private.incident_canonical(i) as canonical
       from runproof.incidents i where i.tenant_id = $1 and i.run_id = $2 order by i.created_at, i.id`,
    [tenantId, runId],
  );
  const { rows: erasures } = await db.query(
    `select e.id, e.erased_at, e.erased_by, e.reason,
            (select json_agg(json_build_object('trace_id', x.trace_id, 'step_index', x.step_index) order by x.trace_id, x.step_index)
               from runproof.payload_erasure_steps x where x.tenant_id = e.tenant_id and x.erasure_id = e.id and x.run_id = $2) as steps
       from runproof.payload_erasures e
      where e.tenant_id = $1
        and exists (select 1 from runproof.payload_erasure_steps x where x.tenant_id = e.tenant_id and x.erasure_id = e.id and x.run_id = $2)
      order by e.erased_at, e.id`,
    [tenantId, runId],
  );
  const {
    rows: [proof],
  } = await db.query(`select * from runproof.run_proof($1, $2)`, [tenantId, runId]);

  // The run's leaf and its proof to the latest checkpoint, and consistency proofs from the sizes asked.
  const {
    rows: [leaf],
  } = await db.query(
    `select l.leaf_index::int as leaf_index, convert_from(l.leaf, 'UTF8') as leaf from runproof.log_leaves l
     where l.tenant_id = $1 and l.run_id = $2`,
    [tenantId, runId],
  );
  const consistency: { from_size: number; proof: string[] }[] = [];
  if (leaf && proof.checkpoint_size)
    for (const from of opts.consistencyFrom ?? []) {
      const {
        rows: [c],
      } = await db.query(`select runproof.log_consistency_proof($1, $2, $3) as proof`, [
        tenantId,
        from,
        proof.checkpoint_size,
      ]);
      consistency.push({ from_size: from, proof: c.proof });
    }
  const log = leaf
    ? {
        leaf_index: leaf.leaf_index,
        leaf: leaf.leaf,
        checkpoint: proof.checkpoint ?? null,
        inclusion_proof: proof.inclusion_proof ?? null,
        consistency,
      }
    : null;
  const payload = (value: string | null, salt: Buffer | null) =>
    value === null || salt === null ? null : { salt: salt.toString("hex"), text: value };
  const byTrace = new Map<string, Bundle["traces"][number]["steps"]>();
  for (const s of steps) {
    const list = byTrace.get(s.trace_id) ?? [];
    list.push({
      step_index: s.step_index,
      prev_hash: hex(s.prev_hash)!,
      step_hash: hex(s.step_hash)!,
      canonical: text(s.canonical)!,
      decision: s.has_decision ? text(s.decision) : null,
      payload: s.has_payload
        ? {
            input: payload(s.input, s.input_salt),
            output: payload(s.output, s.output_salt),
            error: payload(s.error, s.error_salt),
          }
        : null,
      erasure: s.erasure_id ?? null,
    });
    byTrace.set(s.trace_id, list);
  }
  return {
    format: "runproof.bundle/2",
    exported_at: new Date().toISOString(),
    tenant_id: tenantId,
    run_id: runId,
    run: {
      content: text(run.content)!,
      state: text(run.state)!,
      seal: text(run.seal),
      root_hash: hex(run.root_hash),
      trace_count: run.trace_count,
    },
    traces: traces.map((t) => ({
      state: text(t.state)!,
      seal: text(t.seal),
      seal_hash: hex(t.seal_hash),
      steps: byTrace.get(t.id) ?? [],
    })),
    incidents: incidents.map((i) => text(i.canonical)!),
    erasures: erasures.map((e) => ({
      id: e.id,
      erased_at: (e.erased_at as Date).toISOString(),
      erased_by: e.erased_by,
      reason: e.reason,
      steps: e.steps ?? [],
    })),
    database_proof: Object.fromEntries(
      Object.entries(proof).map(([k, v]) => [k, v instanceof Date ? v.toISOString() : v]),
    ),
    log,
  };
}
