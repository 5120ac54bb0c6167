// runproof run: enqueues a run through runproof.enqueue_run (the only creation path) and, with
// --wait, follows it live: the LISTEN on runproof:run:<id> is issued in the enqueue's own
// transaction, so it is in place before any worker can see the run, and nothing is missed.
// Notifications wake the watcher; the rows themselves are read back from the ledger, so the
// lines printed are exactly what was recorded, in chain order, even if a notification is lost.
import fs from "node:fs/promises";
import { SingleBar } from "cli-progress";
import pg from "pg";
import { checkJsonText, decodeUtf8 } from "../graphql/input-guard.ts";
import {
  CliError,
  EXIT,
  err,
  fmtCents,
  fmtMs,
  notFound,
  out,
  printJson,
  requireTenant,
  usageError,
  withDatabase,
} from "./common.ts";

export interface RunOptions {
  tenantId: string;
  agent: string;
  goal: string;
  originSystemId: string;
  planFile?: string;
  idempotencyKey?: string;
  maxAttempts?: number;
  wait?: boolean;
  timeout?: number;
  json?: boolean;
}

export async function runCommand(opts: RunOptions): Promise<void> {
  const plan = opts.planFile === undefined ? null : await readPlan(opts.planFile);
  await withDatabase(
    async ({ pool, url }) => {
      await requireTenant(pool, opts.tenantId);
      const agentId = await resolveAgent(pool, opts.tenantId, opts.agent);
      const args = [
        opts.tenantId,
        agentId,
        opts.goal,
        opts.originSystemId,
        plan === null ? null : JSON.stringify(plan),
        opts.idempotencyKey ?? null,
        opts.maxAttempts ?? 3,
      ];
      // created_at is the enqueueing transaction's now() for a new run; an idempotent repeat returns an older one.
      const enqueueSql = `select id, status, created_at, created_at = now() as created, jsonb_array_length(plan -> 'steps') as plan_steps
                          from runproof.enqueue_run($1, $2, $3, $4, $5::jsonb, $6, $7)`;

      if (!opts.wait) {
        const {
          rows: [run],
        } = await pool.query(enqueueSql, args);
        if (opts.json)
          return printJson({
            run_id: run.id,
            tenant_id: opts.tenantId,
            agent_id: agentId,
            status: run.status,
            plan_steps: run.plan_steps,
            created: run.created,
          });
        if (run.created)
          out(
            `run ${run.id} enqueued (${run.status}${run.plan_steps ? `, ${run.plan_steps} plan steps` : ", the planner will make the plan"})`,
          );
        else
          out(
            `run ${run.id} already exists for idempotency key ${opts.idempotencyKey} (${run.status}); nothing new was enqueued`,
          );
        out(`follow it: npx runproof runs get ${run.id}    prove it: npx runproof proof ${run.id}`);
        return;
      }

      const client = new pg.Client({ connectionString: url });
      await client.connect();
      client.on("error", () => {});
      try {
        await client.query("begin");
        const {
          rows: [run],
        } = await client.query(enqueueSql, args);
        await client.query(`listen ${client.escapeIdentifier(`runproof:run:${run.id}`)}`);
        await client.query("commit");
        const log = opts.json ? err : out;
        log(
          `run ${run.id} ${run.created ? "enqueued" : `already exists for idempotency key ${opts.idempotencyKey}`} (${run.status}); following it live (LISTEN runproof:run:${run.id})`,
        );
        const final = await watchRun({
          pool,
          client,
          tenantId: opts.tenantId,
          runId: run.id,
          print: log,
          timeoutMs: opts.timeout,
        });
        const {
          rows: [proof],
        } = await pool.query(`select * from runproof.run_proof($1, $2)`, [opts.tenantId, run.id]);
        if (opts.json) {
          printJson({ run: final, proof });
        } else {
          printProofSummary(proof, out);
        }
        if (final.status !== "succeeded") process.exitCode = EXIT.ERROR;
      } finally {
        await client.end().catch(() => {});
      }
    },
    { skills: true },
  );
}

