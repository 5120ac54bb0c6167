--! Previous: sha1:44853e3cc2da0f073dfb152f76fd30e89b87b9ed
--! Hash: sha1:85a255281d494856b2efe93ca7ba4aa98330763e
--! Message: guards without version branches, and what SQL decides stays in SQL

-- The plan guard moves to tg_runs__plan_check (UPDATE OF plan): no comparison of the plan on
-- every progress update, and no PostgreSQL-17-only TOAST shortcut (one text for every version).
--! Included ledger/runs.sql
-- The run state machine and the guards of runproof.runs: a run is never deleted, what it is
-- (tenant, agent, goal, origin, plan) never changes, its status moves only along
-- run_status_transitions, and entering a final status seals it (trace_count, root_hash) and freezes it.

-- The state machine: the only status changes a run may make.
delete from runproof_private.run_status_transitions;
insert into runproof_private.run_status_transitions (from_status, to_status, description) values
  ('pending', 'planned', 'the planner stored a valid plan'),
  ('pending', 'failed', 'planning failed'),
  ('pending', 'cancelled', 'cancelled before planning'),
  ('planned', 'running', 'an execution attempt started'),
  ('planned', 'cancelled', 'cancelled before execution'),
  ('running', 'succeeded', 'every plan step succeeded'),
  ('running', 'failed', 'a step failed permanently or attempts ran out'),
  ('running', 'halted', 'the policy denied a step'),
  ('running', 'cancelled', 'cancel_run stopped the run between steps'),
  ('running', 'retrying', 'a transient failure or a crashed worker; a new attempt will resume'),
  ('retrying', 'running', 'the next attempt started'),
  ('retrying', 'failed', 'no attempts left'),
  ('retrying', 'cancelled', 'cancelled between attempts');

create or replace function runproof_private.tg_runs__start_state() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
begin
  if new.status not in ('pending', 'planned') or new.attempts <> 0 or new.next_plan_step <> 0 or new.cost_cents <> 0
     or new.trace_count is not null or new.root_hash is not null or new.started_at is not null or new.finished_at is not null then
    raise exception 'a new run starts pending (or planned, with a plan), with no attempts, progress or seal'
      using errcode = 'RPSTS', hint = 'create runs with runproof.enqueue_run';
  end if;
  if (new.plan is null) <> (new.status = 'pending') then
    raise exception 'a new run is pending without a plan, or planned with one'
      using errcode = 'RPSTS', hint = 'create runs with runproof.enqueue_run';
  end if;
  -- Foreign keys do not fire in replica mode; this trigger always does.
  if not exists (select 1 from runproof.agents a where a.tenant_id = new.tenant_id and a.id = new.agent_id) then
    raise exception 'agent % not found for tenant %', new.agent_id, new.tenant_id
      using errcode = 'RPNFD', hint = 'create runs with runproof.enqueue_run, for one of the tenant''s agents';
  end if;
  return new;
end
$$;
comment on function runproof_private.tg_runs__start_state() is
  'Trigger: a new run starts pending (or planned with its plan), with no attempts, progress or seal, for an agent of its tenant (checked even in replica mode). Named to fire after the origin and plan checks.';

create or replace function runproof_private.tg_runs__guard() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_changed text[];
  v_key text;
  v_roots bytea[];
  v_open integer;
