// runproof verify-all: a DBA's scan of the whole ledger, reporting what runproof.verify_all()
// reports. It calls the same SQL pieces (ledger_problems, run_verdict per run, orphan_rows,
// anchor_problems), but verifies the runs in batches, in creation order, so the
// bar moves, and over --jobs connections at once (one backend verifies on one core: Postgres
// never spreads a PL/pgSQL loop over parallel workers). Every connection reads the same exported
// snapshot, so the scan sees one consistent ledger, as one verify_all() statement would.
import os from "node:os";
import { Presets, SingleBar } from "cli-progress";
import pg from "pg";
import { readAgainst } from "../lib/anchor-dir.ts";
import { EXIT, err, out, printJson, table, truncate, usageError, withDatabase } from "./common.ts";
/** A tenant log's verdict against the checkpoints kept outside (runproof.verify_against). */
interface LogRow {
  tenant_id: string | null;
  status: string;
  first_bad_leaf: string | null;
  run_id: string | null;
  tree_size: string | null;
  reason: string;
}

interface Problem {
  tenant_id: string;
  run_id: string;
  trace_id: string | null;
  verification_status: string;
  first_bad_attempt: number | null;
  first_bad_step_index: number | null;
  reason: string | null;
  guard_status?: string | null;
}

/** The default --jobs: one connection per core of this machine, at most 8. */
export const defaultJobs = () => Math.min(8, os.availableParallelism());
const MAX_JOBS = 64;

// Snapshot ids are what pg_export_snapshot() prints (e.g. 00000003-0000001B-1); SET TRANSACTION
// SNAPSHOT takes no parameters, so the id is checked and quoted as a literal.
const SNAPSHOT_ID = /^[0-9A-F]+-[0-9A-F]+(-[0-9]+)?$/i;

type RunRow = Problem & { problem: boolean };

