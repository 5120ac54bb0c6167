// What a hostile tenant does to the GraphQL API, as reusable pieces: seed data worth attacking,
// a real `runproof serve` child process (so its memory can be read from /proc), raw HTTP
// requests that time out instead of hanging, and latency percentiles. Used by
// test/graphql-fair-share.test.ts and by bench/abuse.ts (the figures in docs/reliability.md).
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import type pg from "pg";
import { REPO_ROOT } from "../../src/lib/database.ts";

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface SeededTenant {
  tenantId: string;
  agentId: string;
  apiKey: string;
  keyId: string;
  runIds: string[];
}

import {
  BENCH_COMMITMENTS,
  BENCH_INPUT,
  BENCH_OUTPUT,
  BENCH_SALT,
  noopPlan,
  STEP_COLUMNS,
} from "../../bench/lib.ts";

/**
 * A tenant with an agent, an API key and `runs` finished runs of `steps` steps each (one trace
 * each), written set-based through every trigger of the ledger (so proofs verify).
 */
export async function seedTenant(
  pool: pg.Pool,
  opts: { name?: string; runs: number; steps: number },
): Promise<SeededTenant> {
  await pool.query(
    `insert into runproof.skills (name, description) values ('noop', 'does nothing') on conflict (name) do nothing`,
  );
  const name = opts.name ?? `abuse-${Math.random().toString(36).slice(2, 10)}`;
  const {
    rows: [t],
  } = await pool.query(`select id from runproof_private.create_tenant($1)`, [name]);
  const {
    rows: [k],
  } = await pool.query(`select key_id, api_key from runproof_private.create_api_key($1, 'abuse')`, [t.id]);
  const {
    rows: [a],
  } = await pool.query(`select id from runproof.create_agent('agent', tenant_id => $1)`, [t.id]);
  const runIds: string[] = [];
  const chunk = 500;
  const long = opts.steps > 1000;
  for (let done = 0; done < opts.runs; done += chunk) {
    const n = Math.min(chunk, opts.runs - done);
    const c = await pool.connect();
    try {
      await c.query("begin");
      const {
        rows: [r],
      } = await c.query(
        `with r as (
           insert into runproof.runs (tenant_id, agent_id, goal, origin_system_id, plan, status)
           select $1, $2, 'abuse target ' || g, 'runproof-abuse', $3::jsonb, 'planned' from generate_series(1, $4) g
           returning id)
         select array_agg(id) as ids from r`,
        [t.id, a.id, JSON.stringify(noopPlan(long ? 1 : Math.max(opts.steps, 1))), n],
      );
      const ids: string[] = r.ids;
      await c.query(`select 1 from unnest($2::uuid[]) id, runproof_private.start_attempt($1, id)`, [
        t.id,
        ids,
      ]);
      // A plan has at most 1000 steps: a longer trace is a run that failed at its last step.
      const succeeded = long ? opts.steps - 1 : opts.steps;
      if (succeeded > 0) {
        // Decision i, then step i, trace by trace (the chain trigger needs them in that order),
        // then the steps' payloads and the runs' progress with them (proof format 2).
        await c.query(
          `with d as (
             insert into runproof.policy_decisions (tenant_id, run_id, trace_id, step_index, plan_step, skill, decision, rule, reason)
             select t.tenant_id, t.run_id, t.id, g, g, 'noop', 'allow', 'daily_budget', 'abuse'
               from runproof.traces t cross join generate_series(0, $3::int - 1) g
              where t.tenant_id = $1 and t.run_id = any($2::uuid[])
              order by t.id, g
             returning tenant_id, run_id, trace_id, step_index, plan_step, skill, decision)
           insert into runproof.trace_steps (${STEP_COLUMNS})
           select tenant_id, run_id, trace_id, step_index, plan_step, skill, 'succeeded', decision,
                  ${BENCH_COMMITMENTS}, now(), now(), 0.125, 0, 'worker', 'INFO'
             from d`,
          [t.id, ids, succeeded],
        );
        await c.query(
          `insert into runproof.step_payloads (tenant_id, run_id, trace_id, step_index, input, input_salt, output, output_salt)
           select s.tenant_id, s.run_id, s.trace_id, s.step_index, ${BENCH_INPUT}, ${BENCH_SALT("input")}, ${BENCH_OUTPUT}, ${BENCH_SALT("output")}
             from runproof.traces t join runproof.trace_steps s on s.tenant_id = t.tenant_id and s.trace_id = t.id
            where t.tenant_id = $1 and t.run_id = any($2::uuid[])`,
          [t.id, ids],
        );
        await c.query(
          `update runproof.runs set next_plan_step = $3 where tenant_id = $1 and id = any($2::uuid[])`,
          [t.id, ids, succeeded],
        );
      }
      if (long) {
        await c.query(
          `select 1 from runproof.traces t,
                  lateral (select runproof_private.decide_step(t.tenant_id, t.run_id, t.id, $3, $3, 'noop', 0)) d,
                  lateral (select runproof_private.record_step(p_tenant_id => t.tenant_id, p_run_id => t.run_id, p_trace_id => t.id,
                     p_step_index => $3, p_plan_step => $3, p_skill => 'noop', p_status => 'failed', p_input => '{}',
                     p_output => null, p_error => 'abuse: end', p_started_at => now(), p_finished_at => now(),
                     p_duration_ms => 0, p_cost_cents => 0)) s
            where t.tenant_id = $1 and t.run_id = any($2::uuid[])`,
          [t.id, ids, succeeded],
        );
      }
      await c.query(
        `select 1 from runproof.traces t, runproof_private.seal_trace(t.tenant_id, t.id, $3)
          where t.tenant_id = $1 and t.run_id = any($2::uuid[])`,
        [t.id, ids, long ? "failed" : "completed"],
      );
      await c.query(`update runproof.runs set status = $3 where tenant_id = $1 and id = any($2::uuid[])`, [
        t.id,
        ids,
        long ? "failed" : "succeeded",
      ]);
      await c.query("commit");
      runIds.push(...ids);
    } catch (e) {
      await c.query("rollback").catch(() => {});
      throw e;
    } finally {
      c.release();
    }
  }
  return { tenantId: t.id, agentId: a.id, apiKey: k.api_key, keyId: k.key_id, runIds };
}