begin
  v_key := format('tenant_id=%s, id=%s', old.tenant_id, old.id);
  if tg_op = 'DELETE' then
    perform runproof_private.raise_immutable('DELETE', 'runs', v_key, 'runs are never deleted',
      'a run is part of the ledger; archive its traces instead');
  end if;

  -- Compared column by column: the whole-row jsonb diff (changed_columns) serialises the plan twice,
  -- on every update, and record_step updates the run once per step. The diff is computed only for
  -- the messages below and for a finished run, where it decides whether the update changes anything.
  if (new.tenant_id, new.id, new.agent_id, new.goal, new.origin_system_id, new.idempotency_key, new.created_at, new.max_attempts)
     is distinct from (old.tenant_id, old.id, old.agent_id, old.goal, old.origin_system_id, old.idempotency_key, old.created_at, old.max_attempts) then
    v_changed := array_remove(runproof_private.changed_columns(to_jsonb(old), to_jsonb(new)), 'updated_at');
    perform runproof_private.raise_immutable('UPDATE', 'runs', v_key,
      'changes ' || array_to_string(v_changed, ', '),
      'tenant, agent, goal, origin_system_id, idempotency_key and max_attempts never change; enqueue a new run instead');
  end if;
  -- The plan is guarded by tg_runs__plan_check, which fires whenever an UPDATE sets it (UPDATE OF
  -- plan); an UPDATE that does not set the plan cannot change it, so it is not compared here.
  if runproof_private.is_terminal_status(old.status) then
    v_changed := array_remove(runproof_private.changed_columns(to_jsonb(old), to_jsonb(new)), 'updated_at');
  end if;
  if runproof_private.is_terminal_status(old.status) and cardinality(v_changed) = 0 then
    new.updated_at := old.updated_at;
    return new;
  end if;
  if runproof_private.is_terminal_status(old.status) then
    perform runproof_private.raise_immutable('UPDATE', 'runs', v_key,
      format('the run is %s; changes %s', old.status, array_to_string(v_changed, ', ')),
      'a finished run never changes');
  end if;

  if new.status is distinct from old.status then
    if not exists (select 1 from runproof_private.run_status_transitions
                   where from_status = old.status and to_status = new.status) then
      raise exception 'run % cannot go from % to %', old.id, old.status, new.status
        using errcode = 'RPSTS',
              detail = 'allowed from ' || old.status || ': ' || coalesce((select string_agg(to_status, ', ' order by to_status)
                         from runproof_private.run_status_transitions where from_status = old.status), '(none)'),
              hint = 'see runproof_private.run_status_transitions for the state machine';
    end if;
  end if;

  if new.status = 'running' and old.status <> 'running' and new.attempts <> old.attempts + 1 then
    raise exception 'run % can only start running with a new attempt', old.id
      using errcode = 'RPSTS', hint = 'start attempts with runproof_private.start_attempt, which opens the attempt''s trace';
  end if;
  if new.status = 'succeeded' and old.status <> 'succeeded' then
    if new.next_plan_step <> jsonb_array_length(new.plan -> 'steps') then
      raise exception 'run % cannot succeed: % of % plan steps succeeded', old.id, new.next_plan_step, jsonb_array_length(new.plan -> 'steps')
        using errcode = 'RPSTS', hint = 'a run succeeds when every plan step has a succeeded step';
    end if;
    if (select t.status from runproof.traces t where t.tenant_id = new.tenant_id and t.run_id = new.id
         order by t.attempt desc limit 1) is distinct from 'completed' then
      raise exception 'run % cannot succeed: its last attempt did not complete', old.id
        using errcode = 'RPSTS', hint = 'seal the last trace as completed first';
    end if;
  end if;
  if new.attempts <> old.attempts and not (new.attempts = old.attempts + 1 and new.status = 'running' and old.status <> 'running') then
    perform runproof_private.raise_immutable('UPDATE', 'runs', v_key, 'changes attempts',
      'attempts only grows by one, when a new attempt starts (runproof_private.start_attempt)');
  end if;
  if (new.next_plan_step, new.cost_cents) is distinct from (old.next_plan_step, old.cost_cents)
     and (old.status <> 'running' or new.next_plan_step < old.next_plan_step or new.cost_cents < old.cost_cents) then
    perform runproof_private.raise_immutable('UPDATE', 'runs', v_key, 'changes progress outside a running attempt or backwards',
      'progress is recorded with its step by runproof_private.record_step');
  end if;
  if old.started_at is not null and new.started_at is distinct from old.started_at
     or old.planned_at is not null and new.planned_at is distinct from old.planned_at then
    perform runproof_private.raise_immutable('UPDATE', 'runs', v_key, 'changes started_at or planned_at',
      'timestamps of what happened are set once');
  end if;

  if new.status = 'running' then
    new.started_at := coalesce(new.started_at, now());
  end if;

  -- Entering a final status seals the run: trace_count and root_hash, computed here, never by a client.
  if runproof_private.is_terminal_status(new.status) then
    select count(*) filter (where t.status = 'running'),
           array_agg(t.root_hash order by t.attempt)
      into v_open, v_roots
      from runproof.traces t
     where t.tenant_id = new.tenant_id and t.run_id = new.id;
    if v_open > 0 then
      raise exception 'run % still has a running trace', new.id
        using errcode = 'RPSTS', hint = 'seal the trace first (runproof_private.seal_trace)';
    end if;
    if new.trace_count is not null or new.root_hash is not null then
      perform runproof_private.raise_immutable('UPDATE', 'runs', v_key, 'supplies trace_count or root_hash',
        'the run seal is computed by the database when the run ends');
    end if;
    new.trace_count := coalesce(cardinality(v_roots), 0);
    new.root_hash := runproof_private.run_root_hash(new.tenant_id, new.id, coalesce(v_roots, '{}'));
    new.finished_at := coalesce(new.finished_at, now());
  elsif new.trace_count is not null or new.root_hash is not null or new.finished_at is not null then
    perform runproof_private.raise_immutable('UPDATE', 'runs', v_key, 'sets the seal of an unfinished run',
      'the run seal is computed by the database when the run ends');
  end if;

  new.updated_at := now();
  return new;
