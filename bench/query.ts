// 4. Query: GraphQL latency and requests/s (autocannon, 32 connections) for a run of 100 steps
// with its proof, against the same data read through pg directly with the same concurrency.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";
import autocannon from "autocannon";
import pg from "pg";
import { REPO_ROOT } from "../src/lib/database.ts";
import {
  appendStepsSetBased,
  closeTrace,
  figure,
  log,
  median,
  now,
  openTrace,
  percentile,
  round,
  row,
  type Row,
  type Tenant,
} from "./lib.ts";

export interface QueryOptions {
  trials: number;
  connections: number;
  seconds: number;
  steps: number;
}

export interface QueryResult {
  rows: Row[];
  pending?: string;
}

export const RUN_QUERY = `query RunWithProof($id: UUID!) {
  run(id: $id) {
    id goal status originSystemId createdAt finishedAt attempts rootHash
    proof { integrityModel verificationStatus traceCount stepCount chainLength rootHash reason }
    traces {
      nodes {
        id attempt status stepCount rootHash
        steps {
          nodes {
            stepIndex planStep skill status policyDecision input output error
            startedAt finishedAt durationMs costCents recordedAt prevHash stepHash
          }
        }
      }
    }
  }
}`;

// The same without the proof: how much of a request is the verification itself.
const RUN_QUERY_NO_PROOF = RUN_QUERY.replace(/\n\s*proof \{[^}]*\}/, "");

// The same fields in one statement, as an application reading the tables itself would.
const PG_QUERY = `
  select r.id, r.goal, r.status, r.origin_system_id, r.created_at, r.finished_at, r.attempts, encode(r.root_hash, 'hex') as root_hash,
         (select row_to_json(p) from runproof.run_proof(r.tenant_id, r.id) p) as proof,
         (select json_agg(json_build_object(
                   'id', t.id, 'attempt', t.attempt, 'status', t.status, 'step_count', t.step_count,
                   'root_hash', encode(t.root_hash, 'hex'),
                   'steps', (select json_agg(json_build_object(
                               'step_index', s.step_index, 'plan_step', s.plan_step, 'skill', s.skill, 'status', s.status,
                               'policy_decision', s.policy_decision, 'input', pl.input, 'output', pl.output, 'error', pl.error,
                               'started_at', s.started_at, 'finished_at', s.finished_at, 'duration_ms', s.duration_ms,
                               'cost_cents', s.cost_cents, 'recorded_at', s.recorded_at,
                               'prev_hash', encode(s.prev_hash, 'hex'), 'step_hash', encode(s.step_hash, 'hex')) order by s.step_index)
                               from runproof.trace_steps s
                               left join runproof.step_payloads pl
                                 on pl.tenant_id = s.tenant_id and pl.trace_id = s.trace_id and pl.step_index = s.step_index
                              where s.tenant_id = t.tenant_id and s.trace_id = t.id))
                   order by t.attempt)
            from runproof.traces t where t.tenant_id = r.tenant_id and t.run_id = r.id) as traces
    from runproof.runs r where r.tenant_id = $1 and r.id = $2`;

async function startGraphqlServer(
  url: string,
  embedded: boolean,
  poolSize = 10,
): Promise<{ url: string; child: ChildProcess }> {
  const script = path.join(REPO_ROOT, "bench", "gql-server.ts");
  const child = spawn(process.execPath, ["--import", "tsx", script], {
    cwd: REPO_ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env,
      BENCH_DB_URL: url,
      // runproof_authenticator is a cluster-wide role and the server sets its password. On the
      // throwaway cluster: a password of its own (.data/authenticator.password is not touched). On a
      // DATABASE_URL server: the one configured for RunProof there, as `runproof serve` would use.
      ...(embedded ? { RUNPROOF_AUTHENTICATOR_PASSWORD: randomBytes(16).toString("hex") } : {}),
      GRAPHILE_ENV: "production",
      RUNPROOF_GRAPHQL_POOL_SIZE: String(poolSize),
    },
  });
  let stderr = "";
  child.stderr!.on("data", (d) => {
    stderr += String(d);
  });
  const lines = readline.createInterface({ input: child.stdout! });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`GraphQL server did not start in 60 s\n${stderr}`));
    }, 60_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`GraphQL server exited with ${code}\n${stderr.slice(-3000)}`));
    });
    lines.once("line", (line) => {
      clearTimeout(timer);
      child.removeAllListeners("exit");
      resolve({ url: JSON.parse(line).url, child });
    });
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}

