// npx runproof runs get | list | wait
import {
  EXIT,
  err,
  fmtCents,
  fmtMs,
  kvTable,
  notFound,
  out,
  printJson,
  table,
  tenantOfRun,
  truncate,
  withDatabase,
} from "./common.ts";

export async function runsGet(runId: string, opts: { tenantId?: string; json?: boolean }): Promise<void> {
  await withDatabase(async ({ pool }) => {
    const tenantId = await tenantOfRun(pool, runId, opts.tenantId);
    const {
      rows: [run],
    } = await pool.query(
      `select r.id, r.tenant_id, t.name as tenant_name, r.agent_id, a.name as agent_name, r.goal, r.origin_system_id, r.status,
              r.attempts, r.max_attempts, r.next_plan_step, r.cost_cents::float8 as cost_cents, r.error, r.idempotency_key,
              r.created_at, r.planned_at, r.started_at, r.finished_at, r.trace_count, encode(r.root_hash, 'hex') as root_hash, r.plan
         from runproof.runs r
         left join runproof.tenants t on t.id = r.tenant_id
         left join runproof.agents a on a.tenant_id = r.tenant_id and a.id = r.agent_id
        where r.tenant_id = $1 and r.id = $2`,
      [tenantId, runId],
    );
    if (!run)
      throw notFound(
        `run ${runId} not found for tenant ${tenantId}`,
        "list runs with: npx runproof runs list",
      );
    const { rows: traces } = await pool.query(
      `select attempt, id, status, step_count, encode(root_hash, 'hex') as root_hash, started_at, completed_at, archived_at, metadata
         from runproof.traces where tenant_id = $1 and run_id = $2 order by attempt, id`,
      [tenantId, runId],
    );
    const { rows: steps } = await pool.query(
      `select t.attempt, s.trace_id, s.step_index, s.plan_step, s.skill, s.status, s.policy_decision, d.reason as policy_reason,
              runproof.trace_steps_input(s) as input, runproof.trace_steps_output(s) as output,
              runproof.trace_steps_error(s) as error, s.started_at, s.finished_at, s.duration_ms::float8 as duration_ms,
              s.cost_cents::float8 as cost_cents, s.level, s.source, s.recorded_at,
              encode(s.prev_hash, 'hex') as prev_hash, encode(s.step_hash, 'hex') as step_hash
         from runproof.trace_steps s
         join runproof.traces t on t.tenant_id = s.tenant_id and t.id = s.trace_id
         left join runproof.policy_decisions d on d.tenant_id = s.tenant_id and d.trace_id = s.trace_id and d.step_index = s.step_index
        where s.tenant_id = $1 and s.run_id = $2 order by t.attempt, s.step_index`,
      [tenantId, runId],
    );
    const { rows: incidents } = await pool.query(
      `select i.id, t.attempt, i.trace_id, i.kind, i.severity, i.message, i.details, i.created_at
         from runproof.incidents i left join runproof.traces t on t.tenant_id = i.tenant_id and t.id = i.trace_id
        where i.tenant_id = $1 and i.run_id = $2 order by i.created_at, i.id`,
      [tenantId, runId],
    );

    if (opts.json) return printJson({ run, traces, steps, incidents });

    const planSteps: { skill: string; title?: string; input?: unknown }[] = run.plan?.steps ?? [];
    out(
      kvTable([
        ["run", run.id],
        ["tenant", `${run.tenant_name ?? "?"} (${run.tenant_id})`],
        ["agent", `${run.agent_name ?? "?"} (${run.agent_id})`],
        ["goal", truncate(run.goal, 100)],
        ["origin", run.origin_system_id],
        ["status", run.status + (run.error ? `: ${run.error}` : "")],
        [
          "progress",
          `${run.next_plan_step}/${planSteps.length || "?"} plan steps, ${run.attempts}/${run.max_attempts} attempts, cost ${fmtCents(run.cost_cents)}`,
        ],
        ["idempotency key", run.idempotency_key ?? "-"],
        ["created", run.created_at],
        ["planned", run.planned_at],
        ["started", run.started_at],
        ["finished", run.finished_at],
        [
          "sealed root",
          run.root_hash ? `${run.root_hash} (${run.trace_count} traces)` : "- (sealed when the run ends)",
        ],
      ]),
    );
    out();
    out(`Plan${run.plan?.planner ? ` (planner: ${run.plan.planner})` : ""}`);
    if (!planSteps.length) out("  (no plan yet)");
    else
      out(
        table(
          ["#", "skill", "title", "input", "done"],
          planSteps.map((s, i) => [
            i,
            s.skill,
            s.title ?? "",
            truncate(JSON.stringify(s.input ?? {}), 60),
            i < run.next_plan_step ? "yes" : "",
          ]),
        ),
      );
    out();
    out("Traces");
    if (!traces.length) out("  (no attempt yet)");
    else
      out(
        table(
          ["attempt", "trace id", "status", "steps", "root hash", "started", "completed"],
          traces.map((t) => [
            t.attempt,
            t.id,
            t.status + (t.archived_at ? " (archived)" : ""),
            t.step_count ?? "",
            t.root_hash ? `${t.root_hash.slice(0, 16)}…` : "",
            t.started_at,
            t.completed_at,
          ]),
        ),
      );
    out();
    out("Steps");
    if (!steps.length) out("  (no steps recorded)");
    else
      out(
        table(
          ["attempt", "step", "plan", "skill", "status", "policy", "duration", "cost", "step hash", "error"],
          steps.map((s) => [
            s.attempt,
            s.step_index,
            s.plan_step,
            s.skill,
            s.status,
            s.policy_decision,
            fmtMs(s.duration_ms),
            fmtCents(s.cost_cents),
            `${s.step_hash.slice(0, 16)}…`,
            truncate(s.error ?? (s.status === "denied" ? (s.policy_reason ?? "") : ""), 60),
          ]),
        ),
      );
    out();
    out("Incidents");
    if (!incidents.length) out("  (none)");
    else
      out(
        table(
          ["attempt", "kind", "severity", "message", "at"],
          incidents.map((i) => [i.attempt ?? "", i.kind, i.severity, truncate(i.message, 80), i.created_at]),
        ),
      );
    out();
    out(`prove it: npx runproof proof ${run.id}`);
  });
}

