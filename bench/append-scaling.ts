// `npm run bench:append-scaling`: is a set-based append linear in its size? One INSERT ... SELECT
// (bench/lib.ts SET_BASED_APPEND: decision i and step i alternate, through every guard trigger)
// of 1,000, 4,000 and 16,000 steps, each into a fresh trace of a freshly migrated database, whose
// tables have never been analyzed: the case where a trigger's query plan was chosen for an empty
// table. Linear means 16,000 steps take about 16x as long as 1,000 (ms/step flat).
//
// Runs on a throwaway embedded PostgreSQL 18, or with DATABASE_URL on a scratch database of that
// server (e.g. a PostgreSQL 15 from `npm run pg-cluster`). Prints a table; writes nothing else.
import {
  appendStepsSetBased,
  createTenant,
  log,
  newPool,
  openBenchDatabase,
  openTrace,
  registerBuiltinSkills,
} from "./lib.ts";

const SIZES = (process.env.BENCH_APPEND_SIZES ?? "1000,4000,16000").split(",").map(Number);

const db = await openBenchDatabase();
const pool = newPool(db.url, 2);
try {
  const {
    rows: [v],
  } = await pool.query<{ v: string }>("select current_setting('server_version') as v");
  await registerBuiltinSkills(pool);
  const tenant = await createTenant(pool, "append-scaling");
  const results: { steps: number; ms: number }[] = [];
  for (const steps of SIZES) {
    const trace = await openTrace(pool, tenant, 1);
    const c = await pool.connect();
    try {
      await c.query("begin");
      const t0 = performance.now();
      await appendStepsSetBased(c, trace, 0, steps);
      const ms = performance.now() - t0;
      await c.query("commit");
      results.push({ steps, ms });
      log(`${steps} steps: ${ms.toFixed(0)} ms`);
    } finally {
      c.release();
    }
  }
  const base = results[0]!;
  process.stdout.write(
    `\nSet-based append (one INSERT ... SELECT), PostgreSQL ${v.v}, tables not analyzed\n\n`,
  );
  process.stdout.write(
    "| steps | time | ms per 1,000 steps | time vs the smallest | size vs the smallest |\n|---|---|---|---|---|\n",
  );
  for (const r of results) {
    process.stdout.write(
      `| ${r.steps.toLocaleString("en")} | ${(r.ms / 1000).toFixed(2)} s | ${((r.ms / r.steps) * 1000).toFixed(0)} ms | ${(r.ms / base.ms).toFixed(1)}x | ${(r.steps / base.steps).toFixed(0)}x |\n`,
    );
  }
} finally {
  await pool.end();
  await db.stop();
}