/** `connections` concurrent loops over a pool of `poolSize` connections, for `seconds`. */
async function pgLoad(
  url: string,
  tenantId: string,
  runId: string,
  connections: number,
  poolSize: number,
  seconds: number,
) {
  const pool = new pg.Pool({ connectionString: url, max: poolSize });
  pool.on("error", () => {});
  const latencies: number[] = [];
  try {
    // Warm every pooled connection (and its plan cache).
    await Promise.all(
      Array.from({ length: poolSize }, () =>
        pool.query({ name: "bench_run_read", text: PG_QUERY, values: [tenantId, runId] }),
      ),
    );
    const start = now();
    const end = start + seconds * 1000;
    await Promise.all(
      Array.from({ length: connections }, async () => {
        while (now() < end) {
          const s = now();
          const r = await pool.query({ name: "bench_run_read", text: PG_QUERY, values: [tenantId, runId] });
          latencies.push(now() - s);
          if (r.rows.length !== 1) throw new Error("pg read returned no run");
        }
      }),
    );
    const elapsed = (now() - start) / 1000;
    return {
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      rps: latencies.length / elapsed,
    };
  } finally {
    await pool.end();
  }
}

async function gqlLoad(
  url: string,
  apiKey: string,
  runId: string,
  connections: number,
  seconds: number,
  query = RUN_QUERY,
) {
  const body = JSON.stringify({ query, variables: { id: runId } });
  const result = await autocannon({
    url,
    method: "POST",
    connections,
    duration: seconds,
    body,
    headers: {
      "content-type": "application/json",
      accept: "application/json",
      authorization: `Bearer ${apiKey}`,
    },
  });
  if (result.non2xx || result.errors)
    throw new Error(`autocannon: ${result.non2xx} non-2xx responses, ${result.errors} errors`);
  return { p50: result.latency.p50, p99: result.latency.p99, rps: result["2xx"] / result.duration };
}