export interface ServerProcess {
  child: ChildProcess;
  pid: number;
  url: string;
  /** Resident set size of the server process, in bytes (from /proc/<pid>/status). */
  rss(): number;
  stderr(): string;
  stop(): Promise<void>;
}

const children = new Set<ChildProcess>();
process.once("exit", () => {
  for (const c of children) c.kill("SIGKILL");
});

/**
 * `runproof serve --port 0` as a child process of this one, from `repoDir` (default: this
 * checkout; bench/abuse.ts points it at an older checkout to measure "before").
 */
export async function spawnServer(
  dbUrl: string,
  opts: { repoDir?: string; env?: Record<string, string>; startTimeoutMs?: number } = {},
): Promise<ServerProcess> {
  const repoDir = opts.repoDir ?? REPO_ROOT;
  const child = spawn(
    process.execPath,
    ["--import", "tsx", path.join(repoDir, "src/bin/runproof.ts"), "serve", "--port", "0"],
    {
      cwd: repoDir,
      env: { ...process.env, DATABASE_URL: dbUrl, RUNPROOF_LOG_LEVEL: "warn", NO_COLOR: "1", ...opts.env },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  children.add(child);
  let stderr = "";
  child.stderr!.on("data", (d) => {
    stderr += String(d);
    if (stderr.length > 1_000_000) stderr = stderr.slice(-500_000);
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    let stdout = "";
    const timer = setTimeout(
      () => reject(new Error(`runproof serve did not start: ${stderr.slice(-2000)}`)),
      opts.startTimeoutMs ?? 60_000,
    );
    child.stdout!.on("data", (d) => {
      stdout += String(d);
      const m = /GraphQL: (http:\/\/\S+)/.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`runproof serve exited (${code}): ${stderr.slice(-2000)}`));
    });
  });
  const pid = child.pid!;
  return {
    child,
    pid,
    url,
    rss: () => rssOf(pid),
    stderr: () => stderr,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      await exited;
      clearTimeout(timer);
      children.delete(child);
    },
  };
}

export function rssOf(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) * 1024 : Number.NaN;
}

export interface RawResponse {
  status: number;
  ms: number;
  bytes: number;
  headers: Headers;
  text: string;
  /** The parsed body, if it was JSON. */
  json?: any;
  /** Set when the request was aborted after timeoutMs. */
  timedOut?: boolean;
  /** Set when the connection failed (e.g. the server died). */
  networkError?: string;
}

