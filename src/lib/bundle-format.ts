// The proof bundle, format runproof.bundle/2 (docs/proof-format.md section 12): every hashed record
// as its canonical text, verbatim, so a verifier hashes exactly what the database hashed and what a
// reader is shown is decoded from those texts. No node: imports: the web page uses it too.
import { z } from "zod";

// Any UUID PostgreSQL prints (lower-case, hyphenated), whatever its version bits.
const uuid = z
  .string()
  .regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, "a UUID (lower-case, hyphenated)");
const hex32 = z.string().regex(/^[0-9a-f]{64}$/, "a 32-byte hash in lower-case hex");
const salt = z.string().regex(/^[0-9a-f]{64}$/, "a 32-byte salt in lower-case hex");

const payloadValue = z.strictObject({ salt, text: z.string() });

export const bundleStepSchema = z.strictObject({
  step_index: z.number().int().min(0),
  prev_hash: hex32,
  step_hash: hex32,
  /** The step's canonical text (runproof.step/2). */
  canonical: z.string(),
  /** The canonical text of its policy decision (runproof.decision/2), null when the row is missing. */
  decision: z.string().nullable(),
  /** Its payloads with their salts, null when they were erased (or are missing). */
  payload: z
    .strictObject({
      input: payloadValue.nullable(),
      output: payloadValue.nullable(),
      error: payloadValue.nullable(),
    })
    .nullable(),
  /** The id of the erasure that removed its payloads, or null. */
  erasure: uuid.nullable(),
});

export const bundleTraceSchema = z.strictObject({
  /** The trace's canonical text recomputed at export from its row (runproof.trace/2). */
  state: z.string(),
  /** The stored seal text and its hash, null while the trace runs. */
  seal: z.string().nullable(),
  seal_hash: hex32.nullable(),
  steps: z.array(bundleStepSchema).superRefine((steps, ctx) => {
    const seen = new Set<number>();
    for (const s of steps) {
      if (seen.has(s.step_index))
        ctx.addIssue({ code: "custom", message: `step_index ${s.step_index} appears twice` });
      seen.add(s.step_index);
    }
  }),
});

export const bundleErasureSchema = z.strictObject({
  id: uuid,
  erased_at: z.string(),
  erased_by: z.string(),
  reason: z.string(),
  steps: z.array(z.strictObject({ trace_id: uuid, step_index: z.number().int().min(0) })),
});

export const bundleSchema = z.strictObject({
  format: z.literal("runproof.bundle/2"),
  exported_at: z.string(),
  tenant_id: uuid,
  run_id: uuid,
  run: z.strictObject({
    /** The run's content (runproof.run/2). */
    content: z.string(),
    /** The run seal text recomputed at export from the rows (runproof.run-seal/2). */
    state: z.string(),
    /** The stored seal and run root, null while the run is unfinished. */
    seal: z.string().nullable(),
    root_hash: hex32.nullable(),
    /** The stored trace count, null while the run is unfinished. */
    trace_count: z.number().int().min(0).nullable(),
  }),
  traces: z.array(bundleTraceSchema),
  /** The incidents' canonical texts (runproof.incident/2), ordered by created_at, then id. */
  incidents: z.array(z.string()),
  erasures: z.array(bundleErasureSchema),
  /** What the database's run_proof said when the bundle was exported (informational, not trusted). */
  database_proof: z.record(z.string(), z.unknown()),
  /** The run's leaf in its tenant's log, its inclusion proof and that checkpoint (docs/proof-format.md section 13); null before the seal. */
  log: z
    .strictObject({
      leaf_index: z.number().int().min(0),
      leaf: z.string(),
      checkpoint: z.string().nullable(),
      inclusion_proof: z.array(hex32).nullable(),
      consistency: z.array(z.strictObject({ from_size: z.number().int().min(0), proof: z.array(hex32) })),
    })
    .nullable()
    .optional(),
});

export type Bundle = z.infer<typeof bundleSchema>;
export type BundleTrace = z.infer<typeof bundleTraceSchema>;
export type BundleStep = z.infer<typeof bundleStepSchema>;
