// Proof bundles: everything needed to check a run offline with nothing but SHA-256.
// The canonical bytes of each step are produced by SQL (runproof_private.step_canonical)
// and carried verbatim, base64-encoded, so the verifier hashes exactly what the database hashed.
import type pg from "pg";
import { z } from "zod";

const hex32 = z.string().regex(/^[0-9a-f]{64}$/, "a 32-byte hash in lower-case hex");

export const bundleStepSchema = z.strictObject({
  step_index: z.number().int(),
  prev_hash: hex32,
  step_hash: hex32,
  canonical: z.base64(),
});

export const bundleTraceSchema = z.strictObject({
  id: z.uuid(),
  tenant_id: z.uuid(),
  attempt: z.number().int(),
  status: z.enum(["running", "completed", "failed", "aborted"]),
  step_count: z.number().int().nullable(),
  root_hash: hex32.nullable(),
  started_at: z.string(),
  completed_at: z.string().nullable(),
  steps: z.array(bundleStepSchema),
});

export const bundleSchema = z.strictObject({
  format: z.literal("runproof.bundle/1"),
  integrity_model: z.literal("HASH_CHAIN"),
  exported_at: z.string(),
  tenant_id: z.uuid(),
  run_id: z.uuid(),
  run: z.strictObject({
    tenant_id: z.uuid(),
    agent_id: z.uuid(),
    goal: z.string(),
    origin_system_id: z.string(),
    status: z.string(),
    attempts: z.number().int(),
    trace_count: z.number().int().nullable(),
    root_hash: hex32.nullable(),
    plan: z.unknown(),
    created_at: z.string(),
    finished_at: z.string().nullable(),
    /** The run's own canonical bytes (runproof_private.run_canonical), hashed into the run root. */
    canonical: z.base64(),
  }),
  traces: z.array(bundleTraceSchema),
  /** What the database's run_proof said when the bundle was exported (informational). */
  database_proof: z.record(z.string(), z.unknown()),
});

export type Bundle = z.infer<typeof bundleSchema>;
export type BundleTrace = z.infer<typeof bundleTraceSchema>;

type Queryable = pg.Pool | pg.PoolClient | pg.Client;
const iso = (d: Date | null) => (d ? d.toISOString() : null);
const hex = (b: Buffer | null) => (b ? b.toString("hex") : null);

/** Exports a run as a bundle, reading as the caller (row level security applies to tenants). */
export async function exportBundle(db: Queryable, tenantId: string, runId: string): Promise<Bundle> {
  const {
    rows: [run],
  } = await db.query(
    `select tenant_id, agent_id, goal, origin_system_id, status, attempts, trace_count, root_hash, plan, created_at, finished_at,
            runproof_private.run_canonical(r) as canonical
       from runproof.runs r where tenant_id = $1 and id = $2`,
    [tenantId, runId],
  );
  if (!run) throw new Error(`run ${runId} not found for tenant ${tenantId}`);
  const { rows: traces } = await db.query(
    `select id, tenant_id, attempt, status, step_count, root_hash, started_at, completed_at
       from runproof.traces where run_id = $1 order by attempt, id`,
    [runId],
  );
  const { rows: steps } = await db.query(
    `select s.trace_id, s.step_index, s.prev_hash, s.step_hash, runproof_private.step_canonical(s) as canonical
       from runproof.trace_steps s join runproof.traces t on t.tenant_id = s.tenant_id and t.id = s.trace_id
      where t.run_id = $1 order by s.trace_id, s.step_index`,
    [runId],
  );
  const {
    rows: [proof],
  } = await db.query(`select * from runproof.run_proof($1, $2)`, [tenantId, runId]);
  const byTrace = new Map<string, z.infer<typeof bundleStepSchema>[]>();
  for (const s of steps) {
    const list = byTrace.get(s.trace_id) ?? [];
    list.push({
      step_index: s.step_index,
      prev_hash: hex(s.prev_hash)!,
      step_hash: hex(s.step_hash)!,
      canonical: (s.canonical as Buffer).toString("base64"),
    });
    byTrace.set(s.trace_id, list);
  }
  return {
    format: "runproof.bundle/1",
    integrity_model: "HASH_CHAIN",
    exported_at: new Date().toISOString(),
    tenant_id: tenantId,
    run_id: runId,
    run: {
      tenant_id: run.tenant_id,
      agent_id: run.agent_id,
      goal: run.goal,
      origin_system_id: run.origin_system_id,
      status: run.status,
      attempts: run.attempts,
      trace_count: run.trace_count,
      root_hash: hex(run.root_hash),
      plan: run.plan,
      created_at: iso(run.created_at)!,
      finished_at: iso(run.finished_at),
      canonical: (run.canonical as Buffer).toString("base64"),
    },
    traces: traces.map((t) => ({
      id: t.id,
      tenant_id: t.tenant_id,
      attempt: t.attempt,
      status: t.status,
      step_count: t.step_count,
      root_hash: hex(t.root_hash),
      started_at: iso(t.started_at)!,
      completed_at: iso(t.completed_at),
      steps: byTrace.get(t.id) ?? [],
    })),
    database_proof: Object.fromEntries(
      Object.entries(proof).map(([k, v]) => [k, v instanceof Date ? v.toISOString() : v]),
    ),
  };
}