async function readPlan(file: string): Promise<unknown> {
  let bytes: Buffer;
  try {
    bytes = file === "-" ? await readStdin() : await fs.readFile(file);
  } catch (e) {
    throw usageError(`cannot read the plan file ${file}: ${(e as Error).message}`);
  }
  // The same checks as a GraphQL body (src/graphql/input-guard.ts): bytes that are not UTF-8
  // would be stored as U+FFFD, lone surrogates likewise, deep nesting overflows later.
  const decoded = decodeUtf8(bytes);
  if ("problem" in decoded) {
    throw usageError(`the plan file ${file} is not valid UTF-8`, "save the file as UTF-8");
  }
  const checked = checkJsonText(decoded.text);
  if (checked.value === undefined) {
    try {
      JSON.parse(decoded.text);
    } catch (e) {
      throw usageError(
        `the plan file ${file} is not JSON: ${(e as Error).message}`,
        'a plan looks like {"version": 1, "steps": [{"skill": "noop", "input": {}}]}',
      );
    }
  }
  if (checked.problem) {
    throw usageError(`the plan file ${file}: ${checked.problem.message}`, checked.problem.hint);
  }
  return checked.value;
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

/** An agent given by id or by name, within the tenant. */
export async function resolveAgent(pool: pg.Pool, tenantId: string, agent: string): Promise<string> {
  // An id wins over a name that happens to look like another agent's id.
  const { rows } = await pool.query<{ id: string }>(
    `select id from runproof.agents where tenant_id = $1 and (id::text = lower($2) or name = $2)
      order by (id::text = lower($2)) desc limit 1`,
    [tenantId, agent],
  );
  if (!rows.length)
    throw notFound(
      `agent ${agent} not found for tenant ${tenantId}`,
      `list agents with: npx runproof agent list --tenant-id ${tenantId}`,
    );
  return rows[0].id;
}

export interface WatchOptions {
  pool: pg.Pool;
  /** A client already LISTENing on runproof:run:<runId>. */
  client: pg.Client;
  tenantId: string;
  runId: string;
  print: (line: string) => void;
  timeoutMs?: number;
  /** Say that no worker seems to be running after this long without progress (ms). */
  idleHintMs?: number;
}

interface StepRow {
  attempt: number;
  trace_id: string;
  step_index: number;
  plan_step: number;
  skill: string;
  status: string;
  duration_ms: string;
  cost_cents: string;
  error: string | null;
}

/** Follows a run until it reaches a final status, printing one line per recorded step; returns the final run row. */
export async function watchRun(o: WatchOptions): Promise<Record<string, unknown>> {
  const started = Date.now();
  let lastAttempt = 0;
  let lastIndex = -1;
  let announced = 0;
  let retryingSaid = 0; // the last attempt whose retry was said
  let lastStatus = "";
  let cancelNoted = false;
  let lastProgressAt = Date.now();
  let hinted = false;
  let planSteps: { skill: string; title?: string }[] = [];
  let wake: (() => void) | null = null;
  let notified = false;

  o.client.on("notification", (msg) => {
    try {
      const payload = JSON.parse(msg.payload ?? "{}");
      if (payload.event === "cancel_requested" && !cancelNoted) {
        cancelNoted = true;
        line(`  cancel requested: the worker stops the run before its next step`);
      }
    } catch {
      /* a payload we do not know: the rows are read anyway */
    }
    notified = true;
    wake?.();
  });

  // A bar for the step in flight, on a terminal only (stderr, so stdout stays the step log).
  const bar = process.stderr.isTTY
    ? new SingleBar({
        stream: process.stderr,
        clearOnComplete: true,
        hideCursor: true,
        barsize: 20,
        fps: 10,
        format: "  {spinner} plan step {value}/{total} [{bar}] {current} {elapsed}s",
      })
    : null;
  const frames = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
  let frame = 0;
  let barOn = false;
  let stepStartedAt = Date.now();
  const barPayload = (next: number) => ({
    spinner: frames[frame++ % frames.length],
    current: planSteps[next] ? `running ${planSteps[next].skill}` : "",
    elapsed: ((Date.now() - stepStartedAt) / 1000).toFixed(1),
  });
  let barNext = 0;
  // Says once that attempt `attempt` comes after a failed one: when the run is seen retrying, or,
  // since a backoff can pass between two looks, when the later attempt is seen (the run keeps the
  // failed attempt's error until it succeeds).
  function sayRetried(attempt: number, error: string | null) {
    if (attempt > 1 && retryingSaid < attempt - 1) {
      line(`  retrying: ${error ?? ""}`);
      retryingSaid = attempt - 1;
    }
  }
  function line(text: string) {
    if (barOn) {
      bar!.stop();
      barOn = false;
    }
    o.print(text);
  }
  function showBar(status: string, next: number) {
    barNext = next;
    if (!bar || status !== "running" || !planSteps.length) return;
    if (!barOn) {
      bar.start(planSteps.length, next, barPayload(next));
      barOn = true;
    } else bar.update(next, barPayload(next));
  }
  const ticker = bar
    ? setInterval(() => {
        if (barOn) bar.update(barNext, barPayload(barNext));
      }, 100)
    : null;
  // Ctrl-C stops following, not the run; the caller's cleanup (connections, embedded Postgres) still runs.
  let interrupted = false;
  const onSigint = () => {
    interrupted = true;
    wake?.();
  };
  process.on("SIGINT", onSigint);

  try {
    for (;;) {
      if (interrupted) {
        line(`stopped following run ${o.runId}; it carries on: npx runproof runs get ${o.runId}`);
        throw new CliError("interrupted", 130);
      }
      notified = false;
      const {
        rows: [run],
      } = await o.pool.query(
        `select id, tenant_id, agent_id, status, attempts, max_attempts, next_plan_step, cost_cents::float8 as cost_cents, error,
                plan, created_at, started_at, finished_at, encode(root_hash, 'hex') as root_hash,
                runproof.runs_is_finished(r) as finished
           from runproof.runs r where tenant_id = $1 and id = $2`,
        [o.tenantId, o.runId],
      );
      if (!run) throw new CliError(`run ${o.runId} disappeared while being watched`);
      if (run.plan && !planSteps.length) {
        planSteps = run.plan.steps ?? [];
        // Said when the plan is first seen, whatever the status by then: a short run can be planned
        // and started between two looks, and its plan is still news.
        if (planSteps.length)
          line(`  planned: ${planSteps.length} steps (${planSteps.map((s) => s.skill).join(", ")})`);
      }

      // Steps after the last one printed, in chain order (attempt, then index).
      const { rows: steps } = await o.pool.query<StepRow>(
        `select t.attempt, s.trace_id, s.step_index, s.plan_step, s.skill, s.status, s.duration_ms, s.cost_cents,
                runproof.trace_steps_error(s) as error
           from runproof.trace_steps s join runproof.traces t on t.tenant_id = s.tenant_id and t.id = s.trace_id
          where s.tenant_id = $1 and s.run_id = $2 and (t.attempt, s.step_index) > ($3::int, $4::int)
          order by t.attempt, s.step_index`,
        [o.tenantId, o.runId, lastAttempt, lastIndex],
      );

      for (const s of steps) {
        if (s.attempt > announced) {
          sayRetried(s.attempt, run.error);
          announced = s.attempt;
          line(`  attempt ${s.attempt}`);
        }
        line(stepLine(s));
        lastAttempt = s.attempt;
        lastIndex = s.step_index;
        stepStartedAt = Date.now();
      }
      if (run.status !== lastStatus) {
        if (run.status === "retrying") sayRetried(run.attempts + 1, run.error);
        else if (run.status === "pending") line(`  pending: waiting for the planner`);
      }
      if (run.status === "running" && run.attempts > announced) {
        sayRetried(run.attempts, run.error);
        announced = run.attempts;
        line(`  attempt ${run.attempts} started at plan step ${run.next_plan_step}`);
        stepStartedAt = Date.now();
      }
      if (steps.length || run.status !== lastStatus) lastProgressAt = Date.now();
      lastStatus = run.status;

      if (run.finished) {
        // The run's own time, enqueue to finish, as the database recorded it (not how long this
        // command watched: a run that had finished before it started is not "after 0.0 s").
        const secs = (
          (new Date(run.finished_at).getTime() - new Date(run.created_at).getTime()) /
          1000
        ).toFixed(1);
        line(
          `run ${run.id} ${run.status} after ${secs} s: ${run.attempts} attempt(s), ${run.next_plan_step}/${planSteps.length || "?"} plan steps done, cost ${fmtCents(run.cost_cents)}`,
        );
        if (run.error) line(`  error: ${run.error}`);
        return run;
      }
      showBar(run.status, run.next_plan_step);

      if (
        !hinted &&
        Date.now() - lastProgressAt > (o.idleHintMs ?? 10_000) &&
        (run.status === "pending" || run.status === "planned" || run.status === "retrying")
      ) {
        hinted = true;
        line(
          `  still ${run.status} after ${Math.round((Date.now() - lastProgressAt) / 1000)} s: is a worker running? (npx runproof worker, or npx runproof start)`,
        );
      }
      if (o.timeoutMs !== undefined && Date.now() - started > o.timeoutMs) {
        line(
          `gave up waiting after ${o.timeoutMs / 1000} s; the run is ${run.status} and carries on: npx runproof runs get ${run.id}`,
        );
        throw new CliError(`timed out waiting for run ${run.id}`, EXIT.ERROR);
      }
      // Sleep until a notification, or poll every 2 s as a safety net.
      if (!notified) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, 2000);
          function done() {
            clearTimeout(timer);
            wake = null;
            resolve();
          }
          wake = done;
        });
      }
    }
  } finally {
    process.off("SIGINT", onSigint);
    if (ticker) clearInterval(ticker);
    if (barOn) bar!.stop();
  }
}

