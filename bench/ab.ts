// `npm run bench -- --ab [--quick]`: the gain of bench/proposed.sql, measured A/B in one run on
// one database. The definitions that proposed.sql replaces are read back from the live database
// first (pg_get_functiondef, pg_get_triggerdef), so every trial can switch between "current" (the
// committed migrations) and "proposed", alternating, on the same data. On a shared, noisy machine
// that compares like with like far better than two separate runs would.
// Writes bench/results-ab.json and bench/results-ab.md (--quick: bench/tmp/results-ab-quick.*).
import fs from "node:fs";
import path from "node:path";
import type pg from "pg";
import { REPO_ROOT } from "../src/lib/database.ts";
import { batched, concurrent, connect, sequential } from "./append.ts";
import { runProofThroughput, startRunProofWorker } from "./execute.ts";
import {
  createTenant,
  fmtInt,
  generateTrace,
  gitRevision,
  loadAverage,
  log,
  median,
  newPool,
  now,
  openBenchDatabase,
  registerBuiltinSkills,
  round,
  serverFacts,
} from "./lib.ts";
import { buildManyRuns } from "./scale.ts";

type Variant = "current" | "proposed";

interface AbRow {
  part: string;
  measure: string;
  unit: string;
  better: "higher" | "lower";
  current: number[];
  proposed: number[];
}

/** The functions that bench/proposed.sql replaces, as they are now. */
async function captureCurrent(pool: pg.Pool): Promise<string> {
  const fns = [
    "runproof_private.step_canonical(runproof.trace_steps)",
    "runproof_private.verify_trace_row(runproof.traces)",
    "runproof_private.tg_runs__guard()",
  ];
  const parts: string[] = [];
  for (const f of fns) {
    const {
      rows: [r],
    } = await pool.query(`select pg_get_functiondef(to_regprocedure($1)) as def`, [f]);
    if (!r.def) throw new Error(`${f} does not exist`);
    parts.push(`${r.def};`);
  }
  return parts.join("\n");
}

export async function runAb(quick: boolean, outBase: string): Promise<void> {
  const started = new Date();
  const t0 = now();
  const loadStart = loadAverage();
  const git = gitRevision();
  const db = await openBenchDatabase();
  const pool = newPool(db.url, 10);
  const rows: AbRow[] = [];
  try {
    await registerBuiltinSkills(pool);
    const facts = await serverFacts(pool);
    const current = await captureCurrent(pool);
    const proposed = fs.readFileSync(path.join(REPO_ROOT, "bench", "proposed.sql"), "utf8");
    if (!proposed.replace(/--.*$/gm, "").trim()) {
      log("bench/proposed.sql proposes nothing (its last proposals are migration 000008): no A/B to run");
      return;
    }
    let active: Variant = "current";
    const use = async (v: Variant) => {
      if (v !== active) await pool.query(v === "current" ? current : proposed);
      active = v;
    };
    // Alternate which variant goes first, trial by trial.
    const ab = async (
      part: string,
      measure: string,
      unit: string,
      better: "higher" | "lower",
      trials: number,
      fn: () => Promise<number>,
    ) => {
      const r: AbRow = { part, measure, unit, better, current: [], proposed: [] };
      for (let k = 0; k < trials; k++) {
        for (const v of (k % 2 ? ["proposed", "current"] : ["current", "proposed"]) as Variant[]) {
          await use(v);
          r[v].push(await fn());
        }
      }
      log(
        `ab: ${measure}: current ${fmtInt(median(r.current))}, proposed ${fmtInt(median(r.proposed))} ${unit}`,
      );
      rows.push(r);
    };
    const trials = quick ? 3 : 5;

    // Verify (P1, P2): the same traces, verified with either set of functions.
    const tv = await createTenant(pool, "ab-verify");
    for (const size of quick ? [10_000, 100_000] : [10_000, 100_000, 1_000_000]) {
      log(`ab: generating a trace of ${fmtInt(size)} steps`);
      const o = await generateTrace(pool, tv, size);
      await pool.query(`analyze runproof.trace_steps`);
      await ab(
        "P1 + P2",
        `run_proof, 1 trace of ${fmtInt(size)} steps`,
        "steps/s",
        "higher",
        size >= 1_000_000 ? 3 : trials,
        async () => {
          const s = now();
          const {
            rows: [p],
          } = await pool.query(`select verification_status from runproof.run_proof($1, $2)`, [
            o.tenantId,
            o.runId,
          ]);
          if (p.verification_status !== "VERIFIED") throw new Error(`run_proof: ${p.verification_status}`);
          return size / ((now() - s) / 1000);
        },
      );
    }

    // verify_all over many runs of 100 steps (P1; P2 keeps the single pass for small traces).
    const runs = quick ? 500 : 3_000;
    log(`ab: building ${fmtInt(runs)} runs of 100 steps for verify_all`);
    await buildManyRuns(pool, await createTenant(pool, "ab-verify-all"), runs, 100);
    await ab(
      "P1",
      `verify_all, ${fmtInt(runs)} runs of 100 steps (+ the traces above)`,
      "s",
      "lower",
      3,
      async () => {
        const s = now();
        await pool.query(`select count(*) from runproof.verify_all()`);
        return (now() - s) / 1000;
      },
    );

    // Append (P1 in the chain trigger; P3 on the worker path, which updates the run).
    const ta = await createTenant(pool, "ab-append");
    const c = await connect(db.url);
    try {
      await sequential(c, pool, ta, "ledger", 50);
      await ab("P1", "append, 1 trace, sequential single-row", "steps/s", "higher", trials, () =>
        sequential(c, pool, ta, "ledger", quick ? 300 : 1_000),
      );
      await ab("P1", "append, 1 trace, 500-row statements", "steps/s", "higher", trials, () =>
        batched(c, pool, ta, "ledger", quick ? 5_000 : 20_000, 500),
      );
      await ab(
        "P1 + P3",
        "append, worker path (decide_step + record_step)",
        "steps/s",
        "higher",
        trials,
        () => sequential(c, pool, ta, "worker", quick ? 200 : 500),
      );
    } finally {
      await c.end();
    }
    const clients = await Promise.all(Array.from({ length: 32 }, () => connect(db.url)));
    try {
      await ab("P1", "append, 64 traces from 32 clients", "steps/s", "higher", trials, () =>
        concurrent(clients, pool, ta, "ledger", 64, quick ? 1_500 : 3_000),
      );
    } finally {
      await Promise.all(clients.map((x) => x.end()));
    }

    // Execute (P3 above all: the run row is updated once per step).
    const te = await createTenant(pool, "ab-execute");
    const w = await startRunProofWorker(db.url, 4);
    try {
      await runProofThroughput(pool, w, te, 10, 10, "ab warmup");
      let k = 0;
      await ab(
        "P1 + P3",
        "execute, runs of 10 noop steps",
        "steps/s",
        "higher",
        3,
        async () => (await runProofThroughput(pool, w, te, quick ? 40 : 150, 10, `ab exec ${k++}`))[0],
      );
      const long = quick ? 300 : 1_000;
      await ab(
        "P3",
        `execute, runs of ${fmtInt(long)} noop steps`,
        "steps/s",
        "higher",
        3,
        async () => (await runProofThroughput(pool, w, te, 2, long, `ab execlong ${k++}`))[0],
      );
    } finally {
      await w.stop();
    }
    await use("current");

    const results = {
      generated_at: started.toISOString(),
      mode: quick ? "quick" : "full",
      git,
      duration_seconds: round((now() - t0) / 1000, 1),
      machine: { load_average_start: loadStart, load_average_end: loadAverage() },
      postgres: { embedded: db.embedded, ...facts },
      rows: rows.map((r) => ({
        ...r,
        current_median: round(median(r.current), 3),
        proposed_median: round(median(r.proposed), 3),
        gain: round(
          r.better === "higher"
            ? median(r.proposed) / median(r.current)
            : median(r.current) / median(r.proposed),
          3,
        ),
        // Best trial of each: on a shared machine the least disturbed run is the steadiest comparison.
        current_best: round(best(r.current, r.better), 3),
        proposed_best: round(best(r.proposed, r.better), 3),
        gain_best: round(
          r.better === "higher"
            ? best(r.proposed, r.better) / best(r.current, r.better)
            : best(r.current, r.better) / best(r.proposed, r.better),
          3,
        ),
        current: r.current.map((x) => round(x, 3)),
        proposed: r.proposed.map((x) => round(x, 3)),
      })),
    };
    const out = path.resolve(REPO_ROOT, outBase);
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(`${out}.json`, `${JSON.stringify(results, null, 2)}\n`);
    fs.writeFileSync(`${out}.md`, abMarkdown(results));
    log(`wrote ${path.relative(REPO_ROOT, out)}.json and .md (${results.duration_seconds} s)`);
  } finally {
    await pool.end().catch(() => {});
    await db.stop();
  }
}

