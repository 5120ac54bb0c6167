// `npm run bench [-- --quick] [-- --only append,verify,execute,query,scale] [-- --sql <file>]`
//
// Measures RunProof against a baseline from the same run on the same database: append, verify,
// execute, query and scale (see bench/FINDINGS.md). Runs on a throwaway embedded Postgres, or,
// with DATABASE_URL, on a scratch database `runproof_bench` of that server (dropped at the end).
// The scratch database is migrated with the committed migrations and migrations/current.sql, so
// a change being developed is measured as it stands; --sql applies further files first.
// Writes bench/results.json and bench/results.md (--quick, --only or --sql: bench/tmp/results-quick.*).
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { REPO_ROOT } from "../src/lib/database.ts";
import { benchAppend, profileAppend } from "./append.ts";
import { benchCheckpoint } from "./checkpoint.ts";
import { benchExecute, profileExecute } from "./execute.ts";
import {
  createTenant,
  figure,
  fmtInt,
  gitRevision,
  loadAverage,
  log,
  newPool,
  openBenchDatabase,
  registerBuiltinSkills,
  type Durability,
  round,
  row,
  serverFacts,
  type Row,
} from "./lib.ts";
import { benchQuery } from "./query.ts";
import { writeMarkdown } from "./report.ts";
import { benchRunList, buildManyRuns, measureVerifyAll } from "./scale.ts";
import { benchVerify } from "./verify.ts";

const SECTIONS = ["append", "verify", "execute", "query", "scale", "checkpoint"] as const;
type Section = (typeof SECTIONS)[number];

