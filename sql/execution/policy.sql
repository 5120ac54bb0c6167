-- The policy decision taken and recorded before each step runs: the skill must be registered and
-- enabled, allowed for the agent, and within the tenant's daily budget. A denial halts the run,
-- with the incident its rule calls for.

create or replace function runproof_private.decide_step(
  p_tenant_id uuid, p_run_id uuid, p_trace_id uuid, p_step_index integer, p_plan_step integer,
  p_skill text, p_estimated_cents numeric)
  returns runproof.policy_decisions
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_allowed text[];
  v_budget numeric;
  v_spent numeric;
  v_decision text;
  v_rule text;
  v_reason text;
  v runproof.policy_decisions;
begin
  select a.allowed_skills into v_allowed from runproof.runs r
    join runproof.agents a on a.tenant_id = r.tenant_id and a.id = r.agent_id
   where r.tenant_id = p_tenant_id and r.id = p_run_id;
  select t.daily_budget_cents into v_budget from runproof.tenants t where t.id = p_tenant_id;
  select s.spent_cents into v_spent from runproof_private.tenant_daily_spend s
   where s.tenant_id = p_tenant_id and s.day = (now() at time zone 'UTC')::date;
  v_spent := coalesce(v_spent, 0);
  if not exists (select 1 from runproof.skills k where k.name = p_skill and k.enabled) then
    v_decision := 'deny'; v_rule := 'skill_registered'; v_reason := format('skill %s is not registered or is disabled', p_skill);
  elsif v_allowed is not null and not (p_skill = any (v_allowed)) then
    v_decision := 'deny'; v_rule := 'allowed_skills'; v_reason := format('skill %s is not in the agent''s allowed_skills (%s)', p_skill, array_to_string(v_allowed, ', '));
  elsif v_spent + coalesce(p_estimated_cents, 0) > v_budget then
    v_decision := 'deny'; v_rule := 'daily_budget'; v_reason := format('daily budget exceeded: spent %s + estimated %s > budget %s cents', v_spent, coalesce(p_estimated_cents, 0), v_budget);
  else
    v_decision := 'allow'; v_rule := 'daily_budget'; v_reason := format('within budget: spent %s + estimated %s <= budget %s cents', v_spent, coalesce(p_estimated_cents, 0), v_budget);
  end if;
  insert into runproof.policy_decisions (tenant_id, run_id, trace_id, step_index, plan_step, skill, decision, rule, reason, budget_cents, spent_cents)
  values (p_tenant_id, p_run_id, p_trace_id, p_step_index, p_plan_step, p_skill, v_decision, v_rule, v_reason, v_budget, v_spent)
  returning * into v;
  return v;
end
$$;
comment on function runproof_private.decide_step(uuid, uuid, uuid, integer, integer, text, numeric) is
  'Takes and records the policy decision for the next step before it runs: deny an unregistered skill, a skill outside the agent''s allowed_skills, or a call that would exceed the tenant''s daily budget.';

create or replace function runproof_private.denial_incident_kind(p_rule text) returns text
  language sql immutable parallel safe
  set search_path = pg_catalog
  as $$ select case p_rule when 'daily_budget' then 'budget_exceeded' else 'skill_denied' end $$;
comment on function runproof_private.denial_incident_kind(text) is
  'The incident a denied step is recorded with, by the rule that denied it: budget_exceeded for the daily budget, skill_denied for an unregistered or disallowed skill.';

create or replace function runproof_private.record_denial(
  p_tenant_id uuid, p_run_id uuid, p_trace_id uuid, p_step_index integer, p_input jsonb)
  returns runproof.runs
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_decision runproof.policy_decisions;
  v_now timestamptz := clock_timestamp();
begin
  select * into v_decision from runproof.policy_decisions d
   where d.tenant_id = p_tenant_id and d.trace_id = p_trace_id and d.step_index = p_step_index;
  if not found or v_decision.decision <> 'deny' then
    raise exception 'step % of trace % was not denied', p_step_index, p_trace_id
      using errcode = 'RPSTS', hint = 'record_denial records a step whose policy decision is deny';
  end if;
  -- The denied step (its skill never called), then the attempt ends and the run halts, with the
  -- incident the rule calls for.
  perform runproof_private.record_step(
    p_tenant_id => p_tenant_id, p_run_id => p_run_id, p_trace_id => p_trace_id, p_step_index => p_step_index,
    p_plan_step => v_decision.plan_step, p_skill => v_decision.skill, p_status => 'denied', p_input => p_input,
    p_output => null, p_error => null, p_started_at => v_now, p_finished_at => v_now, p_duration_ms => 0,
    p_cost_cents => 0, p_level => 'WARN');
  return runproof_private.end_attempt(
    p_tenant_id => p_tenant_id, p_run_id => p_run_id, p_trace_id => p_trace_id,
    p_trace_status => 'failed', p_run_status => 'halted',
    p_error => format('policy denied step %s: %s', v_decision.plan_step, v_decision.reason),
    p_incident_kind => runproof_private.denial_incident_kind(v_decision.rule),
    p_incident_details => jsonb_build_object('plan_step', v_decision.plan_step, 'skill', v_decision.skill,
                                             'rule', v_decision.rule, 'reason', v_decision.reason));
end
$$;
comment on function runproof_private.record_denial(uuid, uuid, uuid, integer, jsonb) is
  'Records a step the policy denied and halts the run, in one transaction: the denied step (the skill was not called), the trace sealed failed, the run halted, and a budget_exceeded or skill_denied incident (by the decision''s rule).';
