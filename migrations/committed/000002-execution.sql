--! Previous: sha1:eb7d3c7f8a5da66be284c0197ac99dabd8412e91
--! Hash: sha1:44f10111912a406e412d2ec97a0ddfb62324a1cb
--! Message: execution

-- RunProof execution: the one run-creation path, planning, policy, step recording, attempts,
-- cancellation, crash recovery, live notifications, tenants/keys/agents, agent memory.
-- Idempotent: graphile-migrate re-runs current.sql on every save in `watch` mode.

drop table if exists runproof.agent_memory cascade;
drop table if exists runproof_private.tenant_daily_spend cascade;
drop table if exists runproof_private.cancel_requests cascade;
drop table if exists runproof_private.worker_heartbeats cascade;
delete from runproof_private.guard_descriptions where trigger_name in ('tg_runs__notify', 'tg_trace_steps__notify');

alter table runproof.skills add column if not exists cost_cents numeric(14, 4) not null default 0 check (cost_cents >= 0);
comment on column runproof.skills.cost_cents is 'Estimated cost of one call, in cents: the budget policy checks it before the call.';

--------------------------------------------------------------------------------
-- Tables
--------------------------------------------------------------------------------

create table runproof.agent_memory (
  tenant_id uuid not null,
  agent_id uuid not null,
  key text not null check (length(key) between 1 and 200),
  value jsonb not null,
  updated_at timestamptz not null default now(),
  updated_by_run_id uuid,
  primary key (tenant_id, agent_id, key),
  foreign key (tenant_id, agent_id) references runproof.agents (tenant_id, id)
);
comment on table runproof.agent_memory is 'Per-agent key/value memory written and read by the memory_put and memory_get skills. Not part of the ledger: the steps that wrote it are.';
comment on column runproof.agent_memory.tenant_id is 'The tenant.';
comment on column runproof.agent_memory.agent_id is 'The agent whose memory this is.';
comment on column runproof.agent_memory.key is 'The key.';
comment on column runproof.agent_memory.value is 'The value (JSON).';
comment on column runproof.agent_memory.updated_at is 'When it was last written.';
comment on column runproof.agent_memory.updated_by_run_id is 'The run whose step last wrote it.';
alter table runproof.agent_memory enable row level security;
create policy select_own on runproof.agent_memory for select to runproof_tenant
  using (tenant_id = (select runproof_private.current_tenant_id()));
grant select on runproof.agent_memory to runproof_tenant;

create table runproof_private.tenant_daily_spend (
  tenant_id uuid not null references runproof.tenants,
  day date not null,
  spent_cents numeric(14, 4) not null default 0 check (spent_cents >= 0),
  primary key (tenant_id, day)
);
comment on table runproof_private.tenant_daily_spend is 'What each tenant''s recorded steps cost per UTC day; the budget policy reads it. Maintained by record_step in the step''s own transaction.';
comment on column runproof_private.tenant_daily_spend.tenant_id is 'The tenant.';
comment on column runproof_private.tenant_daily_spend.day is 'The UTC day.';
comment on column runproof_private.tenant_daily_spend.spent_cents is 'The sum of cost_cents of the steps recorded that day.';

create table runproof_private.cancel_requests (
  tenant_id uuid not null,
  run_id uuid not null,
  reason text not null,
  requested_at timestamptz not null default now(),
  primary key (tenant_id, run_id),
  foreign key (tenant_id, run_id) references runproof.runs (tenant_id, id)
);
comment on table runproof_private.cancel_requests is 'Cancellation requested for a running run; the worker stops it before its next step.';
comment on column runproof_private.cancel_requests.tenant_id is 'The tenant.';
comment on column runproof_private.cancel_requests.run_id is 'The run to stop.';
comment on column runproof_private.cancel_requests.reason is 'Why, as given to cancel_run.';
comment on column runproof_private.cancel_requests.requested_at is 'When cancel_run was called.';

create table runproof_private.worker_heartbeats (
  worker_id text primary key,
  process_id text not null,
  hostname text not null default '',
  pid integer,
  first_seen_at timestamptz not null default now(),
  last_seen_at timestamptz not null default now()
);
create index worker_heartbeats_process_idx on runproof_private.worker_heartbeats (process_id);
comment on table runproof_private.worker_heartbeats is 'Liveness of graphile-worker workers. A worker whose heartbeat is stale has its jobs force-unlocked so another can resume them.';
comment on column runproof_private.worker_heartbeats.worker_id is 'graphile-worker''s worker id (jobs.locked_by).';
comment on column runproof_private.worker_heartbeats.process_id is 'The worker process that runs it (one process runs several workers).';
comment on column runproof_private.worker_heartbeats.hostname is 'The host of that process.';
comment on column runproof_private.worker_heartbeats.pid is 'The OS process id.';
comment on column runproof_private.worker_heartbeats.first_seen_at is 'When the worker first took a job.';
comment on column runproof_private.worker_heartbeats.last_seen_at is 'The last heartbeat of its process.';