/** One POST (or other method), timed, that gives up after timeoutMs instead of hanging. */
export async function request(
  url: string,
  opts: {
    key?: string | null;
    body?: string | Uint8Array;
    contentType?: string;
    method?: string;
    accept?: string;
    timeoutMs?: number;
    headers?: Record<string, string>;
  } = {},
): Promise<RawResponse> {
  const headers: Record<string, string> = {
    accept: opts.accept ?? "application/json",
    ...(opts.body !== undefined ? { "content-type": opts.contentType ?? "application/json" } : {}),
    ...opts.headers,
  };
  if (opts.key) headers.authorization = `Bearer ${opts.key}`;
  const start = performance.now();
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), opts.timeoutMs ?? 60_000);
  try {
    const res = await fetch(url, {
      method: opts.method ?? "POST",
      headers,
      body: opts.body as string | undefined,
      signal: ac.signal,
    });
    const buf = Buffer.from(await res.arrayBuffer());
    const text = buf.toString("utf8");
    let json: any;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return {
      status: res.status,
      ms: performance.now() - start,
      bytes: buf.length,
      headers: res.headers,
      text,
      json,
    };
  } catch (e) {
    const ms = performance.now() - start;
    const empty = { status: 0, ms, bytes: 0, headers: new Headers(), text: "" };
    if (ac.signal.aborted) return { ...empty, timedOut: true };
    return { ...empty, networkError: String((e as Error).cause ?? e) };
  } finally {
    clearTimeout(timer);
  }
}

/** POSTs a GraphQL query as JSON. */
export function postQuery(
  url: string,
  key: string | null,
  query: string,
  variables?: Record<string, unknown>,
  timeoutMs?: number,
): Promise<RawResponse> {
  return request(url, { key, body: JSON.stringify({ query, variables }), timeoutMs });
}

export function percentile(values: number[], p: number): number {
  if (!values.length) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

/** The first error's code and message of a GraphQL response, for reports and assertions. */
export function firstError(r: RawResponse): { code?: string; message?: string } {
  const e = r.json?.errors?.[0];
  return { code: e?.extensions?.code, message: e?.message ?? (r.json ? undefined : r.text.slice(0, 200)) };
}

// ---- The attacks (the queries of issue 13) ----

/**
 * `{ runs { nodes { agent { runs { nodes { agent ... id } } } } } }`: `depth` selection sets
 * nested inside the operation's (`{ runs { totalCount } }` is depth 1, as @graphile/depth-limit
 * counts), each `runs` optionally with `first`.
 */
export function nestedRunsQuery(depth: number, first?: number): string {
  const arg = first === undefined ? "" : `(first: ${first})`;
  const chain = [`runs${arg}`, "nodes", "agent"];
  const fields = Array.from({ length: depth }, (_, i) => chain[i % 3]!);
  // A connection has no id: end on totalCount there.
  const leaf = depth % 3 === 1 ? "totalCount" : "id";
  return `{ ${fields.map((f) => `${f} {`).join(" ")} ${leaf} ${"}".repeat(fields.length)} }`;
}

/** `n` aliases of runs with different arguments (so no two plans can be shared). */
export function aliasesQuery(n: number): string {
  const fields = Array.from(
    { length: n },
    (_, i) =>
      `a${i}: runs(first: ${1 + (i % 50)}, offset: ${i}) { nodes { id goal traces { nodes { steps { nodes { stepHash input output } } } } } }`,
  );
  return `{ ${fields.join(" ")} }`;
}

/** A selection set nested `n` levels deep (of a field that does not exist: the parser meets it first). */
export function deepSelection(n: number): string {
  return `${"{ a ".repeat(n)}${"}".repeat(n)}`;
}

/** A plan literal nested `n` levels deep in the query text (not in the JSON variables). */
export function deepLiteralMutation(agentId: string, n: number): string {
  return `mutation { enqueueRun(input: { agentId: "${agentId}", goal: "deep", originSystemId: "abuse", plan: { version: 1, steps: [{ skill: "noop", input: ${"{ a: ".repeat(n)}1${" }".repeat(n)} }] } }) { run { id } } }`;
}
