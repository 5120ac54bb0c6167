--! Previous: -
--! Hash: sha1:44853e3cc2da0f073dfb152f76fd30e89b87b9ed
--! Message: baseline

-- RunProof baseline: the schema as of 0.1 (the nine pre-release migrations squashed into one).
-- Tables, columns, constraints, indexes and types are defined here; functions, triggers, views,
-- policies, grants and rule rows come from sql/ (inlined below by graphile-migrate's --!include).

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

--! Included common/values.sql
-- Value helpers shared by the tables' checks and the functions: what counts as blank, how a value
-- is shown in an error, which origin ids are placeholders, which run statuses are final.
-- Applied before the tables, whose CHECK constraints call some of them.

create or replace function runproof_private.hex(b bytea) returns text
  language sql immutable strict parallel safe
  as $$ select encode(b, 'hex') $$;
comment on function runproof_private.hex(bytea) is 'Lower-case hex of a hash, the form hashes take in proofs and bundles.';

create or replace function runproof_private.is_blank(p text) returns boolean
  language sql immutable parallel safe
  as $$ select p is null or p ~ '^[\s\u00a0\u1680\u2000-\u200b\u2028\u2029\u202f\u205f\u3000\ufeff]*$' $$;
comment on function runproof_private.is_blank(text) is
  'Whether a text has no visible character: NULL, empty, or only white space (ASCII or Unicode spaces, zero-width space, BOM).';

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

create or replace function runproof_private.reserved_origin_system_ids() returns text[]
  language sql immutable parallel safe
  as $$ select array['legacy-migration', 'legacy', 'default', 'unknown', 'none', 'null', 'undefined', 'n/a', 'na', 'tbd', 'todo', 'changeme', 'system', 'migration'] $$;
comment on function runproof_private.reserved_origin_system_ids() is
  'origin_system_id values that are rejected (compared case-insensitively): placeholders that say nothing about where a run came from. ''legacy-migration'' is the default that once rejected itself.';

create or replace function runproof_private.is_terminal_status(p_status text) returns boolean
  language sql immutable parallel safe
  as $$ select p_status in ('succeeded', 'failed', 'halted', 'cancelled') $$;
comment on function runproof_private.is_terminal_status(text) is 'Whether a run status is final (nothing about the run changes afterwards).';
--! EndIncluded common/values.sql
--! Included common/errors.sql
-- The one immutability error (SQLSTATE RPIMM, message S6_IMMUTABILITY_VIOLATION) and the helpers
-- its callers use to name the row and the columns a refused change touched.

create or replace function runproof_private.raise_immutable(p_op text, p_table text, p_key text, p_detail text, p_hint text)
  returns void language plpgsql volatile
  as $$
begin
  raise exception 'S6_IMMUTABILITY_VIOLATION: % on runproof.% (%) is not allowed', p_op, p_table, p_key
    using errcode = 'RPIMM', detail = coalesce(p_detail, ''), hint = p_hint,
          schema = 'runproof', table = p_table;
end
$$;
comment on function runproof_private.raise_immutable(text, text, text, text, text) is
  'Raises the one immutability error (SQLSTATE RPIMM, message starting S6_IMMUTABILITY_VIOLATION) naming the table and key.';

create or replace function runproof_private.row_key(p_row jsonb, p_columns text[]) returns text
  language sql immutable parallel safe
  as $$
    select string_agg(c || '=' || coalesce(p_row ->> c, 'NULL'), ', ' order by o)
    from unnest(p_columns) with ordinality as u(c, o)
  $$;
comment on function runproof_private.row_key(jsonb, text[]) is 'Formats a row''s key columns as "col=value, ..." for error messages.';

create or replace function runproof_private.changed_columns(p_old jsonb, p_new jsonb) returns text[]
  language sql immutable parallel safe
  as $$
    select coalesce(array_agg(n.key order by n.key), '{}')
    from jsonb_each(p_new) n join jsonb_each(p_old) o using (key)
    where n.value is distinct from o.value
  $$;
comment on function runproof_private.changed_columns(jsonb, jsonb) is 'The columns an UPDATE changes, for guards and their messages.';
--! EndIncluded common/errors.sql
--! Included common/request.sql
-- Who a request acts for: the API key's tenant inside a GraphQL request (set by the server as
-- runproof.tenant_id), else the tenant_id an owner passes. A tenant can never act for another.

create or replace function runproof_private.current_tenant_id() returns uuid
  language sql stable parallel safe
  as $$ select nullif(current_setting('runproof.tenant_id', true), '')::uuid $$;
comment on function runproof_private.current_tenant_id() is
  'The tenant of the current request (transaction-local setting runproof.tenant_id), or NULL outside a request.';

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
--! EndIncluded common/request.sql

--------------------------------------------------------------------------------
-- Tenants, API keys, agents, skills
--------------------------------------------------------------------------------

create table runproof.tenants (
  id uuid primary key default gen_random_uuid(),
  name text not null unique,
  daily_budget_cents numeric(14, 4) not null default 10000 check (daily_budget_cents >= 0),
  created_at timestamptz not null default now(),
  constraint tenants_name_valid check (not runproof_private.is_blank(name) and length(name) <= 200)
);
-- NOT VALID as it was added (a fresh database has no rows to check; every new or changed row is checked).
alter table runproof.tenants add constraint tenants_daily_budget_cents_finite check (daily_budget_cents <> 'NaN'::numeric) not valid;
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
  name text not null,
  description text not null default '' check (length(description) <= 2000),
  allowed_skills text[] check (allowed_skills is null or cardinality(allowed_skills) <= 100),
  created_at timestamptz not null default now(),
  primary key (tenant_id, id),
  unique (tenant_id, name),
  constraint agents_name_valid check (not runproof_private.is_blank(name) and length(name) <= 200)
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
  updated_at timestamptz not null default now(),
  cost_cents numeric(14, 4) not null default 0 check (cost_cents >= 0)
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
comment on column runproof.skills.cost_cents is 'Estimated cost of one call, in cents: the budget policy checks it before the call.';

--------------------------------------------------------------------------------
-- Runs
--------------------------------------------------------------------------------

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
    not runproof_private.is_blank(origin_system_id) and length(origin_system_id) <= 128
    and origin_system_id !~ '^[\s\u00a0\u1680\u2000-\u200b\u2028\u2029\u202f\u205f\u3000\ufeff]|[\s\u00a0\u1680\u2000-\u200b\u2028\u2029\u202f\u205f\u3000\ufeff]$'
    and origin_system_id !~ '[[:cntrl:]\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]'
    and lower(origin_system_id) <> all (runproof_private.reserved_origin_system_ids())),
  constraint runs_goal_valid check (not runproof_private.is_blank(goal) and length(goal) <= 10000),
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
-- GraphQL filters runs by origin (condition: {originSystemId: ...}); without an index PostGraphile
-- would not offer the filter. origin_system_id never changes, so this costs only at insert.
create index runs_tenant_origin_idx on runproof.runs (tenant_id, origin_system_id);
comment on index runproof.runs_tenant_origin_idx is 'Serves filtering a tenant''s runs by origin_system_id (GraphQL runs(condition: {originSystemId})).';
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
-- Execution state: agent memory, spend, cancellation, worker liveness
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
-- Guard catalogue, DDL audit, proofs
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
create table runproof_private.ddl_audit (
  id bigint generated always as identity primary key,
  occurred_at timestamptz not null default clock_timestamp(),
  event text not null check (event in ('ddl_command_end', 'sql_drop', 'install', 'migration')),
  command_tag text not null,
  object_type text,
  schema_name text,
  object_identity text,
  statement text,
  statement_md5 text,
  session_user_name text not null default session_user,
  current_user_name text not null default current_user,
  application_name text not null default coalesce(current_setting('application_name', true), ''),
  client_addr inet default inet_client_addr(),
  backend_pid integer not null default pg_backend_pid(),
  xact_id xid8 not null default pg_current_xact_id(),
  migration_lock_held boolean not null default false,
  details jsonb not null default '{}' check (jsonb_typeof(details) = 'object'),
  -- Everything but a short list of additive commands can weaken a guard (a dropped constraint,
  -- a disabled trigger, a replaced function, a column type, a default, a grant, a policy ...).
  guard_weakening boolean generated always as (
    event = 'sql_drop'
    or (event = 'ddl_command_end' and command_tag not in
        ('COMMENT', 'CREATE INDEX', 'REINDEX', 'CREATE STATISTICS', 'ALTER STATISTICS', 'CREATE TABLE',
         'CREATE TABLE AS', 'SELECT INTO', 'CREATE SEQUENCE', 'ANALYZE'))) stored
);
comment on table runproof_private.ddl_audit is
  'Append-only record of schema changes to objects in runproof and runproof_private, written by the event triggers runproof_ddl_audit_end (ddl_command_end) and runproof_ddl_audit_drop (sql_drop); plus one install row per installation of the audit and one migration row per committed graphile-migrate migration. Proofs read it (guard_status).';