end
$$;
comment on function runproof_private.tg_runs__guard() is
  'Trigger: runs are never deleted; identity, goal and origin never change (the plan: tg_runs__plan_check); status follows the state machine; progress only moves forward while running; a final status seals trace_count and root_hash and freezes the run.';

-- Trigger order is by name: the origin and plan checks (the commonest mistakes) report before
-- tg_runs__start_state.
create or replace trigger tg_runs__start_state before insert on runproof.runs
  for each row execute function runproof_private.tg_runs__start_state();
create or replace trigger tg_runs__guard before update or delete on runproof.runs
  for each row execute function runproof_private.tg_runs__guard();
create or replace trigger tg_runs__no_truncate before truncate on runproof.runs
  for each statement execute function runproof_private.tg__no_truncate();
alter table runproof.runs enable always trigger tg_runs__start_state;
alter table runproof.runs enable always trigger tg_runs__guard;
alter table runproof.runs enable always trigger tg_runs__no_truncate;
insert into runproof_private.guard_descriptions (table_name, trigger_name, blocks, allows) values
  ('runs', 'tg_runs__start_state', 'INSERT of a run that is not pending/planned, or already has attempts, progress or a seal (RPSTS), or whose agent is not its tenant''s (RPNFD, even in replica mode)', 'INSERT of a fresh run (runproof.enqueue_run)'),
  ('runs', 'tg_runs__guard', 'DELETE; changing tenant, agent, goal, origin, idempotency key or max_attempts; any change to a finished run; progress outside an attempt or backwards; a client-supplied seal (RPIMM); a status change outside the state machine (RPSTS); a move to running without a new attempt, or to succeeded before every plan step succeeded and the last attempt completed (RPSTS)', 'status changes along runproof_private.run_status_transitions; plan stored once while pending; progress forward while running; the seal computed at the final status'),
  ('runs', 'tg_runs__no_truncate', 'TRUNCATE (RPIMM)', 'nothing')