export async function verifyAll(opts: {
  tenantId?: string;
  batchSize: number;
  jobs?: number;
  progress: boolean;
  json?: boolean;
  against?: string;
  key?: string;
}): Promise<void> {
  const vkey = opts.key ?? process.env.RUNPROOF_CHECKPOINT_VERIFIER_KEY;
  if (opts.against && !vkey)
    throw usageError(
      "--against needs the log's verifier key",
      "pass --key NAME+ID+KEY (runproof checkpoint show prints it)",
    );
  const jobs = opts.jobs ?? defaultJobs();
  if (jobs > MAX_JOBS)
    throw usageError(
      `--jobs ${jobs} is more than ${MAX_JOBS}`,
      "each job is a connection and a backend busy on a core",
    );
  const tenant = opts.tenantId ?? null;
  await withDatabase(async ({ pool, url }) => {
    const started = Date.now();
    // The leader's transaction holds the snapshot; the verifiers import it.
    const clients: pg.Client[] = [];
    const connect = async () => {
      const c = new pg.Client({ connectionString: url, application_name: "runproof verify-all" });
      clients.push(c);
      c.on("error", () => {}); // surfaces through the next query
      await c.connect();
      return c;
    };
    const counts: Record<string, number> = {
      VERIFIED: 0,
      IN_PROGRESS: 0,
      TAMPERED: 0,
      BROKEN: 0,
      NOT_FOUND: 0,
    };
    const problems: Problem[] = [];
    const logRows: LogRow[] = [];
    let scanned = 0;
    let bar: SingleBar | null = null;
    try {
      const leader = await connect();
      await leader.query("begin isolation level repeatable read read only");
      // The snapshot is taken by this first statement, which reads no table: the scan sees the
      // ledger as it was when it started, whatever commits while it runs.
      const {
        rows: [{ snapshot }],
      } = await leader.query<{ snapshot: string }>(`select pg_export_snapshot() as snapshot`);
      const {
        rows: [{ total }],
      } = await leader.query<{ total: number }>(
        `select count(*)::int as total from runproof.runs where ($1::uuid is null or tenant_id = $1)`,
        [tenant],
      );
      if (!SNAPSHOT_ID.test(snapshot)) throw new Error(`verify-all: unexpected snapshot id ${snapshot}`);
      const verifiers = await Promise.all(
        Array.from({ length: jobs }, async () => {
          const c = await connect();
          await c.query("begin isolation level repeatable read read only");
          await c.query(`set transaction snapshot ${c.escapeLiteral(snapshot)}`);
          return c;
        }),
      );

      bar = opts.progress
        ? new SingleBar(
            {
              stream: process.stderr,
              noTTYOutput: true,
              notTTYSchedule: 2000,
              hideCursor: true,
              etaBuffer: 50,
              format:
                "verifying runs [{bar}] {value}/{total} ({percentage}%) {problems} problem(s), eta {eta_formatted}",
            },
            Presets.shades_classic,
          )
        : null;
      bar?.start(total, 0, { problems: 0 });

      // The ledger as a whole: a guard that is not live, an audit that is not (no run of its own).
      const { rows: ledger } = await leader.query<Problem>(
        `select null::uuid as tenant_id, null::uuid as run_id, null::uuid as trace_id, null::text as verification_status,
                null::int as first_bad_attempt, null::int as first_bad_step_index, l.reason, l.guard_status
           from runproof_private.ledger_problems() l`,
      );
      problems.push(...ledger);

      // The leader hands out batches of run keys in creation order (keyset pagination: never a
      // run twice); each verifier takes the next batch when it is free, so one long trace does
      // not hold the others up. Problems are reported in creation order, whoever verified them.
      let after: { created_at: string; id: string } | null = null;
      let done = false;
      let handing: Promise<unknown> = Promise.resolve();
      let handedOut = 0;
      const nextBatch = () => {
        const batch = handing.then(async () => {
          if (done) return null;
          const { rows } = await leader.query<{ tenant_id: string; id: string; created_at: string }>(
            // The cursor travels as text: a JS Date would drop the microseconds and never move past them.
            `select tenant_id, id, created_at::text as created_at from runproof.runs
              where ($1::uuid is null or tenant_id = $1)
                and ($2::timestamptz is null or (created_at, id) > ($2::timestamptz, $3::uuid))
              order by created_at, id limit $4`,
            [tenant, after?.created_at ?? null, after?.id ?? null, opts.batchSize],
          );
          if (rows.length < opts.batchSize) done = true;
          if (!rows.length) return null;
          const last = rows[rows.length - 1];
          if (after && after.created_at === last.created_at && after.id === last.id)
            throw new Error("verify-all: the scan did not advance (bug)");
          after = { created_at: last.created_at, id: last.id };
          return { seq: handedOut++, keys: rows };
        });
        handing = batch.catch(() => {});
        return batch;
      };
      const found: { seq: number; n: number; row: RunRow }[] = [];
      const verifyBatches = async (c: pg.Client) => {
        for (;;) {
          const batch = await nextBatch();
          if (!batch) return;
          const { seq, keys } = batch;
          // The verdict and whether it is a problem are runproof_private.run_verdict's, as in verify_all().
          const { rows } = await c.query<RunRow>(
            `select k.tenant_id, k.id as run_id, v.trace_id, v.verification_status, v.first_bad_attempt,
                    v.first_bad_step_index, v.reason, v.guard_status, v.problem
               from unnest($1::uuid[], $2::uuid[]) with ordinality k(tenant_id, id, n)
              cross join lateral runproof_private.run_verdict(k.tenant_id, k.id,
                                   (select s.state from runproof_private.ddl_audit_state() s)) v
              order by k.n`,
            [keys.map((k) => k.tenant_id), keys.map((k) => k.id)],
          );
          for (const [n, r] of rows.entries()) {
            counts[r.verification_status] = (counts[r.verification_status] ?? 0) + 1;
            if (r.problem) found.push({ seq, n, row: r });
          }
          scanned += rows.length;
          bar?.setTotal(Math.max(total, scanned));
          bar?.update(scanned, { problems: problems.length + found.length });
        }
      };
      await Promise.all(
        verifiers.map(async (c) => {
          try {
            await verifyBatches(c);
          } catch (e) {
            done = true; // the others stop after their batch
            throw e;
          }
        }),
      );
      found.sort((a, b) => a.seq - b.seq || a.n - b.n); // creation order, as the batches were handed out
      for (const { row } of found) {
        const { problem: _p, ...p } = row;
        problems.push(p);
      }

      // Rows no run leads to: traces without their run, steps without their trace.
      const { rows: orphans } = await leader.query<Problem>(
        `select o.tenant_id, o.run_id, o.trace_id, 'BROKEN' as verification_status, o.first_bad_attempt, o.first_bad_step_index, o.reason
           from runproof_private.orphan_rows() o
          where ($1::uuid is null or o.tenant_id = $1)
          order by o.run_id, o.trace_id`,
        [tenant],
      );
      problems.push(...orphans);
      // Checkpoints an anchor failed to take: the backlog.
      const { rows: backlog } = await leader.query<Problem>(
        `select a.tenant_id, null as run_id, null as trace_id, 'ANCHOR_BACKLOG' as verification_status, null as first_bad_attempt,
                null as first_bad_step_index, a.reason
           from runproof_private.anchor_problems() a where ($1::uuid is null or a.tenant_id = $1)`,
        [tenant],
      );
      problems.push(...backlog);
      bar?.update(scanned, { problems: problems.length });
    } finally {
      bar?.stop();
      await Promise.all(clients.map((c) => c.end().catch(() => {})));
    }

    // Each tenant's log against the checkpoints kept outside the database.
    if (opts.against && vkey) {
      const a = await readAgainst(opts.against, vkey);
      for (const r of a.rejected)
        logRows.push({
          tenant_id: null,
          status: "BAD_CHECKPOINT",
          first_bad_leaf: null,
          run_id: null,
          tree_size: null,
          reason: `${r.file}: ${r.reason}`,
        });
      const { rows } = await pool.query<LogRow>(
        `select tenant_id, status, first_bad_leaf::text, run_id, tree_size::text, reason from runproof.verify_against($1, $2)
          where ($3::uuid is null or tenant_id = $3)`,
        [a.checkpoints, a.leaves, opts.tenantId ?? null],
      );
      logRows.push(...rows);
    }
    const logProblems = logRows.filter((r) => r.status !== "CONSISTENT" && r.status !== "NOT_CHECKPOINTED");
    const seconds = (Date.now() - started) / 1000;
    const summary = {
      runs_scanned: scanned,
      jobs,
      counts,
      orphan_traces: problems.filter((p) => p.reason === "trace has no run row").length,
      orphan_step_groups: problems.filter((p) => p.reason === "steps have no trace row").length,
      problems,
      logs: opts.against ? logRows : undefined,
      ok: problems.length === 0 && logProblems.length === 0,
      seconds,
    };
    if (opts.json) {
      printJson(summary);
    } else {
      const byStatus = Object.entries(counts)
        .filter(([, n]) => n > 0)
        .map(([s, n]) => `${n} ${s}`)
        .join(", ");
      out(`scanned ${scanned} run(s) in ${seconds.toFixed(1)} s${byStatus ? `: ${byStatus}` : ""}`);
      if (!problems.length) {
        out("ledger intact: every run is VERIFIED or IN_PROGRESS, and no trace or step is orphaned");
      } else {
        out(`${problems.length} problem(s):`);
        out(
          table(
            ["tenant", "run", "trace", "status", "attempt", "step", "reason"],
            problems.map((p) => [
              p.tenant_id ?? "(ledger)",
              p.run_id ?? "-",
              p.trace_id ?? "-",
              p.verification_status ?? p.guard_status ?? "-",
              p.first_bad_attempt ?? "-",
              p.first_bad_step_index ?? "-",
              truncate(p.reason ?? "", 90),
            ]),
          ),
        );
        err("details of one run: npx runproof proof RUN_ID, npx runproof runs get RUN_ID");
      }
      if (opts.against) {
        out(
          `logs against ${opts.against}: ${logProblems.length ? `${logProblems.length} problem(s)` : "consistent"}`,
        );
        if (logRows.length)
          out(
            table(
              ["tenant", "status", "first bad leaf", "run", "size", "reason"],
              logRows.map((r) => [
                r.tenant_id ?? "-",
                r.status,
                r.first_bad_leaf ?? "-",
                r.run_id ?? "-",
                r.tree_size ?? "-",
                truncate(r.reason, 90),
              ]),
            ),
          );
      }
    }
    process.exitCode = problems.length || logProblems.length ? EXIT.VERIFY_FAILED : EXIT.OK;
  });
}