comment on column runproof_private.ddl_audit.id is 'Order of recording.';
comment on column runproof_private.ddl_audit.occurred_at is 'When the change was made (clock time inside its transaction).';
comment on column runproof_private.ddl_audit.event is 'ddl_command_end (an object created or altered), sql_drop (an object dropped), install (the audit was installed) or migration (a committed migration ran in this transaction).';
comment on column runproof_private.ddl_audit.command_tag is 'The command, e.g. ALTER TABLE, CREATE FUNCTION, DROP TRIGGER (for sql_drop, the command that dropped the object).';
comment on column runproof_private.ddl_audit.object_type is 'The kind of object changed (table, function, trigger, table constraint, ...).';
comment on column runproof_private.ddl_audit.schema_name is 'The object''s schema (NULL for objects Postgres does not name one for, e.g. a policy or a GRANT).';
comment on column runproof_private.ddl_audit.object_identity is 'The object, e.g. runproof.trace_steps or tg_incidents__append_only on runproof.incidents.';
comment on column runproof_private.ddl_audit.statement is 'The statement text (current_query()); stored once per transaction and text, NULL on later rows of the same statement (see statement_md5).';
comment on column runproof_private.ddl_audit.statement_md5 is 'md5 of the statement text, on every row.';
comment on column runproof_private.ddl_audit.session_user_name is 'Who: the session (login) role.';
comment on column runproof_private.ddl_audit.current_user_name is 'Who: the role the command ran as.';
comment on column runproof_private.ddl_audit.application_name is 'The client''s application_name.';
comment on column runproof_private.ddl_audit.client_addr is 'The client''s address (NULL over a Unix socket).';
comment on column runproof_private.ddl_audit.backend_pid is 'The server process of the session.';
comment on column runproof_private.ddl_audit.xact_id is 'The transaction: a change whose transaction also has a migration row was made by a RunProof migration.';
comment on column runproof_private.ddl_audit.migration_lock_held is 'Whether the session held graphile-migrate''s advisory lock (informational; proofs rely on the migration row instead).';
comment on column runproof_private.ddl_audit.details is 'For install rows: the event triggers'' oids and the audit function''s fingerprint; for migration rows: the migration''s filename and hash.';
comment on column runproof_private.ddl_audit.guard_weakening is 'Whether the change can weaken a guard: every drop, and every other command except COMMENT, CREATE INDEX, REINDEX, CREATE/ALTER STATISTICS, CREATE TABLE (AS), SELECT INTO, CREATE SEQUENCE and ANALYZE.';
create index ddl_audit_weakening_idx on runproof_private.ddl_audit (occurred_at) where guard_weakening;
comment on index runproof_private.ddl_audit_weakening_idx is 'Serves the proofs'' look-up of guard-weakening changes during a run.';
create index ddl_audit_xact_idx on runproof_private.ddl_audit (xact_id);
comment on index runproof_private.ddl_audit_xact_idx is 'Serves telling migration changes apart (same transaction as a migration row) and storing a statement once per transaction.';

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
  verified_at timestamptz,
  guard_status text,
  guard_detail text
);
comment on type runproof.proof is 'The result of verifying a trace or a run by recomputing every hash from the stored columns.';
comment on column runproof.proof.integrity_model is 'Always HASH_CHAIN.';
comment on column runproof.proof.verification_status is 'VERIFIED; IN_PROGRESS (intact so far, not finished); TAMPERED (content, hash, link, seal or ownership changed); BROKEN (steps or traces missing or extra); NOT_FOUND.';
comment on column runproof.proof.tenant_id is 'The tenant.';
comment on column runproof.proof.run_id is 'The run.';
comment on column runproof.proof.trace_id is 'The trace, when one trace was verified.';
comment on column runproof.proof.chain_length is 'How many steps verified, in chain order (attempt by attempt), before the first fault: all of them when VERIFIED.';
comment on column runproof.proof.root_hash is 'The root of the chain as stored, hex: a trace''s last stored step_hash (its genesis when empty), or for a run the run root over its content and its traces'' roots. When the status is VERIFIED it equals the sealed root.';
comment on column runproof.proof.trace_count is 'How many traces were examined.';
comment on column runproof.proof.step_count is 'How many step rows were examined.';
comment on column runproof.proof.first_bad_attempt is 'When not verified: the attempt of the first bad trace.';
comment on column runproof.proof.first_bad_trace_id is 'When not verified: the first bad trace (NULL if it is missing).';
comment on column runproof.proof.first_bad_step_index is 'When not verified: the first bad (or missing) step index in that trace; NULL when the fault is not in a step (a seal, a missing trace, the run row).';
comment on column runproof.proof.reason is 'When not verified: what is wrong, in words.';
comment on column runproof.proof.verified_at is 'When the verification ran.';
comment on column runproof.proof.guard_status is
  'Whether the guards held while this was recorded (from the DDL audit, not from the hash chain): GUARDED; UNGUARDED (a schema change that can weaken the guards was made outside a RunProof migration while it was recorded, or a guard is not live now); UNAUDITED (the DDL audit is not installed or not live). NULL when there is nothing to assess (NOT_FOUND).';
comment on column runproof.proof.guard_detail is 'When not GUARDED: why, in words (the first such change, with its runproof_private.ddl_audit id).';


--------------------------------------------------------------------------------
-- Rules (sql/)
--------------------------------------------------------------------------------

--! Included ledger/append_only.sql
-- The generic guards of the ledger's append-only tables: no UPDATE, DELETE or TRUNCATE, for
-- every role, owner included. Each table's own file attaches them with ENABLE ALWAYS, so
-- session_replication_role = replica does not switch them off either.

create or replace function runproof_private.tg__append_only() returns trigger
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
  if tg_table_schema <> 'runproof' then
    raise exception 'S6_IMMUTABILITY_VIOLATION: % on %.% (%) is not allowed', tg_op, tg_table_schema, tg_table_name, v_key
      using errcode = 'RPIMM', detail = format('%s.%s is append-only', tg_table_schema, tg_table_name),
            hint = format('rows of %s.%s are never changed or removed; record a new row instead', tg_table_schema, tg_table_name),
            schema = tg_table_schema, table = tg_table_name;
  end if;
  perform runproof_private.raise_immutable(tg_op, tg_table_name, v_key,
    format('runproof.%s is append-only', tg_table_name),
    format('rows of runproof.%s are never changed or removed; record a new row instead', tg_table_name));
  return null;
end
$$;
comment on function runproof_private.tg__append_only() is
  'Trigger: rejects UPDATE, DELETE and TRUNCATE on an append-only ledger table (or the DDL audit). Arguments: the key columns to name in the error.';

create or replace function runproof_private.tg__no_truncate() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
begin
  if tg_table_schema <> 'runproof' then
    raise exception 'S6_IMMUTABILITY_VIOLATION: TRUNCATE on %.% (all rows) is not allowed', tg_table_schema, tg_table_name
      using errcode = 'RPIMM', detail = format('%s.%s is part of the ledger', tg_table_schema, tg_table_name),
            hint = 'ledger tables are never truncated', schema = tg_table_schema, table = tg_table_name;
  end if;
  perform runproof_private.raise_immutable('TRUNCATE', tg_table_name, 'all rows',
    format('runproof.%s is part of the ledger', tg_table_name), 'ledger tables are never truncated');
  return null;
end
$$;
comment on function runproof_private.tg__no_truncate() is 'Trigger: rejects TRUNCATE of a ledger table (or the DDL audit).';
--! EndIncluded ledger/append_only.sql
--! Included proof/canonical.sql
-- The bytes that are hashed: the genesis of a trace, the canonical content of a step and of a
-- run, and how they chain into a step_hash, a trace root and a run root. docs/proof-format.md is
-- the normative description; the offline verifier (src/lib/offline-verify.ts) recomputes these.

create or replace function runproof_private.genesis_hash(p_tenant_id uuid, p_run_id uuid, p_trace_id uuid) returns bytea
  language sql immutable parallel safe
  as $$ select sha256(convert_to('runproof.genesis/1|' || p_tenant_id || '|' || p_run_id || '|' || p_trace_id, 'UTF8')) $$;
comment on function runproof_private.genesis_hash(uuid, uuid, uuid) is
  'The prev_hash of a trace''s first step: binds the format version, tenant, run and trace, so steps cannot move between traces.';

-- Written with format() rather than jsonb_build_array(...)::text, byte for byte the same:
-- jsonb_build_array(...)::text converts every column into a jsonb value, assembles a jsonb
-- array, then prints it again. format() writes the same text directly: the uuids, integers and
-- jsonb columns with their own output functions (jsonb's text output is what jsonb_build_array
-- embedded), every text, timestamp and numeric through to_json(), which escapes and formats
-- exactly as jsonb does (same escape_json, same JsonEncodeDateTime, NaN/Infinity quoted the same
-- way). A column that is NULL (impossible under the NOT NULL constraints, possible after a
-- superuser drops one) takes the old path, so the bytes are identical for every row.
-- Checked on 50,000 adversarial rows (control characters, quotes, backslashes, U+2028, astral
-- characters, nested jsonb with unsorted keys, 1e10 and -0, NaN, +/-infinity and BC timestamps,
-- NULLs): bench/proposed-check.sql (history).
create or replace function runproof_private.step_canonical(s runproof.trace_steps) returns bytea
  language sql stable parallel safe
  as $$
    select convert_to(case
      when num_nulls(s.tenant_id, s.run_id, s.trace_id, s.step_index, s.plan_step, s.skill, s.status, s.policy_decision,
                     s.input, s.started_at, s.finished_at, s.duration_ms, s.cost_cents, s.source, s.level, s.recorded_at) = 0
      then format('["runproof.step/1", "%s", "%s", "%s", %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s]',
        s.tenant_id, s.run_id, s.trace_id, s.step_index, s.plan_step,
        to_json(s.skill), to_json(s.status), to_json(s.policy_decision),
        s.input, coalesce(s.output::text, 'null'), coalesce(to_json(s.error)::text, 'null'),
        to_json(s.started_at at time zone 'UTC'), to_json(s.finished_at at time zone 'UTC'),
        to_json(s.duration_ms), to_json(s.cost_cents), to_json(s.source), to_json(s.level),
        to_json(s.recorded_at at time zone 'UTC'))
      else jsonb_build_array(
        'runproof.step/1', s.tenant_id, s.run_id, s.trace_id, s.step_index, s.plan_step,
        s.skill, s.status, s.policy_decision, s.input, s.output, s.error,
        s.started_at at time zone 'UTC', s.finished_at at time zone 'UTC',
        s.duration_ms, s.cost_cents, s.source, s.level, s.recorded_at at time zone 'UTC')::text
      end, 'UTF8')
  $$;