function best(xs: number[], better: "higher" | "lower"): number {
  return better === "higher" ? Math.max(...xs) : Math.min(...xs);
}

function abMarkdown(res: {
  generated_at: string;
  mode: string;
  git: string | null;
  duration_seconds: number;
  machine: { load_average_start: number[]; load_average_end: number[] };
  postgres: Record<string, unknown>;
  rows: (AbRow & {
    current_median: number;
    proposed_median: number;
    gain: number;
    current_best: number;
    proposed_best: number;
    gain_best: number;
  })[];
}): string {
  const fmt = (x: number, unit: string) =>
    unit === "s" ? `${x.toFixed(2)} s` : `${Math.round(x).toLocaleString("en-US")} ${unit}`;
  const lines = [
    `# bench/proposed.sql: measured gains${res.mode === "quick" ? " (quick)" : ""}`,
    "",
    `Generated by \`npm run bench -- --ab${res.mode === "quick" ? " --quick" : ""}\` on ${res.generated_at.slice(0, 16).replace("T", " ")} UTC (git ${res.git ?? "?"}), ` +
      `${Math.round(res.duration_seconds)} s, PostgreSQL ${res.postgres.server_version}; load average ${res.machine.load_average_start.join(" ")} at the start, ` +
      `${res.machine.load_average_end.join(" ")} at the end. One database: each trial switches between the committed definitions (current) and ` +
      "bench/proposed.sql (proposed), alternating which goes first; figures are medians.",
    "",
    "| Proposal | Measure | Current (median) | Proposed (median) | Gain | Gain, best trial of each | Trials |",
    "|---|---|---:|---:|---:|---:|---:|",
    ...res.rows.map(
      (r) =>
        `| ${r.part} | ${r.measure} | ${fmt(r.current_median, r.unit)} | ${fmt(r.proposed_median, r.unit)} | ${r.gain.toFixed(2)}× | ${r.gain_best.toFixed(2)}× | ${r.current.length} |`,
    ),
    "",
    "Gain: proposed ÷ current for throughput, current ÷ proposed for time (above 1 is better). Every trial of both variants is in results-ab.json.",
    "",
  ];
  return lines.join("\n");
}
