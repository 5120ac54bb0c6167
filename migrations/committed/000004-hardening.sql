--! Previous: sha1:a1579b3b6c44f497562dd9d26a21e2f9460f3969
--! Hash: sha1:bba737daf4d0af70209afc89b7c441719dbd6e76
--! Message: hardening

-- Fixes found by the tests: "blank" must mean no visible character, not just no spaces
-- (btrim() trims only spaces, so "  \n" passed as a goal); a direct cancel clears its request.
-- Idempotent: graphile-migrate re-runs current.sql on every save in `watch` mode.

create or replace function runproof_private.is_blank(p text) returns boolean
  language sql immutable parallel safe
  as $$ select p is null or p ~ '^[\s\u00a0\u1680\u2000-\u200b\u2028\u2029\u202f\u205f\u3000\ufeff]*$' $$;
comment on function runproof_private.is_blank(text) is
  'Whether a text has no visible character: NULL, empty, or only white space (ASCII or Unicode spaces, zero-width space, BOM).';

alter table runproof.runs drop constraint if exists runs_goal_valid;
alter table runproof.runs add constraint runs_goal_valid check (not runproof_private.is_blank(goal) and length(goal) <= 10000);
alter table runproof.tenants drop constraint if exists tenants_name_check;
alter table runproof.tenants drop constraint if exists tenants_name_valid;
alter table runproof.tenants add constraint tenants_name_valid check (not runproof_private.is_blank(name) and length(name) <= 200);
alter table runproof.agents drop constraint if exists agents_name_check;
alter table runproof.agents drop constraint if exists agents_name_valid;
alter table runproof.agents add constraint agents_name_valid check (not runproof_private.is_blank(name) and length(name) <= 200);

create or replace function runproof_private.create_tenant(p_name text, p_daily_budget_cents numeric default 10000)
  returns runproof.tenants
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v runproof.tenants;
begin
  if runproof_private.is_blank(p_name) then
    raise exception 'tenant name must not be blank' using errcode = 'RPVAL', hint = 'pass a name, e.g. ''acme''';
  end if;
  if length(p_name) > 200 then
    raise exception 'tenant name is % characters long; at most 200 are allowed', length(p_name) using errcode = 'RPVAL', hint = 'use a shorter name';
  end if;
  if p_daily_budget_cents is null or p_daily_budget_cents < 0 then
    raise exception 'daily budget must be zero or more cents, got %', p_daily_budget_cents using errcode = 'RPVAL', hint = 'pass a budget in cents, e.g. 10000 for $100 a day';
  end if;
  insert into runproof.tenants (name, daily_budget_cents) values (btrim(p_name), p_daily_budget_cents) returning * into v;
  return v;
exception when unique_violation then
  raise exception 'a tenant named % already exists', quote_literal(btrim(p_name)) using errcode = 'RPVAL', hint = 'pick another name, or use the existing tenant (runproof tenant list)';
end
$$;
comment on function runproof_private.create_tenant(text, numeric) is 'Creates a tenant with a daily budget in cents.';

create or replace function runproof.create_agent(name text, description text default '', allowed_skills text[] default null, tenant_id uuid default null)
  returns runproof.agents
  language plpgsql volatile security definer
  set search_path = pg_catalog
  as $$
#variable_conflict use_column
declare
  v_tenant uuid := runproof_private.request_tenant(create_agent.tenant_id);
  v runproof.agents;
  v_unknown text;
begin
  if runproof_private.is_blank(create_agent.name) then
    raise exception 'agent name must not be blank' using errcode = 'RPVAL', hint = 'pass a name, e.g. ''researcher''';
  end if;
  if length(create_agent.name) > 200 then
    raise exception 'agent name is % characters long; at most 200 are allowed', length(create_agent.name) using errcode = 'RPVAL', hint = 'use a shorter name';
  end if;
  if not exists (select 1 from runproof.tenants t where t.id = v_tenant) then
    raise exception 'tenant % not found', v_tenant using errcode = 'RPNFD', hint = 'create the tenant first (runproof tenant create)';
  end if;
  select string_agg(s, ', ') into v_unknown from unnest(create_agent.allowed_skills) s
   where not exists (select 1 from runproof.skills k where k.name = s);
  if v_unknown is not null then
    raise exception 'allowed_skills names unknown skills: %', v_unknown using errcode = 'RPSKL', hint = 'list skills with runproof skills list';
  end if;
  insert into runproof.agents (tenant_id, name, description, allowed_skills)
  values (v_tenant, btrim(create_agent.name), coalesce(create_agent.description, ''), create_agent.allowed_skills)
  returning * into v;
  return v;