--------------------------------------------------------------------------------
-- Request context, tenants, API keys, agents
--------------------------------------------------------------------------------

create or replace function runproof_private.request_tenant(p_tenant_id uuid) returns uuid
  language plpgsql stable
  set search_path = pg_catalog
  as $$
declare
  v uuid := runproof_private.current_tenant_id();
begin
  if v is not null then
    if p_tenant_id is not null and p_tenant_id <> v then
      raise exception 'tenant % is not the tenant of this request', p_tenant_id
        using errcode = '42501', hint = 'omit tenant_id, or use an API key of that tenant';
    end if;
    return v;
  end if;
  -- A tenant-role session with no tenant set is an unauthenticated request, not an admin.
  if current_setting('role') = 'runproof_tenant' then
    raise exception 'this request has no tenant' using errcode = '42501', hint = 'authenticate with an API key';
  end if;
  if p_tenant_id is null then
    raise exception 'tenant_id is required' using errcode = 'RPVAL', hint = 'pass the tenant''s id (runproof tenant list)';
  end if;
  return p_tenant_id;
end
$$;
comment on function runproof_private.request_tenant(uuid) is
  'The tenant an operation acts for: the API key''s tenant in a GraphQL request (a different tenant_id is refused with 42501), else the tenant_id given.';

create or replace function runproof_private.create_tenant(p_name text, p_daily_budget_cents numeric default 10000)
  returns runproof.tenants
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v runproof.tenants;
begin
  if p_name is null or btrim(p_name) = '' then
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

create or replace function runproof_private.create_api_key(p_tenant_id uuid, p_label text default '')
  returns table (key_id uuid, api_key text, key_prefix text)
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_prefix text := 'rp_' || substr(replace(gen_random_uuid()::text, '-', ''), 1, 8);
  -- Two v4 UUIDs: 244 random bits from the server's strong random source.
  v_key text := v_prefix || '_' || replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');
  v_id uuid;
begin
  if not exists (select 1 from runproof.tenants where id = p_tenant_id) then
    raise exception 'tenant % not found', p_tenant_id using errcode = 'RPNFD', hint = 'create the tenant first (runproof tenant create)';
  end if;
  insert into runproof_private.api_keys (tenant_id, key_hash, key_prefix, label)
  values (p_tenant_id, sha256(convert_to(v_key, 'UTF8')), v_prefix, coalesce(p_label, ''))
  returning id into v_id;
  key_id := v_id; api_key := v_key; key_prefix := v_prefix;
  return next;
end
$$;
comment on function runproof_private.create_api_key(uuid, text) is 'Creates an API key for a tenant and returns it once; only its SHA-256 is stored.';

create or replace function runproof_private.revoke_api_key(p_tenant_id uuid, p_key_id uuid) returns void
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
begin
  update runproof_private.api_keys set revoked_at = coalesce(revoked_at, now())
   where tenant_id = p_tenant_id and id = p_key_id;
  if not found then
    raise exception 'API key % of tenant % not found', p_key_id, p_tenant_id using errcode = 'RPNFD', hint = 'list keys with runproof api-key list';
  end if;
end
$$;
comment on function runproof_private.revoke_api_key(uuid, uuid) is 'Revokes an API key; it authenticates nothing from then on.';

create or replace function runproof_private.authenticate(p_api_key text) returns uuid
  language plpgsql stable security definer
  set search_path = pg_catalog
  as $$
declare
  v record;
begin
  select k.tenant_id, k.revoked_at into v from runproof_private.api_keys k
   where k.key_hash = sha256(convert_to(coalesce(p_api_key, ''), 'UTF8'));
  if not found then
    raise exception 'invalid API key' using errcode = '28000', hint = 'send Authorization: Bearer <api key>; create a key with runproof api-key create';
  end if;
  if v.revoked_at is not null then
    raise exception 'API key is revoked' using errcode = '28000', hint = 'create a new key with runproof api-key create';
  end if;
  return v.tenant_id;
end
$$;
comment on function runproof_private.authenticate(text) is 'Maps an API key to its tenant by the key''s hash; raises 28000 for an unknown or revoked key.';
revoke all on function runproof_private.authenticate(text) from public;
grant execute on function runproof_private.authenticate(text) to runproof_authenticator;

create or replace function runproof.current_tenant() returns runproof.tenants
  language sql stable
  set search_path = pg_catalog
  as $$ select t from runproof.tenants t where t.id = runproof_private.current_tenant_id() $$;
comment on function runproof.current_tenant() is 'The tenant of the API key making the request.';

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
  if create_agent.name is null or btrim(create_agent.name) = '' then
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

