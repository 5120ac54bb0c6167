-- One round trip per step: between two skill calls the worker makes one statement, which records
-- step i, checks for a cancel request and takes (and records) the policy decision for step i+1, in
-- one transaction, so the decision is committed before its skill is called. The first call of an
-- attempt opens it; the last (or a cancel, or a denial) ends it, in the same transaction.

create or replace function runproof_private.advance_attempt(
  p_tenant_id uuid, p_run_id uuid, p_trace_id uuid,
  p_step_index integer, p_plan_step integer,
  p_status text default null, p_skill text default null, p_input jsonb default null, p_output jsonb default null,
  p_started_at timestamptz default null, p_finished_at timestamptz default null,
  p_duration_ms numeric default null, p_cost_cents numeric default null,
  p_next_skill text default null, p_next_estimated_cents numeric default 0, p_next_input jsonb default null,
  p_trace_metadata jsonb default '{}',
  out trace_id uuid, out attempt integer, out run_status text, out finished boolean,
  out decision text, out reason text, out announce_channels text[], out announce_payloads text[])
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_trace runproof.traces;
  v_step runproof.trace_steps;
  v_run runproof.runs;
  v_cancel text;
  v_next_index integer := p_step_index;
  v_next_plan integer := p_plan_step;
  v_decision runproof.policy_decisions;
  v_channels text[];
  v_payloads text[];
begin
  if p_trace_id is null then
    -- The first call of an attempt opens it (nothing to record yet).
    if p_status is not null then
      raise exception 'a step is recorded in an open attempt' using errcode = 'RPVAL', hint = 'pass the trace id of the attempt';
    end if;
    v_trace := runproof_private.start_attempt(p_tenant_id, p_run_id, p_trace_metadata);
    trace_id := v_trace.id;
    attempt := v_trace.attempt;
  else
    trace_id := p_trace_id;
  end if;
  if p_status is not null then
    -- A failed step ends its attempt (runproof_private.record_step, then end_attempt): only a
    -- succeeded one moves the attempt on.
    if p_status <> 'succeeded' then
      raise exception 'advance_attempt records succeeded steps, not %', p_status
        using errcode = 'RPVAL', hint = 'record a failed step with record_step and end_attempt in one transaction';
    end if;
    v_step := runproof_private.record_step(
      p_tenant_id => p_tenant_id, p_run_id => p_run_id, p_trace_id => trace_id, p_step_index => p_step_index,
      p_plan_step => p_plan_step, p_skill => p_skill, p_status => 'succeeded', p_input => p_input, p_output => p_output,
      p_error => null, p_started_at => p_started_at, p_finished_at => p_finished_at, p_duration_ms => p_duration_ms,
      p_cost_cents => p_cost_cents, p_level => 'INFO');
    v_next_index := p_step_index + 1;
    v_next_plan := p_plan_step + 1;
  end if;
  v_cancel := runproof_private.cancel_requested(p_tenant_id, p_run_id);
  if v_cancel is null and p_next_skill is not null then
    v_decision := runproof_private.decide_step(
      p_tenant_id => p_tenant_id, p_run_id => p_run_id, p_trace_id => trace_id, p_step_index => v_next_index,
      p_plan_step => v_next_plan, p_skill => p_next_skill, p_estimated_cents => p_next_estimated_cents);
    decision := v_decision.decision;
    reason := v_decision.reason;
  end if;
  if v_step.step_index is not null then
    select * into v_run from runproof.runs r where r.tenant_id = p_tenant_id and r.id = p_run_id;
    select a.channels, a.payloads into v_channels, v_payloads from runproof_private.step_announcements(v_step, v_run) a;
  end if;
  if decision = 'allow' then
    -- The attempt goes on: no status changes, so this transaction does not NOTIFY; the worker
    -- announces the step after the commit.
    announce_channels := v_channels;
    announce_payloads := v_payloads;
    run_status := 'running';
    finished := false;
    return;
  end if;
  -- The attempt ends here, and the run's status change NOTIFYs anyway: the step is announced in
  -- this transaction, before the status.
  if v_step.step_index is not null then
    perform runproof_private.announce(v_channels, v_payloads);
  end if;
  if v_cancel is not null then
    v_run := runproof_private.end_attempt(
      p_tenant_id => p_tenant_id, p_run_id => p_run_id, p_trace_id => trace_id, p_trace_status => 'aborted',
      p_run_status => 'cancelled', p_error => v_cancel, p_trace_metadata => jsonb_build_object('cancelled', v_cancel));
  elsif p_next_skill is null then
    v_run := runproof_private.end_attempt(
      p_tenant_id => p_tenant_id, p_run_id => p_run_id, p_trace_id => trace_id, p_trace_status => 'completed',
      p_run_status => 'succeeded');
  else
    v_run := runproof_private.record_denial(
      p_tenant_id => p_tenant_id, p_run_id => p_run_id, p_trace_id => trace_id, p_step_index => v_next_index,
      p_input => coalesce(p_next_input, '{}'));
  end if;
  run_status := v_run.status;
  finished := runproof_private.is_terminal_status(v_run.status);
end
$$;
comment on function runproof_private.advance_attempt(uuid, uuid, uuid, integer, integer, text, text, jsonb, jsonb, timestamptz, timestamptz, numeric, numeric, text, numeric, jsonb, jsonb) is
  'The worker''s one statement per step, in one transaction: opens the attempt (p_trace_id NULL), records the succeeded step p_step_index (p_status), checks for a cancel request (the attempt ends aborted, the run cancelled), then decides the next step p_next_skill and records the decision before its skill is called (a denial records the denied step and halts the run), or, with no next step, ends the attempt completed and the run succeeded. Returns the step''s announcements for the worker to send after the commit when the attempt goes on.';