exception when unique_violation then
  raise exception 'an agent named % already exists for this tenant', quote_literal(btrim(create_agent.name)) using errcode = 'RPVAL', hint = 'pick another name';
end
$$;
comment on function runproof.create_agent(text, text, text[], uuid) is
  'Creates an agent for the request''s tenant (or tenant_id from SQL). allowed_skills, if given, limits the skills its runs may call.';

create or replace function runproof.enqueue_run(
  tenant_id uuid, agent_id uuid, goal text, origin_system_id text,
  plan jsonb default null, idempotency_key text default null, max_attempts integer default 3)
  returns runproof.runs
  language plpgsql volatile security definer
  set search_path = pg_catalog
  as $$
#variable_conflict use_column
declare
  v_tenant uuid := runproof_private.request_tenant(enqueue_run.tenant_id);
  v_run runproof.runs;
begin
  if not exists (select 1 from runproof.tenants t where t.id = v_tenant) then
    raise exception 'tenant % not found', v_tenant using errcode = 'RPNFD', hint = 'create the tenant first (runproof tenant create)';
  end if;
  if enqueue_run.idempotency_key is not null then
    if runproof_private.is_blank(enqueue_run.idempotency_key) or length(enqueue_run.idempotency_key) > 200 then
      raise exception 'idempotency_key must be 1 to 200 non-blank characters' using errcode = 'RPVAL', hint = 'omit it, or pass a stable id of the request, e.g. its UUID';
    end if;
    select * into v_run from runproof.runs r where r.tenant_id = v_tenant and r.idempotency_key = enqueue_run.idempotency_key;
    if found then
      if (v_run.agent_id, v_run.goal) is distinct from (enqueue_run.agent_id, enqueue_run.goal) then
        raise exception 'idempotency_key % was already used for a different run', quote_literal(enqueue_run.idempotency_key)
          using errcode = 'RPIDM', detail = 'existing run ' || v_run.id, hint = 'use a new key for a new request';
      end if;
      return v_run;
    end if;
  end if;
  if enqueue_run.agent_id is null then
    raise exception 'agent_id is required' using errcode = 'RPVAL', hint = 'pass one of the tenant''s agents (runproof agent list)';
  end if;
  -- Another tenant's agent is reported exactly like a missing one: ids do not leak across tenants.
  if not exists (select 1 from runproof.agents a where a.tenant_id = v_tenant and a.id = enqueue_run.agent_id) then
    raise exception 'agent % not found for tenant %', enqueue_run.agent_id, v_tenant
      using errcode = 'RPNFD', hint = 'pass one of the tenant''s agents (runproof agent list), or create one';
  end if;
  if runproof_private.is_blank(enqueue_run.goal) then
    raise exception 'goal must not be blank' using errcode = 'RPVAL', hint = 'say what the run is for, e.g. ''fetch the status page''';
  end if;
  if length(enqueue_run.goal) > 10000 then
    raise exception 'goal is % characters long; at most 10000 are allowed', length(enqueue_run.goal) using errcode = 'RPVAL', hint = 'put large inputs in the plan, not the goal';
  end if;
  if enqueue_run.max_attempts is null or enqueue_run.max_attempts not between 1 and 20 then
    raise exception 'max_attempts must be from 1 to 20, got %', enqueue_run.max_attempts using errcode = 'RPVAL', hint = 'omit it for the default of 3';
  end if;
  -- origin_system_id and the plan are checked by the table's triggers, with their own messages.
  insert into runproof.runs (tenant_id, agent_id, goal, origin_system_id, plan, status, idempotency_key, max_attempts)
  values (v_tenant, enqueue_run.agent_id, enqueue_run.goal, enqueue_run.origin_system_id, enqueue_run.plan,
          case when enqueue_run.plan is null then 'pending' else 'planned' end, enqueue_run.idempotency_key, enqueue_run.max_attempts)
  on conflict (tenant_id, idempotency_key) where idempotency_key is not null do nothing
  returning * into v_run;
  if not found then
    -- A concurrent enqueue with the same key won the race: return its run.
    select * into v_run from runproof.runs r where r.tenant_id = v_tenant and r.idempotency_key = enqueue_run.idempotency_key;
    return v_run;
  end if;
  perform runproof_private.add_run_job(case when v_run.plan is null then 'plan_run' else 'execute_run' end, v_tenant, v_run.id);
  return v_run;
