-- The policy decision taken and recorded before each step runs: the skill must be registered and
-- enabled, allowed for the agent, and within the tenant's daily budget.

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
    v_decision := 'deny'; v_reason := format('skill %s is not registered or is disabled', p_skill);
  elsif v_allowed is not null and not (p_skill = any (v_allowed)) then
    v_decision := 'deny'; v_reason := format('skill %s is not in the agent''s allowed_skills (%s)', p_skill, array_to_string(v_allowed, ', '));
  elsif v_spent + coalesce(p_estimated_cents, 0) > v_budget then
    v_decision := 'deny'; v_reason := format('daily budget exceeded: spent %s + estimated %s > budget %s cents', v_spent, coalesce(p_estimated_cents, 0), v_budget);
  else
    v_decision := 'allow'; v_reason := format('within budget: spent %s + estimated %s <= budget %s cents', v_spent, coalesce(p_estimated_cents, 0), v_budget);
  end if;
  insert into runproof.policy_decisions (tenant_id, run_id, trace_id, step_index, plan_step, skill, decision, reason, budget_cents, spent_cents)
  values (p_tenant_id, p_run_id, p_trace_id, p_step_index, p_plan_step, p_skill, v_decision, v_reason, v_budget, v_spent)
  returning * into v;
  return v;
end
$$;
comment on function runproof_private.decide_step(uuid, uuid, uuid, integer, integer, text, numeric) is
  'Takes and records the policy decision for the next step before it runs: deny an unregistered skill, a skill outside the agent''s allowed_skills, or a call that would exceed the tenant''s daily budget.';