--------------------------------------------------------------------------------
-- Redaction (a second line behind the worker's own redaction)
--------------------------------------------------------------------------------

create or replace function runproof_private.redact(p jsonb) returns jsonb
  language plpgsql immutable parallel safe
  set search_path = pg_catalog
  as $$
begin
  case jsonb_typeof(p)
    when 'object' then
      return (select coalesce(jsonb_object_agg(e.k,
                case when e.k ~* '^(authorization|proxy-authorization|cookie|set-cookie|x-api-key|api[-_]?key|apikey|token|access[-_]?token|refresh[-_]?token|id[-_]?token|password|passwd|secret|client[-_]?secret|private[-_]?key)$'
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

--------------------------------------------------------------------------------
-- The one creation path
--------------------------------------------------------------------------------

create or replace function runproof_private.add_run_job(p_task text, p_tenant_id uuid, p_run_id uuid, p_run_at timestamptz default null)
  returns void
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
begin
  -- max_attempts covers crashes and lost connections; the run's own retries are scheduled by end_attempt.
  perform graphile_worker.add_job(
    p_task,
    json_build_object('tenant_id', p_tenant_id, 'run_id', p_run_id),
    run_at => coalesce(p_run_at, now()),
    max_attempts => 25,
    job_key => (case p_task when 'plan_run' then 'plan:' else 'exec:' end) || p_run_id);
end
$$;
comment on function runproof_private.add_run_job(text, uuid, uuid, timestamptz) is
  'Adds the graphile-worker job that plans or executes a run, in the caller''s transaction.';

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
    if btrim(enqueue_run.idempotency_key) = '' or length(enqueue_run.idempotency_key) > 200 then
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
  if enqueue_run.goal is null or btrim(enqueue_run.goal) = '' then
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
    raise exception 'run % is not pending', p_run_id using errcode = 'RPSTS', hint = 'only a pending run can fail planning';
  end if;
  insert into runproof.incidents (tenant_id, run_id, kind, severity, message, details)
  values (p_tenant_id, p_run_id, 'planning_failed', 'error', p_error, '{}');
  return v;
end
$$;
comment on function runproof_private.fail_planning(uuid, uuid, text) is 'Fails a run whose planning failed, with its incident, in one transaction.';

--------------------------------------------------------------------------------
-- Executing steps
--------------------------------------------------------------------------------

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
      p_incident_kind := coalesce(p_incident_kind, 'run_failed');
    end if;
  end if;
  update runproof.runs set status = p_run_status, error = coalesce(p_error, error)
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

create or replace function runproof_private.recover_orphan(p_tenant_id uuid, p_run_id uuid, p_worker text default null)
  returns runproof.runs
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v runproof.runs;
  v_trace uuid;
begin
  select r.* into v from runproof.runs r where r.tenant_id = p_tenant_id and r.id = p_run_id for update;
  if v.status <> 'running' then
    return v;
  end if;
  select t.id into v_trace from runproof.traces t
   where t.tenant_id = p_tenant_id and t.run_id = p_run_id and t.status = 'running';
  if v_trace is not null then
    perform runproof_private.seal_trace(p_tenant_id, v_trace, 'aborted',
      jsonb_build_object('aborted_because', 'the worker running this attempt stopped (crash or lost connection)', 'recovered_by', p_worker));
  end if;
  update runproof.runs set status = 'retrying' where tenant_id = p_tenant_id and id = p_run_id returning * into v;
  insert into runproof.incidents (tenant_id, run_id, trace_id, kind, severity, message, details)
  values (p_tenant_id, p_run_id, v_trace, 'worker_crashed', 'warning',
          'the attempt was abandoned by its worker; a new attempt resumes after the last succeeded step',
          jsonb_build_object('resume_at_plan_step', v.next_plan_step, 'recovered_by', p_worker));
  return v;
end
$$;
comment on function runproof_private.recover_orphan(uuid, uuid, text) is
  'For a run left running by a dead worker: seals its trace as aborted, moves the run to retrying and records a worker_crashed incident, in one transaction.';

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
  perform graphile_worker.remove_job('plan:' || v.id);
  perform graphile_worker.remove_job('exec:' || v.id);
  return v;
end
$$;
comment on function runproof.cancel_run(uuid, text, uuid) is
  'Cancels a run: at once if it is not executing, else the worker stops it between steps (its trace sealed as aborted).';

create or replace function runproof_private.cancel_requested(p_tenant_id uuid, p_run_id uuid) returns text
  language sql stable
  set search_path = pg_catalog
  as $$ select c.reason from runproof_private.cancel_requests c where c.tenant_id = p_tenant_id and c.run_id = p_run_id $$;
comment on function runproof_private.cancel_requested(uuid, uuid) is 'The reason a running run was asked to stop, or NULL.';

create or replace function runproof.archive_trace(trace_id uuid, tenant_id uuid default null) returns runproof.traces
  language plpgsql volatile security definer
  set search_path = pg_catalog
  as $$
#variable_conflict use_column
declare
  v_tenant uuid := runproof_private.request_tenant(archive_trace.tenant_id);
  v runproof.traces;
begin
  select t.* into v from runproof.traces t where t.tenant_id = v_tenant and t.id = archive_trace.trace_id for update;
  if not found then
    raise exception 'trace % not found for tenant %', archive_trace.trace_id, v_tenant using errcode = 'RPNFD', hint = 'check the trace id';
  end if;
  if v.status = 'running' then
    raise exception 'trace % is still running', v.id using errcode = 'RPSTS', hint = 'only a sealed trace can be archived';
  end if;
  if v.archived_at is not null then
    raise exception 'trace % was already archived at %', v.id, v.archived_at using errcode = 'RPSTS', hint = 'archival happens once';
  end if;
  update runproof.traces t set archived_at = now() where t.tenant_id = v_tenant and t.id = v.id returning * into v;
  return v;
end
$$;
comment on function runproof.archive_trace(uuid, uuid) is 'Archives a sealed trace (sets archived_at once). The trace stays in every proof.';

--------------------------------------------------------------------------------
-- Crash recovery: heartbeats and graphile-worker's force_unlock_workers
--------------------------------------------------------------------------------

create or replace function runproof_private.worker_heartbeat(p_process_id text, p_worker_ids text[] default '{}', p_hostname text default '', p_pid integer default null)
  returns void
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
begin
  insert into runproof_private.worker_heartbeats (worker_id, process_id, hostname, pid)
  select w, p_process_id, coalesce(p_hostname, ''), p_pid from unnest(p_worker_ids) w
  on conflict (worker_id) do update set process_id = excluded.process_id, last_seen_at = now();
  update runproof_private.worker_heartbeats set last_seen_at = now() where process_id = p_process_id;
end
$$;
comment on function runproof_private.worker_heartbeat(text, text[], text, integer) is 'Marks a worker process and its workers alive.';

create or replace function runproof_private.recover_stale_workers(p_stale_after interval default interval '10 seconds')
  returns text[]
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_ids text[];
begin
  -- A job locked longer than p_stale_after by a worker with no fresh heartbeat belongs to a dead worker.
  select array_agg(distinct j.locked_by) into v_ids
    from graphile_worker.jobs j
   where j.locked_by is not null and j.locked_at < now() - p_stale_after
     and not exists (select 1 from runproof_private.worker_heartbeats h
                      where h.worker_id = j.locked_by and h.last_seen_at >= now() - p_stale_after);
  if v_ids is not null then
    perform graphile_worker.force_unlock_workers(v_ids);
    delete from runproof_private.worker_heartbeats where worker_id = any (v_ids);
  end if;
  delete from runproof_private.worker_heartbeats where last_seen_at < now() - interval '1 hour';
  return coalesce(v_ids, '{}');
end
$$;
comment on function runproof_private.recover_stale_workers(interval) is
  'Unlocks the jobs of workers whose heartbeat is older than p_stale_after (graphile-worker would otherwise keep them locked for 4 hours) and returns their ids.';

--------------------------------------------------------------------------------
-- Live notifications
--------------------------------------------------------------------------------

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
    'attempts', new.attempts, 'next_plan_step', new.next_plan_step, 'error', new.error)::text;
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

drop trigger if exists tg_runs__notify on runproof.runs;
create trigger tg_runs__notify after insert or update on runproof.runs
  for each row execute function runproof_private.tg_runs__notify();
drop trigger if exists tg_trace_steps__notify on runproof.trace_steps;
create trigger tg_trace_steps__notify after insert on runproof.trace_steps
  for each row execute function runproof_private.tg_trace_steps__notify();
alter table runproof.runs enable always trigger tg_runs__notify;
alter table runproof.trace_steps enable always trigger tg_trace_steps__notify;
insert into runproof_private.guard_descriptions values
  ('runs', 'tg_runs__notify', 'nothing (announces status changes)', 'everything'),
  ('trace_steps', 'tg_trace_steps__notify', 'nothing (announces recorded steps)', 'everything');

--------------------------------------------------------------------------------
-- Grants for GraphQL requests (tenant role); everything else is for the owner (worker, CLI)
--------------------------------------------------------------------------------

grant execute on function runproof.current_tenant(),
  runproof.create_agent(text, text, text[], uuid),
  runproof.enqueue_run(uuid, uuid, text, text, jsonb, text, integer),
  runproof.cancel_run(uuid, text, uuid), runproof.archive_trace(uuid, uuid) to runproof_tenant;