end
$$;
comment on function runproof.enqueue_run(uuid, uuid, text, text, jsonb, text, integer) is
  'The only way to create a run. Inserts it and adds its job in the caller''s transaction (a rollback leaves neither). Without a plan the run is planned first. The same idempotency_key for the same tenant returns the same run. In a GraphQL request tenant_id may be omitted: the API key decides.';

create or replace function runproof.cancel_run(run_id uuid, reason text default 'cancelled by request', tenant_id uuid default null)
  returns runproof.runs
  language plpgsql volatile security definer
  set search_path = pg_catalog
  as $$
#variable_conflict use_column
declare
  v_tenant uuid := runproof_private.request_tenant(cancel_run.tenant_id);
  v runproof.runs;
begin
  select r.* into v from runproof.runs r where r.tenant_id = v_tenant and r.id = cancel_run.run_id for update;
  if not found then
    raise exception 'run % not found for tenant %', cancel_run.run_id, v_tenant using errcode = 'RPNFD', hint = 'check the run id (runproof runs list)';
  end if;
  if runproof_private.is_terminal_status(v.status) then
    raise exception 'run % is already %', v.id, v.status using errcode = 'RPSTS', hint = 'only a run that has not finished can be cancelled';
  end if;
  if v.status = 'running' then
    insert into runproof_private.cancel_requests (tenant_id, run_id, reason)
    values (v_tenant, v.id, coalesce(cancel_run.reason, 'cancelled by request'))
    on conflict do nothing;
    perform pg_notify('runproof:run:' || v.id, json_build_object('event', 'cancel_requested', 'run_id', v.id)::text);
    return v;
  end if;
  update runproof.runs r set status = 'cancelled', error = coalesce(cancel_run.reason, 'cancelled by request')
   where r.tenant_id = v_tenant and r.id = v.id returning * into v;
  delete from runproof_private.cancel_requests c where c.tenant_id = v_tenant and c.run_id = v.id;
  perform graphile_worker.remove_job('plan:' || v.id);
  perform graphile_worker.remove_job('exec:' || v.id);
  return v;
end
$$;
comment on function runproof.cancel_run(uuid, text, uuid) is
  'Cancels a run: at once if it is not executing, else the worker stops it between steps (its trace sealed as aborted).';

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

  v_changed := array_remove(runproof_private.changed_columns(to_jsonb(old), to_jsonb(new)), 'updated_at');
  if v_changed && array['tenant_id', 'id', 'agent_id', 'goal', 'origin_system_id', 'idempotency_key', 'created_at', 'max_attempts'] then
    perform runproof_private.raise_immutable('UPDATE', 'runs', v_key,
      'changes ' || array_to_string(v_changed, ', '),
      'tenant, agent, goal, origin_system_id, idempotency_key and max_attempts never change; enqueue a new run instead');
  end if;
  if old.plan is not null and new.plan is distinct from old.plan then
    perform runproof_private.raise_immutable('UPDATE', 'runs', v_key, 'changes the stored plan',
      'a stored plan never changes; enqueue a new run with the new plan');
  end if;
  if old.plan is null and new.plan is not null and old.status <> 'pending' then
    perform runproof_private.raise_immutable('UPDATE', 'runs', v_key, 'stores a plan after planning',
      'a plan can only be stored while the run is pending');
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
  'Trigger: runs are never deleted; identity, goal, origin and a stored plan never change; status follows the state machine; progress only moves forward while running; a final status seals trace_count and root_hash and freezes the run.';

create or replace function runproof_private.tg_trace_steps__chain() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_trace record;
  v_last_index integer;
  v_last_hash bytea;
  v_expected integer;
  v_decision text;