comment on function runproof_private.step_canonical(runproof.trace_steps) is
  'The canonical bytes of a step''s content: the UTF-8 text of a fixed-order JSON array (Postgres jsonb text; timestamps in UTC as 2026-01-02T03:04:05.123456 with trailing zeros trimmed). These exact bytes are exported in proof bundles.';

create or replace function runproof_private.step_hash(p_prev_hash bytea, p_canonical bytea) returns bytea
  language sql immutable strict parallel safe
  as $$ select sha256(p_prev_hash || sha256(p_canonical)) $$;
comment on function runproof_private.step_hash(bytea, bytea) is 'step_hash = sha256(prev_hash || sha256(canonical content)).';

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
--! EndIncluded proof/canonical.sql
--! Included ledger/run_origin.sql
-- Every run says which system created it. origin_system_id is NOT NULL with no default (the
-- table); this guard turns each way of getting it wrong into its own SQLSTATE and a HINT.

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

create or replace trigger tg_runs__origin_check before insert on runproof.runs
  for each row execute function runproof_private.tg_runs__origin_check();
-- ENABLE ALWAYS: session_replication_role = replica does not switch the guard off.
alter table runproof.runs enable always trigger tg_runs__origin_check;
insert into runproof_private.guard_descriptions (table_name, trigger_name, blocks, allows) values
  ('runs', 'tg_runs__origin_check', 'INSERT with a NULL (23502), blank (RPOBL), over 128 characters (RPOLN), white space at either end (ASCII or Unicode), control or invisible characters (RPOCH) or reserved (RPORS) origin_system_id', 'INSERT with a real system identifier')
on conflict (table_name, trigger_name) do update set blocks = excluded.blocks, allows = excluded.allows;
--! EndIncluded ledger/run_origin.sql
--! Included ledger/plan.sql
-- A run's plan is checked when it is stored, in SQL, whoever stores it: its shape and size, and
-- that it names only registered, enabled skills. A run cannot start without a valid plan.

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

create or replace trigger tg_runs__plan_check before insert or update of plan on runproof.runs
  for each row execute function runproof_private.tg_runs__plan_check();
alter table runproof.runs enable always trigger tg_runs__plan_check;
insert into runproof_private.guard_descriptions (table_name, trigger_name, blocks, allows) values
  ('runs', 'tg_runs__plan_check', 'storing a malformed plan (RPPLN) or one naming an unregistered skill (RPSKL)', 'storing a valid plan once')
on conflict (table_name, trigger_name) do update set blocks = excluded.blocks, allows = excluded.allows;
--! EndIncluded ledger/plan.sql
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
  -- An UPDATE that does not set the plan keeps its stored (TOASTed) value, which has the same TOAST
  -- chunk id in OLD and NEW (PostgreSQL 17+): then the plan cannot have changed, and the O(plan)
  -- jsonb comparison is skipped. A new or small (inline) value has no chunk id and is compared.
  if old.plan is not null
     and not coalesce(pg_column_toast_chunk_id(new.plan) = pg_column_toast_chunk_id(old.plan), false)
     and new.plan is distinct from old.plan then
    perform runproof_private.raise_immutable('UPDATE', 'runs', v_key, 'changes the stored plan',
      'a stored plan never changes; enqueue a new run with the new plan');
  end if;
  if old.plan is null and new.plan is not null and old.status <> 'pending' then
    perform runproof_private.raise_immutable('UPDATE', 'runs', v_key, 'stores a plan after planning',
      'a plan can only be stored while the run is pending');
  end if;
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
  'Trigger: runs are never deleted; identity, goal, origin and a stored plan never change; status follows the state machine; progress only moves forward while running; a final status seals trace_count and root_hash and freezes the run.';

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
  ('runs', 'tg_runs__guard', 'DELETE; changing tenant, agent, goal, origin, idempotency key, max_attempts or a stored plan; any change to a finished run; progress outside an attempt or backwards; a client-supplied seal (RPIMM); a status change outside the state machine (RPSTS); a move to running without a new attempt, or to succeeded before every plan step succeeded and the last attempt completed (RPSTS)', 'status changes along runproof_private.run_status_transitions; plan stored once while pending; progress forward while running; the seal computed at the final status'),
  ('runs', 'tg_runs__no_truncate', 'TRUNCATE (RPIMM)', 'nothing')
on conflict (table_name, trigger_name) do update set blocks = excluded.blocks, allows = excluded.allows;
--! EndIncluded ledger/runs.sql
--! Included ledger/traces.sql
-- The guards of runproof.traces: a trace opens only as its run's current attempt; afterwards its
-- only changes are the seal (running -> completed | failed | aborted, checked against its chain)
-- and archival (archived_at set once). It is never deleted.

create or replace function runproof_private.tg_traces__open() returns trigger
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

create or replace trigger tg_traces__open before insert on runproof.traces
  for each row execute function runproof_private.tg_traces__open();
create or replace trigger tg_traces__guard before update or delete on runproof.traces
  for each row execute function runproof_private.tg_traces__guard();
create or replace trigger tg_traces__no_truncate before truncate on runproof.traces
  for each statement execute function runproof_private.tg__no_truncate();
alter table runproof.traces enable always trigger tg_traces__open;
alter table runproof.traces enable always trigger tg_traces__guard;
alter table runproof.traces enable always trigger tg_traces__no_truncate;
insert into runproof_private.guard_descriptions (table_name, trigger_name, blocks, allows) values
  ('traces', 'tg_traces__open', 'INSERT of a trace that is not the run''s current attempt, not running, pre-sealed, or beside another running trace (RPSTS)', 'INSERT by runproof_private.start_attempt'),
  ('traces', 'tg_traces__guard', 'DELETE; any UPDATE other than the seal or archival (RPIMM); a seal that disagrees with the chain (RPSEL)', 'seal: running -> completed|failed|aborted with completed_at, step_count, root_hash (and metadata); archival: archived_at NULL -> timestamp on a sealed trace'),
  ('traces', 'tg_traces__no_truncate', 'TRUNCATE (RPIMM)', 'nothing')
on conflict (table_name, trigger_name) do update set blocks = excluded.blocks, allows = excluded.allows;
--! EndIncluded ledger/traces.sql
--! Included ledger/policy_decisions.sql
-- Policy decisions are append-only and taken only for the next step of a running trace. A step
-- row cannot exist without its decision row (a foreign key, and tg_trace_steps__chain in replica mode).

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

create or replace trigger tg_policy_decisions__check before insert on runproof.policy_decisions
  for each row execute function runproof_private.tg_policy_decisions__check();
create or replace trigger tg_policy_decisions__append_only before update or delete on runproof.policy_decisions
  for each row execute function runproof_private.tg__append_only('tenant_id', 'trace_id', 'step_index');
create or replace trigger tg_policy_decisions__no_truncate before truncate on runproof.policy_decisions
  for each statement execute function runproof_private.tg__no_truncate();
alter table runproof.policy_decisions enable always trigger tg_policy_decisions__check;
alter table runproof.policy_decisions enable always trigger tg_policy_decisions__append_only;
alter table runproof.policy_decisions enable always trigger tg_policy_decisions__no_truncate;
insert into runproof_private.guard_descriptions (table_name, trigger_name, blocks, allows) values
  ('policy_decisions', 'tg_policy_decisions__check', 'INSERT for a trace that is not running, or for any step but the next one (RPCHN)', 'INSERT of the decision for the next step'),
  ('policy_decisions', 'tg_policy_decisions__append_only', 'UPDATE, DELETE (RPIMM)', 'nothing'),
  ('policy_decisions', 'tg_policy_decisions__no_truncate', 'TRUNCATE (RPIMM)', 'nothing')
on conflict (table_name, trigger_name) do update set blocks = excluded.blocks, allows = excluded.allows;
--! EndIncluded ledger/policy_decisions.sql
--! Included ledger/trace_steps.sql
-- The hash chain of runproof.trace_steps: the database computes prev_hash and step_hash on insert
-- (docs/proof-format.md), appends to one trace are serialized, gaps, duplicates and appends to a
-- sealed trace are refused, and a step is never changed or removed.

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

create or replace trigger tg_trace_steps__chain before insert on runproof.trace_steps
  for each row execute function runproof_private.tg_trace_steps__chain();
create or replace trigger tg_trace_steps__append_only before update or delete on runproof.trace_steps
  for each row execute function runproof_private.tg__append_only('tenant_id', 'trace_id', 'step_index');
create or replace trigger tg_trace_steps__no_truncate before truncate on runproof.trace_steps
  for each statement execute function runproof_private.tg__no_truncate();
alter table runproof.trace_steps enable always trigger tg_trace_steps__chain;
alter table runproof.trace_steps enable always trigger tg_trace_steps__append_only;
alter table runproof.trace_steps enable always trigger tg_trace_steps__no_truncate;
insert into runproof_private.guard_descriptions (table_name, trigger_name, blocks, allows) values
  ('trace_steps', 'tg_trace_steps__chain', 'INSERT with client-supplied hashes, a gap or duplicate index, into a sealed or missing trace, for another run, or without its matching policy decision (RPCHN) - checked even in replica mode, where foreign keys are skipped', 'INSERT of the next step; computes prev_hash and step_hash'),
  ('trace_steps', 'tg_trace_steps__append_only', 'UPDATE, DELETE (RPIMM)', 'nothing'),
  ('trace_steps', 'tg_trace_steps__no_truncate', 'TRUNCATE (RPIMM)', 'nothing')
on conflict (table_name, trigger_name) do update set blocks = excluded.blocks, allows = excluded.allows;
--! EndIncluded ledger/trace_steps.sql
--! Included ledger/incidents.sql
-- Incidents are append-only, belong to an existing run of their tenant, and are written in the
-- same transaction as what caused them (the execution functions).

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