export async function benchQuery(
  url: string,
  embedded: boolean,
  pool: pg.Pool,
  t: Tenant,
  opts: QueryOptions,
): Promise<QueryResult> {
  if (!fs.existsSync(path.join(REPO_ROOT, "src", "server.ts"))) {
    return { rows: [], pending: "src/server.ts does not exist yet (the GraphQL server is being written)" };
  }
  // A finished run of `steps` steps, recorded through the ledger.
  const o = await openTrace(pool, t, opts.steps);
  await appendStepsSetBased(pool, o, 0, opts.steps);
  await closeTrace(pool, o);
  const {
    rows: [k],
  } = await pool.query(`select api_key from runproof_private.create_api_key($1, 'bench')`, [t.tenantId]);

  let server: { url: string; child: ChildProcess };
  try {
    server = await startGraphqlServer(url, embedded);
  } catch (e) {
    return {
      rows: [],
      pending: `the GraphQL server did not start: ${(e as Error).message.split("\n").slice(0, 8).join(" | ")}`,
    };
  }
  type Load = { p50: number; p99: number; rps: number };
  const gql: Load[] = [];
  const direct: Load[] = [];
  const gql1: Load[] = [];
  const direct1: Load[] = [];
  let noProof: Load | undefined;
  let check: unknown;
  try {
    // One request first: the answer must be the run, VERIFIED, with all its steps.
    const res = await fetch(server.url, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${k.api_key}` },
      body: JSON.stringify({ query: RUN_QUERY, variables: { id: o.runId } }),
    });
    const json = (await res.json()) as { data?: any; errors?: unknown[] };
    const steps = json.data?.run?.traces?.nodes?.[0]?.steps?.nodes?.length;
    check = {
      status: res.status,
      verification: json.data?.run?.proof?.verificationStatus,
      steps,
      errors: json.errors,
    };
    if (
      res.status !== 200 ||
      json.errors ||
      json.data?.run?.proof?.verificationStatus !== "VERIFIED" ||
      steps !== opts.steps
    ) {
      return {
        rows: [],
        pending: `the GraphQL query did not return the run as expected: ${JSON.stringify(check).slice(0, 600)}`,
      };
    }
    log(
      `query: ${opts.trials} trials of ${opts.seconds} s each, GraphQL (autocannon, ${opts.connections} connections) and pg direct`,
    );
    await gqlLoad(server.url, k.api_key, o.runId, opts.connections, 1);
    for (let i = 0; i < opts.trials; i++) {
      gql.push(await gqlLoad(server.url, k.api_key, o.runId, opts.connections, opts.seconds));
      direct.push(await pgLoad(url, o.tenantId, o.runId, opts.connections, 10, opts.seconds));
      log(
        `query:   trial ${i + 1}: GraphQL p50 ${gql[i].p50} ms p99 ${gql[i].p99} ms ${Math.round(gql[i].rps)} req/s; pg p50 ${round(direct[i].p50)} ms p99 ${round(direct[i].p99)} ms ${Math.round(direct[i].rps)} req/s`,
      );
    }
    // Unloaded: one connection, one request at a time.
    const s1 = Math.max(2, Math.round(opts.seconds / 2));
    for (let i = 0; i < opts.trials; i++) {
      gql1.push(await gqlLoad(server.url, k.api_key, o.runId, 1, s1));
      direct1.push(await pgLoad(url, o.tenantId, o.runId, 1, 1, s1));
    }
    noProof = await gqlLoad(
      server.url,
      k.api_key,
      o.runId,
      opts.connections,
      opts.seconds,
      RUN_QUERY_NO_PROOF,
    );
    log(
      `query:   1 connection: GraphQL p50 ${median(gql1.map((x) => x.p50))} ms p99 ${median(gql1.map((x) => x.p99))} ms; without the proof field ${Math.round(noProof.rps)} req/s at ${opts.connections} connections`,
    );
  } finally {
    await stopChild(server.child);
  }
  // The server's pool size (RUNPROOF_GRAPHQL_POOL_SIZE): the same load against servers with
  // smaller and larger pools than the default 10, trials interleaved, the order alternating.
  const sweep = new Map(POOL_SIZES.map((size) => [size, [] as Load[]]));
  log(`query: pool sizes ${POOL_SIZES.join(", ")}, ${opts.trials} trials of ${opts.seconds} s each`);
  for (let i = 0; i < opts.trials; i++) {
    for (const size of i % 2 ? [...POOL_SIZES].reverse() : POOL_SIZES) {
      const s = await startGraphqlServer(url, embedded, size);
      try {
        // A fresh server: warm its plans and caches as the main trials' server was.
        await gqlLoad(s.url, k.api_key, o.runId, opts.connections, 3);
        sweep.get(size)!.push(await gqlLoad(s.url, k.api_key, o.runId, opts.connections, opts.seconds));
      } finally {
        await stopChild(s.child);
      }
    }
    log(
      `query:   trial ${i + 1}: ${POOL_SIZES.map((size) => `pool ${size} ${Math.round(sweep.get(size)![i].rps)} req/s p99 ${sweep.get(size)![i].p99} ms`).join("; ")}`,
    );
  }
  const f = (xs: { p50: number; p99: number; rps: number }[], k: "p50" | "p99" | "rps", unit: string) =>
    figure(
      xs.map((x) => x[k]),
      unit,
    );
  const note = `${opts.connections} concurrent clients, ${opts.seconds} s per trial; pg direct: the same fields in one SQL statement over a pool of 10 connections (the server's pool size), as the owner`;
  return {
    rows: [
      row({
        section: "query",
        id: "query.p50",
        measure: `GraphQL: run of ${opts.steps} steps + its proof, latency p50`,
        runproof: f(gql, "p50", "ms"),
        baseline: f(direct, "p50", "ms"),
        baselineLabel: "pg direct, same data, p50",
        better: "lower",
        note,
        extra: { check },
      }),
      row({
        section: "query",
        id: "query.p99",
        measure: `GraphQL: run of ${opts.steps} steps + its proof, latency p99`,
        runproof: f(gql, "p99", "ms"),
        baseline: f(direct, "p99", "ms"),
        baselineLabel: "pg direct, same data, p99",
        better: "lower",
        goal: { text: "p99 ≤ 50 ms", met: f(gql, "p99", "ms").value <= 50 },
      }),
      row({
        section: "query",
        id: "query.rps",
        measure: `GraphQL: run of ${opts.steps} steps + its proof, requests/s`,
        runproof: f(gql, "rps", "req/s"),
        baseline: f(direct, "rps", "req/s"),
        baselineLabel: "pg direct, same data",
        better: "higher",
        extra: { graphql_without_proof_rps: noProof ? round(noProof.rps, 1) : null },
      }),
      row({
        section: "query",
        id: "query.single.p50",
        measure: `GraphQL: same query, 1 connection (unloaded), latency p50`,
        runproof: f(gql1, "p50", "ms"),
        baseline: f(direct1, "p50", "ms"),
        baselineLabel: "pg direct, 1 connection, p50",
        better: "lower",
      }),
      row({
        section: "query",
        id: "query.single.p99",
        measure: `GraphQL: same query, 1 connection (unloaded), latency p99`,
        runproof: f(gql1, "p99", "ms"),
        baseline: f(direct1, "p99", "ms"),
        baselineLabel: "pg direct, 1 connection, p99",
        better: "lower",
        goal: { text: "p99 ≤ 50 ms", met: f(gql1, "p99", "ms").value <= 50 },
      }),
      ...POOL_SIZES.filter((size) => size !== 10).flatMap((size) => [
        row({
          section: "query",
          id: `query.pool_${size}.rps`,
          measure: `GraphQL: same query at ${opts.connections} connections, server pool of ${size} connections, requests/s`,
          runproof: f(sweep.get(size)!, "rps", "req/s"),
          baseline: f(sweep.get(10)!, "rps", "req/s"),
          baselineLabel: "pool of 10 (the default), same trials",
          better: "higher",
        }),
        row({
          section: "query",
          id: `query.pool_${size}.p99`,
          measure: `GraphQL: same query at ${opts.connections} connections, server pool of ${size} connections, latency p99`,
          runproof: f(sweep.get(size)!, "p99", "ms"),
          baseline: f(sweep.get(10)!, "p99", "ms"),
          baselineLabel: "pool of 10 (the default), same trials",
          better: "lower",
        }),
      ]),
    ],
  };
}

/** Server pool sizes compared at the same load (10 is RUNPROOF_GRAPHQL_POOL_SIZE's default). */
const POOL_SIZES = [2, 4, 10, 32];