on conflict (table_name, trigger_name) do update set blocks = excluded.blocks, allows = excluded.allows;
--! EndIncluded ledger/runs.sql
--! Included ledger/plan.sql
-- A run's plan is checked when it is stored, in SQL, whoever stores it: its shape and size, and
-- that it names only registered, enabled skills. Once stored it never changes. A run cannot start
-- without a valid plan (the table's runs_plan_before_start).

create or replace function runproof_private.validate_plan(p_plan jsonb) returns void
  language plpgsql stable
  set search_path = pg_catalog
  as $$
declare
  v_step jsonb;
  v_i integer := 0;
  v_skill text;
  v_key text;
begin
  if p_plan is null then
    return;
  end if;
  if jsonb_typeof(p_plan) <> 'object' then
    raise exception 'plan must be a JSON object, got %', jsonb_typeof(p_plan)
      using errcode = 'RPPLN', hint = 'pass {"version": 1, "steps": [{"skill": "...", "input": {...}}]}';
  end if;
  if octet_length(p_plan::text) > 1048576 then
    raise exception 'plan is % bytes; at most 1 MiB is allowed', octet_length(p_plan::text)
      using errcode = 'RPPLN', hint = 'keep large data out of the plan: have a step fetch it';
  end if;
  for v_key in select jsonb_object_keys(p_plan) loop
    if v_key not in ('version', 'planner', 'steps', 'notes') then
      raise exception 'plan has unknown key %', quote_literal(v_key)
        using errcode = 'RPPLN', hint = 'a plan has the keys version, planner, steps and notes';
    end if;
  end loop;
  if p_plan -> 'version' is distinct from '1'::jsonb then
    raise exception 'plan version must be 1'
      using errcode = 'RPPLN', hint = 'set "version": 1';
  end if;
  if p_plan ? 'planner' and jsonb_typeof(p_plan -> 'planner') <> 'string' then
    raise exception 'plan planner must be a string' using errcode = 'RPPLN', hint = 'name the planner, e.g. "builtin"';
  end if;
  if jsonb_typeof(p_plan -> 'steps') is distinct from 'array' or jsonb_array_length(p_plan -> 'steps') = 0 then
    raise exception 'plan must have a non-empty "steps" array'
      using errcode = 'RPPLN', hint = 'add at least one step: {"skill": "...", "input": {...}}';
  end if;
  if jsonb_array_length(p_plan -> 'steps') > 1000 then
    raise exception 'plan has % steps; at most 1000 are allowed', jsonb_array_length(p_plan -> 'steps')
      using errcode = 'RPPLN', hint = 'split the work into several runs';
  end if;
  for v_step in select value from jsonb_array_elements(p_plan -> 'steps') loop
    if jsonb_typeof(v_step) <> 'object' then
      raise exception 'plan step % must be an object', v_i
        using errcode = 'RPPLN', hint = 'each step is {"skill": "...", "input": {...}}';
    end if;
    for v_key in select jsonb_object_keys(v_step) loop
      if v_key not in ('skill', 'input', 'title', 'timeout_ms') then
        raise exception 'plan step % has unknown key %', v_i, quote_literal(v_key)
          using errcode = 'RPPLN', hint = 'a step has the keys skill, input, title and timeout_ms';
      end if;
    end loop;
    if jsonb_typeof(v_step -> 'skill') is distinct from 'string' then
      raise exception 'plan step % has no skill name', v_i
        using errcode = 'RPPLN', hint = 'set "skill" to a registered skill (select name from runproof.skills)';
    end if;
    v_skill := v_step ->> 'skill';
    if not exists (select 1 from runproof.skills s where s.name = v_skill and s.enabled) then
      raise exception 'plan step % names unknown skill %', v_i, quote_literal(v_skill)
        using errcode = 'RPSKL',
              detail = 'registered skills: ' || coalesce((select string_agg(name, ', ' order by name) from runproof.skills where enabled), '(none)'),
              hint = 'use a registered skill; a worker registers its skills in runproof.skills when it starts';
    end if;
    if v_step ? 'input' and jsonb_typeof(v_step -> 'input') <> 'object' then
      raise exception 'plan step % input must be an object', v_i
        using errcode = 'RPPLN', hint = 'pass the skill''s arguments as a JSON object';
    end if;
    -- Deeper input passes the jsonb parser but not the worker, which must serialise it again to
    -- record the step (found by the bad-input catalogue: the attempt failed and was retried forever).
    if v_step ? 'input' and jsonb_path_exists(v_step -> 'input', 'strict $.**{65}') then
      raise exception 'plan step % input is nested more than 64 levels deep', v_i
        using errcode = 'RPPLN', hint = 'flatten the input: at most 64 levels of objects and arrays';
    end if;
    if v_step ? 'timeout_ms' and (jsonb_typeof(v_step -> 'timeout_ms') <> 'number'
        or (v_step ->> 'timeout_ms')::numeric not between 1 and 3600000) then
      raise exception 'plan step % timeout_ms must be a number of milliseconds from 1 to 3600000', v_i
        using errcode = 'RPPLN', hint = 'omit timeout_ms to use the skill''s default';
    end if;
    v_i := v_i + 1;
  end loop;
end
$$;
comment on function runproof_private.validate_plan(jsonb) is
  'Raises RPPLN (malformed plan, including step input nested more than 64 levels deep) or RPSKL (unknown skill) unless the plan is valid and names only registered, enabled skills.';

create or replace function runproof_private.tg_runs__plan_check() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_key text;
begin
  if tg_op = 'UPDATE' then
    v_key := format('tenant_id=%s, id=%s', old.tenant_id, old.id);
    if old.plan is not null then
      if new.plan is distinct from old.plan then
        perform runproof_private.raise_immutable('UPDATE', 'runs', v_key, 'changes the stored plan',
          'a stored plan never changes; enqueue a new run with the new plan');
      end if;
      return new;
    end if;
    if new.plan is not null and old.status <> 'pending' then
      perform runproof_private.raise_immutable('UPDATE', 'runs', v_key, 'stores a plan after planning',
        'a plan can only be stored while the run is pending');
    end if;
  end if;
  if new.plan is not null then
    perform runproof_private.validate_plan(new.plan);
    new.planned_at := coalesce(new.planned_at, now());
  end if;
  return new;
end
$$;
comment on function runproof_private.tg_runs__plan_check() is
  'Trigger: validates a plan when it is stored (shape, size, registered skills) and stamps planned_at; a stored plan never changes, and none is stored after planning. Fires for INSERT and for every UPDATE that sets the plan.';

create or replace trigger tg_runs__plan_check before insert or update of plan on runproof.runs
  for each row execute function runproof_private.tg_runs__plan_check();
alter table runproof.runs enable always trigger tg_runs__plan_check;
insert into runproof_private.guard_descriptions (table_name, trigger_name, blocks, allows) values
  ('runs', 'tg_runs__plan_check', 'storing a malformed plan (RPPLN) or one naming an unregistered skill (RPSKL); changing a stored plan, or storing one after planning (RPIMM)', 'storing a valid plan once, while the run is pending')
on conflict (table_name, trigger_name) do update set blocks = excluded.blocks, allows = excluded.allows;
--! EndIncluded ledger/plan.sql

-- A NaN budget has been refused since the constraint was added; no row can be NaN.
alter table runproof.tenants validate constraint tenants_daily_budget_cents_finite;

-- Each policy decision names the rule that decided, so the incident of a denial is chosen in SQL.
alter table runproof.policy_decisions add column if not exists rule text;
-- Decisions are append-only; a database with earlier decisions gets their rule from their reason.
alter table runproof.policy_decisions disable trigger tg_policy_decisions__append_only;
update runproof.policy_decisions
   set rule = case when reason like 'skill % is not registered%' then 'skill_registered'
                   when reason like 'skill % is not in the agent''s allowed_skills%' then 'allowed_skills'
                   else 'daily_budget' end
 where rule is null;
alter table runproof.policy_decisions enable always trigger tg_policy_decisions__append_only;
alter table runproof.policy_decisions alter column rule set not null;
alter table runproof.policy_decisions drop constraint if exists policy_decisions_rule_check;
alter table runproof.policy_decisions add constraint policy_decisions_rule_check
  check (rule in ('skill_registered', 'allowed_skills', 'daily_budget'));
comment on column runproof.policy_decisions.rule is
  'The rule that decided: skill_registered (the skill must be registered and enabled), allowed_skills (the agent''s allow-list) or daily_budget (the tenant''s budget; also the rule of every allow).';
--! Included execution/policy.sql
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
--! EndIncluded execution/policy.sql

-- end_attempt computes the retry backoff from the failed attempts it counts anyway.
drop function if exists runproof_private.end_attempt(uuid, uuid, uuid, text, text, text, text, jsonb, timestamptz, jsonb);
--! Included execution/attempts.sql
-- Execution attempts: each opens a trace and every attempt ends with its trace sealed (completed,
-- failed or aborted) and the run moved on in the same transaction, with its incident.

create or replace function runproof_private.start_attempt(p_tenant_id uuid, p_run_id uuid, p_metadata jsonb default '{}')
  returns runproof.traces
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_run runproof.runs;
  v_trace runproof.traces;
begin
  update runproof.runs set status = 'running', attempts = attempts + 1
   where tenant_id = p_tenant_id and id = p_run_id and status in ('planned', 'retrying')
  returning * into v_run;
  if not found then
    if not exists (select 1 from runproof.runs where tenant_id = p_tenant_id and id = p_run_id) then
      raise exception 'run % of tenant % not found', p_run_id, p_tenant_id using errcode = 'RPNFD', hint = 'check the run and tenant ids';
    end if;
    raise exception 'run % cannot start an attempt (status %)', p_run_id,
      (select status from runproof.runs where tenant_id = p_tenant_id and id = p_run_id)
      using errcode = 'RPSTS', hint = 'only planned or retrying runs start attempts';
  end if;
  insert into runproof.traces (tenant_id, run_id, attempt, metadata)
  values (p_tenant_id, p_run_id, v_run.attempts, coalesce(p_metadata, '{}'))
  returning * into v_trace;
  return v_trace;
end
$$;
comment on function runproof_private.start_attempt(uuid, uuid, jsonb) is
  'Moves a planned or retrying run to running and opens the trace of its next attempt, in one transaction.';

create or replace function runproof_private.seal_trace(p_tenant_id uuid, p_trace_id uuid, p_status text, p_metadata jsonb default null)
  returns runproof.traces
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_trace runproof.traces;
  v_last_index integer;
  v_last_hash bytea;
begin
  if p_status is null or p_status not in ('completed', 'failed', 'aborted') then
    raise exception 'a trace is sealed as completed, failed or aborted, not %', coalesce(p_status, 'NULL')
      using errcode = 'RPVAL', hint = 'pass completed, failed or aborted';
  end if;
  select * into v_trace from runproof.traces where tenant_id = p_tenant_id and id = p_trace_id for update;
  if not found then
    raise exception 'trace % of tenant % not found', p_trace_id, p_tenant_id using errcode = 'RPNFD', hint = 'check the trace id';
  end if;
  select s.step_index, s.step_hash into v_last_index, v_last_hash
    from runproof.trace_steps s where s.tenant_id = p_tenant_id and s.trace_id = p_trace_id
   order by s.step_index desc limit 1;
  update runproof.traces
     set status = p_status,
         completed_at = clock_timestamp(),
         step_count = coalesce(v_last_index + 1, 0),
         root_hash = coalesce(v_last_hash, runproof_private.genesis_hash(tenant_id, run_id, id)),
         metadata = coalesce(p_metadata, metadata)
   where tenant_id = p_tenant_id and id = p_trace_id
  returning * into v_trace;
  return v_trace;
end
$$;
comment on function runproof_private.seal_trace(uuid, uuid, text, jsonb) is
  'Seals a running trace as completed, failed or aborted, reading step_count and root_hash off its chain.';

create or replace function runproof_private.end_attempt(
  p_tenant_id uuid, p_run_id uuid, p_trace_id uuid, p_trace_status text, p_run_status text,
  p_error text default null, p_incident_kind text default null, p_incident_details jsonb default '{}',
  p_retry_base_ms integer default 1000, p_trace_metadata jsonb default null)
  returns runproof.runs
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v runproof.runs;
  v_failed integer;
begin
  perform runproof_private.seal_trace(p_tenant_id, p_trace_id, p_trace_status, p_trace_metadata);
  if p_run_status = 'retrying' then
    -- Failed attempts count against max_attempts; crashed (aborted) ones do not.
    select count(*) into v_failed from runproof.traces t
     where t.tenant_id = p_tenant_id and t.run_id = p_run_id and t.status = 'failed';
    if v_failed >= (select r.max_attempts from runproof.runs r where r.tenant_id = p_tenant_id and r.id = p_run_id) then
      p_run_status := 'failed';
      p_error := coalesce(p_error, 'step failed') || format(' (no attempts left: %s failed)', v_failed);
      p_incident_kind := 'run_failed';
    end if;
  end if;
  update runproof.runs set status = p_run_status,
         error = case when p_run_status = 'succeeded' then null else coalesce(p_error, error) end
   where tenant_id = p_tenant_id and id = p_run_id
  returning * into v;
  if p_incident_kind is not null then
    insert into runproof.incidents (tenant_id, run_id, trace_id, kind, severity, message, details)
    values (p_tenant_id, p_run_id, p_trace_id, p_incident_kind,
            case when p_incident_kind in ('run_halted', 'budget_exceeded', 'skill_denied') then 'warning' else 'error' end,
            coalesce(p_error, p_incident_kind), coalesce(p_incident_details, '{}'));
  end if;
  if v.status = 'retrying' then
    -- Exponential backoff over the failed attempts (base, 2 x base, 4 x base ...), at most 10 minutes.
    perform runproof_private.add_run_job('execute_run', p_tenant_id, p_run_id,
      now() + make_interval(secs => least(p_retry_base_ms * 2 ^ greatest(coalesce(v_failed, 0) - 1, 0), 600000) / 1000.0));
  end if;
  delete from runproof_private.cancel_requests c where c.tenant_id = p_tenant_id and c.run_id = p_run_id and runproof_private.is_terminal_status(v.status);
  return v;
end
$$;
comment on function runproof_private.end_attempt(uuid, uuid, uuid, text, text, text, text, jsonb, integer, jsonb) is
  'Ends an attempt in one transaction: seals its trace, moves the run on (a retry is scheduled as a new job after an exponential backoff from p_retry_base_ms over the failed attempts, at most 10 minutes; no attempts left fails the run), and records the incident.';
--! EndIncluded execution/attempts.sql

-- Announcements say whether the run is finished (listeners need not know the final statuses).
--! Included execution/notify.sql
-- Live updates: run status changes and recorded steps are announced with NOTIFY on
-- runproof:run:<run id> and runproof:tenant:<tenant id>. A lost announcement costs latency only.

create or replace function runproof_private.tg_runs__notify() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_payload text;
begin
  if tg_op = 'UPDATE' and (new.status, new.next_plan_step, new.attempts) is not distinct from (old.status, old.next_plan_step, old.attempts) then
    return null;
  end if;
  v_payload := json_build_object('event', 'run', 'tenant_id', new.tenant_id, 'run_id', new.id, 'status', new.status,
    'attempts', new.attempts, 'next_plan_step', new.next_plan_step, 'error', new.error,
    'finished', runproof_private.is_terminal_status(new.status))::text;
  perform pg_notify('runproof:run:' || new.id, v_payload);
  perform pg_notify('runproof:tenant:' || new.tenant_id, v_payload);
  return null;
end
$$;
comment on function runproof_private.tg_runs__notify() is 'Trigger: announces a run''s status and progress on channels runproof:run:<id> and runproof:tenant:<id>.';

create or replace function runproof_private.tg_trace_steps__notify() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
begin
  perform pg_notify('runproof:run:' || new.run_id, json_build_object('event', 'step', 'tenant_id', new.tenant_id,
    'run_id', new.run_id, 'trace_id', new.trace_id, 'step_index', new.step_index, 'plan_step', new.plan_step,
    'skill', new.skill, 'status', new.status, 'duration_ms', new.duration_ms, 'cost_cents', new.cost_cents,
    'step_hash', encode(new.step_hash, 'hex'))::text);
  return null;
end
$$;
comment on function runproof_private.tg_trace_steps__notify() is 'Trigger: announces each recorded step on channel runproof:run:<run id>.';

create or replace trigger tg_runs__notify after insert or update on runproof.runs
  for each row execute function runproof_private.tg_runs__notify();
create or replace trigger tg_trace_steps__notify after insert on runproof.trace_steps
  for each row execute function runproof_private.tg_trace_steps__notify();
alter table runproof.runs enable always trigger tg_runs__notify;
alter table runproof.trace_steps enable always trigger tg_trace_steps__notify;
insert into runproof_private.guard_descriptions (table_name, trigger_name, blocks, allows) values
  ('runs', 'tg_runs__notify', 'nothing (announces status changes)', 'everything'),
  ('trace_steps', 'tg_trace_steps__notify', 'nothing (announces recorded steps)', 'everything')
on conflict (table_name, trigger_name) do update set blocks = excluded.blocks, allows = excluded.allows;
--! EndIncluded execution/notify.sql

--! Included api/access.sql
-- Who may see and do what. Tenants (runproof_tenant, the role of every GraphQL request) read their
-- own rows through row level security and write only through SQL functions; runproof_authenticator
-- (PostGraphile's login) may only look up an API key. Everything else belongs to the owner.
-- This file states every privilege: it first revokes all, so what is not granted here is not granted.

revoke all on all functions in schema runproof, runproof_private from public, runproof_tenant, runproof_authenticator;
revoke all on all tables in schema runproof, runproof_private from public, runproof_tenant, runproof_authenticator;
revoke all on schema runproof, runproof_private from public, runproof_tenant, runproof_authenticator;

-- Functions created later are not executable by PUBLIC either (Postgres's default is that they are).
alter default privileges revoke execute on functions from public;

grant usage on schema runproof to runproof_tenant;
-- runproof_authenticator is NOINHERIT, so runproof_tenant's USAGE does not reach it; it needs its own
-- to call runproof_private.authenticate (its only grant in there).
grant usage on schema runproof_private to runproof_tenant, runproof_authenticator;

--------------------------------------------------------------------------------
-- Row level security: every exposed table, a tenant sees its own rows only
--------------------------------------------------------------------------------

alter table runproof.tenants enable row level security;
alter table runproof.agents enable row level security;
alter table runproof.skills enable row level security;
alter table runproof.runs enable row level security;
alter table runproof.traces enable row level security;
alter table runproof.policy_decisions enable row level security;
alter table runproof.trace_steps enable row level security;
alter table runproof.incidents enable row level security;
alter table runproof.agent_memory enable row level security;
alter table runproof_private.api_keys enable row level security;

drop policy if exists select_own on runproof.tenants;
create policy select_own on runproof.tenants for select to runproof_tenant using (id = (select runproof_private.current_tenant_id()));
drop policy if exists select_all on runproof.skills;
create policy select_all on runproof.skills for select to runproof_tenant using (true);
drop policy if exists select_own on runproof.agents;
create policy select_own on runproof.agents for select to runproof_tenant using (tenant_id = (select runproof_private.current_tenant_id()));
drop policy if exists select_own on runproof.runs;
create policy select_own on runproof.runs for select to runproof_tenant using (tenant_id = (select runproof_private.current_tenant_id()));
drop policy if exists select_own on runproof.traces;
create policy select_own on runproof.traces for select to runproof_tenant using (tenant_id = (select runproof_private.current_tenant_id()));
drop policy if exists select_own on runproof.policy_decisions;
create policy select_own on runproof.policy_decisions for select to runproof_tenant using (tenant_id = (select runproof_private.current_tenant_id()));
drop policy if exists select_own on runproof.trace_steps;
create policy select_own on runproof.trace_steps for select to runproof_tenant using (tenant_id = (select runproof_private.current_tenant_id()));
drop policy if exists select_own on runproof.incidents;
create policy select_own on runproof.incidents for select to runproof_tenant using (tenant_id = (select runproof_private.current_tenant_id()));
drop policy if exists select_own on runproof.agent_memory;
create policy select_own on runproof.agent_memory for select to runproof_tenant using (tenant_id = (select runproof_private.current_tenant_id()));

--------------------------------------------------------------------------------
-- Tenants read; every write goes through the SQL functions below
--------------------------------------------------------------------------------

grant select on runproof.tenants, runproof.agents, runproof.skills, runproof.runs, runproof.traces,
  runproof.policy_decisions, runproof.trace_steps, runproof.incidents, runproof.agent_memory to runproof_tenant;

-- The API: what a GraphQL request may call.
grant execute on function
  runproof.current_tenant(),
  runproof.create_agent(text, text, text[], uuid),
  runproof.enqueue_run(uuid, uuid, text, text, jsonb, text, integer),
  runproof.cancel_run(uuid, text, uuid),
  runproof.archive_trace(uuid, uuid),
  runproof.verify_trace(uuid),
  runproof.run_proof(uuid, uuid),
  runproof.runs_proof(runproof.runs),
  runproof.traces_proof(runproof.traces),
  runproof.runs_root_hash(runproof.runs),
  runproof.traces_root_hash(runproof.traces),
  runproof.trace_steps_prev_hash(runproof.trace_steps),
  runproof.trace_steps_step_hash(runproof.trace_steps),
  runproof.runs_plan_step_count(runproof.runs),
  runproof.runs_is_finished(runproof.runs)
  to runproof_tenant;

-- What those call without SECURITY DEFINER: the request's tenant, hashing and verification.
grant execute on function
  runproof_private.current_tenant_id(),
  runproof_private.hex(bytea),
  runproof_private.is_terminal_status(text),
  runproof_private.genesis_hash(uuid, uuid, uuid),
  runproof_private.step_canonical(runproof.trace_steps),
  runproof_private.step_hash(bytea, bytea),
  runproof_private.run_canonical(runproof.runs),
  runproof_private.run_root_hash(uuid, uuid, bytea[]),
  runproof_private.chain_faults(uuid, uuid, bytea, integer),
  runproof_private.chain_faults_parallel(uuid, uuid, bytea),
  runproof_private.verify_trace_row(runproof.traces),
  runproof_private.run_proof_chain(uuid, uuid),
  runproof_private.guard_status(timestamptz, timestamptz)
  to runproof_tenant;

-- PostGraphile's login maps an API key to its tenant, and nothing else.
grant execute on function runproof_private.authenticate(text) to runproof_authenticator;
--! EndIncluded api/access.sql
