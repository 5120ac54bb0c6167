-- Recording a step: the step row (hashed by tg_trace_steps__chain), its payloads with their salted
-- commitments, the run's progress and the tenant's spend move in one transaction, or none does.

create or replace function runproof_private.record_step(
  p_tenant_id uuid, p_run_id uuid, p_trace_id uuid, p_step_index integer, p_plan_step integer,
  p_skill text, p_status text, p_input jsonb, p_output jsonb, p_error text,
  p_started_at timestamptz, p_finished_at timestamptz, p_duration_ms numeric, p_cost_cents numeric,
  p_level text default 'INFO', p_source text default 'worker')
  returns runproof.trace_steps
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_step runproof.trace_steps;
  v_next integer;
  v_decision text;
  -- Secrets are redacted (again: the worker did it first) before anything is committed to.
  v_input jsonb := runproof_private.redact(coalesce(p_input, '{}'));
  v_output jsonb := runproof_private.redact(p_output);
  v_input_salt bytea := runproof_private.random_salt();
  v_output_salt bytea := case when p_output is not null then runproof_private.random_salt() end;
  v_error_salt bytea := case when p_error is not null then runproof_private.random_salt() end;
begin
  select r.next_plan_step into v_next from runproof.runs r
   where r.tenant_id = p_tenant_id and r.id = p_run_id and r.status = 'running' for no key update;
  if not found then
    if not exists (select 1 from runproof.runs where tenant_id = p_tenant_id and id = p_run_id) then
      raise exception 'run % of tenant % not found', p_run_id, p_tenant_id using errcode = 'RPNFD', hint = 'check the run and tenant ids';
    end if;
    raise exception 'run % is not running', p_run_id using errcode = 'RPSTS', hint = 'steps are recorded only during an attempt';
  end if;
  if p_plan_step <> v_next then
    raise exception 'plan step % is out of order: run % is at plan step %', p_plan_step, p_run_id, v_next
      using errcode = 'RPSTS', hint = 'a succeeded plan step is never executed or recorded again';
  end if;
  select d.decision into v_decision from runproof.policy_decisions d
   where d.tenant_id = p_tenant_id and d.trace_id = p_trace_id and d.step_index = p_step_index;
  insert into runproof.trace_steps (tenant_id, run_id, trace_id, step_index, plan_step, skill, status, policy_decision,
      input_commitment, output_commitment, error_commitment, started_at, finished_at, duration_ms, cost_cents, source, level)
  values (p_tenant_id, p_run_id, p_trace_id, p_step_index, p_plan_step, p_skill, p_status, coalesce(v_decision, 'allow'),
      runproof_private.payload_commitment('input', v_input_salt, v_input::text),
      runproof_private.payload_commitment('output', v_output_salt, v_output::text),
      runproof_private.payload_commitment('error', v_error_salt, p_error),
      p_started_at, p_finished_at, p_duration_ms, coalesce(p_cost_cents, 0), p_source, p_level)
  returning * into v_step;
  insert into runproof.step_payloads (tenant_id, run_id, trace_id, step_index, input, input_salt, output, output_salt, error, error_salt)
  values (p_tenant_id, p_run_id, p_trace_id, p_step_index, v_input, v_input_salt, v_output, v_output_salt, p_error, v_error_salt);
  -- The run's progress moves in the same transaction as its step, or not at all.
  update runproof.runs
     set next_plan_step = case when p_status = 'succeeded' then p_plan_step + 1 else next_plan_step end,
         cost_cents = cost_cents + coalesce(p_cost_cents, 0)
   where tenant_id = p_tenant_id and id = p_run_id;
  if coalesce(p_cost_cents, 0) > 0 then
    insert into runproof_private.tenant_daily_spend as s (tenant_id, day, spent_cents)
    values (p_tenant_id, (now() at time zone 'UTC')::date, p_cost_cents)
    on conflict (tenant_id, day) do update set spent_cents = s.spent_cents + excluded.spent_cents;
  end if;
  -- A failed or denied step ends its attempt in this transaction, whose status change NOTIFYs
  -- anyway: it is announced here, before the status. A succeeded one is announced by the worker
  -- after the commit (sql/execution/notify.sql).
  if p_status <> 'succeeded' then
    perform pg_notify('runproof:run:' || p_run_id, runproof_private.step_announcement(v_step));
  end if;
  return v_step;
end
$$;
comment on function runproof_private.record_step(uuid, uuid, uuid, integer, integer, text, text, jsonb, jsonb, text, timestamptz, timestamptz, numeric, numeric, text, text) is
  'Records a step (input and output redacted, then stored in runproof.step_payloads with salted commitments in the step; hashes computed by the chain trigger) and the run''s progress and spend, in one transaction. Announces a failed or denied step (its attempt ends in the same transaction); a succeeded one is announced by the worker after the commit.';