begin
  if new.prev_hash is not null or new.step_hash is not null then
    raise exception 'prev_hash and step_hash are computed by the database'
      using errcode = 'RPCHN', hint = 'omit prev_hash and step_hash from the INSERT';
  end if;
  -- Serialize appends to one trace: the row lock is held until the transaction ends.
  select t.run_id, t.status, t.archived_at into v_trace
    from runproof.traces t where t.tenant_id = new.tenant_id and t.id = new.trace_id
    for no key update;
  if not found then
    raise exception 'trace % of tenant % not found', new.trace_id, new.tenant_id
      using errcode = 'RPNFD', hint = 'open a trace with runproof_private.start_attempt first';
  end if;
  if v_trace.status <> 'running' then
    raise exception 'trace % is sealed (%); steps cannot be appended', new.trace_id, v_trace.status
      using errcode = 'RPCHN', hint = 'a sealed trace is final; a new attempt gets a new trace';
  end if;
  if v_trace.run_id <> new.run_id then
    raise exception 'trace % belongs to run %, not %', new.trace_id, v_trace.run_id, new.run_id
      using errcode = 'RPCHN', hint = 'record the step on a trace of its own run';
  end if;
  select s.step_index, s.step_hash into v_last_index, v_last_hash
    from runproof.trace_steps s
   where s.tenant_id = new.tenant_id and s.trace_id = new.trace_id
   order by s.step_index desc limit 1;
  v_expected := coalesce(v_last_index + 1, 0);
  if new.step_index <> v_expected then
    raise exception '% step index %: trace % expects step %',
      case when new.step_index < v_expected then 'duplicate' else 'gap at' end, new.step_index, new.trace_id, v_expected
      using errcode = 'RPCHN', hint = 'append steps in order, 0, 1, 2, ... (runproof_private.record_step does this)';
  end if;
  -- Foreign keys do not fire under session_replication_role = replica; this trigger always does.
  select d.decision into v_decision from runproof.policy_decisions d
   where d.tenant_id = new.tenant_id and d.trace_id = new.trace_id and d.step_index = new.step_index;
  if not found then
    raise exception 'step % of trace % has no policy decision', new.step_index, new.trace_id
      using errcode = 'RPCHN', hint = 'record the decision first (runproof_private.decide_step): enforcement cannot be skipped';
  end if;
  if v_decision is distinct from new.policy_decision then
    raise exception 'step % of trace % says policy_decision %, but the decision was %', new.step_index, new.trace_id, new.policy_decision, v_decision
      using errcode = 'RPCHN', hint = 'record the step with the decision that was taken';
  end if;
  new.recorded_at := clock_timestamp();
  new.prev_hash := coalesce(v_last_hash, runproof_private.genesis_hash(new.tenant_id, new.run_id, new.trace_id));
  new.step_hash := runproof_private.step_hash(new.prev_hash, runproof_private.step_canonical(new));
  return new;
end
$$;
comment on function runproof_private.tg_trace_steps__chain() is
  'Trigger: appends a step to its trace''s chain. Serializes appends per trace, rejects gaps, duplicates, appends to sealed traces and client-supplied hashes, and computes prev_hash and step_hash.';

create or replace function runproof_private.tg_policy_decisions__check() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
begin
  if not exists (select 1 from runproof.traces t where t.tenant_id = new.tenant_id and t.id = new.trace_id
                 and t.run_id = new.run_id and t.status = 'running') then
    raise exception 'trace % is not a running trace of run %', new.trace_id, new.run_id
      using errcode = 'RPCHN', hint = 'decide steps only for the running attempt of a run';
  end if;
  if new.step_index <> coalesce((select max(s.step_index) + 1 from runproof.trace_steps s
                                  where s.tenant_id = new.tenant_id and s.trace_id = new.trace_id), 0) then
    raise exception 'a decision for step % of trace % is not for its next step', new.step_index, new.trace_id
      using errcode = 'RPCHN', hint = 'decide each step just before it runs';
  end if;
  return new;
end
$$;
comment on function runproof_private.tg_policy_decisions__check() is 'Trigger: a policy decision is taken only for the next step of a running trace.';

create or replace function runproof_private.tg_traces__guard() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_key text;
  v_changed text[];
  v_last_index integer;
  v_last_hash bytea;
