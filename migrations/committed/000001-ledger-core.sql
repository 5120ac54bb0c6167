--! Previous: -
--! Hash: sha1:eb7d3c7f8a5da66be284c0197ac99dabd8412e91
--! Message: ledger core

-- RunProof ledger core: schema, origin checks, immutability guards, hash chain, verifier.
-- Idempotent (graphile-migrate re-runs current.sql on every save in `watch` mode).

drop schema if exists runproof cascade;
drop schema if exists runproof_private cascade;

do $$
begin
  -- Canonical bytes are UTF-8; a database in another encoding would hash other bytes.
  if current_setting('server_encoding') <> 'UTF8' then
    raise exception 'RunProof needs a UTF8 database, this one is %', current_setting('server_encoding')
      using errcode = 'RPENC', hint = 'create the database with ENCODING ''UTF8''';
  end if;
  -- Roles are cluster-wide, so create them only when missing.
  if not exists (select 1 from pg_roles where rolname = 'runproof_tenant') then
    create role runproof_tenant nologin;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'runproof_authenticator') then
    create role runproof_authenticator login noinherit;
  end if;
end
$$;
grant runproof_tenant to runproof_authenticator;

create schema runproof;
create schema runproof_private;
comment on schema runproof is 'RunProof: the exposed ledger (runs, traces, steps, proofs). Row level security limits every tenant to its own rows.';
comment on schema runproof_private is 'RunProof internals: API key hashes, guard descriptions, hashing and verification helpers. Never exposed over GraphQL.';

-- Functions are not executable by PUBLIC unless granted explicitly.
alter default privileges in schema runproof, runproof_private revoke execute on functions from public;
grant usage on schema runproof to runproof_tenant;
grant usage on schema runproof_private to runproof_tenant;

--------------------------------------------------------------------------------
-- Errors and shared helpers
--------------------------------------------------------------------------------

create function runproof_private.current_tenant_id() returns uuid
  language sql stable parallel safe
  as $$ select nullif(current_setting('runproof.tenant_id', true), '')::uuid $$;
comment on function runproof_private.current_tenant_id() is
  'The tenant of the current request (transaction-local setting runproof.tenant_id), or NULL outside a request.';

create function runproof_private.hex(b bytea) returns text
  language sql immutable strict parallel safe
  as $$ select encode(b, 'hex') $$;
comment on function runproof_private.hex(bytea) is 'Lower-case hex of a hash, the form hashes take in proofs and bundles.';

create function runproof_private.raise_immutable(p_op text, p_table text, p_key text, p_detail text, p_hint text)
  returns void language plpgsql immutable
  as $$
begin
  raise exception 'S6_IMMUTABILITY_VIOLATION: % on runproof.% (%) is not allowed', p_op, p_table, p_key
    using errcode = 'RPIMM', detail = coalesce(p_detail, ''), hint = p_hint,
          schema = 'runproof', table = p_table;
end
$$;
comment on function runproof_private.raise_immutable(text, text, text, text, text) is
  'Raises the one immutability error (SQLSTATE RPIMM, message starting S6_IMMUTABILITY_VIOLATION) naming the table and key.';

create function runproof_private.row_key(p_row jsonb, p_columns text[]) returns text
  language sql immutable parallel safe
  as $$
    select string_agg(c || '=' || coalesce(p_row ->> c, 'NULL'), ', ' order by o)
    from unnest(p_columns) with ordinality as u(c, o)
  $$;
comment on function runproof_private.row_key(jsonb, text[]) is 'Formats a row''s key columns as "col=value, ..." for error messages.';

create function runproof_private.changed_columns(p_old jsonb, p_new jsonb) returns text[]
  language sql immutable parallel safe
  as $$
    select coalesce(array_agg(n.key order by n.key), '{}')
    from jsonb_each(p_new) n join jsonb_each(p_old) o using (key)
    where n.value is distinct from o.value
  $$;
comment on function runproof_private.changed_columns(jsonb, jsonb) is 'The columns an UPDATE changes, for guards and their messages.';

create function runproof_private.tg__append_only() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_key text;
begin
  -- TG_ARGV lists the key columns, so one function guards every append-only table.
  if tg_level = 'STATEMENT' then
    v_key := 'all rows';
  else
    v_key := runproof_private.row_key(to_jsonb(old), tg_argv::text[]);
  end if;
  perform runproof_private.raise_immutable(tg_op, tg_table_name, v_key,
    format('runproof.%s is append-only', tg_table_name),
    format('rows of runproof.%s are never changed or removed; record a new row instead', tg_table_name));
  return null;
end
$$;
comment on function runproof_private.tg__append_only() is
  'Trigger: rejects UPDATE, DELETE and TRUNCATE on an append-only ledger table. Arguments: the key columns to name in the error.';

--------------------------------------------------------------------------------
-- Tenants, API keys, agents, skills
--------------------------------------------------------------------------------

create table runproof.tenants (
  id uuid primary key default gen_random_uuid(),
  name text not null unique check (length(btrim(name)) between 1 and 200),
  daily_budget_cents numeric(14, 4) not null default 10000 check (daily_budget_cents >= 0),
  created_at timestamptz not null default now()
);
comment on table runproof.tenants is 'A tenant: the owner of agents and runs. Every ledger row carries its tenant_id.';
comment on column runproof.tenants.id is 'The tenant id (tenant_id everywhere else).';
comment on column runproof.tenants.name is 'A unique, human-readable name.';
comment on column runproof.tenants.daily_budget_cents is 'What the tenant''s runs may spend per UTC day, in cents; the policy denies a step that would exceed it.';
comment on column runproof.tenants.created_at is 'When the tenant was created.';

create table runproof_private.api_keys (
  tenant_id uuid not null references runproof.tenants on delete cascade,
  id uuid not null default gen_random_uuid(),
  key_hash bytea not null unique check (octet_length(key_hash) = 32),
  key_prefix text not null,
  label text not null default '' check (length(label) <= 200),
  created_at timestamptz not null default now(),
  revoked_at timestamptz,
  primary key (tenant_id, id)
);
comment on table runproof_private.api_keys is 'API keys. Only the SHA-256 of a key is stored; the key itself is shown once, at creation.';
comment on column runproof_private.api_keys.tenant_id is 'The tenant the key acts as.';
comment on column runproof_private.api_keys.id is 'The key''s id (used to revoke it).';
comment on column runproof_private.api_keys.key_hash is 'sha256 of the whole key string.';
comment on column runproof_private.api_keys.key_prefix is 'The key''s public prefix (rp_XXXXXXXX), to recognise a key without its secret.';
comment on column runproof_private.api_keys.label is 'A note saying what the key is for.';
comment on column runproof_private.api_keys.created_at is 'When the key was created.';
comment on column runproof_private.api_keys.revoked_at is 'When the key was revoked; a revoked key authenticates nothing.';

