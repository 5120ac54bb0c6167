// Shared machinery of the reliability tests (test/reliability-*.test.ts in `npm test`, their big
// versions in test/stress/*.test.ts in `npm run test:stress`): real `runproof worker` processes
// that can be SIGKILLed and restarted, a side-effect server on 127.0.0.1 that logs and dedupes
// by Idempotency-Key, the crash loop and the load run. Each returns its figures for the test to
// assert on and log; nothing here asserts by itself.
import { spawn, type ChildProcess } from "node:child_process";
import http from "node:http";
import type { AddressInfo } from "node:net";
import pg from "pg";
import { REPO_ROOT } from "../../src/lib/database.ts";
import { builtinSkills, registerSkillsInDatabase, SkillRegistry } from "../../src/skills/registry.ts";
import { CLI } from "./cli.ts";
import type { TestDatabase } from "./db.ts";
import { tenantWithAgent } from "./worker.ts";

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const randomInt = (min: number, max: number) => min + Math.floor(Math.random() * (max - min + 1));

// ---------------------------------------------------------------------------------------------
// Worker processes
// ---------------------------------------------------------------------------------------------

export interface WorkerProcess {
  child: ChildProcess;
  pid: number;
  startedAt: number;
  /** Resolves when the worker says it is running (skills registered, graphile-worker started). */
  ready: Promise<void>;
  isReady(): boolean;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Everything it wrote to stderr (warnings and errors; RUNPROOF_LOG_LEVEL=warn). */
  stderr(): string;
}

// Children still running when this test process exits (an interrupted run) are killed with it.
const children = new Set<ChildProcess>();
process.once("exit", () => {
  for (const c of children) c.kill("SIGKILL");
});