begin
  v_key := format('tenant_id=%s, id=%s', old.tenant_id, old.id);
  if tg_op = 'DELETE' then
    perform runproof_private.raise_immutable('DELETE', 'traces', v_key, 'traces are never deleted',
      'archive the trace instead (runproof.archive_trace)');
  end if;
  v_changed := runproof_private.changed_columns(to_jsonb(old), to_jsonb(new));

  -- Archival: archived_at from NULL to a timestamp, nothing else.
  if v_changed = array['archived_at'] and old.archived_at is null and new.archived_at is not null and old.status <> 'running' then
    return new;
  end if;

  -- Completion and seal: running -> completed | failed | aborted, with the seal set once.
  if old.status = 'running' and new.status in ('completed', 'failed', 'aborted')
     and v_changed <@ array['status', 'completed_at', 'step_count', 'root_hash', 'metadata']
     and new.completed_at is not null and new.step_count is not null and new.root_hash is not null then
    select s.step_index, s.step_hash into v_last_index, v_last_hash
      from runproof.trace_steps s
     where s.tenant_id = old.tenant_id and s.trace_id = old.id
     order by s.step_index desc limit 1;
    if new.step_count <> coalesce(v_last_index + 1, 0)
       or new.root_hash <> coalesce(v_last_hash, runproof_private.genesis_hash(old.tenant_id, old.run_id, old.id)) then
      raise exception 'seal of trace % does not match its chain: step_count % (chain has %), root_hash % (chain root %)',
        old.id, new.step_count, coalesce(v_last_index + 1, 0), runproof_private.hex(new.root_hash),
        runproof_private.hex(coalesce(v_last_hash, runproof_private.genesis_hash(old.tenant_id, old.run_id, old.id)))
        using errcode = 'RPSEL', hint = 'seal traces with runproof_private.seal_trace, which reads the seal off the chain';
    end if;
    return new;
  end if;

  perform runproof_private.raise_immutable('UPDATE', 'traces', v_key,
    format('status %s -> %s, changes %s', old.status, new.status, array_to_string(v_changed, ', ')),
    'a trace only changes at its seal (running -> completed|failed|aborted, setting completed_at, step_count, root_hash and optionally metadata) and at archival (archived_at NULL -> timestamp)');
  return null;
end
$$;
comment on function runproof_private.tg_traces__guard() is
  'Trigger: traces are never deleted; the only changes are the seal (running -> completed|failed|aborted with completed_at, step_count and root_hash checked against the chain, metadata optional) and archival (archived_at set once).';

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

create or replace function runproof_private.tg_runs__origin_check() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v text := new.origin_system_id;
  v_hint constant text := 'pass origin_system_id: the identifier of the system creating the run, e.g. ''runproof-cli'', ''graphql'' or your service''s name';
begin
  if v is null then
    raise exception 'null value in column "origin_system_id" of relation "runs" violates not-null constraint'
      using errcode = 'not_null_violation', schema = 'runproof', table = 'runs', column = 'origin_system_id',
            detail = 'origin_system_id has no default on purpose: every run must say which system created it.', hint = v_hint;
  elsif runproof_private.is_blank(v) then
    raise exception 'origin_system_id must not be blank'
      using errcode = 'RPOBL', schema = 'runproof', table = 'runs', column = 'origin_system_id', hint = v_hint;
  elsif length(v) > 128 then
    raise exception 'origin_system_id is % characters long; at most 128 are allowed', length(v)
      using errcode = 'RPOLN', schema = 'runproof', table = 'runs', column = 'origin_system_id',
            hint = 'use a short identifier of the system, not a description';
  elsif v ~ '^[\s\u00a0\u1680\u2000-\u200b\u2028\u2029\u202f\u205f\u3000\ufeff]|[\s\u00a0\u1680\u2000-\u200b\u2028\u2029\u202f\u205f\u3000\ufeff]$'
        or v ~ '[[:cntrl:]\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]' then
    raise exception 'origin_system_id % has leading or trailing whitespace, or control or invisible characters', to_json(v)::text
      using errcode = 'RPOCH', schema = 'runproof', table = 'runs', column = 'origin_system_id',
            hint = 'trim the value and remove control characters';
  elsif lower(v) = any (runproof_private.reserved_origin_system_ids()) then
    raise exception 'origin_system_id % is reserved and cannot be used for new runs', quote_literal(v)
      using errcode = 'RPORS', schema = 'runproof', table = 'runs', column = 'origin_system_id',
            detail = 'reserved values: ' || array_to_string(runproof_private.reserved_origin_system_ids(), ', '),
            hint = v_hint;
  end if;
  return new;
