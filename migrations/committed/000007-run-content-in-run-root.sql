--! Previous: sha1:9d18e26115bce40e08e94bc0767c6a5190bf2f13
--! Hash: sha1:a414f48aa768d7e5f33dec8d19e8493ebb873b1a
--! Message: run content in run root

-- Proof format v1 binds the run itself: the run root also hashes the run's canonical content
-- (tenant, id, agent, goal, origin, plan, idempotency key, max_attempts, created_at), so an edit
-- of a finished run's goal, plan or origin is caught like an edit of a step. Plus fixes from the
-- DBA review: clearer errors and incident kinds, replica-mode checks for runs and incidents.
-- Idempotent: graphile-migrate re-runs current.sql on every save in `watch` mode.

create or replace function runproof_private.run_canonical(r runproof.runs) returns bytea
  language sql stable parallel safe
  as $$
    select convert_to(jsonb_build_array(
      'runproof.run/1', r.tenant_id, r.id, r.agent_id, r.goal, r.origin_system_id, r.plan,
      r.idempotency_key, r.max_attempts, r.created_at at time zone 'UTC'
    )::text, 'UTF8')
  $$;
comment on function runproof_private.run_canonical(runproof.runs) is
  'The canonical bytes of a run''s own content: the UTF-8 text of a fixed-order JSON array (docs/proof-format.md). Its hash is part of the run root.';

create or replace function runproof_private.run_root_hash(p_tenant_id uuid, p_run_id uuid, p_trace_roots bytea[]) returns bytea
  language sql stable parallel safe
  set search_path = pg_catalog
  as $$
    select sha256(
      sha256(convert_to('runproof.run/1|' || p_tenant_id || '|' || p_run_id, 'UTF8'))
      || coalesce((select sha256(runproof_private.run_canonical(r)) from runproof.runs r
                    where r.tenant_id = p_tenant_id and r.id = p_run_id), sha256(''::bytea))
      || coalesce((select string_agg(x, ''::bytea order by o) from unnest(p_trace_roots) with ordinality u(x, o)), ''::bytea))
  $$;
comment on function runproof_private.run_root_hash(uuid, uuid, bytea[]) is
  'A run''s root: sha256(sha256("runproof.run/1|tenant|run") || sha256(run_canonical) || root_1 || root_2 || ...), trace roots in attempt order. Reads the run row (its content is part of the root).';
grant execute on function runproof_private.run_canonical(runproof.runs) to runproof_tenant;

comment on column runproof.proof.root_hash is 'The root of the chain as stored, hex: a trace''s last stored step_hash (its genesis when empty), or for a run the run root over its content and its traces'' roots. When the status is VERIFIED it equals the sealed root.';

create or replace function runproof_private.visible(p text) returns text
  language plpgsql immutable parallel safe
  set search_path = pg_catalog
  as $$
declare
  v text := '';
  c text;
begin
  -- JSON-quote the value, and spell out the invisible characters JSON leaves as they are.
  foreach c in array regexp_split_to_array(coalesce(p, ''), '') loop
    if c ~ '[\u00a0\u1680\u2000-\u200f\u2028-\u202f\u205f-\u2064\u3000\ufeff]' then
      v := v || '\u' || lpad(to_hex(ascii(c)), 4, '0');
    else
      v := v || c;
    end if;
  end loop;
  return to_json(v)::text;
end
$$;
comment on function runproof_private.visible(text) is 'A value as error messages show it: JSON-quoted, with control and invisible characters spelled out (\u00a0, \u200b, ...).';

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
    raise exception 'origin_system_id % has leading or trailing whitespace, or control or invisible characters', runproof_private.visible(v)
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

update runproof_private.guard_descriptions
   set blocks = 'INSERT with a NULL (23502), blank (RPOBL), over 128 characters (RPOLN), white space at either end (ASCII or Unicode), control or invisible characters (RPOCH) or reserved (RPORS) origin_system_id'
 where trigger_name = 'tg_runs__origin_check';

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
      if (v_run.agent_id, v_run.goal, v_run.origin_system_id, v_run.max_attempts)
           is distinct from (enqueue_run.agent_id, enqueue_run.goal, enqueue_run.origin_system_id, enqueue_run.max_attempts)
         or (enqueue_run.plan is not null and v_run.plan is distinct from enqueue_run.plan) then
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

create or replace function runproof_private.store_plan(p_tenant_id uuid, p_run_id uuid, p_plan jsonb) returns runproof.runs
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v runproof.runs;
begin
  if p_plan is null then
    raise exception 'plan must not be null' using errcode = 'RPPLN', hint = 'pass {"version": 1, "steps": [...]}';
  end if;
  update runproof.runs set plan = p_plan, status = 'planned'
   where tenant_id = p_tenant_id and id = p_run_id and status = 'pending'
  returning * into v;
  if not found then
    if not exists (select 1 from runproof.runs where tenant_id = p_tenant_id and id = p_run_id) then
      raise exception 'run % of tenant % not found', p_run_id, p_tenant_id using errcode = 'RPNFD', hint = 'check the run and tenant ids';
    end if;
    raise exception 'run % is not pending', p_run_id using errcode = 'RPSTS', hint = 'a plan is stored once, while the run is pending';
  end if;
  perform runproof_private.add_run_job('execute_run', p_tenant_id, p_run_id);
  return v;
