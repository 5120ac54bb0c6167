// runproof erase (runproof.erase_payloads) and runproof tenant retention
// (runproof_private.set_payload_retention): erasing step payloads while every proof stays VERIFIED.
import { kvTable, out, printJson, tenantOfRun, withDatabase } from "./common.ts";

export async function eraseCommand(opts: {
  run?: string;
  olderThan?: string;
  reason: string;
  tenantId?: string;
  json?: boolean;
}): Promise<void> {
  await withDatabase(async ({ pool }) => {
    const tenantId = opts.run ? await tenantOfRun(pool, opts.run, opts.tenantId) : opts.tenantId;
    const {
      rows: [e],
    } = await pool.query(
      `select id, tenant_id, erased_at, erased_by, reason, scope, step_count
         from runproof.erase_payloads(run_id => $1, older_than => $2::interval, reason => $3, tenant_id => $4)`,
      [opts.run ?? null, opts.olderThan ?? null, opts.reason, tenantId ?? null],
    );
    if (opts.json) return printJson(e);
    out(
      `erased the payloads of ${e.step_count} step(s); every proof still verifies, counting them as erased`,
    );
    out(
      kvTable([
        ["erasure", e.id],
        ["tenant", e.tenant_id],
        ["scope", JSON.stringify(e.scope)],
        ["reason", e.reason],
        ["by", e.erased_by],
        ["at", e.erased_at],
      ]),
    );
  });
}

export async function retentionCommand(
  tenantId: string,
  opts: { keep?: string; forever?: boolean; json?: boolean },
): Promise<void> {
  await withDatabase(async ({ pool }) => {
    const {
      rows: [t],
    } = await pool.query(
      `select id, name, payload_retention::text as payload_retention
         from runproof_private.set_payload_retention($1, $2::interval)`,
      [tenantId, opts.forever ? null : (opts.keep ?? null)],
    );
    if (opts.json) return printJson(t);
    out(
      t.payload_retention
        ? `tenant ${t.name}: step payloads are erased ${t.payload_retention} after their run finished (the worker applies it)`
        : `tenant ${t.name}: step payloads are kept`,
    );
  });
}