end
$$;
comment on function runproof_private.tg_runs__origin_check() is
  'Trigger: rejects a missing, blank, over-long, untrimmed or reserved origin_system_id with a message and a HINT saying what to pass.';

alter table runproof.runs drop constraint if exists runs_origin_system_id_valid;
alter table runproof.runs add constraint runs_origin_system_id_valid check (
  not runproof_private.is_blank(origin_system_id) and length(origin_system_id) <= 128
  and origin_system_id !~ '^[\s\u00a0\u1680\u2000-\u200b\u2028\u2029\u202f\u205f\u3000\ufeff]|[\s\u00a0\u1680\u2000-\u200b\u2028\u2029\u202f\u205f\u3000\ufeff]$'
  and origin_system_id !~ '[[:cntrl:]\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]'
  and lower(origin_system_id) <> all (runproof_private.reserved_origin_system_ids()));

-- Trigger order is by name: the origin check (the commonest mistake) reports first.
do $$
begin
  if exists (select 1 from pg_trigger where tgname = 'tg_runs__insert_guard' and tgrelid = 'runproof.runs'::regclass) then
    alter trigger tg_runs__insert_guard on runproof.runs rename to tg_runs__start_state;
    alter function runproof_private.tg_runs__insert_guard() rename to tg_runs__start_state;
  end if;
end
$$;
comment on function runproof_private.tg_runs__start_state() is
  'Trigger: a new run starts pending (or planned with its plan), with no attempts, progress or seal. Named to fire after the origin and plan checks.';
update runproof_private.guard_descriptions set trigger_name = 'tg_runs__start_state' where trigger_name = 'tg_runs__insert_guard';
update runproof_private.guard_descriptions set blocks = blocks || '; a move to running without a new attempt, or to succeeded before every plan step succeeded and the last attempt completed (RPSTS)'
 where trigger_name = 'tg_runs__guard' and blocks not like '%without a new attempt%';
update runproof_private.guard_descriptions set blocks = 'INSERT with client-supplied hashes, a gap or duplicate index, into a sealed or missing trace, for another run, or without its matching policy decision (RPCHN) - checked even in replica mode, where foreign keys are skipped'
 where trigger_name = 'tg_trace_steps__chain';
update runproof_private.guard_descriptions set blocks = 'INSERT for a trace that is not running, or for any step but the next one (RPCHN)'
 where trigger_name = 'tg_policy_decisions__check';

alter function runproof_private.raise_immutable(text, text, text, text, text) volatile;

create or replace function runproof.run_proof(tenant_id uuid, run_id uuid) returns runproof.proof
  language plpgsql stable
  set search_path = pg_catalog
  as $$
declare
  v_run runproof.runs;
  v_trace runproof.traces;
  v_tp runproof.proof;
  v_result runproof.proof;
  v_roots bytea[] := '{}';
  v_expected_attempt integer := 1;
  v_in_progress boolean := false;
  v_root bytea;