create or replace trigger tg_incidents__check before insert on runproof.incidents
  for each row execute function runproof_private.tg_incidents__check();
create or replace trigger tg_incidents__append_only before update or delete on runproof.incidents
  for each row execute function runproof_private.tg__append_only('tenant_id', 'id');
create or replace trigger tg_incidents__no_truncate before truncate on runproof.incidents
  for each statement execute function runproof_private.tg__no_truncate();
alter table runproof.incidents enable always trigger tg_incidents__check;
alter table runproof.incidents enable always trigger tg_incidents__append_only;
alter table runproof.incidents enable always trigger tg_incidents__no_truncate;
insert into runproof_private.guard_descriptions (table_name, trigger_name, blocks, allows) values
  ('incidents', 'tg_incidents__check', 'INSERT for a run that does not exist (RPNFD), even in replica mode', 'INSERT for an existing run'),
  ('incidents', 'tg_incidents__append_only', 'UPDATE, DELETE (RPIMM)', 'nothing'),
  ('incidents', 'tg_incidents__no_truncate', 'TRUNCATE (RPIMM)', 'nothing')
on conflict (table_name, trigger_name) do update set blocks = excluded.blocks, allows = excluded.allows;
--! EndIncluded ledger/incidents.sql
--! Included ledger/guards.sql
-- The guard catalogue for DBAs: every guard on the ledger tables, what it blocks and allows (the
-- descriptions each table's file registers), and whether it is live right now.
-- select * from runproof_private.guards;

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
--! EndIncluded ledger/guards.sql
--! Included audit/ddl_audit.sql
-- The DDL audit: every schema change to a RunProof object is recorded, append-only, by event
-- triggers (installed by audit/install.sql), so a proof can say whether the guards held while a
-- run was recorded. Dropping the audit itself is refused.

create or replace function runproof_private.ddl_audit_record(
  p_event text, p_tag text, p_object_type text, p_schema_name text, p_object_identity text)
  returns void
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_query text := current_query();
  v_md5 text := md5(coalesce(current_query(), ''));
  v_xact xid8 := pg_current_xact_id();
  v_lock boolean;
begin
  if p_event = 'sql_drop' and p_object_identity in ('runproof_private.ddl_audit', 'runproof_private', 'runproof_private.tg__ddl_audit()') then
    raise exception 'S6_IMMUTABILITY_VIOLATION: DROP of % is not allowed', p_object_identity
      using errcode = 'RPIMM', detail = 'the DDL audit is part of the ledger',
            hint = 'to uninstall RunProof, drop the event triggers runproof_ddl_audit_end and runproof_ddl_audit_drop first';
  end if;
  -- graphile-migrate holds this advisory lock while it migrates (4727445306447283, "GRAPHILE MIGRATE").
  select exists (select 1 from pg_locks l where l.locktype = 'advisory' and l.pid = pg_backend_pid() and l.granted
                   and l.objsubid = 1 and ((l.classid::bigint << 32) | l.objid::bigint) = 4727445306447283)
    into v_lock;
  insert into runproof_private.ddl_audit (event, command_tag, object_type, schema_name, object_identity, statement, statement_md5, xact_id, migration_lock_held)
  values (p_event, p_tag, p_object_type, p_schema_name, p_object_identity,
          -- The statement once per transaction: a migration's text is long and has many commands.
          case when not exists (select 1 from runproof_private.ddl_audit a where a.xact_id = v_xact and a.statement_md5 = v_md5) then v_query end,
          v_md5, v_xact, v_lock);
  -- A copy outside the table: the server log.
  raise log 'runproof ddl audit: % % % by % (session %)', p_event, p_tag, coalesce(p_object_identity, p_object_type), current_user, session_user;
end
$$;
comment on function runproof_private.ddl_audit_record(text, text, text, text, text) is
  'Records one schema change in runproof_private.ddl_audit (and the server log); refuses to drop the audit itself. Called by the event trigger function.';

create or replace function runproof_private.tg__ddl_audit() returns event_trigger
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  r record;
begin
  if tg_event = 'ddl_command_end' then
    for r in
      select c.command_tag, c.object_type, c.schema_name, c.object_identity
        from pg_event_trigger_ddl_commands() c
       where c.schema_name in ('runproof', 'runproof_private')
          or c.object_identity ~ ' on (runproof|runproof_private)\.'
          -- GRANT/REVOKE and ALTER SCHEMA do not name their objects' schema: go by the statement.
          or (c.schema_name is null and c.command_tag in ('GRANT', 'REVOKE', 'ALTER SCHEMA', 'ALTER DEFAULT PRIVILEGES')
              and (c.object_identity in ('runproof', 'runproof_private') or current_query() ~* 'runproof'))
    loop
      perform runproof_private.ddl_audit_record(tg_event, r.command_tag, r.object_type, r.schema_name, r.object_identity);
    end loop;
  elsif tg_event = 'sql_drop' then
    for r in
      select d.object_type, d.schema_name, d.object_identity
        from pg_event_trigger_dropped_objects() d
       where d.schema_name in ('runproof', 'runproof_private')
          or d.object_identity ~ ' on (runproof|runproof_private)\.'
          or (d.object_type = 'schema' and d.object_name in ('runproof', 'runproof_private'))
    loop
      perform runproof_private.ddl_audit_record(tg_event, tg_tag, r.object_type, r.schema_name, r.object_identity);
    end loop;
  end if;
end
$$;
comment on function runproof_private.tg__ddl_audit() is
  'Event trigger function (ddl_command_end and sql_drop): records every schema change to an object in runproof or runproof_private in runproof_private.ddl_audit (and the server log), and refuses to drop the audit itself.';

create or replace function runproof_private.ddl_audit_fingerprint() returns text
  language sql stable
  set search_path = pg_catalog
  as $$
    select md5(coalesce(pg_get_functiondef(to_regprocedure('runproof_private.tg__ddl_audit()')), '-') || '|' ||
               coalesce(pg_get_functiondef(to_regprocedure('runproof_private.ddl_audit_record(text, text, text, text, text)')), '-'))
  $$;
comment on function runproof_private.ddl_audit_fingerprint() is
  'md5 of the definitions of the audit''s functions (tg__ddl_audit and ddl_audit_record): recorded at installation, compared by ddl_audit_state.';

-- The audit table is append-only, like the ledger.
create or replace trigger tg_ddl_audit__append_only before update or delete on runproof_private.ddl_audit
  for each row execute function runproof_private.tg__append_only('id');
create or replace trigger tg_ddl_audit__no_truncate before truncate on runproof_private.ddl_audit
  for each statement execute function runproof_private.tg__no_truncate();
alter table runproof_private.ddl_audit enable always trigger tg_ddl_audit__append_only;
alter table runproof_private.ddl_audit enable always trigger tg_ddl_audit__no_truncate;
--! EndIncluded audit/ddl_audit.sql
--! Included audit/schema_drift.sql
-- The schema's fingerprint after each migration, and what changed since: a function, trigger,
-- constraint, policy or view altered outside a migration shows up in verify_all.

create or replace function runproof_private.schema_fingerprint() returns jsonb
  language sql stable
  set search_path = pg_catalog
  as $$
    select coalesce(jsonb_object_agg(k, v), '{}') from (
      -- Functions: the whole definition (body, language, security, settings).
      select 'function ' || p.oid::regprocedure::text as k, md5(pg_get_functiondef(p.oid)) as v
        from pg_proc p where p.pronamespace in ('runproof'::regnamespace, 'runproof_private'::regnamespace) and p.prokind in ('f', 'p')
      union all
      -- Columns of tables, views and composite types: type, NOT NULL, default, generation.
      select format('column %s.%s.%s', n.nspname, c.relname, a.attname),
             md5(concat_ws('|', format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attgenerated))
        from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
        left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
       where n.nspname in ('runproof', 'runproof_private') and c.relkind in ('r', 'v', 'c', 'p') and a.attnum > 0 and not a.attisdropped
      union all
      select format('constraint %s on %s.%s', co.conname, n.nspname, c.relname), md5(pg_get_constraintdef(co.oid))
        from pg_constraint co join pg_class c on c.oid = co.conrelid join pg_namespace n on n.oid = c.relnamespace
       where n.nspname in ('runproof', 'runproof_private')
      union all
      -- Triggers: the definition (whether one is enabled is checked live, see guard_problems).
      select format('trigger %s on %s.%s', t.tgname, n.nspname, c.relname), md5(pg_get_triggerdef(t.oid))
        from pg_trigger t join pg_class c on c.oid = t.tgrelid join pg_namespace n on n.oid = c.relnamespace
       where n.nspname in ('runproof', 'runproof_private') and not t.tgisinternal
      union all
      select format('policy %s on %s.%s', po.polname, n.nspname, c.relname),
             md5(concat_ws('|', po.polcmd, po.polpermissive, po.polroles::text, pg_get_expr(po.polqual, po.polrelid), pg_get_expr(po.polwithcheck, po.polrelid)))
        from pg_policy po join pg_class c on c.oid = po.polrelid join pg_namespace n on n.oid = c.relnamespace
       where n.nspname in ('runproof', 'runproof_private')
      union all
      select format('view %s.%s', n.nspname, c.relname), md5(pg_get_viewdef(c.oid))
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
       where n.nspname in ('runproof', 'runproof_private') and c.relkind = 'v'
      union all
      select format('rule %s on %s.%s', r.rulename, n.nspname, c.relname), md5(pg_get_ruledef(r.oid))
        from pg_rewrite r join pg_class c on c.oid = r.ev_class join pg_namespace n on n.oid = c.relnamespace
       where n.nspname in ('runproof', 'runproof_private') and r.rulename <> '_RETURN'
      union all
      select format('unique index %s.%s', n.nspname, c.relname), md5(pg_get_indexdef(i.indexrelid))
        from pg_index i join pg_class c on c.oid = i.indexrelid join pg_namespace n on n.oid = c.relnamespace
       where n.nspname in ('runproof', 'runproof_private') and i.indisunique
    ) x
  $$;
comment on function runproof_private.schema_fingerprint() is
  'An md5 of the definition of every function, column, constraint, trigger, policy, view, rule and unique index in runproof and runproof_private, keyed by object. Recorded after every migration (the migration rows of runproof_private.ddl_audit); schema_drift compares the live schema with it.';

create or replace function runproof_private.schema_drift() returns setof text
  language plpgsql stable
  set search_path = pg_catalog
  as $$
declare
  v_base jsonb;
  v_from text;
  v_now jsonb := runproof_private.schema_fingerprint();
begin
  select a.details -> 'fingerprint', coalesce(a.details ->> 'filename', 'the installation of the DDL audit') into v_base, v_from
    from runproof_private.ddl_audit a where a.details ? 'fingerprint' order by a.id desc limit 1;
  if v_base is null then
    return;
  end if;
  return query
    select format('%s was %s since the last migration (%s)', coalesce(b.key, n.key),
                  case when n.key is null then 'dropped' when b.key is null then 'added' else 'changed' end, v_from)
      from jsonb_each_text(v_base) b
      full join jsonb_each_text(v_now) n on n.key = b.key
     where b.value is distinct from n.value
       -- New tables, columns and indexes cannot weaken what exists; new code and rules can.
       and (b.key is not null or n.key ~ '^(function|trigger|policy|rule|constraint|view) ')
     order by 1;
end
$$;
comment on function runproof_private.schema_drift() is
  'What differs, object by object, between the live schema and the fingerprint recorded by the last migration: a function, trigger, constraint, column, policy, view, rule or unique index changed or dropped, or a function, trigger, policy, rule, constraint or view added, outside a migration. Empty when nothing has.';
--! EndIncluded audit/schema_drift.sql
--! Included audit/migrations_mark.sql
-- Telling RunProof's own migrations apart: graphile-migrate inserts into graphile_migrate.migrations
-- in the same transaction as a committed migration, and this trigger marks that transaction.

create or replace function runproof_private.tg_migrations__mark() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
begin
  insert into runproof_private.ddl_audit (event, command_tag, object_type, object_identity, details)
  values ('migration', 'MIGRATION', 'migration', new.filename,
          jsonb_build_object('filename', new.filename, 'hash', new.hash, 'fingerprint', runproof_private.schema_fingerprint()));
  return null;
end
$$;
comment on function runproof_private.tg_migrations__mark() is
  'Trigger on graphile_migrate.migrations: records that the current transaction ran a committed migration, so the schema changes it made are not reported as guard weakening, with the schema''s fingerprint after it (the baseline of schema_drift).';

do $$
begin
  if to_regclass('graphile_migrate.migrations') is not null then
    drop trigger if exists runproof_ddl_audit_mark on graphile_migrate.migrations;
    create trigger runproof_ddl_audit_mark after insert on graphile_migrate.migrations
      for each row execute function runproof_private.tg_migrations__mark();
    alter table graphile_migrate.migrations enable always trigger runproof_ddl_audit_mark;
  end if;
end
$$;
--! EndIncluded audit/migrations_mark.sql
--! Included audit/guard_status.sql
-- What proofs report besides the chain: whether the DDL audit is live, which guards are not live
-- now, and the guard-weakening changes made outside a migration while a record was written.

create or replace function runproof_private.ddl_audit_state(out state text, out detail text)
  language plpgsql stable
  set search_path = pg_catalog
  as $$
declare
  v_install jsonb;
  v_name text;
  v_oid oid;
  v_evt record;
  v_fn oid := to_regprocedure('runproof_private.tg__ddl_audit()');
  v_problems text[] := '{}';
begin
  select a.details into v_install from runproof_private.ddl_audit a where a.event = 'install' order by a.id desc limit 1;
  if v_install is null then
    if exists (select 1 from pg_event_trigger e where e.evtname in ('runproof_ddl_audit_end', 'runproof_ddl_audit_drop')) then
      state := 'BROKEN';
      detail := 'the DDL audit''s install record is missing from runproof_private.ddl_audit';
    else
      state := 'NOT_INSTALLED';
      detail := 'the DDL audit is not installed (RunProof was migrated by a role that is not a superuser): schema changes are not recorded';
    end if;
    return;
  end if;
  for v_name, v_oid in select k, (v #>> '{}')::oid from jsonb_each(v_install -> 'event_triggers') e(k, v) loop
    select e.oid, e.evtenabled, e.evtfoid into v_evt from pg_event_trigger e where e.evtname = v_name;
    if not found then
      v_problems := v_problems || format('event trigger %s is missing', v_name);
    elsif v_evt.oid <> v_oid then
      v_problems := v_problems || format('event trigger %s was dropped and re-created outside a migration', v_name);
    elsif v_evt.evtenabled <> 'A' then
      v_problems := v_problems || format('event trigger %s is %s', v_name,
        case v_evt.evtenabled when 'D' then 'DISABLED' when 'O' then 'enabled in origin mode only' when 'R' then 'enabled in replica mode only' end);
    elsif v_evt.evtfoid is distinct from v_fn then
      v_problems := v_problems || format('event trigger %s runs another function', v_name);
    end if;
  end loop;
  if v_fn is null then
    v_problems := v_problems || 'the audit function runproof_private.tg__ddl_audit() is missing'::text;
  elsif runproof_private.ddl_audit_fingerprint() is distinct from v_install ->> 'function_md5' then
    v_problems := v_problems || 'the audit''s functions (tg__ddl_audit, ddl_audit_record) were replaced outside a migration'::text;
  end if;
  select v_problems || coalesce(array_agg(format('guard %s on runproof_private.ddl_audit is %s', g.n,
           coalesce((select case t.tgenabled when 'D' then 'DISABLED' when 'O' then 'enabled in origin mode only' when 'R' then 'enabled in replica mode only' end
                       from pg_trigger t where t.tgrelid = 'runproof_private.ddl_audit'::regclass and t.tgname = g.n), 'MISSING')) order by g.n), '{}')
    into v_problems
    from unnest(array['tg_ddl_audit__append_only', 'tg_ddl_audit__no_truncate']) g(n)
   where not exists (select 1 from pg_trigger t where t.tgrelid = 'runproof_private.ddl_audit'::regclass and t.tgname = g.n and t.tgenabled = 'A');
  if cardinality(v_problems) > 0 then
    state := 'BROKEN';
    detail := 'the DDL audit is not live: ' || array_to_string(v_problems, '; ');
  else
    state := 'LIVE';
  end if;
end
$$;
comment on function runproof_private.ddl_audit_state() is
  'Whether the DDL audit is LIVE (both event triggers present as installed, ENABLE ALWAYS, running the installed function, and the audit table''s guards on), BROKEN (detail says what is wrong) or NOT_INSTALLED.';

create or replace function runproof_private.guard_problems() returns setof text
  language sql stable
  set search_path = pg_catalog
  as $$
    -- Guard triggers (those that block something) that are missing or not ENABLE ALWAYS.
    select format('guard %s on runproof.%s is %s', d.trigger_name, d.table_name,
             case t.tgenabled when 'D' then 'DISABLED' when 'O' then 'enabled in origin mode only' when 'R' then 'enabled in replica mode only' else 'MISSING' end)
      from runproof_private.guard_descriptions d
      left join pg_trigger t on t.tgrelid = to_regclass(format('runproof.%I', d.table_name)) and t.tgname = d.trigger_name
     where d.blocks not like 'nothing%' and t.tgenabled is distinct from 'A'
    union all
    -- Foreign keys whose internal triggers are disabled.
    select distinct format('foreign key %s on %s is DISABLED', c.conname, c.conrelid::regclass::text)
      from pg_trigger t join pg_constraint c on c.oid = t.tgconstraint
     where t.tgenabled = 'D' and t.tgisinternal and c.contype = 'f' and c.connamespace = 'runproof'::regnamespace
    union all
    -- Row level security off on an exposed table; a write privilege for the tenant role or PUBLIC
    -- (every write goes through the SQL functions).
    select case when not r.relrowsecurity then format('row level security is off on runproof.%s', r.relname)
                else format('%s may write runproof.%s (%s)', w.who, r.relname, w.privs) end
      from pg_class r
      left join lateral (
        select case a.grantee when 0 then 'PUBLIC' else a.grantee::regrole::text end as who,
               string_agg(a.privilege_type, ', ' order by a.privilege_type) as privs
          from aclexplode(r.relacl) a
         where a.privilege_type in ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')
           and (a.grantee = 0 or a.grantee = to_regrole('runproof_tenant') or a.grantee = to_regrole('runproof_authenticator'))
         group by a.grantee) w on true
     where r.relnamespace = 'runproof'::regnamespace and r.relkind = 'r'
       and (not r.relrowsecurity or w.who is not null)
  $$;
comment on function runproof_private.guard_problems() is
  'What is wrong with the guards right now, one line each: a guard trigger missing or not ENABLE ALWAYS, a foreign key disabled, row level security off, a write privilege granted to runproof_tenant, runproof_authenticator or PUBLIC. Empty when every guard is live.';

create or replace function runproof_private.guard_changes(p_from timestamptz, p_to timestamptz, out changes integer, out detail text)
  language sql stable
  set search_path = pg_catalog
  as $$
    with c as (
      select a.id, a.command_tag, coalesce(a.object_identity, a.object_type, '?') as what, a.occurred_at
        from runproof_private.ddl_audit a
       where a.guard_weakening and a.occurred_at >= p_from and a.occurred_at <= p_to
         and not exists (select 1 from runproof_private.ddl_audit m where m.xact_id = a.xact_id and m.event = 'migration')
    )
    select count(*)::integer,
           case when count(*) > 0 then
             (select format('%s schema change(s) that can weaken the guards were made outside a RunProof migration while this was recorded; the first: %s %s at %s (runproof_private.ddl_audit id %s)',
                            count(*) over (), f.command_tag, f.what,
                            to_char(f.occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), f.id)
                from c f order by f.id limit 1)
           end
      from c
  $$;
comment on function runproof_private.guard_changes(timestamptz, timestamptz) is
  'The guard-weakening schema changes recorded between two times that no RunProof migration made: how many, and the first one in words.';

create or replace function runproof_private.guard_status(p_from timestamptz, p_to timestamptz, out status text, out detail text)
  language plpgsql stable security definer
  set search_path = pg_catalog
  as $$
declare
  v_state text;
  v_state_detail text;
  v_problems text;
  v_changes integer;
  v_changes_detail text;
begin
  select s.state, s.detail into v_state, v_state_detail from runproof_private.ddl_audit_state() s;
  if v_state <> 'LIVE' then
    status := 'UNAUDITED';
    detail := v_state_detail;
    return;
  end if;
  select string_agg(p, '; ') into v_problems from runproof_private.guard_problems() p;
  if v_problems is not null then
    status := 'UNGUARDED';
    detail := 'now: ' || v_problems;
    return;
  end if;
  select g.changes, g.detail into v_changes, v_changes_detail from runproof_private.guard_changes(p_from, p_to) g;
  if v_changes > 0 then
    status := 'UNGUARDED';
    detail := v_changes_detail;
    return;
  end if;
  status := 'GUARDED';
end
$$;
comment on function runproof_private.guard_status(timestamptz, timestamptz) is
  'The guard status of a record written between two times: UNAUDITED (the DDL audit is not installed or not live), UNGUARDED (a guard is not live now, or a guard-weakening schema change was made outside a RunProof migration in that interval) or GUARDED, with the reason.';
--! EndIncluded audit/guard_status.sql
--! Included proof/verify_trace.sql
-- Verifying one trace: every step's index, link and hash recomputed from the stored columns in
-- one pass (large traces split over parallel workers), then the seal compared with the chain.

-- A SELECT ... INTO in PL/pgSQL runs with a row limit, and Postgres never starts parallel
-- workers for a statement run with a row limit ("Workers Planned: 2, Workers Launched: 0" in
-- auto_explain), so verify_trace_row used one core however large the trace. RETURN QUERY runs
-- without a limit. For a large trace, chain_faults therefore splits the one pass in two:
--   * links and gaps, which need chain order: one ordered pass over the primary key, cheap
--     (no hashing);
--   * every stored step_hash recomputed from its content, which needs no order: a parallel
--     aggregate (min(...) FILTER, not WHERE, so that the planner keeps it an aggregate instead of
--     an ordered LIMIT 1 scan).
-- first_bad is the same as before: a gap row reports its expected index, a link or hash fault
-- its own index, and since indexes are unique and sorted a row's expected index is never larger
-- than its index, so least() over the two passes equals the old min() over one.
-- Small traces (verify_all's typical run) keep the single pass, with its cached plan.
create or replace function runproof_private.chain_faults_parallel(p_tenant_id uuid, p_trace_id uuid, p_genesis bytea)
  returns table (step_count integer, first_bad integer)
  language plpgsql stable
  set search_path = pg_catalog
  -- Only called for large traces, where workers always pay off: do not let stale statistics
  -- (a trace that grew since the last ANALYZE) talk the planner out of them.
  set parallel_setup_cost = 0
  set parallel_tuple_cost = 0
  set min_parallel_table_scan_size = 0
  set min_parallel_index_scan_size = 0
  as $$
begin
  return query execute $q$
    select l.n,
           least(l.bad,
             (select min(st.step_index) filter (
                       where st.step_hash is distinct from runproof_private.step_hash(st.prev_hash, runproof_private.step_canonical(st)))
                from runproof.trace_steps st
               where st.tenant_id = $1 and st.trace_id = $2))
      from (select count(*)::integer as n,
                   min(case when s.step_index <> s.expected_index then s.expected_index
                            when s.prev_hash is distinct from s.expected_prev then s.step_index end) as bad
              from (select st.step_index, (row_number() over w - 1)::integer as expected_index, st.prev_hash,
                           coalesce(lag(st.step_hash) over w, $3) as expected_prev
                      from runproof.trace_steps st
                     where st.tenant_id = $1 and st.trace_id = $2
                    window w as (order by st.step_index)) s) l $q$
    using p_tenant_id, p_trace_id, p_genesis;
end
$$;
comment on function runproof_private.chain_faults_parallel(uuid, uuid, bytea) is
  'chain_faults for large traces: links and gaps in one ordered pass, every hash recomputed by a parallel aggregate.';

create or replace function runproof_private.chain_faults(p_tenant_id uuid, p_trace_id uuid, p_genesis bytea, p_size_hint integer)
  returns table (step_count integer, first_bad integer)
  language plpgsql stable
  set search_path = pg_catalog
  as $$
begin
  if p_size_hint >= 50000 then
    return query select * from runproof_private.chain_faults_parallel(p_tenant_id, p_trace_id, p_genesis);
    return;
  end if;
  -- One set-based pass: every row is checked for its index, its link to the previous stored
  -- step_hash (or the genesis), and its own hash recomputed from its content. Together these
  -- are the whole chain, without trusting any stored hash on its own.
  return query
    with s as (
      select st.step_index,
             (row_number() over w - 1)::integer as expected_index,
             st.prev_hash,
             coalesce(lag(st.step_hash) over w, p_genesis) as expected_prev,
             st.step_hash,
             runproof_private.step_hash(st.prev_hash, runproof_private.step_canonical(st)) as recomputed
        from runproof.trace_steps st
       where st.tenant_id = p_tenant_id and st.trace_id = p_trace_id
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
      from faults f;
end
$$;
comment on function runproof_private.chain_faults(uuid, uuid, bytea, integer) is
  'The chain check of verify_trace_row: how many steps a trace has and its first fault (a gap: the missing index; a broken link or a hash that does not match its content: the step''s index), or NULL. p_size_hint (the last index + 1) picks the parallel plan for large traces.';

create or replace function runproof_private.verify_trace_row(t runproof.traces) returns runproof.proof
  language plpgsql stable
  set search_path = pg_catalog
  as $$
declare
  v_genesis bytea := runproof_private.genesis_hash(t.tenant_id, t.run_id, t.id);
  v_count integer;
  v_last_hash bytea;
  v_last_index integer;
  v_bad integer;
  v_result runproof.proof;
begin
  v_result.integrity_model := 'HASH_CHAIN';
  v_result.tenant_id := t.tenant_id;
  v_result.run_id := t.run_id;
  v_result.trace_id := t.id;
  v_result.trace_count := 1;
  v_result.verified_at := clock_timestamp();

  -- The chain head first (it is the root, and its index says how big the trace is), then the
  -- faults: runproof_private.chain_faults checks the same three things as before in one place,
  -- in parallel workers when the trace is large.
  select st.step_index, st.step_hash into v_last_index, v_last_hash from runproof.trace_steps st
   where st.tenant_id = t.tenant_id and st.trace_id = t.id order by st.step_index desc limit 1;
  select f.step_count, f.first_bad into v_count, v_bad
    from runproof_private.chain_faults(t.tenant_id, t.id, v_genesis, coalesce(v_last_index + 1, 0)) f;
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

create or replace function runproof.verify_trace(trace_id uuid) returns runproof.proof
  language plpgsql stable
  set search_path = pg_catalog
  as $$
declare
  v_trace runproof.traces;
  v_result runproof.proof;
  v_to timestamptz;
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
  v_result := runproof_private.verify_trace_row(v_trace);
  -- The trace's recorded lifetime: from its start to its seal (or its last step while running).
  v_to := coalesce(v_trace.completed_at,
                   (select max(s.recorded_at) from runproof.trace_steps s where s.tenant_id = v_trace.tenant_id and s.trace_id = v_trace.id),
                   v_trace.started_at);
  select g.status, g.detail into v_result.guard_status, v_result.guard_detail
    from runproof_private.guard_status(v_trace.started_at, v_to) g;
  return v_result;
end
$$;
comment on function runproof.verify_trace(uuid) is
  'Recomputes every hash of one trace from its stored columns and says whether it is intact: VERIFIED, IN_PROGRESS, TAMPERED, BROKEN or NOT_FOUND, with the first bad step and the reason; and guard_status from the DDL audit over the trace''s lifetime (started_at .. its seal).';
--! EndIncluded proof/verify_trace.sql
--! Included proof/run_proof.sql
-- A run's proof: every trace verified in attempt order, the attempts complete, the run seal
-- compared with the root recomputed from the run's content and its traces, plus the guard status
-- of the interval in which the run was recorded (from the DDL audit).

create or replace function runproof_private.run_proof_chain(p_tenant_id uuid, p_run_id uuid) returns runproof.proof
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
  v_result.tenant_id := p_tenant_id;
  v_result.run_id := p_run_id;
  v_result.trace_count := 0;
  v_result.step_count := 0;
  v_result.chain_length := 0;
  v_result.verified_at := clock_timestamp();

  select * into v_run from runproof.runs r where r.id = p_run_id
   order by (r.tenant_id = p_tenant_id) desc limit 1;
  if not found then
    if exists (select 1 from runproof.traces t where t.run_id = p_run_id and t.tenant_id = p_tenant_id) then
      v_result.verification_status := 'BROKEN';
      v_result.reason := 'the run row is missing but its traces exist';
    else
      v_result.verification_status := 'NOT_FOUND';
      v_result.reason := 'no such run for this tenant';
    end if;
    return v_result;
  end if;
  if v_run.tenant_id <> p_tenant_id
     and not exists (select 1 from runproof.traces t where t.run_id = p_run_id and t.tenant_id = p_tenant_id) then
    v_result.verification_status := 'NOT_FOUND';
    v_result.reason := 'no such run for this tenant';
    return v_result;
  end if;

  for v_trace in select * from runproof.traces t where t.run_id = p_run_id order by t.attempt, t.id loop
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
  if v_result.verification_status is null and v_run.tenant_id <> p_tenant_id then
    v_result.verification_status := 'TAMPERED';
    v_result.reason := format('the run belongs to tenant %s but its traces to tenant %s', v_run.tenant_id, p_tenant_id);
  end if;
  if v_result.verification_status is null then
    v_result.verification_status := case
      when v_in_progress or not runproof_private.is_terminal_status(v_run.status) then 'IN_PROGRESS'
      else 'VERIFIED' end;
  end if;
  return v_result;
end
$$;
comment on function runproof_private.run_proof_chain(uuid, uuid) is
  'The hash-chain half of runproof.run_proof (guard_status and guard_detail left NULL): recomputes every hash of every trace of a run, checks the attempts are complete and the run seal matches.';

create or replace function runproof.run_proof(tenant_id uuid, run_id uuid) returns runproof.proof
  language plpgsql stable
  set search_path = pg_catalog
  as $$
declare
  v_result runproof.proof;
  v_from timestamptz;
  v_to timestamptz;
begin
  v_result := runproof_private.run_proof_chain(run_proof.tenant_id, run_proof.run_id);
  -- The run's recorded lifetime: from its creation to its last recorded change (for a finished
  -- run, updated_at is when it finished: a finished run never changes).
  select r.created_at, r.updated_at into v_from, v_to from runproof.runs r
   where r.id = run_proof.run_id order by (r.tenant_id = run_proof.tenant_id) desc limit 1;
  if found and v_result.verification_status <> 'NOT_FOUND' then
    select g.status, g.detail into v_result.guard_status, v_result.guard_detail
      from runproof_private.guard_status(v_from, v_to) g;
  end if;
  return v_result;
end
$$;
comment on function runproof.run_proof(uuid, uuid) is
  'Recomputes every hash of every trace of a run from the stored columns, checks the attempts are complete and the run seal matches, and returns HASH_CHAIN with VERIFIED, IN_PROGRESS, TAMPERED, BROKEN or NOT_FOUND, the counts, the root, the first bad step and reason; and guard_status (GUARDED, UNGUARDED, UNAUDITED) from the DDL audit over the run''s recorded lifetime (created_at .. updated_at).';
--! EndIncluded proof/run_proof.sql
--! Included proof/verify_all.sql
-- The whole ledger: every run's chain and guard status, rows no run leads to, and ledger-wide
-- problems now (a guard not live, a schema object changed outside a migration). Empty means intact.

create or replace function runproof_private.ledger_problems() returns table (reason text, guard_status text)
  language plpgsql stable
  set search_path = pg_catalog
  as $$
declare
  v_state record;
  v_problem text;
begin
  -- An audit that was installed but is not live, a guard that is not live, a schema object changed.
  select * into v_state from runproof_private.ddl_audit_state();
  if v_state.state = 'BROKEN' then
    reason := v_state.detail; guard_status := 'UNAUDITED';
    return next;
  end if;
  for v_problem in select p from runproof_private.guard_problems() p union all select d from runproof_private.schema_drift() d loop
    reason := 'now: ' || v_problem; guard_status := 'UNGUARDED';
    return next;
  end loop;
end
$$;
comment on function runproof_private.ledger_problems() is
  'The ledger-wide problems now, one row each: a DDL audit installed but not live (UNAUDITED), a guard not live or a schema object changed since the last migration (UNGUARDED). The first rows of verify_all.';

create or replace function runproof_private.orphan_rows() returns table (
  tenant_id uuid, run_id uuid, trace_id uuid, first_bad_attempt integer, first_bad_step_index integer, reason text)
  language sql stable
  set search_path = pg_catalog
  as $$
    select t.tenant_id, t.run_id, t.id, t.attempt, null::integer, 'trace has no run row'::text
      from runproof.traces t
     where not exists (select 1 from runproof.runs r where r.tenant_id = t.tenant_id and r.id = t.run_id)
    union all
    select s.tenant_id, s.run_id, s.trace_id, null::integer, min(s.step_index), 'steps have no trace row'::text
      from runproof.trace_steps s
     where not exists (select 1 from runproof.traces t where t.tenant_id = s.tenant_id and t.id = s.trace_id)
     group by s.tenant_id, s.run_id, s.trace_id
  $$;
comment on function runproof_private.orphan_rows() is
  'Rows no run leads to: traces without their run, steps without their trace (BROKEN). The last rows of verify_all.';

create or replace function runproof.verify_all() returns table (
  tenant_id uuid, run_id uuid, trace_id uuid, verification_status text,
  first_bad_attempt integer, first_bad_step_index integer, reason text, guard_status text
)
  language plpgsql stable
  set search_path = pg_catalog
  as $$
declare
  v_run record;
  v_p runproof.proof;
  v_state text := (select s.state from runproof_private.ddl_audit_state() s);
  v_changes record;
begin
  return query select null::uuid, null::uuid, null::uuid, null::text, null::integer, null::integer, l.reason, l.guard_status
                 from runproof_private.ledger_problems() l;
  -- Each run: its chain, and the guard-weakening changes made while it was recorded.
  for v_run in select r.tenant_id, r.id, r.created_at, r.updated_at from runproof.runs r order by r.created_at, r.id loop
    v_p := runproof_private.run_proof_chain(v_run.tenant_id, v_run.id);
    select * into v_changes from runproof_private.guard_changes(v_run.created_at, v_run.updated_at);
    if v_p.verification_status not in ('VERIFIED', 'IN_PROGRESS') or v_changes.changes > 0 then
      tenant_id := v_run.tenant_id; run_id := v_run.id; trace_id := v_p.first_bad_trace_id;
      verification_status := v_p.verification_status; first_bad_attempt := v_p.first_bad_attempt;
      first_bad_step_index := v_p.first_bad_step_index;
      reason := coalesce(v_p.reason, v_changes.detail);
      guard_status := case when v_changes.changes > 0 then 'UNGUARDED' when v_state = 'LIVE' then 'GUARDED' else 'UNAUDITED' end;
      return next;
    end if;
  end loop;
  return query select o.tenant_id, o.run_id, o.trace_id, 'BROKEN'::text, o.first_bad_attempt, o.first_bad_step_index, o.reason, null::text
                 from runproof_private.orphan_rows() o;
end
$$;
comment on function runproof.verify_all() is
  'Verifies every run the caller can see. Lists first one row without a run for each ledger-wide problem now (runproof_private.ledger_problems), then each run whose chain is not VERIFIED or IN_PROGRESS, or during whose recorded lifetime a guard-weakening schema change was made outside a RunProof migration (guard_status UNGUARDED), then traces and steps that no run leads to (runproof_private.orphan_rows). An empty result means the ledger is intact.';
--! EndIncluded proof/verify_all.sql
--! Included execution/redact.sql
-- The database's own redaction of secrets in step input and output, a second line behind the
-- worker's (src/lib/redact.ts), applied before anything is hashed.

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
--! EndIncluded execution/redact.sql
--! Included execution/enqueue.sql
-- The one way a run is created. enqueue_run inserts the run and its graphile-worker job in the
-- caller's transaction, so both commit or neither does; every interface (psql, CLI, GraphQL) calls it.

create or replace function runproof_private.add_run_job(p_task text, p_tenant_id uuid, p_run_id uuid, p_run_at timestamptz default null)
  returns void
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
begin
  -- Each pick of the job counts an attempt, also after a crash; recover_orphan bounds runs that
  -- stall, so this only has to be large. The run's own retries are scheduled by end_attempt.
  perform graphile_worker.add_job(
    p_task,
    json_build_object('tenant_id', p_tenant_id, 'run_id', p_run_id),
    run_at => coalesce(p_run_at, now()),
    max_attempts => 1000,
    job_key => (case p_task when 'plan_run' then 'plan:' else 'exec:' end) || p_run_id);
end
$$;
comment on function runproof_private.add_run_job(text, uuid, uuid, timestamptz) is
  'Adds the graphile-worker job that plans or executes a run, in the caller''s transaction (up to 1000 picks: crash recovery re-picks the job).';

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
--! EndIncluded execution/enqueue.sql
--! Included execution/planning.sql
-- Planning ends in one transaction either way: the plan stored (validated by tg_runs__plan_check)
-- with the run's execution job, or the run failed with its incident.

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
--! EndIncluded execution/planning.sql
--! Included execution/policy.sql
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
--! EndIncluded execution/policy.sql
--! Included execution/record_step.sql
-- Recording a step: the step row (hashed by tg_trace_steps__chain), the run's progress and the
-- tenant's spend move in one transaction, or none of them does.

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
--! EndIncluded execution/record_step.sql
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
--! EndIncluded execution/attempts.sql
--! Included execution/recovery.sql
-- Crash recovery: workers send heartbeats; the jobs of a worker that went silent are unlocked
-- (graphile-worker would wait 4 hours), and its run's open trace is sealed aborted, to be resumed.

create or replace function runproof_private.recover_orphan(p_tenant_id uuid, p_run_id uuid, p_worker text default null)
  returns runproof.runs
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v runproof.runs;
  v_trace uuid;
  v_stalled integer;
  c_stalled_limit constant integer := 20;
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
  -- Attempts abandoned in a row without recording a single step: a run that kills its workers, or
  -- a fleet that cannot keep a worker up, would otherwise be picked up and abandoned forever.
  select count(*) into v_stalled from runproof.traces t
   where t.tenant_id = p_tenant_id and t.run_id = p_run_id and t.status = 'aborted' and t.step_count = 0
     and t.attempt > coalesce((select max(t2.attempt) from runproof.traces t2
                                where t2.tenant_id = p_tenant_id and t2.run_id = p_run_id
                                  and (t2.status <> 'aborted' or t2.step_count > 0)), 0);
  if v_stalled >= c_stalled_limit then
    update runproof.runs set status = 'failed',
           error = format('abandoned by its worker %s times in a row before it recorded a step; giving up', v_stalled)
     where tenant_id = p_tenant_id and id = p_run_id returning * into v;
    insert into runproof.incidents (tenant_id, run_id, trace_id, kind, severity, message, details)
    values (p_tenant_id, p_run_id, v_trace, 'run_failed', 'error', v.error,
            jsonb_build_object('stalled_attempts', v_stalled, 'resume_at_plan_step', v.next_plan_step, 'recovered_by', p_worker));
    return v;
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
  'For a run left running by a dead worker: seals its trace as aborted, moves the run to retrying and records a worker_crashed incident, in one transaction; after 20 attempts in a row abandoned before recording a step, fails the run instead (run_failed incident).';

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
--! EndIncluded execution/recovery.sql
--! Included execution/cancel.sql
-- Cancellation: a run that is not executing is cancelled at once; an executing one is asked to
-- stop, and its worker stops it between steps.

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

create or replace function runproof_private.cancel_requested(p_tenant_id uuid, p_run_id uuid) returns text
  language sql stable
  set search_path = pg_catalog
  as $$ select c.reason from runproof_private.cancel_requests c where c.tenant_id = p_tenant_id and c.run_id = p_run_id $$;
comment on function runproof_private.cancel_requested(uuid, uuid) is 'The reason a running run was asked to stop, or NULL.';
--! EndIncluded execution/cancel.sql
--! Included execution/archive.sql
-- Archival marks a sealed trace archived, once. The trace stays in every proof.

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
--! EndIncluded execution/archive.sql
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
--! Included api/tenants.sql
-- Tenants: created by the owner (CLI) with a finite daily budget; a request sees only its own.

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
  -- 'NaN' sorts above every number, so "< 0" alone let it through (and the policy never denied).
  if p_daily_budget_cents is null or p_daily_budget_cents = 'NaN'::numeric or p_daily_budget_cents < 0
     or p_daily_budget_cents >= 10000000000 then
    raise exception 'daily budget must be a number of cents from 0 to 9999999999.9999, got %', coalesce(p_daily_budget_cents::text, 'NULL')
      using errcode = 'RPVAL', hint = 'pass a budget in cents, e.g. 10000 for $100 a day';
  end if;
  insert into runproof.tenants (name, daily_budget_cents) values (btrim(p_name), p_daily_budget_cents) returning * into v;
  return v;
exception when unique_violation then
  raise exception 'a tenant named % already exists', quote_literal(btrim(p_name)) using errcode = 'RPVAL', hint = 'pick another name, or use the existing tenant (runproof tenant list)';
end
$$;
comment on function runproof_private.create_tenant(text, numeric) is 'Creates a tenant with a daily budget in cents (a finite number from 0 to 9999999999.9999).';

create or replace function runproof.current_tenant() returns runproof.tenants
  language sql stable
  set search_path = pg_catalog
  as $$ select t from runproof.tenants t where t.id = runproof_private.current_tenant_id() $$;
comment on function runproof.current_tenant() is 'The tenant of the API key making the request.';
--! EndIncluded api/tenants.sql
--! Included api/api_keys.sql
-- API keys: only the SHA-256 of a key is stored, the key is shown once; runproof_authenticator
-- may only map a key to its tenant (authenticate), never read the table.

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
--! EndIncluded api/api_keys.sql
--! Included api/agents.sql
-- Agents: created for the request's tenant, with an optional skill allow-list of registered skills.

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
--! EndIncluded api/agents.sql
--! Included api/graphql.sql
-- Computed columns PostGraphile exposes on runs, traces and steps: proofs, hashes as hex, progress.

create or replace function runproof.runs_proof(r runproof.runs) returns runproof.proof
  language sql stable
  set search_path = pg_catalog
  as $$ select runproof.run_proof(r.tenant_id, r.id) $$;
comment on function runproof.runs_proof(runproof.runs) is
  'Verifies the run now (runproof.run_proof): recomputes every hash of every trace from the stored columns and says whether the record is intact: VERIFIED, IN_PROGRESS, TAMPERED, BROKEN or NOT_FOUND, with the counts, the run root, and the first bad step and the reason.';

create or replace function runproof.traces_proof(t runproof.traces) returns runproof.proof
  language sql stable
  set search_path = pg_catalog
  as $$ select runproof.verify_trace(t.id) $$;
comment on function runproof.traces_proof(runproof.traces) is
  'Verifies this trace now (runproof.verify_trace): recomputes its chain from the stored columns: VERIFIED, IN_PROGRESS, TAMPERED, BROKEN or NOT_FOUND, with the first bad step and the reason.';

create or replace function runproof.runs_root_hash(r runproof.runs) returns text
  language sql stable
  set search_path = pg_catalog
  as $$ select encode(r.root_hash, 'hex') $$;
comment on function runproof.runs_root_hash(runproof.runs) is
  'Set once, when the run ends: the run root over its traces'' roots, lower-case hex (compare with proof.rootHash).';

create or replace function runproof.traces_root_hash(t runproof.traces) returns text
  language sql stable
  set search_path = pg_catalog
  as $$ select encode(t.root_hash, 'hex') $$;
comment on function runproof.traces_root_hash(runproof.traces) is
  'Set once at the seal: the last step_hash (the genesis hash for an empty trace), lower-case hex.';

create or replace function runproof.trace_steps_prev_hash(s runproof.trace_steps) returns text
  language sql stable
  set search_path = pg_catalog
  as $$ select encode(s.prev_hash, 'hex') $$;
comment on function runproof.trace_steps_prev_hash(runproof.trace_steps) is
  'The previous step''s step_hash, or the trace''s genesis hash for step 0, lower-case hex (set by the database).';

create or replace function runproof.trace_steps_step_hash(s runproof.trace_steps) returns text
  language sql stable
  set search_path = pg_catalog
  as $$ select encode(s.step_hash, 'hex') $$;
comment on function runproof.trace_steps_step_hash(runproof.trace_steps) is
  'sha256(prev_hash || sha256(canonical content)), lower-case hex (set by the database).';

create or replace function runproof.runs_plan_step_count(r runproof.runs) returns integer
  language sql stable
  set search_path = pg_catalog
  as $$ select case when jsonb_typeof(r.plan -> 'steps') = 'array' then jsonb_array_length(r.plan -> 'steps') end $$;
comment on function runproof.runs_plan_step_count(runproof.runs) is
  'How many steps the plan has (NULL while the run is pending, before it is planned). Progress is next_plan_step out of this.';

create or replace function runproof.runs_is_finished(r runproof.runs) returns boolean
  language sql stable
  set search_path = pg_catalog
  as $$ select r.status in ('succeeded', 'failed', 'halted', 'cancelled') $$;
comment on function runproof.runs_is_finished(runproof.runs) is
  'Whether the run reached a final status (succeeded, failed, halted or cancelled): nothing about it changes any more, so a poller can stop.';
--! EndIncluded api/graphql.sql
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
--! Included audit/install.sql
-- Installs the DDL audit's event triggers (ENABLE ALWAYS) and records the installation, which
-- proofs compare the live event triggers against. Event triggers need a superuser: without one the
-- audit is not installed, migrate says so, and proofs report guard_status UNAUDITED.

do $$
declare
  v_end oid;
  v_drop oid;
begin
  if not (select r.rolsuper from pg_roles r where r.rolname = current_user) then
    raise notice 'RunProof DDL audit not installed: event triggers need a superuser, and % is not one. Proofs will report guard_status UNAUDITED; a superuser can install it later by running sql/audit/install.sql (see docs/reliability.md).', current_user;
    return;
  end if;
  drop event trigger if exists runproof_ddl_audit_end;
  drop event trigger if exists runproof_ddl_audit_drop;
  create event trigger runproof_ddl_audit_end on ddl_command_end execute function runproof_private.tg__ddl_audit();
  create event trigger runproof_ddl_audit_drop on sql_drop execute function runproof_private.tg__ddl_audit();
  -- ALWAYS: session_replication_role = replica does not switch the audit off either.
  alter event trigger runproof_ddl_audit_end enable always;
  alter event trigger runproof_ddl_audit_drop enable always;
  comment on event trigger runproof_ddl_audit_end is 'Records schema changes to RunProof objects in runproof_private.ddl_audit.';
  comment on event trigger runproof_ddl_audit_drop is 'Records dropped RunProof objects in runproof_private.ddl_audit, and refuses to drop the audit itself.';
  select oid into v_end from pg_event_trigger where evtname = 'runproof_ddl_audit_end';
  select oid into v_drop from pg_event_trigger where evtname = 'runproof_ddl_audit_drop';
  insert into runproof_private.ddl_audit (event, command_tag, object_type, object_identity, details)
  values ('install', 'CREATE EVENT TRIGGER', 'event trigger', 'runproof_ddl_audit_end, runproof_ddl_audit_drop',
          jsonb_build_object('event_triggers', jsonb_build_object('runproof_ddl_audit_end', v_end, 'runproof_ddl_audit_drop', v_drop),
                             'function', 'runproof_private.tg__ddl_audit()',
                             'function_md5', runproof_private.ddl_audit_fingerprint()));
end
$$;
--! EndIncluded audit/install.sql