export async function runsList(opts: {
  tenantId?: string;
  status?: string;
  limit: number;
  json?: boolean;
  quiet?: boolean;
}): Promise<void> {
  await withDatabase(async ({ pool }) => {
    const { rows } = await pool.query(
      `select r.id, r.tenant_id, t.name as tenant_name, r.agent_id, a.name as agent_name, r.status, r.attempts, r.next_plan_step,
              case when jsonb_typeof(r.plan -> 'steps') = 'array' then jsonb_array_length(r.plan -> 'steps') end as plan_steps,
              r.cost_cents::float8 as cost_cents, r.origin_system_id, r.goal, r.created_at, r.finished_at
         from runproof.runs r
         left join runproof.tenants t on t.id = r.tenant_id
         left join runproof.agents a on a.tenant_id = r.tenant_id and a.id = r.agent_id
        where ($1::uuid is null or r.tenant_id = $1) and ($2::text is null or r.status = $2)
        order by r.created_at desc, r.id desc
        limit $3`,
      [opts.tenantId ?? null, opts.status ?? null, opts.limit],
    );
    if (opts.json) return printJson(rows);
    // Only the ids, one a line, for the shell: RUN_ID=$(npx runproof runs list --limit 1 -q)
    if (opts.quiet) {
      if (rows.length) out(rows.map((r) => r.id).join("\n"));
      return;
    }
    if (!rows.length)
      return out(`no runs${opts.tenantId || opts.status ? " match" : " yet: npx runproof run --help"}`);
    out(
      table(
        ["run id", "tenant", "agent", "status", "steps", "attempts", "cost", "created", "goal"],
        rows.map((r) => [
          r.id,
          r.tenant_name,
          r.agent_name,
          r.status,
          `${r.next_plan_step}/${r.plan_steps ?? "?"}`,
          r.attempts,
          fmtCents(r.cost_cents),
          r.created_at,
          truncate(r.goal, 40),
        ]),
      ),
    );
  });
}

/**
 * runs wait: follows a run that already exists (enqueued from psql, GraphQL or another terminal)
 * until it reaches a final status, printing its steps as `run --wait` does, then its proof.
 * Exit 0 if it succeeded, 1 otherwise (or after --timeout).
 */
export async function runsWait(
  runId: string,
  opts: { tenantId?: string; timeout?: number; json?: boolean },
): Promise<void> {
  const { default: pg } = await import("pg");
  const { watchRun, printProofSummary } = await import("./run.ts");
  await withDatabase(async ({ pool, url }) => {
    const tenantId = await tenantOfRun(pool, runId, opts.tenantId);
    const { rowCount } = await pool.query(`select 1 from runproof.runs where tenant_id = $1 and id = $2`, [
      tenantId,
      runId,
    ]);
    if (!rowCount)
      throw notFound(
        `run ${runId} not found for tenant ${tenantId}`,
        "list runs with: npx runproof runs list",
      );
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    client.on("error", () => {});
    try {
      // LISTEN before the first read (watchRun reads the rows first), so nothing is missed.
      await client.query(`listen ${client.escapeIdentifier(`runproof:run:${runId}`)}`);
      const log = opts.json ? err : out;
      log(`waiting for run ${runId} (LISTEN runproof:run:${runId})`);
      const final = await watchRun({ pool, client, tenantId, runId, print: log, timeoutMs: opts.timeout });
      const {
        rows: [proof],
      } = await pool.query(`select * from runproof.run_proof($1, $2)`, [tenantId, runId]);
      if (opts.json) printJson({ run: final, proof });
      else printProofSummary(proof, out);
      if (final.status !== "succeeded") process.exitCode = EXIT.ERROR;
    } finally {
      await client.end().catch(() => {});
    }
  });
}