export function stepLine(s: {
  step_index: number;
  plan_step: number;
  skill: string;
  status: string;
  duration_ms: string | number;
  cost_cents: string | number;
  error?: string | null;
}): string {
  const mark = s.status === "succeeded" ? "✓" : s.status === "denied" ? "⊘" : "✗";
  const base = `  ${mark} step ${String(s.step_index).padStart(2)}  plan ${String(s.plan_step).padStart(2)}  ${s.skill.padEnd(15)} ${s.status.padEnd(9)} ${fmtMs(s.duration_ms).padStart(11)}  ${fmtCents(s.cost_cents).padStart(10)}`;
  return s.error ? `${base}  ${s.error}` : base;
}

export function printProofSummary(p: Record<string, unknown>, print: (line: string) => void): void {
  print(
    `proof: ${p.verification_status} (${p.integrity_model}) root ${p.root_hash ?? "-"}, ${p.trace_count} trace(s), ${p.step_count} step(s), chain length ${p.chain_length}`,
  );
  if (p.verification_status !== "VERIFIED" && p.reason) {
    print(
      `  first bad: attempt ${p.first_bad_attempt ?? "-"}, trace ${p.first_bad_trace_id ?? "-"}, step ${p.first_bad_step_index ?? "-"}`,
    );
    print(`  reason: ${p.reason}`);
  }
}