begin
  v_result.integrity_model := 'HASH_CHAIN';
  v_result.tenant_id := run_proof.tenant_id;
  v_result.run_id := run_proof.run_id;
  v_result.trace_count := 0;
  v_result.step_count := 0;
  v_result.chain_length := 0;
  v_result.verified_at := clock_timestamp();

  select * into v_run from runproof.runs r where r.id = run_proof.run_id
   order by (r.tenant_id = run_proof.tenant_id) desc limit 1;
  if not found then
    if exists (select 1 from runproof.traces t where t.run_id = run_proof.run_id and t.tenant_id = run_proof.tenant_id) then
      v_result.verification_status := 'BROKEN';
      v_result.reason := 'the run row is missing but its traces exist';
    else
      v_result.verification_status := 'NOT_FOUND';
      v_result.reason := 'no such run for this tenant';
    end if;
    return v_result;
  end if;
  if v_run.tenant_id <> run_proof.tenant_id
     and not exists (select 1 from runproof.traces t where t.run_id = run_proof.run_id and t.tenant_id = run_proof.tenant_id) then
    v_result.verification_status := 'NOT_FOUND';
    v_result.reason := 'no such run for this tenant';
    return v_result;
  end if;

  for v_trace in select * from runproof.traces t where t.run_id = run_proof.run_id order by t.attempt, t.id loop
    v_result.trace_count := v_result.trace_count + 1;
    if v_result.verification_status is null and v_trace.tenant_id <> v_run.tenant_id then
      v_result.verification_status := 'TAMPERED';
      v_result.first_bad_attempt := v_trace.attempt;
      v_result.first_bad_trace_id := v_trace.id;
      v_result.reason := format('trace %s (attempt %s) belongs to tenant %s but the run to tenant %s',
        v_trace.id, v_trace.attempt, v_trace.tenant_id, v_run.tenant_id);
    end if;
    if v_result.verification_status is null and v_trace.attempt <> v_expected_attempt then
      v_result.verification_status := 'BROKEN';
      v_result.first_bad_attempt := v_expected_attempt;
      v_result.reason := case when v_trace.attempt < v_expected_attempt
        then format('attempt %s appears twice', v_trace.attempt)
        else format('the trace of attempt %s is missing', v_expected_attempt) end;
    end if;
    v_expected_attempt := v_trace.attempt + 1;
    v_tp := runproof_private.verify_trace_row(v_trace);
    v_result.step_count := v_result.step_count + v_tp.step_count;
    -- chain_length counts the steps verified in chain order, up to the first fault.
    if v_result.verification_status is null then
      v_result.chain_length := v_result.chain_length + v_tp.chain_length;
    end if;
    v_roots := v_roots || decode(v_tp.root_hash, 'hex');
    if v_tp.verification_status = 'IN_PROGRESS' then
      v_in_progress := true;
    elsif v_tp.verification_status <> 'VERIFIED' and v_result.verification_status is null then
      v_result.verification_status := v_tp.verification_status;
      v_result.first_bad_attempt := v_tp.first_bad_attempt;
      v_result.first_bad_trace_id := v_tp.first_bad_trace_id;
      v_result.first_bad_step_index := v_tp.first_bad_step_index;
      v_result.reason := format('attempt %s: %s', v_trace.attempt, v_tp.reason);
    end if;
  end loop;

  v_root := runproof_private.run_root_hash(v_run.tenant_id, v_run.id, v_roots);
  v_result.root_hash := runproof_private.hex(v_root);

  if v_result.verification_status is null and v_result.trace_count < v_run.attempts then
    v_result.verification_status := 'BROKEN';
    v_result.first_bad_attempt := v_result.trace_count + 1;
    v_result.reason := format('the run made %s attempts but %s traces exist: the trace of attempt %s is missing',
      v_run.attempts, v_result.trace_count, v_result.trace_count + 1);
  end if;
  if v_result.verification_status is null and runproof_private.is_terminal_status(v_run.status) then
    if v_run.trace_count is distinct from v_result.trace_count then
      v_result.verification_status := 'BROKEN';
      v_result.first_bad_attempt := least(v_run.trace_count, v_result.trace_count) + 1;
      v_result.reason := format('the run seal says %s traces but %s exist', v_run.trace_count, v_result.trace_count);
    elsif v_run.root_hash is distinct from v_root then
      v_result.verification_status := 'TAMPERED';
      v_result.reason := format('the run''s sealed root_hash %s does not match the root recomputed from its traces %s',
        coalesce(runproof_private.hex(v_run.root_hash), 'NULL'), v_result.root_hash);
    end if;
  end if;
  if v_result.verification_status is null and v_run.tenant_id <> run_proof.tenant_id then
    v_result.verification_status := 'TAMPERED';
    v_result.reason := format('the run belongs to tenant %s but its traces to tenant %s', v_run.tenant_id, run_proof.tenant_id);
  end if;
  if v_result.verification_status is null then
    v_result.verification_status := case
      when v_in_progress or not runproof_private.is_terminal_status(v_run.status) then 'IN_PROGRESS'
      else 'VERIFIED' end;
  end if;
  return v_result;