/** `runproof worker` as a real child process against `dbUrl`. */
export function spawnWorker(
  dbUrl: string,
  opts: { concurrency?: number; env?: Record<string, string> } = {},
): WorkerProcess {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", CLI, "worker", "--concurrency", String(opts.concurrency ?? 2)],
    {
      cwd: REPO_ROOT,
      env: { ...process.env, DATABASE_URL: dbUrl, RUNPROOF_LOG_LEVEL: "warn", NO_COLOR: "1", ...opts.env },
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  children.add(child);
  let err = "";
  let ready = false;
  let markReady!: () => void;
  let failReady!: (e: Error) => void;
  const readyPromise = new Promise<void>((res, rej) => {
    markReady = res;
    failReady = rej;
  });
  child.stderr!.setEncoding("utf8").on("data", (d: string) => {
    err += d;
    if (err.length > 2_000_000) err = err.slice(-1_000_000);
    if (!ready && /worker \S+ running \(concurrency/.test(err)) {
      ready = true;
      markReady();
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.once("exit", (code, signal) => {
      children.delete(child);
      if (!ready)
        failReady(
          new Error(`runproof worker exited (${code ?? signal}) before it was ready:\n${err.slice(-4000)}`),
        );
      r({ code, signal });
    }),
  );
  readyPromise.catch(() => {}); // a worker killed while starting is not an error by itself
  return {
    child,
    pid: child.pid!,
    startedAt: Date.now(),
    ready: readyPromise,
    isReady: () => ready && child.exitCode === null && child.signalCode === null,
    exited,
    stderr: () => err,
  };
}

/** SIGTERM (a clean stop), then SIGKILL if it is still there after `graceMs`. */
export async function stopWorker(w: WorkerProcess, graceMs = 15_000): Promise<void> {
  if (w.child.exitCode !== null || w.child.signalCode !== null) return;
  w.child.kill("SIGTERM");
  const timer = setTimeout(() => w.child.kill("SIGKILL"), graceMs);
  await w.exited;
  clearTimeout(timer);
}

// ---------------------------------------------------------------------------------------------
// The side-effect server
// ---------------------------------------------------------------------------------------------

export interface EffectRequest {
  key: string;
  at: number;
  replay: boolean;
}

export interface EffectServer {
  url: string;
  /** Every request, in arrival order: its Idempotency-Key, when it arrived, and whether the key was seen before. */
  requests: EffectRequest[];
  /** Side effects actually applied: one per distinct key. */
  applied: Map<string, unknown>;
  /** Requests received whose response has not been sent yet. */
  inFlight(): number;
  close(): Promise<void>;
}

/**
 * A server on 127.0.0.1 that performs a side effect per request and honours Idempotency-Key:
 * the first request with a key applies the effect; a repeat gets the stored response back
 * (replay: true) and applies nothing. Each response waits `delayMs()` first, so a worker can be
 * killed while its request is in flight.
 */
export async function startEffectServer(
  delayMs: () => number = () => randomInt(50, 250),
): Promise<EffectServer> {
  const requests: EffectRequest[] = [];
  const applied = new Map<string, unknown>();
  let pending = 0;
  const server = http.createServer(async (req, res) => {
    let body = "";
    for await (const chunk of req) body += chunk;
    const key = String(req.headers["idempotency-key"] ?? "");
    const replay = applied.has(key);
    requests.push({ key, at: Date.now(), replay });
    if (!key) {
      res
        .writeHead(400, { "content-type": "application/json" })
        .end(JSON.stringify({ error: "Idempotency-Key required" }));
      return;
    }
    if (!replay) applied.set(key, { effect: JSON.parse(body || "null"), applied_at: Date.now() });
    pending++;
    await sleep(delayMs());
    pending--;
    if (!res.destroyed)
      res
        .writeHead(200, { "content-type": "application/json" })
        .end(JSON.stringify({ ok: true, key, replay }));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    applied,
    inFlight: () => pending,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// Waiting on runs
// ---------------------------------------------------------------------------------------------

const TERMINAL_SQL = `('succeeded', 'failed', 'halted', 'cancelled')`;

/** Polls until none of `ids` (or no run at all, when ids is null) is unfinished; returns false on timeout. */
export async function waitUntilFinished(
  pool: pg.Pool,
  ids: string[] | null,
  timeoutMs: number,
  onTick?: (left: number) => void,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const {
      rows: [{ left }],
    } = await pool.query<{ left: number }>(
      `select count(*)::int as left from runproof.runs where status not in ${TERMINAL_SQL} and ($1::uuid[] is null or id = any ($1))`,
      [ids],
    );
    onTick?.(left);
    if (left === 0) return true;
    if (Date.now() > deadline) return false;
    await sleep(250);
  }
}

// ---------------------------------------------------------------------------------------------
// The crash loop
// ---------------------------------------------------------------------------------------------

export interface CrashLoopOptions {
  runs: number;
  stepsPerRun: number;
  kills: number;
  workers: number;
  concurrency: number;
  /** Pause before each kill, ms (random in the range). */
  killGapMs: [number, number];
  /** How long the side-effect server takes to answer, ms (random in the range). */
  effectDelayMs: [number, number];
  /** Give up waiting for the runs this long after the last kill. */
  finishTimeoutMs: number;
  log?: (m: string) => void;
}

export interface CrashLoopResult {
  runIds: string[];
  tenantId: string;
  server: EffectServer;
  kills: number;
  /** Kills of a process that held at least one locked job at that moment. */
  killsWithJobLocked: number;
  /** Kills while at least one side-effect request was being answered. */
  killsWithRequestInFlight: number;
  workerStarts: number;
  seconds: number;
  secondsAfterLastKill: number;
  finished: boolean;
  workerErrors: string[];
}

/**
 * `runs` runs of `stepsPerRun` http_call POSTs each, all queued first, executed by
 * `workers` worker processes, `kills` of which are SIGKILLed at random moments and restarted
 * at once; then waits for every run to finish. A kill only happens while at least two workers
 * are up, so there is always one working.
 */
export async function crashLoop(db: TestDatabase, o: CrashLoopOptions): Promise<CrashLoopResult> {
  const log = o.log ?? (() => {});
  await registerSkillsInDatabase(db.pool, new SkillRegistry(builtinSkills()));
  const f = await tenantWithAgent(db.pool, { budgetCents: 1_000_000 });
  const server = await startEffectServer(() => randomInt(o.effectDelayMs[0], o.effectDelayMs[1]));
  const env = {
    RUNPROOF_HEARTBEAT_MS: "200",
    RUNPROOF_STALE_WORKER_MS: "1500",
    RUNPROOF_RETRY_BASE_MS: "200",
  };
  const workers: WorkerProcess[] = [];
  let workerStarts = 0;
  const start = () => {
    workerStarts++;
    const w = spawnWorker(db.url, { concurrency: o.concurrency, env });
    workers.push(w);
    return w;
  };
  const live = () => workers.filter((w) => w.child.exitCode === null && w.child.signalCode === null);
  const killed = new Set<WorkerProcess>();
  /** A worker that exited without being killed by us is a failure of its own. */
  const checkNoneDied = () => {
    const died = workers.find(
      (w) => !killed.has(w) && (w.child.exitCode !== null || w.child.signalCode !== null),
    );
    if (died)
      throw new Error(
        `a worker exited on its own (${died.child.exitCode ?? died.child.signalCode}):\n${died.stderr().slice(-4000)}`,
      );
  };
  const t0 = Date.now();
  const runIds: string[] = [];
  let killsWithJobLocked = 0;
  let killsWithRequestInFlight = 0;
  let kills = 0;
  try {
    for (let i = 0; i < o.workers; i++) start();
    await Promise.all(workers.map((w) => w.ready));

    // Every run is queued before the first kill; the side-effect server is slow enough
    // (effectDelayMs) that the work lasts about as long as the kills, so most kills hit a worker
    // holding jobs with a request in flight.
    const plan = (run: number) => ({
      version: 1,
      planner: "crash-loop",
      steps: Array.from({ length: o.stepsPerRun }, (_, step) => ({
        skill: "http_call",
        input: { method: "POST", url: `${server.url}/effect`, json: { run, step } },
      })),
    });
    for (let i = 0; i < o.runs; i++) {
      const {
        rows: [r],
      } = await db.pool.query(
        `select id from runproof.enqueue_run($1, $2, $3, 'reliability-crash-loop', $4)`,
        [f.tenantId, f.agentId, `crash loop run ${i}`, JSON.stringify(plan(i))],
      );
      runIds.push(r.id);
    }

    for (kills = 0; kills < o.kills; ) {
      await sleep(randomInt(o.killGapMs[0], o.killGapMs[1]));
      // Keep one worker working: kill only while two are up.
      while (live().filter((w) => w.isReady()).length < 2) {
        checkNoneDied();
        await sleep(50);
      }
      const candidates = live().filter((w) => w.isReady());
      const victim = candidates[randomInt(0, candidates.length - 1)];
      const {
        rows: [{ n }],
      } = await db.pool.query<{ n: number }>(
        `select count(*)::int as n from graphile_worker.jobs j join runproof_private.worker_heartbeats h on h.worker_id = j.locked_by
          where h.pid = $1`,
        [victim.pid],
      );
      if (n > 0) killsWithJobLocked++;
      if (server.inFlight() > 0) killsWithRequestInFlight++;
      killed.add(victim);
      victim.child.kill("SIGKILL");
      await victim.exited;
      kills++;
      start();
      if (kills % 20 === 0) {
        const {
          rows: [{ done }],
        } = await db.pool.query<{ done: number }>(
          `select count(*)::int as done from runproof.runs where status = 'succeeded' and id = any ($1)`,
          [runIds],
        );
        log(
          `${kills} kills: ${done} of ${runIds.length} runs done, ${server.requests.length} side-effect requests so far`,
        );
      }
    }
    const lastKill = Date.now();
    const finished = await waitUntilFinished(db.pool, runIds, o.finishTimeoutMs, () => checkNoneDied());
    const done = Date.now();
    return {
      runIds,
      tenantId: f.tenantId,
      server,
      kills,
      killsWithJobLocked,
      killsWithRequestInFlight,
      workerStarts,
      seconds: (done - t0) / 1000,
      secondsAfterLastKill: (done - lastKill) / 1000,
      finished,
      workerErrors: workers.flatMap((w) =>
        w
          .stderr()
          .split("\n")
          .filter((l) => /"level":(50|60)/.test(l)),
      ),
    };
  } finally {
    await Promise.all(live().map((w) => stopWorker(w)));
    await server.close();
  }
}

export interface CrashLoopChecks {
  statuses: Record<string, number>;
  /** (run, plan step) pairs with other than exactly one succeeded step. */
  stepsNotExactlyOnce: Array<{ run_id: string; plan_step: number; succeeded: number }>;
  succeededSteps: number;
  distinctKeys: number;
  requests: number;
  /** Keys received more than once (the step in flight at a kill, repeated by the next attempt). */
  repeatedKeys: number;
  /** Requests that arrived after their step had been recorded as succeeded: must be none. */
  requestsAfterSuccess: Array<{ key: string; at: number; recorded_at: number }>;
  /** Keys the server saw that name no plan step of these runs. */
  unknownKeys: string[];
  proofs: Record<string, number>;
  guards: Record<string, number>;
  verifyAll: unknown[];
  lockedJobs: number;
  jobsLeft: number;
  abortedTraces: number;
  workerCrashedIncidents: number;
  maxAttempts: number;
}

/** Everything the crash-loop tests assert, computed from the database and the server's own log. */
export async function checkCrashLoop(
  db: TestDatabase,
  r: CrashLoopResult,
  stepsPerRun: number,
): Promise<CrashLoopChecks> {
  const q = async <T extends pg.QueryResultRow>(sql: string, args: unknown[] = []) =>
    (await db.pool.query<T>(sql, args)).rows;
  const statuses = Object.fromEntries(
    (
      await q<{ status: string; n: number }>(
        `select status, count(*)::int as n from runproof.runs where id = any ($1) group by status`,
        [r.runIds],
      )
    ).map((x) => [x.status, x.n]),
  );
  const perStep = await q<{ run_id: string; plan_step: number; succeeded: number; recorded_at: Date | null }>(
    `select r.id as run_id, p.plan_step, count(s.*) filter (where s.status = 'succeeded')::int as succeeded,
            max(s.recorded_at) filter (where s.status = 'succeeded') as recorded_at
       from runproof.runs r cross join generate_series(0, $2 - 1) p(plan_step)
       left join runproof.trace_steps s on s.tenant_id = r.tenant_id and s.run_id = r.id and s.plan_step = p.plan_step
      where r.id = any ($1) group by r.id, p.plan_step`,
    [r.runIds, stepsPerRun],
  );
  const recordedAt = new Map(
    perStep.map((s) => [`${s.run_id}:${s.plan_step}`, s.recorded_at?.getTime() ?? null]),
  );
  const byKey = new Map<string, number>();
  for (const req of r.server.requests) byKey.set(req.key, (byKey.get(req.key) ?? 0) + 1);
  const requestsAfterSuccess = r.server.requests
    .filter((req) => {
      const t = recordedAt.get(req.key);
      return t !== undefined && t !== null && req.at > t;
    })
    .map((req) => ({ key: req.key, at: req.at, recorded_at: recordedAt.get(req.key)! }));
  const proofRows = await q<{ verification_status: string; guard_status: string; n: number }>(
    `select p.verification_status, p.guard_status, count(*)::int as n
       from runproof.runs r cross join lateral runproof.run_proof(r.tenant_id, r.id) p where r.id = any ($1) group by 1, 2`,
    [r.runIds],
  );
  const [{ locked, left }] = await q<{ locked: number; left: number }>(
    `select count(*) filter (where locked_by is not null)::int as locked, count(*)::int as left from graphile_worker.jobs`,
  );
  const [{ aborted, crashed, max_attempts }] = await q<{
    aborted: number;
    crashed: number;
    max_attempts: number;
  }>(
    `select (select count(*)::int from runproof.traces where run_id = any ($1) and status = 'aborted') as aborted,
            (select count(*)::int from runproof.incidents where run_id = any ($1) and kind = 'worker_crashed') as crashed,
            (select max(attempts)::int from runproof.runs where id = any ($1)) as max_attempts`,
    [r.runIds],
  );
  const sum = (rows: { n: number }[], key: (x: any) => string) =>
    rows.reduce<Record<string, number>>((a, x) => ({ ...a, [key(x)]: (a[key(x)] ?? 0) + x.n }), {});
  return {
    statuses,
    stepsNotExactlyOnce: perStep
      .filter((s) => s.succeeded !== 1)
      .map(({ run_id, plan_step, succeeded }) => ({ run_id, plan_step, succeeded })),
    succeededSteps: perStep.reduce((a, s) => a + s.succeeded, 0),
    distinctKeys: byKey.size,
    requests: r.server.requests.length,
    repeatedKeys: [...byKey.values()].filter((n) => n > 1).length,
    requestsAfterSuccess,
    unknownKeys: [...byKey.keys()].filter((k) => !recordedAt.has(k)),
    proofs: sum(proofRows, (x) => x.verification_status),
    guards: sum(proofRows, (x) => x.guard_status),
    verifyAll: await q(`select * from runproof.verify_all()`),
    lockedJobs: locked,
    jobsLeft: left,
    abortedTraces: aborted,
    workerCrashedIncidents: crashed,
    maxAttempts: max_attempts,
  };
}

// ---------------------------------------------------------------------------------------------
// The load run
// ---------------------------------------------------------------------------------------------

export interface LoadOptions {
  runs: number;
  clients: number;
  workers: number;
  concurrency: number;
  tenants: number;
  finishTimeoutMs: number;
  log?: (m: string) => void;
}

export interface LoadResult {
  runIds: string[];
  steps: number;
  enqueueSeconds: number;
  /** First enqueue to the last run's finished_at. */
  totalSeconds: number;
  finished: boolean;
  enqueueErrors: string[];
  workerErrors: string[];
  /** pg_stat_database.deadlocks of this database, before and after. */
  deadlocksBefore: number;
  deadlocksAfter: number;
  /** Any 40P01 seen by a client or in a worker's log. */
  deadlockMessages: string[];
}

/** `runs` runs of 1-2 noop steps enqueued by `clients` concurrent SQL clients, executed by `workers` worker processes. */
export async function loadRun(db: TestDatabase, o: LoadOptions): Promise<LoadResult> {
  const log = o.log ?? (() => {});
  await registerSkillsInDatabase(db.pool, new SkillRegistry(builtinSkills()));
  const fixtures: Array<{ tenantId: string; agentId: string }> = [];
  for (let i = 0; i < o.tenants; i++)
    fixtures.push(await tenantWithAgent(db.pool, { budgetCents: 1_000_000 }));
  const deadlocks = async () => {
    await db.pool.query(`select pg_stat_clear_snapshot()`);
    const {
      rows: [r],
    } = await db.pool.query<{ n: number }>(
      `select deadlocks::int as n from pg_stat_database where datname = current_database()`,
    );
    return r.n;
  };
  const deadlocksBefore = await deadlocks();
  const workers = Array.from({ length: o.workers }, () =>
    spawnWorker(db.url, { concurrency: o.concurrency }),
  );
  const runIds: string[] = [];
  const enqueueErrors: string[] = [];
  let steps = 0;
  try {
    await Promise.all(workers.map((w) => w.ready));
    const t0 = Date.now();
    let next = 0;
    const clients = await Promise.all(
      Array.from({ length: o.clients }, async () => {
        const c = new pg.Client({ connectionString: db.url });
        c.on("error", () => {});
        await c.connect();
        return c;
      }),
    );
    try {
      await Promise.all(
        clients.map(async (c) => {
          for (let i = next++; i < o.runs; i = next++) {
            const f = fixtures[i % fixtures.length];
            const n = 1 + (i % 2);
            steps += n;
            const plan = {
              version: 1,
              planner: "load",
              steps: Array.from({ length: n }, (_, s) => ({ skill: "noop", input: { run: i, step: s } })),
            };
            try {
              const {
                rows: [r],
              } = await c.query(`select id from runproof.enqueue_run($1, $2, $3, 'reliability-load', $4)`, [
                f.tenantId,
                f.agentId,
                `load run ${i}`,
                JSON.stringify(plan),
              ]);
              runIds.push(r.id);
            } catch (e) {
              enqueueErrors.push(`${(e as pg.DatabaseError).code}: ${(e as Error).message}`);
            }
            if (runIds.length % 1000 === 0) log(`${runIds.length} runs enqueued`);
          }
        }),
      );
    } finally {
      await Promise.all(clients.map((c) => c.end().catch(() => {})));
    }
    const enqueueSeconds = (Date.now() - t0) / 1000;
    log(`enqueued ${runIds.length} runs in ${enqueueSeconds.toFixed(1)} s`);
    let lastLog = 0;
    const finished = await waitUntilFinished(db.pool, null, o.finishTimeoutMs, (left) => {
      if (Date.now() - lastLog > 10_000) {
        lastLog = Date.now();
        log(`${left} runs left`);
      }
    });
    const {
      rows: [span],
    } = await db.pool.query<{ s: number }>(
      `select extract(epoch from max(finished_at) - $1::timestamptz)::float8 as s from runproof.runs`,
      [new Date(t0)],
    );
    await sleep(1200); // statistics reach pg_stat_database within a second of each transaction
    const deadlocksAfter = await deadlocks();
    const workerErrors = workers.flatMap((w) =>
      w
        .stderr()
        .split("\n")
        .filter((l) => /"level":(50|60)/.test(l)),
    );
    return {
      runIds,
      steps,
      enqueueSeconds,
      totalSeconds: span.s,
      finished,
      enqueueErrors,
      workerErrors,
      deadlocksBefore,
      deadlocksAfter,
      deadlockMessages: [...enqueueErrors, ...workers.flatMap((w) => w.stderr().split("\n"))].filter((l) =>
        /40P01|deadlock/i.test(l),
      ),
    };
  } finally {
    await Promise.all(workers.map((w) => stopWorker(w)));
  }
}