function parseArgs(argv: string[]) {
  const opts = {
    quick: false,
    only: new Set<Section>(SECTIONS),
    out: "",
    sql: [] as string[],
    fsyncOff: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => (a.includes("=") ? a.slice(a.indexOf("=") + 1) : argv[++i]);
    if (a === "--quick") opts.quick = true;
    else if (a.startsWith("--only")) {
      const list = value()
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean);
      for (const s of list)
        if (!SECTIONS.includes(s as Section))
          throw new Error(`--only: unknown section ${s} (${SECTIONS.join(", ")})`);
      opts.only = new Set(list as Section[]);
    } else if (a.startsWith("--out")) opts.out = value();
    else if (a.startsWith("--sql")) opts.sql.push(value());
    else if (a === "--fsync-off") opts.fsyncOff = true;
    else if (a === "--help" || a === "-h") {
      process.stdout.write(
        `usage: npm run bench -- [--quick] [--only ${SECTIONS.join(",")}] [--fsync-off] [--sql <file>]... [--out <path without extension>]\n`,
      );
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  if (!opts.out) {
    opts.out =
      opts.sql.length || opts.quick || opts.only.size < SECTIONS.length
        ? "bench/tmp/results-quick"
        : "bench/results";
  }
  return opts;
}

/** Sizes per mode. The full run takes ~15 minutes on a quiet 2-core machine with durable commits (~35 when it is shared), --quick ~5. */
function plan(quick: boolean) {
  return quick
    ? {
        append: {
          trials: 3,
          seqSteps: 300,
          batchRows: 5_000,
          batchSize: 500,
          traces: 64,
          clients: 32,
          concurrentMs: 1_000,
          scaling: [1, 4, 16, 32],
        },
        verify: { sizes: [10_000, 100_000], trialsFor: () => 3, explain: true },
        execute: {
          trials: 3,
          concurrency: 4,
          runs: 40,
          stepsPerRun: 10,
          oneStepRuns: 40,
          longRuns: 2,
          longSteps: 300,
          bareJobs: 500,
          latencySamples: 30,
        },
        query: { trials: 3, connections: 32, seconds: 3, steps: 100 },
        verifyAll: { runs: 1_000, steps: 100, trials: 3 },
        runList: { runs: 100_000, smallRuns: 1_000, trials: 3, samples: 50 },
        checkpoint: {
          sealRuns: 200,
          sealBlock: 20,
          logLeaves: 100_000,
          proofSamples: 100,
          tenants: 1_000,
          trials: 3,
        },
      }
    : {
        append: {
          trials: 3,
          seqSteps: 1_000,
          batchRows: 20_000,
          batchSize: 500,
          traces: 64,
          clients: 32,
          concurrentMs: 3_000,
          scaling: [1, 4, 16, 32],
        },
        // 1M steps: 3 trials of run_proof and verify_trace (each ~10 s), the others 5.
        verify: {
          sizes: [10_000, 100_000, 1_000_000],
          trialsFor: (n: number) => (n >= 1_000_000 ? 3 : 5),
          explain: true,
        },
        execute: {
          trials: 3,
          concurrency: 4,
          runs: 100,
          stepsPerRun: 10,
          oneStepRuns: 100,
          longRuns: 2,
          longSteps: 1_000,
          bareJobs: 2_000,
          latencySamples: 100,
        },
        query: { trials: 3, connections: 32, seconds: 10, steps: 100 },
        // Durable commits on a shared 2-core machine: building 10,000 finished runs took 15 minutes.
        verifyAll: { runs: 2_000, steps: 100, trials: 3 },
        runList: { runs: 200_000, smallRuns: 1_000, trials: 3, samples: 200 },
        checkpoint: {
          sealRuns: 1_000,
          sealBlock: 25,
          logLeaves: 1_000_000,
          proofSamples: 200,
          tenants: 10_000,
          trials: 3,
        },
      };
}

type Args = ReturnType<typeof parseArgs>;
type Sizes = ReturnType<typeof plan>;

/** Runs the chosen sections on a fresh scratch database under `durability`. */
async function measureOn(durability: Durability, only: Set<Section>, args: Args, p: Sizes) {
  const db = await openBenchDatabase(durability);
  const pool = newPool(db.url, 10);
  const rows: Row[] = [];
  const sections: Record<string, unknown> = {};
  const notes: string[] = [];
  const timings: Record<string, number> = {};
  let stopping = false;
  const onSignal = () => {
    if (stopping) return;
    stopping = true;
    log("interrupted: dropping the scratch database");
    void pool
      .end()
      .catch(() => {})
      .then(() => db.stop())
      .finally(() => process.exit(130));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  try {
    const extraSql = [...args.sql.map((f) => path.resolve(f))];
    for (const file of extraSql) {
      log(`applying ${path.relative(REPO_ROOT, file)} to the scratch database`);
      await pool.query(fs.readFileSync(file, "utf8"));
      notes.push(
        `${path.relative(REPO_ROOT, file)} was applied to the scratch database before measuring (not the committed migrations alone).`,
      );
    }
    const facts = await serverFacts(pool);
    const { rows: mig } = await pool.query<{ filename: string }>(
      `select filename from graphile_migrate.migrations order by filename`,
    );
    const migrations = mig.map((m) => m.filename);
    await registerBuiltinSkills(pool);
    const section = async (name: string, fn: () => Promise<void>) => {
      const s = performance.now();
      await fn();
      timings[name] = round((performance.now() - s) / 1000, 1);
      log(`${name}: done in ${timings[name]} s`);
    };

    // verify_all first, while the ledger holds exactly its runs (it verifies everything there is).
    let verifyAll: Awaited<ReturnType<typeof measureVerifyAll>> | undefined;
    let verifyAllGen = 0;
    if (only.has("scale")) {
      await section("scale.verify_all", async () => {
        const t = await createTenant(pool, "bench-verify-all");
        log(
          `scale: building ${fmtInt(p.verifyAll.runs)} finished runs x ${p.verifyAll.steps} steps for verify_all`,
        );
        verifyAllGen = await buildManyRuns(pool, t, p.verifyAll.runs, p.verifyAll.steps);
        await pool.query(
          `vacuum analyze runproof.runs, runproof.traces, runproof.trace_steps, runproof.policy_decisions`,
        );
        log(`scale: verify_all x ${p.verifyAll.trials}`);
        verifyAll = await measureVerifyAll(pool, db.url, p.verifyAll.trials);
        if (verifyAll.bad)
          throw new Error(`verify_all reported ${verifyAll.bad} broken or tampered runs on a clean ledger`);
      });
    }

    if (only.has("append")) {
      await section("append", async () => {
        const t = await createTenant(pool, "bench-append");
        rows.push(...(await benchAppend(db.url, pool, t, p.append)));
        log("append: profile pass (EXPLAIN ANALYZE of a 10,000-step append, pg_stat_user_functions)");
        sections.append = {
          profile: await profileAppend(
            db.url,
            pool,
            t,
            Math.min(p.append.seqSteps, 1000),
            p.append.batchSize,
          ),
        };
      });
    }

    let largest: { steps: number; steps_per_s: number } | undefined;
    if (only.has("verify")) {
      await section("verify", async () => {
        const t = await createTenant(pool, "bench-verify");
        const v = await benchVerify(pool, t, p.verify);
        rows.push(...v.rows);
        largest = v.largest;
        sections.verify = { generation: v.generation, explain_verify_trace_largest: v.explain };
      });
    }

    if (only.has("execute")) {
      await section("execute", async () => {
        const t = await createTenant(pool, "bench-execute");
        rows.push(...(await benchExecute(db.url, pool, t, p.execute)));
        log("execute: profile pass (pg_stat_user_functions)");
        sections.execute = { profile_functions_per_step: await profileExecute(db.url, pool, t, p.execute) };
      });
    }

    if (only.has("query")) {
      await section("query", async () => {
        const t = await createTenant(pool, "bench-query");
        const q = await benchQuery(db.url, db.embedded, pool, t, p.query);
        rows.push(...q.rows);
        if (q.pending) {
          log(`query: PENDING: ${q.pending}`);
          sections.query = { pending: q.pending };
        }
      });
    }

    if (only.has("scale")) {
      await section("scale.run_list", async () => {
        const big = await createTenant(pool, "bench-scale");
        const small = await createTenant(pool, "bench-scale-small");
        const r = await benchRunList(db.url, pool, big, small, p.runList);
        rows.push(...r.rows);
        sections.scale = {
          run_generation_seconds: round(r.generationSeconds, 1),
          run_generation_per_s: Math.round(p.runList.runs / r.generationSeconds),
          explain_deep_page: r.explain,
          verify_all_generation_seconds: round(verifyAllGen, 1),
        };
      });
      if (verifyAll) {
        const perStep = verifyAll.steps / verifyAll.seconds.value;
        rows.push(
          row({
            section: "scale",
            id: "scale.verify_all",
            measure: `verify_all over ${fmtInt(verifyAll.steps)} steps (${fmtInt(verifyAll.runs)} runs of ${p.verifyAll.steps} steps)`,
            runproof: {
              ...figure(
                verifyAll.seconds.trials.map((s) => verifyAll!.steps / s),
                "steps/s",
              ),
            },
            baseline: largest ? { value: largest.steps_per_s, unit: "steps/s", trials: [] } : null,
            baselineLabel: largest
              ? `run_proof on one trace of ${fmtInt(largest.steps)} steps (section 2)`
              : "(verify section not run)",
            better: "higher",
            note: `median ${verifyAll.seconds.value.toFixed(2)} s per verify_all: ${Math.round(perStep)} steps/s, ${Math.round(verifyAll.runs / verifyAll.seconds.value)} runs/s`,
            extra: {
              seconds: verifyAll.seconds,
              cli: verifyAll.cli,
              runs: verifyAll.runs,
              traces: verifyAll.traces,
              steps: verifyAll.steps,
              problems: verifyAll.bad,
              other_rows: verifyAll.other,
            },
          }),
        );
        const one = verifyAll.cli.find((c) => c.jobs === 1)!;
        for (const c of verifyAll.cli.filter((c) => c.jobs > 1))
          rows.push(
            row({
              section: "scale",
              id: `scale.verify_all_jobs_${c.jobs}`,
              measure: `runproof verify-all --jobs ${c.jobs} over the same ${fmtInt(verifyAll.steps)} steps (${c.jobs} connections, one snapshot)`,
              runproof: figure(
                c.seconds.trials.map((s) => verifyAll!.steps / s),
                "steps/s",
              ),
              baseline: figure(
                one.seconds.trials.map((s) => verifyAll!.steps / s),
                "steps/s",
              ),
              baselineLabel: "runproof verify-all --jobs 1 (one connection), same trials",
              better: "higher",
              note: `verify-all's own time (its JSON seconds): median ${c.seconds.value.toFixed(2)} s with ${c.jobs} connections, ${one.seconds.value.toFixed(2)} s with 1; runproof.verify_all() in one statement ${verifyAll.seconds.value.toFixed(2)} s`,
            }),
          );
      }
    }

    // Last: it switches the runs' triggers off while it makes a million sealed runs.
    if (only.has("checkpoint")) {
      await section("checkpoint", async () => {
        const c = await benchCheckpoint(pool, p.checkpoint);
        rows.push(...c.rows);
        sections.checkpoint = c.extra;
      });
    }

    return { rows, sections, notes, timings, facts, migrations, embedded: db.embedded };
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await pool.end().catch(() => {});
    await db.stop();
  }
}

/** A full run's table goes into the README, between its bench-table markers. */
function updateReadme(md: string): void {
  const file = path.join(REPO_ROOT, "README.md");
  const text = fs.readFileSync(file, "utf8");
  const begin = "<!-- bench-table: written by npm run bench from bench/results.md -->";
  const end = "<!-- /bench-table -->";
  const a = text.indexOf(begin);
  const b = text.indexOf(end);
  if (a < 0 || b < a) {
    log("README.md has no bench-table markers: its table was not updated");
    return;
  }
  const table = md
    .split("\n")
    .filter((l) => l.startsWith("|"))
    .join("\n");
  fs.writeFileSync(file, `${text.slice(0, a + begin.length)}\n${table}\n${text.slice(b)}`);
  log("README.md: benchmark table updated from this run");
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const p = plan(args.quick);
  const started = new Date();
  const t0 = performance.now();
  const loadStart = loadAverage();
  const git = gitRevision(); // at the start: the code and migrations that are measured
  log(
    `mode ${args.quick ? "quick" : "full"}${args.sql.length ? ` + ${args.sql.join(", ")}` : ""}; sections ${[...args.only].join(", ")}; ${os.cpus().length} cores, load ${loadStart.join(" ")}`,
  );

  const measured = await measureOn("durable", args.only, args, p);
  const { rows, notes, sections, timings, facts, migrations, embedded } = measured;
  for (const r of rows) r.settings = "durable";
  if (args.fsyncOff) {
    // The commit-bound sections again on a cluster with fsync, synchronous_commit and
    // full_page_writes off, for comparison with earlier results (never a goal).
    const only = new Set([...args.only].filter((s) => s === "append" || s === "execute"));
    if (only.size) {
      log(`fsync-off pass: ${[...only].join(", ")}`);
      const off = await measureOn("fsync-off", only, args, p);
      for (const r of off.rows)
        rows.push({ ...r, id: `${r.id}@fsync-off`, settings: "fsync-off", goal: undefined });
      for (const [k, v] of Object.entries(off.timings)) timings[`${k}@fsync-off`] = v;
      sections.fsync_off = { postgres: off.facts, sections: off.sections };
    }
  }
  {
    const results = {
      generated_at: started.toISOString(),
      mode: args.quick ? "quick" : "full",
      sql_applied: args.sql,
      sections_run: [...args.only],
      git,
      migrations,
      duration_seconds: round((performance.now() - t0) / 1000, 1),
      section_seconds: timings,
      machine: {
        cores: os.cpus().length,
        cpu_model: os.cpus()[0]?.model ?? "unknown",
        memory_gib: round(os.totalmem() / 2 ** 30, 1),
        node: process.version,
        platform: `${os.platform()} ${os.release()}`,
        load_average_start: loadStart,
        load_average_end: loadAverage(),
      },
      postgres: { embedded, ...facts },
      notes,
      rows,
      sections,
    };
    const out = path.resolve(REPO_ROOT, args.out);
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(`${out}.json`, `${JSON.stringify(results, null, 2)}\n`);
    const md = writeMarkdown(results);
    fs.writeFileSync(`${out}.md`, md);
    if (args.out === "bench/results") {
      updateReadme(md);
      // Committed as the repository's formatter writes Markdown tables, so the lint stays clean.
      execFileSync(
        path.join(REPO_ROOT, "node_modules", ".bin", "biome"),
        ["format", "--write", `${out}.md`, "README.md"],
        {
          cwd: REPO_ROOT,
          stdio: "ignore",
        },
      );
    }
    log(`wrote ${path.relative(REPO_ROOT, out)}.json and .md (${results.duration_seconds} s)`);
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
