// runproof verify-all: a DBA's scan of the whole ledger. Runs are verified in batches (one
// runproof.run_proof per run, in creation order) so the progress bar moves, then the rows no
// run leads to are looked for, exactly as runproof.verify_all() does.
import { Presets, SingleBar } from "cli-progress";
import { EXIT, err, out, printJson, table, truncate, withDatabase } from "./common.ts";

interface Problem {
  tenant_id: string; run_id: string; trace_id: string | null; verification_status: string;
  first_bad_attempt: number | null; first_bad_step_index: number | null; reason: string | null;
}

export async function verifyAll(opts: { tenantId?: string; batchSize: number; progress: boolean; json?: boolean }): Promise<void> {
  await withDatabase(async ({ pool }) => {
    const started = Date.now();
    const { rows: [{ total }] } = await pool.query<{ total: number }>(
      `select count(*)::int as total from runproof.runs where ($1::uuid is null or tenant_id = $1)`, [opts.tenantId ?? null]);
    const bar = opts.progress
      ? new SingleBar({
          stream: process.stderr, noTTYOutput: true, notTTYSchedule: 2000, hideCursor: true, etaBuffer: 50,
          format: "verifying runs [{bar}] {value}/{total} ({percentage}%) {problems} problem(s), eta {eta_formatted}",
        }, Presets.shades_classic)
      : null;
    bar?.start(total, 0, { problems: 0 });

    const counts: Record<string, number> = { VERIFIED: 0, IN_PROGRESS: 0, TAMPERED: 0, BROKEN: 0, NOT_FOUND: 0 };
    const problems: Problem[] = [];
    let scanned = 0;
    let after: { created_at: string; id: string } | null = null;
    try {
      for (;;) {
        // Keyset pagination: runs created while the scan goes on are picked up or not, never twice.
        const { rows }: { rows: (Problem & { created_at: string })[] } = await pool.query<Problem & { created_at: string }>(
          // The cursor travels as text: a JS Date would drop the microseconds and never move past them.
          `select r.tenant_id, r.id as run_id, r.created_at::text as created_at, p.verification_status, p.first_bad_trace_id as trace_id,
                  p.first_bad_attempt, p.first_bad_step_index, p.reason
             from (select tenant_id, id, created_at from runproof.runs
                    where ($1::uuid is null or tenant_id = $1)
                      and ($2::timestamptz is null or (created_at, id) > ($2::timestamptz, $3::uuid))
                    order by created_at, id limit $4) r
             cross join lateral runproof.run_proof(r.tenant_id, r.id) p
            order by r.created_at, r.id`,
          [opts.tenantId ?? null, after?.created_at ?? null, after?.id ?? null, opts.batchSize]);
        if (!rows.length) break;
        for (const r of rows) {
          counts[r.verification_status] = (counts[r.verification_status] ?? 0) + 1;
          if (r.verification_status !== "VERIFIED" && r.verification_status !== "IN_PROGRESS") {
            const { created_at: _c, ...p } = r;
            problems.push(p);
          }
        }
        scanned += rows.length;
        const last: Problem & { created_at: string } = rows[rows.length - 1];
        if (after && after.created_at === last.created_at && after.id === last.run_id) throw new Error("verify-all: the scan did not advance (bug)");
        after = { created_at: last.created_at, id: last.run_id };
        bar?.setTotal(Math.max(total, scanned));
        bar?.update(scanned, { problems: problems.length });
      }

      // Rows no run leads to (the same queries as runproof.verify_all()).
      const { rows: orphanTraces } = await pool.query<Problem>(
        `select t.tenant_id, t.run_id, t.id as trace_id, 'BROKEN' as verification_status, t.attempt as first_bad_attempt,
                null::int as first_bad_step_index, 'trace has no run row' as reason
           from runproof.traces t
          where ($1::uuid is null or t.tenant_id = $1)
            and not exists (select 1 from runproof.runs r where r.tenant_id = t.tenant_id and r.id = t.run_id)
          order by t.run_id, t.attempt`, [opts.tenantId ?? null]);
      const { rows: orphanSteps } = await pool.query<Problem>(
        `select s.tenant_id, s.run_id, s.trace_id, 'BROKEN' as verification_status, null::int as first_bad_attempt,
                min(s.step_index) as first_bad_step_index, 'steps have no trace row' as reason
           from runproof.trace_steps s
          where ($1::uuid is null or s.tenant_id = $1)
            and not exists (select 1 from runproof.traces t where t.tenant_id = s.tenant_id and t.id = s.trace_id)
          group by s.tenant_id, s.run_id, s.trace_id order by s.run_id, s.trace_id`, [opts.tenantId ?? null]);
      problems.push(...orphanTraces, ...orphanSteps);
      bar?.update(scanned, { problems: problems.length });
    } finally {
      bar?.stop();
    }

    const seconds = (Date.now() - started) / 1000;
    const summary = {
      runs_scanned: scanned,
      counts,
      orphan_traces: problems.filter((p) => p.reason === "trace has no run row").length,
      orphan_step_groups: problems.filter((p) => p.reason === "steps have no trace row").length,
      problems,
      ok: problems.length === 0,
      seconds,
    };
    if (opts.json) {
      printJson(summary);
    } else {
      const byStatus = Object.entries(counts).filter(([, n]) => n > 0).map(([s, n]) => `${n} ${s}`).join(", ");
      out(`scanned ${scanned} run(s) in ${seconds.toFixed(1)} s${byStatus ? `: ${byStatus}` : ""}`);
      if (!problems.length) {
        out("ledger intact: every run is VERIFIED or IN_PROGRESS, and no trace or step is orphaned");
      } else {
        out(`${problems.length} problem(s):`);
        out(table(["tenant", "run", "trace", "status", "attempt", "step", "reason"],
          problems.map((p) => [p.tenant_id, p.run_id, p.trace_id ?? "-", p.verification_status, p.first_bad_attempt ?? "-",
            p.first_bad_step_index ?? "-", truncate(p.reason ?? "", 90)])));
        err("details of one run: runproof proof RUN_ID, runproof runs get RUN_ID");
      }
    }
    process.exitCode = problems.length ? EXIT.VERIFY_FAILED : EXIT.OK;
  });
}