create table runproof.agents (
  tenant_id uuid not null references runproof.tenants,
  id uuid not null default gen_random_uuid(),
  name text not null check (length(btrim(name)) between 1 and 200),
  description text not null default '' check (length(description) <= 2000),
  allowed_skills text[] check (allowed_skills is null or cardinality(allowed_skills) <= 100),
  created_at timestamptz not null default now(),
  primary key (tenant_id, id),
  unique (tenant_id, name)
);
create index agents_id_idx on runproof.agents (id);
comment on table runproof.agents is 'An agent of a tenant. Runs are always made by an agent.';
comment on column runproof.agents.tenant_id is 'The tenant that owns the agent.';
comment on column runproof.agents.id is 'The agent id.';
comment on column runproof.agents.name is 'The agent''s name, unique within its tenant.';
comment on column runproof.agents.description is 'What the agent does.';
comment on column runproof.agents.allowed_skills is 'If set, the only skills this agent''s steps may call; the policy denies any other. NULL allows every registered skill.';
comment on column runproof.agents.created_at is 'When the agent was created.';

create table runproof.skills (
  name text primary key check (name ~ '^[a-z][a-z0-9_]{0,62}$'),
  description text not null default '',
  input_schema jsonb not null default '{}' check (jsonb_typeof(input_schema) = 'object'),
  side_effects boolean not null default false,
  default_timeout_ms integer not null default 30000 check (default_timeout_ms between 1 and 3600000),
  enabled boolean not null default true,
  registered_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table runproof.skills is 'The skill registry, mirrored from the worker''s code before it takes a job, so SQL can list skills and validate plans. Global (not per tenant).';
comment on column runproof.skills.name is 'The name plans use to call the skill.';
comment on column runproof.skills.description is 'What the skill does.';
comment on column runproof.skills.input_schema is 'JSON Schema of the skill''s input, as the worker declares it.';
comment on column runproof.skills.side_effects is 'Whether the skill changes the outside world (and so gets an idempotency key).';
comment on column runproof.skills.default_timeout_ms is 'How long one call may take before it is aborted, in milliseconds.';
comment on column runproof.skills.enabled is 'Disabled skills stay listed for old plans but new plans cannot name them.';
comment on column runproof.skills.registered_at is 'When the skill was first registered.';
comment on column runproof.skills.updated_at is 'When a worker last mirrored the skill.';

--------------------------------------------------------------------------------
-- Runs: origin checks, plan, status state machine
--------------------------------------------------------------------------------

create function runproof_private.reserved_origin_system_ids() returns text[]
  language sql immutable parallel safe
  as $$ select array['legacy-migration', 'legacy', 'default', 'unknown', 'none', 'null', 'undefined', 'n/a', 'na', 'tbd', 'todo', 'changeme', 'system', 'migration'] $$;
comment on function runproof_private.reserved_origin_system_ids() is
  'origin_system_id values that are rejected (compared case-insensitively): placeholders that say nothing about where a run came from. ''legacy-migration'' is the default that once rejected itself.';

create table runproof_private.run_status_transitions (
  from_status text not null,
  to_status text not null,
  description text not null,
  primary key (from_status, to_status)
);
comment on table runproof_private.run_status_transitions is 'The run status state machine: the only status changes a run may make.';
comment on column runproof_private.run_status_transitions.from_status is 'The status before.';
comment on column runproof_private.run_status_transitions.to_status is 'The status after.';
comment on column runproof_private.run_status_transitions.description is 'When this transition happens.';
insert into runproof_private.run_status_transitions values
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

create function runproof_private.is_terminal_status(p_status text) returns boolean
  language sql immutable parallel safe
  as $$ select p_status in ('succeeded', 'failed', 'halted', 'cancelled') $$;
comment on function runproof_private.is_terminal_status(text) is 'Whether a run status is final (nothing about the run changes afterwards).';

create table runproof.runs (
  tenant_id uuid not null references runproof.tenants,
  id uuid not null default gen_random_uuid(),
  agent_id uuid not null,
  goal text not null,
  origin_system_id text not null,
  plan jsonb,
  status text not null default 'pending'
    check (status in ('pending', 'planned', 'running', 'retrying', 'succeeded', 'failed', 'halted', 'cancelled')),
  attempts integer not null default 0 check (attempts >= 0),
  max_attempts integer not null default 3 check (max_attempts between 1 and 20),
  next_plan_step integer not null default 0 check (next_plan_step >= 0),
  cost_cents numeric(14, 4) not null default 0 check (cost_cents >= 0),
  error text,
  idempotency_key text check (idempotency_key is null or length(idempotency_key) between 1 and 200),
  created_at timestamptz not null default now(),
  planned_at timestamptz,
  started_at timestamptz,
  finished_at timestamptz,
  updated_at timestamptz not null default now(),
  trace_count integer,
  root_hash bytea,
  primary key (tenant_id, id),
  foreign key (tenant_id, agent_id) references runproof.agents (tenant_id, id),
  -- A second line of defence behind tg_runs__origin_check (which gives the clear messages).
  constraint runs_origin_system_id_valid check (
    btrim(origin_system_id) <> '' and length(origin_system_id) <= 128
    and origin_system_id = btrim(origin_system_id)
    and lower(origin_system_id) <> all (runproof_private.reserved_origin_system_ids())),
  constraint runs_goal_valid check (length(btrim(goal)) between 1 and 10000),
  constraint runs_plan_before_start check (plan is not null or status in ('pending', 'failed', 'cancelled')),
  constraint runs_pending_has_no_plan check (status <> 'pending' or plan is null),
  constraint runs_seal_when_terminal check (
    (trace_count is null and root_hash is null)
    or (status in ('succeeded', 'failed', 'halted', 'cancelled') and trace_count is not null and root_hash is not null))
);
create index runs_id_idx on runproof.runs (id);
create index runs_tenant_created_idx on runproof.runs (tenant_id, created_at desc, id desc);
create index runs_tenant_status_idx on runproof.runs (tenant_id, status);
create index runs_tenant_agent_idx on runproof.runs (tenant_id, agent_id);
create unique index runs_idempotency_key_idx on runproof.runs (tenant_id, idempotency_key) where idempotency_key is not null;
comment on table runproof.runs is 'An agent run. Created only by runproof.enqueue_run. Identity, goal, origin and (once stored) plan never change; status follows runproof_private.run_status_transitions.';
comment on column runproof.runs.tenant_id is 'The tenant that owns the run.';
comment on column runproof.runs.id is 'The run id.';
comment on column runproof.runs.agent_id is 'The agent that makes the run (of the same tenant).';
comment on column runproof.runs.goal is 'What the run is for, in words; the planner turns it into a plan.';
comment on column runproof.runs.origin_system_id is 'The system that created the run (''runproof-cli'', ''graphql'', a service name). Required, no default; blank, over-long and reserved values are rejected.';
comment on column runproof.runs.plan is 'The plan: {"version":1,"planner":...,"steps":[{"skill":...,"input":{...}}]}. Stored and validated before execution; never changed afterwards.';
comment on column runproof.runs.status is 'pending, planned, running, retrying, then succeeded, failed, halted or cancelled.';
comment on column runproof.runs.attempts is 'How many execution attempts (traces) the run has had.';
comment on column runproof.runs.max_attempts is 'How many attempts a run may make before a transient failure fails it.';
comment on column runproof.runs.next_plan_step is 'The index of the next plan step to execute: a new attempt resumes here, after the last succeeded step.';
comment on column runproof.runs.cost_cents is 'What the run''s recorded steps cost, in cents.';
comment on column runproof.runs.error is 'Why the run failed, halted or was cancelled.';
comment on column runproof.runs.idempotency_key is 'Optional caller key: enqueueing the same key again for the tenant returns the same run.';
comment on column runproof.runs.created_at is 'When the run was enqueued.';
comment on column runproof.runs.planned_at is 'When the plan was stored.';
comment on column runproof.runs.started_at is 'When the first attempt started.';
comment on column runproof.runs.finished_at is 'When the run reached a final status.';
comment on column runproof.runs.updated_at is 'When the run last changed.';
comment on column runproof.runs.trace_count is 'Set once, when the run ends: how many traces it has.';
comment on column runproof.runs.root_hash is 'Set once, when the run ends: the run root over its traces'' roots (docs/proof-format.md).';

--------------------------------------------------------------------------------
-- Traces, policy decisions, steps, incidents
--------------------------------------------------------------------------------

create table runproof.traces (
  tenant_id uuid not null,
  id uuid not null default gen_random_uuid(),
  run_id uuid not null,
  attempt integer not null check (attempt >= 1),
  status text not null default 'running' check (status in ('running', 'completed', 'failed', 'aborted')),
  started_at timestamptz not null default now(),
  completed_at timestamptz,
  step_count integer check (step_count >= 0),
  root_hash bytea check (octet_length(root_hash) = 32),
  metadata jsonb not null default '{}' check (jsonb_typeof(metadata) = 'object'),
  archived_at timestamptz,
  primary key (tenant_id, id),
  unique (tenant_id, run_id, id),
  unique (tenant_id, run_id, attempt),
  foreign key (tenant_id, run_id) references runproof.runs (tenant_id, id),
  constraint traces_sealed_iff_done check (
    (status = 'running') = (completed_at is null)
    and (status = 'running') = (step_count is null)
    and (status = 'running') = (root_hash is null)),
  constraint traces_archived_only_when_sealed check (archived_at is null or status <> 'running')
);
create index traces_id_idx on runproof.traces (id);
create index traces_run_id_idx on runproof.traces (run_id, attempt);
comment on table runproof.traces is 'One execution attempt of a run: the hash chain of its steps. running -> completed | failed | aborted seals it (step_count and root_hash, checked against the chain); archival sets archived_at once. Nothing else changes.';
comment on column runproof.traces.tenant_id is 'The tenant that owns the trace.';
comment on column runproof.traces.id is 'The trace id.';
comment on column runproof.traces.run_id is 'The run this trace is an attempt of.';
comment on column runproof.traces.attempt is 'The attempt number, 1, 2, ... in order.';
comment on column runproof.traces.status is 'running, then completed, failed or aborted (a crashed worker''s attempt).';
comment on column runproof.traces.started_at is 'When the attempt started.';
comment on column runproof.traces.completed_at is 'When the trace was sealed.';
comment on column runproof.traces.step_count is 'Set once at the seal: the number of steps in the chain.';
comment on column runproof.traces.root_hash is 'Set once at the seal: the last step_hash (the genesis hash for an empty trace).';
comment on column runproof.traces.metadata is 'Free-form facts about the attempt (worker id, reason it ended); may be set at the seal.';
comment on column runproof.traces.archived_at is 'Set once, to archive a sealed trace.';

create table runproof.policy_decisions (
  tenant_id uuid not null,
  run_id uuid not null,
  trace_id uuid not null,
  step_index integer not null check (step_index >= 0),
  plan_step integer not null check (plan_step >= 0),
  skill text not null,
  decision text not null check (decision in ('allow', 'deny')),
  reason text not null check (length(reason) between 1 and 2000),
  budget_cents numeric(14, 4),
  spent_cents numeric(14, 4),
  decided_at timestamptz not null default now(),
  primary key (tenant_id, trace_id, step_index),
  unique (tenant_id, trace_id, step_index, decision),
  foreign key (tenant_id, run_id, trace_id) references runproof.traces (tenant_id, run_id, id)
);
comment on table runproof.policy_decisions is 'The policy decision taken before each step runs (budget and skill rules). Append-only. A step cannot exist without its decision.';
comment on column runproof.policy_decisions.tenant_id is 'The tenant that owns the run.';
comment on column runproof.policy_decisions.run_id is 'The run.';
comment on column runproof.policy_decisions.trace_id is 'The trace (attempt) the step belongs to.';
comment on column runproof.policy_decisions.step_index is 'The index the step will have in the trace.';
comment on column runproof.policy_decisions.plan_step is 'The plan step being decided.';
comment on column runproof.policy_decisions.skill is 'The skill the step would call.';
comment on column runproof.policy_decisions.decision is 'allow or deny.';
comment on column runproof.policy_decisions.reason is 'Why, in words.';
comment on column runproof.policy_decisions.budget_cents is 'The tenant''s daily budget when the decision was taken.';
comment on column runproof.policy_decisions.spent_cents is 'What the tenant had spent that UTC day when the decision was taken.';
comment on column runproof.policy_decisions.decided_at is 'When the decision was taken.';

create table runproof.trace_steps (
  tenant_id uuid not null,
  run_id uuid not null,
  trace_id uuid not null,
  step_index integer not null check (step_index >= 0),
  plan_step integer not null check (plan_step >= 0),
  skill text not null,
  status text not null check (status in ('succeeded', 'failed', 'denied')),
  policy_decision text not null,
  input jsonb not null default '{}',
  output jsonb,
  error text,
  started_at timestamptz not null,
  finished_at timestamptz not null,
  duration_ms numeric(12, 3) not null check (duration_ms >= 0),
  cost_cents numeric(14, 4) not null default 0 check (cost_cents >= 0),
  source text not null default 'worker' check (source in ('worker', 'system', 'test')),
  level text not null default 'INFO' check (level in ('DEBUG', 'INFO', 'WARN', 'ERROR')),
  recorded_at timestamptz not null default now(),
  prev_hash bytea not null check (octet_length(prev_hash) = 32),
  step_hash bytea not null check (octet_length(step_hash) = 32),
  primary key (tenant_id, trace_id, step_index),
  foreign key (tenant_id, run_id, trace_id) references runproof.traces (tenant_id, run_id, id),
  -- The schema itself makes enforcement unskippable: no decision row, no step row.
  foreign key (tenant_id, trace_id, step_index, policy_decision)
    references runproof.policy_decisions (tenant_id, trace_id, step_index, decision),
  constraint trace_steps_denied_iff_deny check ((status = 'denied') = (policy_decision = 'deny')),
  constraint trace_steps_error_iff_failed check ((status = 'failed') = (error is not null)),
  constraint trace_steps_time_order check (finished_at >= started_at)
);
comment on table runproof.trace_steps is 'The steps of a trace: append-only and hash-chained. prev_hash and step_hash are computed by the database on insert.';
comment on column runproof.trace_steps.tenant_id is 'The tenant that owns the run.';
comment on column runproof.trace_steps.run_id is 'The run.';
comment on column runproof.trace_steps.trace_id is 'The trace (attempt).';
comment on column runproof.trace_steps.step_index is 'The position in the trace: 0, 1, 2, ... without gaps.';
comment on column runproof.trace_steps.plan_step is 'The plan step this executed (an attempt resumes mid-plan, so it can differ from step_index).';
comment on column runproof.trace_steps.skill is 'The skill called.';
comment on column runproof.trace_steps.status is 'succeeded, failed, or denied (the policy refused; the skill was not called).';
comment on column runproof.trace_steps.policy_decision is 'allow or deny: the decision row this step stands on.';
comment on column runproof.trace_steps.input is 'The skill''s input, secrets redacted.';
comment on column runproof.trace_steps.output is 'The skill''s output, secrets redacted (NULL when it failed or was denied).';
comment on column runproof.trace_steps.error is 'The error, when the step failed.';
comment on column runproof.trace_steps.started_at is 'When the skill call started.';
comment on column runproof.trace_steps.finished_at is 'When it ended.';
comment on column runproof.trace_steps.duration_ms is 'How long it took, in milliseconds.';
comment on column runproof.trace_steps.cost_cents is 'What it cost, in cents.';
comment on column runproof.trace_steps.source is 'Who recorded it: worker, system or test.';
comment on column runproof.trace_steps.level is 'Log level: DEBUG, INFO, WARN or ERROR.';
comment on column runproof.trace_steps.recorded_at is 'When the database recorded it (set by the database).';
comment on column runproof.trace_steps.prev_hash is 'The previous step''s step_hash, or the trace''s genesis hash for step 0 (set by the database).';
comment on column runproof.trace_steps.step_hash is 'sha256(prev_hash || sha256(canonical content)) (set by the database).';

create table runproof.incidents (
  tenant_id uuid not null,
  id uuid not null default gen_random_uuid(),
  run_id uuid not null,
  trace_id uuid,
  kind text not null check (kind in ('step_failed', 'run_failed', 'run_halted', 'budget_exceeded', 'skill_denied', 'worker_crashed', 'planning_failed')),
  severity text not null default 'error' check (severity in ('info', 'warning', 'error', 'critical')),
  message text not null check (length(message) between 1 and 10000),
  details jsonb not null default '{}',
  created_at timestamptz not null default now(),
  primary key (tenant_id, id),
  foreign key (tenant_id, run_id) references runproof.runs (tenant_id, id),
  foreign key (tenant_id, run_id, trace_id) references runproof.traces (tenant_id, run_id, id)
);
create index incidents_run_idx on runproof.incidents (tenant_id, run_id);
comment on table runproof.incidents is 'Incidents: failed and halted runs, denied steps, crashed workers. Append-only, written in the same transaction as what caused them.';
comment on column runproof.incidents.tenant_id is 'The tenant that owns the run.';
comment on column runproof.incidents.id is 'The incident id.';
comment on column runproof.incidents.run_id is 'The run.';
comment on column runproof.incidents.trace_id is 'The trace, when the incident belongs to one attempt.';
comment on column runproof.incidents.kind is 'What happened.';
comment on column runproof.incidents.severity is 'info, warning, error or critical.';
comment on column runproof.incidents.message is 'What happened, in words.';
comment on column runproof.incidents.details is 'Structured facts (error, skill, budget).';
comment on column runproof.incidents.created_at is 'When it was recorded.';

--------------------------------------------------------------------------------
-- Hash chain (docs/proof-format.md is the normative description of these bytes)
--------------------------------------------------------------------------------

create function runproof_private.genesis_hash(p_tenant_id uuid, p_run_id uuid, p_trace_id uuid) returns bytea
  language sql immutable parallel safe
  as $$ select sha256(convert_to('runproof.genesis/1|' || p_tenant_id || '|' || p_run_id || '|' || p_trace_id, 'UTF8')) $$;
comment on function runproof_private.genesis_hash(uuid, uuid, uuid) is
  'The prev_hash of a trace''s first step: binds the format version, tenant, run and trace, so steps cannot move between traces.';

create function runproof_private.step_canonical(s runproof.trace_steps) returns bytea
  language sql stable parallel safe
  as $$
    select convert_to(jsonb_build_array(
      'runproof.step/1', s.tenant_id, s.run_id, s.trace_id, s.step_index, s.plan_step,
      s.skill, s.status, s.policy_decision, s.input, s.output, s.error,
      s.started_at at time zone 'UTC', s.finished_at at time zone 'UTC',
      s.duration_ms, s.cost_cents, s.source, s.level, s.recorded_at at time zone 'UTC'
    )::text, 'UTF8')
  $$;
comment on function runproof_private.step_canonical(runproof.trace_steps) is
  'The canonical bytes of a step''s content: the UTF-8 text of a fixed-order JSON array (Postgres jsonb text; timestamps in UTC as 2026-01-02T03:04:05.123456 with trailing zeros trimmed). These exact bytes are exported in proof bundles.';

create function runproof_private.step_hash(p_prev_hash bytea, p_canonical bytea) returns bytea
  language sql immutable strict parallel safe
  as $$ select sha256(p_prev_hash || sha256(p_canonical)) $$;
comment on function runproof_private.step_hash(bytea, bytea) is 'step_hash = sha256(prev_hash || sha256(canonical content)).';

create function runproof_private.run_root_hash(p_tenant_id uuid, p_run_id uuid, p_trace_roots bytea[]) returns bytea
  language sql immutable parallel safe
  as $$
    select sha256(
      sha256(convert_to('runproof.run/1|' || p_tenant_id || '|' || p_run_id, 'UTF8'))
      || coalesce((select string_agg(r, ''::bytea order by o) from unnest(p_trace_roots) with ordinality u(r, o)), ''::bytea))
  $$;
comment on function runproof_private.run_root_hash(uuid, uuid, bytea[]) is
  'A run''s root: sha256(sha256("runproof.run/1|tenant|run") || root_1 || root_2 || ...), trace roots in attempt order.';

--------------------------------------------------------------------------------
-- Guards on runs
--------------------------------------------------------------------------------

create function runproof_private.tg_runs__origin_check() returns trigger
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
  elsif btrim(v, E' \t\r\n') = '' then
    raise exception 'origin_system_id must not be blank'
      using errcode = 'RPOBL', schema = 'runproof', table = 'runs', column = 'origin_system_id', hint = v_hint;
  elsif length(v) > 128 then
    raise exception 'origin_system_id is % characters long; at most 128 are allowed', length(v)
      using errcode = 'RPOLN', schema = 'runproof', table = 'runs', column = 'origin_system_id',
            hint = 'use a short identifier of the system, not a description';
  elsif v <> btrim(v) or v ~ '[[:cntrl:]]' then
    raise exception 'origin_system_id % has leading or trailing whitespace or control characters', quote_literal(v)
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

create function runproof_private.validate_plan(p_plan jsonb) returns void
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
  'Raises RPPLN (malformed plan) or RPSKL (unknown skill) unless the plan is valid and names only registered, enabled skills.';

create function runproof_private.tg_runs__plan_check() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
begin
  if new.plan is not null and (tg_op = 'INSERT' or old.plan is null) then
    perform runproof_private.validate_plan(new.plan);
    new.planned_at := coalesce(new.planned_at, now());
  end if;
  return new;
end
$$;
comment on function runproof_private.tg_runs__plan_check() is
  'Trigger: validates a plan when it is stored (shape, size, registered skills) and stamps planned_at.';

create function runproof_private.tg_runs__guard() returns trigger
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

create function runproof_private.tg_runs__insert_guard() returns trigger
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
  return new;
end
$$;
comment on function runproof_private.tg_runs__insert_guard() is
  'Trigger: a new run starts pending (or planned with its plan), with no attempts, progress or seal.';

create function runproof_private.tg__no_truncate() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
begin
  perform runproof_private.raise_immutable('TRUNCATE', tg_table_name, 'all rows',
    format('runproof.%s is part of the ledger', tg_table_name), 'ledger tables are never truncated');
  return null;
end
$$;
comment on function runproof_private.tg__no_truncate() is 'Trigger: rejects TRUNCATE of a ledger table.';

create trigger tg_runs__origin_check before insert on runproof.runs
  for each row execute function runproof_private.tg_runs__origin_check();
create trigger tg_runs__insert_guard before insert on runproof.runs
  for each row execute function runproof_private.tg_runs__insert_guard();
create trigger tg_runs__plan_check before insert or update of plan on runproof.runs
  for each row execute function runproof_private.tg_runs__plan_check();
create trigger tg_runs__guard before update or delete on runproof.runs
  for each row execute function runproof_private.tg_runs__guard();
create trigger tg_runs__no_truncate before truncate on runproof.runs
  for each statement execute function runproof_private.tg__no_truncate();

--------------------------------------------------------------------------------
-- Guards on traces
--------------------------------------------------------------------------------

create function runproof_private.tg_traces__open() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_run record;
begin
  -- Lock the run so two attempts cannot open at once.
  select r.status, r.attempts into v_run from runproof.runs r
   where r.tenant_id = new.tenant_id and r.id = new.run_id for no key update;
  if not found then
    raise exception 'run % of tenant % not found', new.run_id, new.tenant_id
      using errcode = 'RPNFD', hint = 'open traces with runproof_private.start_attempt';
  end if;
  if v_run.status <> 'running' or new.attempt <> v_run.attempts then
    raise exception 'trace attempt % does not match run % (status %, attempts %)', new.attempt, new.run_id, v_run.status, v_run.attempts
      using errcode = 'RPSTS', hint = 'open traces with runproof_private.start_attempt';
  end if;
  if new.status <> 'running' or new.completed_at is not null or new.step_count is not null
     or new.root_hash is not null or new.archived_at is not null then
    raise exception 'a new trace starts running and unsealed'
      using errcode = 'RPSTS', hint = 'open traces with runproof_private.start_attempt';
  end if;
  if exists (select 1 from runproof.traces t where t.tenant_id = new.tenant_id and t.run_id = new.run_id and t.status = 'running') then
    raise exception 'run % already has a running trace', new.run_id
      using errcode = 'RPSTS', hint = 'seal the running trace before starting another attempt';
  end if;
  return new;
end
$$;
comment on function runproof_private.tg_traces__open() is
  'Trigger: a trace opens only as the run''s current attempt, running and unsealed, and only when no other trace of the run is running.';

create function runproof_private.tg_traces__guard() returns trigger
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
      raise exception 'seal of trace % does not match its chain: step_count % (chain has %), root_hash %',
        old.id, new.step_count, coalesce(v_last_index + 1, 0), runproof_private.hex(new.root_hash)
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

create trigger tg_traces__open before insert on runproof.traces
  for each row execute function runproof_private.tg_traces__open();
create trigger tg_traces__guard before update or delete on runproof.traces
  for each row execute function runproof_private.tg_traces__guard();
create trigger tg_traces__no_truncate before truncate on runproof.traces
  for each statement execute function runproof_private.tg__no_truncate();

--------------------------------------------------------------------------------
-- Guards on steps, decisions, incidents
--------------------------------------------------------------------------------

create function runproof_private.tg_policy_decisions__check() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
begin
  if not exists (select 1 from runproof.traces t where t.tenant_id = new.tenant_id and t.id = new.trace_id
                 and t.run_id = new.run_id and t.status = 'running') then
    raise exception 'trace % is not a running trace of run %', new.trace_id, new.run_id
      using errcode = 'RPCHN', hint = 'decide steps only for the running attempt of a run';
  end if;
  return new;
end
$$;
comment on function runproof_private.tg_policy_decisions__check() is 'Trigger: a policy decision is taken only for a running trace.';

create function runproof_private.tg_trace_steps__chain() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_trace record;
  v_last_index integer;
  v_last_hash bytea;
  v_expected integer;
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
  new.recorded_at := clock_timestamp();
  new.prev_hash := coalesce(v_last_hash, runproof_private.genesis_hash(new.tenant_id, new.run_id, new.trace_id));
  new.step_hash := runproof_private.step_hash(new.prev_hash, runproof_private.step_canonical(new));
  return new;
end
$$;
comment on function runproof_private.tg_trace_steps__chain() is
  'Trigger: appends a step to its trace''s chain. Serializes appends per trace, rejects gaps, duplicates, appends to sealed traces and client-supplied hashes, and computes prev_hash and step_hash.';

create trigger tg_policy_decisions__check before insert on runproof.policy_decisions
  for each row execute function runproof_private.tg_policy_decisions__check();
create trigger tg_policy_decisions__append_only before update or delete on runproof.policy_decisions
  for each row execute function runproof_private.tg__append_only('tenant_id', 'trace_id', 'step_index');
create trigger tg_policy_decisions__no_truncate before truncate on runproof.policy_decisions
  for each statement execute function runproof_private.tg__no_truncate();
create trigger tg_trace_steps__chain before insert on runproof.trace_steps
  for each row execute function runproof_private.tg_trace_steps__chain();
create trigger tg_trace_steps__append_only before update or delete on runproof.trace_steps
  for each row execute function runproof_private.tg__append_only('tenant_id', 'trace_id', 'step_index');
create trigger tg_trace_steps__no_truncate before truncate on runproof.trace_steps
  for each statement execute function runproof_private.tg__no_truncate();
create trigger tg_incidents__append_only before update or delete on runproof.incidents
  for each row execute function runproof_private.tg__append_only('tenant_id', 'id');
create trigger tg_incidents__no_truncate before truncate on runproof.incidents
  for each statement execute function runproof_private.tg__no_truncate();

-- ENABLE ALWAYS: session_replication_role = replica does not switch the guards off.
alter table runproof.runs enable always trigger tg_runs__origin_check;
alter table runproof.runs enable always trigger tg_runs__insert_guard;
alter table runproof.runs enable always trigger tg_runs__plan_check;
alter table runproof.runs enable always trigger tg_runs__guard;
alter table runproof.runs enable always trigger tg_runs__no_truncate;
alter table runproof.traces enable always trigger tg_traces__open;
alter table runproof.traces enable always trigger tg_traces__guard;
alter table runproof.traces enable always trigger tg_traces__no_truncate;
alter table runproof.policy_decisions enable always trigger tg_policy_decisions__check;
alter table runproof.policy_decisions enable always trigger tg_policy_decisions__append_only;
alter table runproof.policy_decisions enable always trigger tg_policy_decisions__no_truncate;
alter table runproof.trace_steps enable always trigger tg_trace_steps__chain;
alter table runproof.trace_steps enable always trigger tg_trace_steps__append_only;
alter table runproof.trace_steps enable always trigger tg_trace_steps__no_truncate;
alter table runproof.incidents enable always trigger tg_incidents__append_only;
alter table runproof.incidents enable always trigger tg_incidents__no_truncate;

--------------------------------------------------------------------------------
-- Guard catalogue for DBAs
--------------------------------------------------------------------------------

create table runproof_private.guard_descriptions (
  table_name text not null,
  trigger_name text not null,
  blocks text not null,
  allows text not null,
  primary key (table_name, trigger_name)
);
comment on table runproof_private.guard_descriptions is 'What each guard trigger is meant to block and allow; runproof_private.guards joins it to the live catalog.';
comment on column runproof_private.guard_descriptions.table_name is 'The guarded table in schema runproof.';
comment on column runproof_private.guard_descriptions.trigger_name is 'The trigger''s name.';
comment on column runproof_private.guard_descriptions.blocks is 'What it rejects.';
comment on column runproof_private.guard_descriptions.allows is 'What it lets through.';
insert into runproof_private.guard_descriptions values
  ('runs', 'tg_runs__origin_check', 'INSERT with a NULL (23502), blank (RPOBL), over 128 characters (RPOLN), untrimmed or control-character (RPOCH) or reserved (RPORS) origin_system_id', 'INSERT with a real system identifier'),
  ('runs', 'tg_runs__insert_guard', 'INSERT of a run that is not pending/planned, or already has attempts, progress or a seal (RPSTS)', 'INSERT of a fresh run (runproof.enqueue_run)'),
  ('runs', 'tg_runs__plan_check', 'storing a malformed plan (RPPLN) or one naming an unregistered skill (RPSKL)', 'storing a valid plan once'),
  ('runs', 'tg_runs__guard', 'DELETE; changing tenant, agent, goal, origin, idempotency key, max_attempts or a stored plan; any change to a finished run; progress outside an attempt or backwards; a client-supplied seal (RPIMM); a status change outside the state machine (RPSTS)', 'status changes along runproof_private.run_status_transitions; plan stored once while pending; progress forward while running; the seal computed at the final status'),
  ('runs', 'tg_runs__no_truncate', 'TRUNCATE (RPIMM)', 'nothing'),
  ('traces', 'tg_traces__open', 'INSERT of a trace that is not the run''s current attempt, not running, pre-sealed, or beside another running trace (RPSTS)', 'INSERT by runproof_private.start_attempt'),
  ('traces', 'tg_traces__guard', 'DELETE; any UPDATE other than the seal or archival (RPIMM); a seal that disagrees with the chain (RPSEL)', 'seal: running -> completed|failed|aborted with completed_at, step_count, root_hash (and metadata); archival: archived_at NULL -> timestamp on a sealed trace'),
  ('traces', 'tg_traces__no_truncate', 'TRUNCATE (RPIMM)', 'nothing'),
  ('policy_decisions', 'tg_policy_decisions__check', 'INSERT for a trace that is not running (RPCHN)', 'INSERT of the decision for the next step'),
  ('policy_decisions', 'tg_policy_decisions__append_only', 'UPDATE, DELETE (RPIMM)', 'nothing'),
  ('policy_decisions', 'tg_policy_decisions__no_truncate', 'TRUNCATE (RPIMM)', 'nothing'),
  ('trace_steps', 'tg_trace_steps__chain', 'INSERT with client-supplied hashes, a gap or duplicate index, into a sealed or missing trace, or for another run (RPCHN)', 'INSERT of the next step; computes prev_hash and step_hash'),
  ('trace_steps', 'tg_trace_steps__append_only', 'UPDATE, DELETE (RPIMM)', 'nothing'),
  ('trace_steps', 'tg_trace_steps__no_truncate', 'TRUNCATE (RPIMM)', 'nothing'),
  ('incidents', 'tg_incidents__append_only', 'UPDATE, DELETE (RPIMM)', 'nothing'),
  ('incidents', 'tg_incidents__no_truncate', 'TRUNCATE (RPIMM)', 'nothing');

create view runproof_private.guards as
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
   order by 1, 2;
comment on view runproof_private.guards is
  'Every guard trigger on the ledger tables: what it blocks and allows, and whether it is live (always), weakened (origin/replica only), DISABLED or MISSING.';

--------------------------------------------------------------------------------
-- Ledger operations used by the worker (and tests)
--------------------------------------------------------------------------------

create function runproof_private.start_attempt(p_tenant_id uuid, p_run_id uuid, p_metadata jsonb default '{}')
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
    raise exception 'run % cannot start an attempt (status %)', p_run_id,
      coalesce((select status from runproof.runs where tenant_id = p_tenant_id and id = p_run_id), 'not found')
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

create function runproof_private.seal_trace(p_tenant_id uuid, p_trace_id uuid, p_status text, p_metadata jsonb default null)
  returns runproof.traces
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_trace runproof.traces;
  v_last_index integer;
  v_last_hash bytea;
begin
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

--------------------------------------------------------------------------------
-- Verification
--------------------------------------------------------------------------------

create type runproof.proof as (
  integrity_model text,
  verification_status text,
  tenant_id uuid,
  run_id uuid,
  trace_id uuid,
  chain_length integer,
  root_hash text,
  trace_count integer,
  step_count integer,
  first_bad_attempt integer,
  first_bad_trace_id uuid,
  first_bad_step_index integer,
  reason text,
  verified_at timestamptz
);
comment on type runproof.proof is 'The result of verifying a trace or a run by recomputing every hash from the stored columns.';
comment on column runproof.proof.integrity_model is 'Always HASH_CHAIN.';
comment on column runproof.proof.verification_status is 'VERIFIED; IN_PROGRESS (intact so far, not finished); TAMPERED (content, hash, link, seal or ownership changed); BROKEN (steps or traces missing or extra); NOT_FOUND.';
comment on column runproof.proof.tenant_id is 'The tenant.';
comment on column runproof.proof.run_id is 'The run.';
comment on column runproof.proof.trace_id is 'The trace, when one trace was verified.';
comment on column runproof.proof.chain_length is 'How many steps were verified, in chain order, before the first bad one (all of them when verified).';
comment on column runproof.proof.root_hash is 'The root recomputed from the chain, hex: the trace root (last step_hash) or the run root.';
comment on column runproof.proof.trace_count is 'How many traces were examined.';
comment on column runproof.proof.step_count is 'How many step rows were examined.';
comment on column runproof.proof.first_bad_attempt is 'When not verified: the attempt of the first bad trace.';
comment on column runproof.proof.first_bad_trace_id is 'When not verified: the first bad trace (NULL if it is missing).';
comment on column runproof.proof.first_bad_step_index is 'When not verified: the first bad (or missing) step index in that trace; NULL when the fault is not in a step (a seal, a missing trace, the run row).';
comment on column runproof.proof.reason is 'When not verified: what is wrong, in words.';
comment on column runproof.proof.verified_at is 'When the verification ran.';

create function runproof_private.verify_trace_row(t runproof.traces) returns runproof.proof
  language plpgsql stable
  set search_path = pg_catalog
  as $$
declare
  v_genesis bytea := runproof_private.genesis_hash(t.tenant_id, t.run_id, t.id);
  v_count integer;
  v_last_hash bytea;
  v_bad integer;
  v_result runproof.proof;
begin
  v_result.integrity_model := 'HASH_CHAIN';
  v_result.tenant_id := t.tenant_id;
  v_result.run_id := t.run_id;
  v_result.trace_id := t.id;
  v_result.trace_count := 1;
  v_result.verified_at := clock_timestamp();

  -- One set-based pass: every row is checked for its index, its link to the previous stored
  -- step_hash (or the genesis), and its own hash recomputed from its content. Together these
  -- are the whole chain, without trusting any stored hash on its own.
  with s as (
    select st.step_index,
           (row_number() over w - 1)::integer as expected_index,
           st.prev_hash,
           coalesce(lag(st.step_hash) over w, v_genesis) as expected_prev,
           st.step_hash,
           runproof_private.step_hash(st.prev_hash, runproof_private.step_canonical(st)) as recomputed
      from runproof.trace_steps st
     where st.tenant_id = t.tenant_id and st.trace_id = t.id
    window w as (order by st.step_index)
  ), faults as (
    select s.*,
           case when s.step_index <> s.expected_index then 'gap'
                when s.prev_hash is distinct from s.expected_prev then 'link'
                when s.step_hash is distinct from s.recomputed then 'hash'
           end as fault
      from s
  )
  select count(*)::integer,
         min(case when f.fault = 'gap' then f.expected_index when f.fault is not null then f.step_index end)
    into v_count, v_bad
    from faults f;
  select st.step_hash into v_last_hash from runproof.trace_steps st
   where st.tenant_id = t.tenant_id and st.trace_id = t.id order by st.step_index desc limit 1;
  v_result.step_count := v_count;
  v_result.root_hash := runproof_private.hex(coalesce(v_last_hash, v_genesis));

  if v_bad is not null then
    -- Explain the first fault (a second, indexed look at the one or two rows involved).
    declare
      v_row runproof.trace_steps;
      v_prev_hash bytea;
      v_idx integer := v_bad;
    begin
      select * into v_row from runproof.trace_steps where tenant_id = t.tenant_id and trace_id = t.id and step_index = v_idx;
      v_result.first_bad_attempt := t.attempt;
      v_result.first_bad_trace_id := t.id;
      v_result.first_bad_step_index := v_idx;
      v_result.chain_length := v_idx;
      if not found then
        v_result.verification_status := 'BROKEN';
        v_result.reason := format('step %s is missing from the chain (the next stored step is %s)', v_idx,
          (select min(step_index) from runproof.trace_steps where tenant_id = t.tenant_id and trace_id = t.id and step_index > v_idx));
        return v_result;
      end if;
      v_prev_hash := case when v_idx = 0 then v_genesis else
        (select step_hash from runproof.trace_steps where tenant_id = t.tenant_id and trace_id = t.id and step_index = v_idx - 1) end;
      v_result.verification_status := 'TAMPERED';
      if v_row.prev_hash is distinct from v_prev_hash then
        v_result.reason := format('step %s: prev_hash %s does not link to %s', v_idx, runproof_private.hex(v_row.prev_hash),
          case when v_idx = 0 then 'the trace''s genesis hash ' else format('the step_hash of step %s ', v_idx - 1) end
          || runproof_private.hex(v_prev_hash));
      else
        v_result.reason := format('step %s: stored step_hash %s does not match sha256(prev_hash || sha256(content)) = %s; its content or its hash was changed',
          v_idx, runproof_private.hex(v_row.step_hash),
          runproof_private.hex(runproof_private.step_hash(v_row.prev_hash, runproof_private.step_canonical(v_row))));
      end if;
      return v_result;
    end;
  end if;

  v_result.chain_length := v_count;
  if t.status = 'running' then
    if t.step_count is not null or t.root_hash is not null then
      v_result.verification_status := 'TAMPERED';
      v_result.first_bad_attempt := t.attempt;
      v_result.first_bad_trace_id := t.id;
      v_result.reason := 'a running trace carries a seal';
      return v_result;
    end if;
    v_result.verification_status := 'IN_PROGRESS';
    return v_result;
  end if;

  if t.step_count is null or t.root_hash is null then
    v_result.verification_status := 'BROKEN';
    v_result.first_bad_attempt := t.attempt;
    v_result.first_bad_trace_id := t.id;
    v_result.reason := format('trace is %s but has no seal', t.status);
  elsif t.step_count <> v_count then
    v_result.verification_status := 'BROKEN';
    v_result.first_bad_attempt := t.attempt;
    v_result.first_bad_trace_id := t.id;
    v_result.first_bad_step_index := least(t.step_count, v_count);
    v_result.chain_length := least(t.step_count, v_count);
    v_result.reason := case when v_count < t.step_count
      then format('the seal says %s steps but the chain has %s: step %s onwards is missing', t.step_count, v_count, v_count)
      else format('the seal says %s steps but the chain has %s: step %s onwards was added after the seal', t.step_count, v_count, t.step_count) end;
  elsif t.root_hash <> coalesce(v_last_hash, v_genesis) then
    v_result.verification_status := 'TAMPERED';
    v_result.first_bad_attempt := t.attempt;
    v_result.first_bad_trace_id := t.id;
    v_result.reason := format('the sealed root_hash %s does not match the chain''s root %s', runproof_private.hex(t.root_hash), v_result.root_hash);
  else
    v_result.verification_status := 'VERIFIED';
  end if;
  return v_result;
end
$$;
comment on function runproof_private.verify_trace_row(runproof.traces) is 'Verifies one trace row against its steps (the core of verify_trace and run_proof).';

create function runproof.verify_trace(trace_id uuid) returns runproof.proof
  language plpgsql stable
  set search_path = pg_catalog
  as $$
declare
  v_trace runproof.traces;
  v_result runproof.proof;
begin
  select * into v_trace from runproof.traces t where t.id = verify_trace.trace_id;
  if not found then
    v_result.integrity_model := 'HASH_CHAIN';
    v_result.verification_status := 'NOT_FOUND';
    v_result.trace_id := verify_trace.trace_id;
    v_result.trace_count := 0;
    v_result.step_count := 0;
    v_result.chain_length := 0;
    v_result.reason := 'no such trace';
    v_result.verified_at := clock_timestamp();
    return v_result;
  end if;
  return runproof_private.verify_trace_row(v_trace);
end
$$;
comment on function runproof.verify_trace(uuid) is
  'Recomputes every hash of one trace from its stored columns and says whether it is intact: VERIFIED, IN_PROGRESS, TAMPERED, BROKEN or NOT_FOUND, with the first bad step and the reason.';

create function runproof.run_proof(tenant_id uuid, run_id uuid) returns runproof.proof
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
    v_result.chain_length := v_result.chain_length + v_tp.chain_length;
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

create function runproof.verify_all() returns table (
  tenant_id uuid, run_id uuid, trace_id uuid, verification_status text,
  first_bad_attempt integer, first_bad_step_index integer, reason text
)
  language plpgsql stable
  set search_path = pg_catalog
  as $$
declare
  v_run record;
  v_p runproof.proof;
begin
  for v_run in select r.tenant_id, r.id from runproof.runs r order by r.created_at, r.id loop
    v_p := runproof.run_proof(v_run.tenant_id, v_run.id);
    if v_p.verification_status not in ('VERIFIED', 'IN_PROGRESS') then
      tenant_id := v_run.tenant_id; run_id := v_run.id; trace_id := v_p.first_bad_trace_id;
      verification_status := v_p.verification_status; first_bad_attempt := v_p.first_bad_attempt;
      first_bad_step_index := v_p.first_bad_step_index; reason := v_p.reason;
      return next;
    end if;
  end loop;
  -- Rows no run leads to: traces without their run, steps without their trace.
  return query
    select t.tenant_id, t.run_id, t.id, 'BROKEN'::text, t.attempt, null::integer, 'trace has no run row'::text
      from runproof.traces t
     where not exists (select 1 from runproof.runs r where r.tenant_id = t.tenant_id and r.id = t.run_id);
  return query
    select s.tenant_id, s.run_id, s.trace_id, 'BROKEN'::text, null::integer, min(s.step_index), 'steps have no trace row'::text
      from runproof.trace_steps s
     where not exists (select 1 from runproof.traces t where t.tenant_id = s.tenant_id and t.id = s.trace_id)
     group by s.tenant_id, s.run_id, s.trace_id;
end
$$;
comment on function runproof.verify_all() is
  'Verifies every run the caller can see and lists each one that is not VERIFIED or IN_PROGRESS, plus traces and steps that no run leads to. An empty result means the ledger is intact.';

--------------------------------------------------------------------------------
-- Row level security and grants
--------------------------------------------------------------------------------

alter table runproof.tenants enable row level security;
alter table runproof.agents enable row level security;
alter table runproof.skills enable row level security;
alter table runproof.runs enable row level security;
alter table runproof.traces enable row level security;
alter table runproof.policy_decisions enable row level security;
alter table runproof.trace_steps enable row level security;
alter table runproof.incidents enable row level security;
alter table runproof_private.api_keys enable row level security;

create policy select_own on runproof.tenants for select to runproof_tenant using (id = (select runproof_private.current_tenant_id()));
create policy select_all on runproof.skills for select to runproof_tenant using (true);
create policy select_own on runproof.agents for select to runproof_tenant using (tenant_id = (select runproof_private.current_tenant_id()));
create policy select_own on runproof.runs for select to runproof_tenant using (tenant_id = (select runproof_private.current_tenant_id()));
create policy select_own on runproof.traces for select to runproof_tenant using (tenant_id = (select runproof_private.current_tenant_id()));
create policy select_own on runproof.policy_decisions for select to runproof_tenant using (tenant_id = (select runproof_private.current_tenant_id()));
create policy select_own on runproof.trace_steps for select to runproof_tenant using (tenant_id = (select runproof_private.current_tenant_id()));
create policy select_own on runproof.incidents for select to runproof_tenant using (tenant_id = (select runproof_private.current_tenant_id()));

-- Tenants read; every write goes through SQL functions.
grant select on runproof.tenants, runproof.agents, runproof.skills, runproof.runs, runproof.traces,
  runproof.policy_decisions, runproof.trace_steps, runproof.incidents to runproof_tenant;
grant execute on function runproof_private.current_tenant_id(), runproof_private.hex(bytea),
  runproof_private.genesis_hash(uuid, uuid, uuid),
  runproof_private.step_canonical(runproof.trace_steps), runproof_private.step_hash(bytea, bytea),
  runproof_private.run_root_hash(uuid, uuid, bytea[]), runproof_private.is_terminal_status(text),
  runproof_private.verify_trace_row(runproof.traces),
  runproof.verify_trace(uuid), runproof.run_proof(uuid, uuid) to runproof_tenant;