end
$$;
comment on function runproof_private.store_plan(uuid, uuid, jsonb) is 'Stores a pending run''s plan (validated by the table''s trigger) and adds its execution job, in one transaction.';

create or replace function runproof_private.fail_planning(p_tenant_id uuid, p_run_id uuid, p_error text) returns runproof.runs
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v runproof.runs;
begin
  update runproof.runs set status = 'failed', error = p_error
   where tenant_id = p_tenant_id and id = p_run_id and status = 'pending'
  returning * into v;
  if not found then
    if not exists (select 1 from runproof.runs where tenant_id = p_tenant_id and id = p_run_id) then
      raise exception 'run % of tenant % not found', p_run_id, p_tenant_id using errcode = 'RPNFD', hint = 'check the run and tenant ids';
    end if;
    raise exception 'run % is not pending', p_run_id using errcode = 'RPSTS', hint = 'only a pending run can fail planning';
  end if;
  insert into runproof.incidents (tenant_id, run_id, kind, severity, message, details)
  values (p_tenant_id, p_run_id, 'planning_failed', 'error', p_error, '{}');
  return v;
end
$$;
comment on function runproof_private.fail_planning(uuid, uuid, text) is 'Fails a run whose planning failed, with its incident, in one transaction.';

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
      input, output, error, started_at, finished_at, duration_ms, cost_cents, source, level)
  values (p_tenant_id, p_run_id, p_trace_id, p_step_index, p_plan_step, p_skill, p_status, coalesce(v_decision, 'allow'),
      runproof_private.redact(coalesce(p_input, '{}')), runproof_private.redact(p_output), p_error,
      p_started_at, p_finished_at, p_duration_ms, coalesce(p_cost_cents, 0), p_source, p_level)
  returning * into v_step;
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
  return v_step;
end
$$;
comment on function runproof_private.record_step(uuid, uuid, uuid, integer, integer, text, text, jsonb, jsonb, text, timestamptz, timestamptz, numeric, numeric, text, text) is
  'Records a step (input and output redacted, hashes computed by the chain trigger) and the run''s progress and spend in one transaction.';

create or replace function runproof_private.end_attempt(
  p_tenant_id uuid, p_run_id uuid, p_trace_id uuid, p_trace_status text, p_run_status text,
  p_error text default null, p_incident_kind text default null, p_incident_details jsonb default '{}',
  p_retry_at timestamptz default null, p_trace_metadata jsonb default null)
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
    perform runproof_private.add_run_job('execute_run', p_tenant_id, p_run_id, p_retry_at);
  end if;
  delete from runproof_private.cancel_requests c where c.tenant_id = p_tenant_id and c.run_id = p_run_id and runproof_private.is_terminal_status(v.status);
  return v;
end
$$;
comment on function runproof_private.end_attempt(uuid, uuid, uuid, text, text, text, text, jsonb, timestamptz, jsonb) is
  'Ends an attempt in one transaction: seals its trace, moves the run on (a retry is scheduled as a new job at p_retry_at; no attempts left fails the run), and records the incident.';

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

create or replace function runproof_private.tg_incidents__check() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
begin
  -- Foreign keys do not fire in replica mode; this trigger always does.
  if not exists (select 1 from runproof.runs r where r.tenant_id = new.tenant_id and r.id = new.run_id) then
    raise exception 'run % of tenant % not found', new.run_id, new.tenant_id
      using errcode = 'RPNFD', hint = 'incidents are recorded by the worker for its own runs';
  end if;
  return new;
end
$$;
comment on function runproof_private.tg_incidents__check() is 'Trigger: an incident belongs to an existing run of its tenant (checked even in replica mode).';
drop trigger if exists tg_incidents__check on runproof.incidents;
create trigger tg_incidents__check before insert on runproof.incidents
  for each row execute function runproof_private.tg_incidents__check();
alter table runproof.incidents enable always trigger tg_incidents__check;
delete from runproof_private.guard_descriptions where trigger_name = 'tg_incidents__check';
insert into runproof_private.guard_descriptions values
  ('incidents', 'tg_incidents__check', 'INSERT for a run that does not exist (RPNFD), even in replica mode', 'INSERT for an existing run');
update runproof_private.guard_descriptions
   set blocks = 'INSERT of a run that is not pending/planned, or already has attempts, progress or a seal (RPSTS), or whose agent is not its tenant''s (RPNFD, even in replica mode)'
 where trigger_name = 'tg_runs__start_state';