end
$$;
comment on function runproof.run_proof(uuid, uuid) is
  'Recomputes every hash of every trace of a run from the stored columns, checks the attempts are complete and the run seal matches, and returns HASH_CHAIN with VERIFIED, IN_PROGRESS, TAMPERED, BROKEN or NOT_FOUND, the counts, the root, and the first bad step and reason.';

comment on column runproof.proof.root_hash is 'The root of the chain as stored, hex: a trace''s last stored step_hash (its genesis when empty), or for a run the run root over its traces'' roots. It equals the sealed root exactly when the status is VERIFIED.';
comment on column runproof.proof.chain_length is 'How many steps verified, in chain order (attempt by attempt), before the first fault: all of them when VERIFIED.';

-- The guard catalogue also shows the foreign keys, whose internal triggers a superuser can disable
-- too (ALTER TABLE ... DISABLE TRIGGER ALL) and which do not fire in replica mode.
create or replace view runproof_private.guards as
  select * from (
    select coalesce(d.table_name, c.relname::text) as table_name,
           coalesce(d.trigger_name, tg.tgname::text) as trigger_name,
           case when tg.oid is null then 'MISSING'
                else case tg.tgenabled when 'A' then 'always' when 'O' then 'origin only' when 'R' then 'replica only' when 'D' then 'DISABLED' end
           end as enabled,
           d.blocks,
           d.allows,
           pg_get_triggerdef(tg.oid) as definition
      from runproof_private.guard_descriptions d
      full join (select t.oid, t.tgname, t.tgenabled, t.tgrelid from pg_trigger t
                  join pg_class c2 on c2.oid = t.tgrelid
                  join pg_namespace n on n.oid = c2.relnamespace
                 where n.nspname = 'runproof' and not t.tgisinternal) tg
        on tg.tgname = d.trigger_name
      left join pg_class c on c.oid = tg.tgrelid
    union all
    select (select r.relname::text from pg_class r where r.oid = c.conrelid), 'foreign key ' || c.conname,
           case when bool_or(t.tgenabled = 'D') then 'DISABLED' else 'origin only (foreign key)' end,
           'rows whose referenced row is missing (23503)',
           'rows whose referenced row exists; skipped in replica mode, where the guard triggers still check what matters',
           pg_get_constraintdef(c.oid)
      from pg_constraint c
      join pg_namespace n on n.oid = c.connamespace
      join pg_trigger t on t.tgconstraint = c.oid
     where n.nspname = 'runproof' and c.contype = 'f'
     group by c.oid, c.conrelid, c.conname
  ) g
  order by (g.trigger_name like 'foreign key %'), 1, 2;
comment on view runproof_private.guards is
  'Every guard on the ledger tables: the guard triggers (what each blocks and allows, and whether it is live: always, weakened to origin/replica only, DISABLED or MISSING), then the foreign keys and whether their internal triggers are enabled.';

-- Key pattern shared with src/lib/redact.ts (SECRET_KEY_PATTERN_SOURCE); test/redact.test.ts keeps them equal.
create or replace function runproof_private.redact(p jsonb) returns jsonb
  language plpgsql immutable parallel safe
  set search_path = pg_catalog
  as $$
begin
  case jsonb_typeof(p)
    when 'object' then
      return (select coalesce(jsonb_object_agg(e.k,
                case when e.k ~* '^(?:.*authorization|(?:set[-_]?)?cookie|.*api[-_]?key|.*token|.*passw(?:or)?d|.*secret|.*private[-_]?key)$'
                     then '"[REDACTED]"'::jsonb else runproof_private.redact(e.v) end), '{}'::jsonb)
                from jsonb_each(p) e(k, v));
    when 'array' then
      return (select coalesce(jsonb_agg(runproof_private.redact(a.v) order by a.o), '[]'::jsonb)
                from jsonb_array_elements(p) with ordinality a(v, o));
    when 'string' then
      if (p #>> '{}') ~* '\m(bearer|basic)\s+[^\s"'']+' then
        return to_jsonb(regexp_replace(p #>> '{}', '\m(bearer|basic)\s+[^\s"'']+', '\1 [REDACTED]', 'gi'));
      end if;
      return p;
    else
      return p;
  end case;
end
$$;
comment on function runproof_private.redact(jsonb) is
  'Replaces secrets in step input/output before they are hashed: values of keys like authorization, api_key, token, password, secret, cookie, and Bearer/Basic credentials inside strings.';
