--! Previous: sha1:f5dad5ac36aa280edff5ae440bacea1793e5633f
--! Hash: sha1:3f587c8fe8dce3df29d1f8cee5ca4a6370db7281
--! Message: step announcements after commit, one statement per step, ledger checkpoints, PG15 plans, tenant keys, run-list indexes

-- The change being developed: edit sql/, include each changed file here (--!include <path under sql/>),
-- add table changes as plain SQL, and commit it with `npm run gm -- commit -m "..."` (docs/CONVENTIONS.md).

-- Issue 13 (PostgreSQL 15, owner deployments): the per-row look-ups of an append keep index plans
-- (set-based appends were quadratic on PostgreSQL 15: bench/append-scaling.ts).
--! Included ledger/policy_decisions.sql
-- Policy decisions are append-only and taken only for the next step of a running trace. A step
-- row cannot exist without its decision row (a foreign key, and tg_trace_steps__chain in replica mode).

-- enable_seqscan = off (here and in the other per-row triggers of an append): PL/pgSQL plans
-- these look-ups once per session and keeps the plan. Planned while the tables were small or never
-- analyzed (a fresh database, a first append), PostgreSQL 15 chose sequential scans and kept them
-- while one INSERT ... SELECT grew the tables, so a set-based append was quadratic: 16,000 steps
-- took 56 s instead of 1.5 s (bench/append-scaling.ts). Each look-up is by a primary key prefix.
create or replace function runproof_private.tg_policy_decisions__check() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  set enable_seqscan = off
  as $$
declare
  v_next integer;
begin
  if not exists (select 1 from runproof.traces t where t.tenant_id = new.tenant_id and t.id = new.trace_id
                 and t.run_id = new.run_id and t.status = 'running') then
    raise exception 'trace % is not a running trace of run %', new.trace_id, new.run_id
      using errcode = 'RPCHN', hint = 'decide steps only for the running attempt of a run';
  end if;
  -- The newest step, from the end of the primary key (not max(), which a stale plan aggregates).
  select s.step_index + 1 into v_next from runproof.trace_steps s
   where s.tenant_id = new.tenant_id and s.trace_id = new.trace_id
   order by s.step_index desc limit 1;
  if new.step_index <> coalesce(v_next, 0) then
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
-- The hash chain of runproof.trace_steps: the database computes decision_hash, prev_hash and
-- step_hash on insert (docs/proof-format.md section 3), appends to one trace are serialized, gaps,
-- duplicates and appends to a sealed trace are refused, and a step is never changed or removed.

-- enable_seqscan = off: see tg_policy_decisions__check (sql/ledger/policy_decisions.sql); every
-- look-up below is by a primary key.
create or replace function runproof_private.tg_trace_steps__chain() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  set enable_seqscan = off
  as $$
declare
  v_trace record;
  v_last_index integer;
  v_last_hash bytea;
  v_last_status text;
  v_expected integer;
  v_decision runproof.policy_decisions;
begin
  if new.prev_hash is not null or new.step_hash is not null or new.decision_hash is not null then
    raise exception 'decision_hash, prev_hash and step_hash are computed by the database'
      using errcode = 'RPCHN', hint = 'omit decision_hash, prev_hash and step_hash from the INSERT';
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
  select s.step_index, s.step_hash, s.status into v_last_index, v_last_hash, v_last_status
    from runproof.trace_steps s
   where s.tenant_id = new.tenant_id and s.trace_id = new.trace_id
   order by s.step_index desc limit 1;
  v_expected := coalesce(v_last_index + 1, 0);
  if v_last_status is not null and v_last_status <> 'succeeded' then
    raise exception 'trace % ended at step % (%): no step comes after a failed or denied one', new.trace_id, v_last_index, v_last_status
      using errcode = 'RPCHN', hint = 'end the attempt (runproof_private.end_attempt); a new attempt gets a new trace';
  end if;
  if new.step_index <> v_expected then
    raise exception '% step index %: trace % expects step %',
      case when new.step_index < v_expected then 'duplicate' else 'gap at' end, new.step_index, new.trace_id, v_expected
      using errcode = 'RPCHN', hint = 'append steps in order, 0, 1, 2, ... (runproof_private.record_step does this)';
  end if;
  -- Foreign keys do not fire under session_replication_role = replica; this trigger always does.
  select d.* into v_decision from runproof.policy_decisions d
   where d.tenant_id = new.tenant_id and d.trace_id = new.trace_id and d.step_index = new.step_index;
  if not found then
    raise exception 'step % of trace % has no policy decision', new.step_index, new.trace_id
      using errcode = 'RPCHN', hint = 'record the decision first (runproof_private.decide_step): enforcement cannot be skipped';
  end if;
  if v_decision.decision is distinct from new.policy_decision or v_decision.plan_step <> new.plan_step
     or v_decision.skill <> new.skill or v_decision.run_id <> new.run_id then
    raise exception 'step % of trace % does not match its policy decision (decision %, plan step %, skill %)',
      new.step_index, new.trace_id, v_decision.decision, v_decision.plan_step, v_decision.skill
      using errcode = 'RPCHN', hint = 'record the step that was decided, with the decision that was taken';
  end if;
  -- The decision row is covered by the step's hash (docs/proof-format.md section 4).
  new.decision_hash := sha256(runproof_private.decision_canonical(v_decision));
  new.recorded_at := clock_timestamp();
  new.prev_hash := coalesce(v_last_hash, runproof_private.genesis_hash(new.tenant_id, new.run_id, new.trace_id));
  new.step_hash := runproof_private.step_hash(new.prev_hash, runproof_private.step_canonical(new));
  return new;
end
$$;
comment on function runproof_private.tg_trace_steps__chain() is
  'Trigger: appends a step to its trace''s chain. Serializes appends per trace, rejects gaps, duplicates, appends to sealed traces, a step that does not match its policy decision and client-supplied hashes, and computes decision_hash, prev_hash and step_hash.';

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
  ('trace_steps', 'tg_trace_steps__chain', 'INSERT with client-supplied hashes, a gap or duplicate index, into a sealed or missing trace, after a failed or denied step, for another run, or without the policy decision it matches (RPCHN) - checked even in replica mode, where foreign keys are skipped', 'INSERT of the next step; computes decision_hash, prev_hash and step_hash'),
  ('trace_steps', 'tg_trace_steps__append_only', 'UPDATE, DELETE (RPIMM)', 'nothing'),
  ('trace_steps', 'tg_trace_steps__no_truncate', 'TRUNCATE (RPIMM)', 'nothing')
on conflict (table_name, trigger_name) do update set blocks = excluded.blocks, allows = excluded.allows;
--! EndIncluded ledger/trace_steps.sql
--! Included ledger/payloads.sql
-- Step payloads (input, output, error) live apart from the chain, committed to by salted hashes
-- inside each step (docs/proof-format.md section 5). A payload is never changed; it is removed only
-- with its erasure recorded (runproof.erase_payloads), and erasure records are append-only.

-- enable_seqscan = off: see tg_policy_decisions__check (sql/ledger/policy_decisions.sql); the
-- look-up is by the step's primary key.
create or replace function runproof_private.tg_step_payloads__check() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  set enable_seqscan = off
  as $$
declare
  v_step record;
begin
  -- Foreign keys do not fire in replica mode; this trigger always does.
  select s.run_id, s.input_commitment, s.output_commitment, s.error_commitment into v_step
    from runproof.trace_steps s
   where s.tenant_id = new.tenant_id and s.trace_id = new.trace_id and s.step_index = new.step_index;
  if not found or v_step.run_id <> new.run_id then
    raise exception 'step % of trace % not found for run %', new.step_index, new.trace_id, new.run_id
      using errcode = 'RPNFD', hint = 'payloads are recorded with their step by runproof_private.record_step';
  end if;
  if runproof_private.payload_commitment('input', new.input_salt, new.input::text) is distinct from v_step.input_commitment
     or runproof_private.payload_commitment('output', new.output_salt, new.output::text) is distinct from v_step.output_commitment
     or runproof_private.payload_commitment('error', new.error_salt, new.error) is distinct from v_step.error_commitment then
    raise exception 'the payloads of step % of trace % do not match the step''s commitments', new.step_index, new.trace_id
      using errcode = 'RPCHN', hint = 'payloads are recorded with their step by runproof_private.record_step';
  end if;
  return new;
end
$$;
comment on function runproof_private.tg_step_payloads__check() is
  'Trigger: a step''s payloads belong to an existing step of their run and match the salted commitments the step''s hash covers (checked even in replica mode).';

create or replace function runproof_private.tg_step_payloads__guard() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_key text := format('tenant_id=%s, trace_id=%s, step_index=%s', old.tenant_id, old.trace_id, old.step_index);
begin
  if tg_op = 'DELETE' and exists (select 1 from runproof.payload_erasure_steps e
                                   where e.tenant_id = old.tenant_id and e.trace_id = old.trace_id and e.step_index = old.step_index) then
    return old;
  end if;
  perform runproof_private.raise_immutable(tg_op, 'step_payloads', v_key,
    case tg_op when 'DELETE' then 'a payload is removed only together with the record of its erasure'
               else 'a payload never changes' end,
    'erase payloads with runproof.erase_payloads, which records who erased what, when and why');
  return null;
end
$$;
comment on function runproof_private.tg_step_payloads__guard() is
  'Trigger: a payload row is never updated, and deleted only when its erasure is recorded in runproof.payload_erasure_steps (runproof.erase_payloads does both).';

create or replace function runproof_private.tg_payload_erasure_steps__check() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
begin
  if not exists (select 1 from runproof.payload_erasures e where e.tenant_id = new.tenant_id and e.id = new.erasure_id)
     or not exists (select 1 from runproof.trace_steps s where s.tenant_id = new.tenant_id and s.trace_id = new.trace_id
                     and s.step_index = new.step_index and s.run_id = new.run_id) then
    raise exception 'erasure % or step % of trace % not found for tenant %', new.erasure_id, new.step_index, new.trace_id, new.tenant_id
      using errcode = 'RPNFD', hint = 'erasures are recorded by runproof.erase_payloads';
  end if;
  return new;
end
$$;
comment on function runproof_private.tg_payload_erasure_steps__check() is
  'Trigger: an erased step belongs to its erasure''s tenant and exists (checked even in replica mode).';

create or replace trigger tg_step_payloads__check before insert on runproof.step_payloads
  for each row execute function runproof_private.tg_step_payloads__check();
create or replace trigger tg_step_payloads__guard before update or delete on runproof.step_payloads
  for each row execute function runproof_private.tg_step_payloads__guard();
create or replace trigger tg_step_payloads__no_truncate before truncate on runproof.step_payloads
  for each statement execute function runproof_private.tg__no_truncate();
create or replace trigger tg_payload_erasures__append_only before update or delete on runproof.payload_erasures
  for each row execute function runproof_private.tg__append_only('tenant_id', 'id');
create or replace trigger tg_payload_erasures__no_truncate before truncate on runproof.payload_erasures
  for each statement execute function runproof_private.tg__no_truncate();
create or replace trigger tg_payload_erasure_steps__check before insert on runproof.payload_erasure_steps
  for each row execute function runproof_private.tg_payload_erasure_steps__check();
create or replace trigger tg_payload_erasure_steps__append_only before update or delete on runproof.payload_erasure_steps
  for each row execute function runproof_private.tg__append_only('tenant_id', 'trace_id', 'step_index');
create or replace trigger tg_payload_erasure_steps__no_truncate before truncate on runproof.payload_erasure_steps
  for each statement execute function runproof_private.tg__no_truncate();
alter table runproof.step_payloads enable always trigger tg_step_payloads__check;
alter table runproof.step_payloads enable always trigger tg_step_payloads__guard;
alter table runproof.step_payloads enable always trigger tg_step_payloads__no_truncate;
alter table runproof.payload_erasures enable always trigger tg_payload_erasures__append_only;
alter table runproof.payload_erasures enable always trigger tg_payload_erasures__no_truncate;
alter table runproof.payload_erasure_steps enable always trigger tg_payload_erasure_steps__check;
alter table runproof.payload_erasure_steps enable always trigger tg_payload_erasure_steps__append_only;
alter table runproof.payload_erasure_steps enable always trigger tg_payload_erasure_steps__no_truncate;
insert into runproof_private.guard_descriptions (table_name, trigger_name, blocks, allows) values
  ('step_payloads', 'tg_step_payloads__check', 'INSERT for a missing step or another run (RPNFD), or of payloads that do not match the step''s commitments (RPCHN), even in replica mode', 'INSERT of a step''s payloads by runproof_private.record_step'),
  ('step_payloads', 'tg_step_payloads__guard', 'UPDATE; DELETE without a recorded erasure (RPIMM)', 'DELETE of payloads whose erasure is recorded (runproof.erase_payloads)'),
  ('step_payloads', 'tg_step_payloads__no_truncate', 'TRUNCATE (RPIMM)', 'nothing'),
  ('payload_erasures', 'tg_payload_erasures__append_only', 'UPDATE, DELETE (RPIMM)', 'nothing'),
  ('payload_erasures', 'tg_payload_erasures__no_truncate', 'TRUNCATE (RPIMM)', 'nothing'),
  ('payload_erasure_steps', 'tg_payload_erasure_steps__check', 'INSERT for a missing erasure or step, or another tenant''s (RPNFD), even in replica mode', 'INSERT by runproof.erase_payloads'),
  ('payload_erasure_steps', 'tg_payload_erasure_steps__append_only', 'UPDATE, DELETE (RPIMM)', 'nothing'),
  ('payload_erasure_steps', 'tg_payload_erasure_steps__no_truncate', 'TRUNCATE (RPIMM)', 'nothing')
on conflict (table_name, trigger_name) do update set blocks = excluded.blocks, allows = excluded.allows;
--! EndIncluded ledger/payloads.sql

-- Every key of a tenant table includes tenant_id (test/catalog-tenant-keys.test.ts: the path to
-- distributing by tenant_id stays open). A key's hash stays unique per tenant; the look-up by hash
-- alone (runproof_private.authenticate) has an index of its own.
alter table runproof_private.api_keys drop constraint if exists api_keys_key_hash_key;
do $$
begin
  if not exists (select 1 from pg_constraint where conname = 'api_keys_tenant_id_key_hash_key'
                  and conrelid = 'runproof_private.api_keys'::regclass) then
    alter table runproof_private.api_keys add constraint api_keys_tenant_id_key_hash_key unique (tenant_id, key_hash);
  end if;
end
$$;
create index if not exists api_keys_key_hash_idx on runproof_private.api_keys (key_hash);
comment on index runproof_private.api_keys_key_hash_idx is 'Serves authenticating a key by its hash (runproof_private.authenticate), which knows no tenant yet.';

-- Issue 14: step transactions never NOTIFY (PostgreSQL serialises NOTIFYing commits
-- cluster-wide across the WAL flush); the worker announces steps after their commit, batched, and
-- makes one statement per step (advance_attempt).
drop trigger if exists tg_trace_steps__notify on runproof.trace_steps;
drop function if exists runproof_private.tg_trace_steps__notify();
delete from runproof_private.guard_descriptions where table_name = 'trace_steps' and trigger_name = 'tg_trace_steps__notify';
--! Included execution/notify.sql
-- Live updates: a run's status changes are announced with NOTIFY on runproof:run:<run id> and
-- runproof:tenant:<tenant id> by the transaction that makes them. A step transaction never
-- NOTIFYs (PostgreSQL serialises NOTIFYing commits cluster-wide, across the WAL flush): the
-- worker announces recorded steps after their commit, batched (src/lib/announcer.ts), with the
-- payloads runproof_private.step_announcements builds. A lost announcement costs latency only.

create or replace function runproof_private.run_announcement(p_run runproof.runs) returns text
  language sql stable
  set search_path = pg_catalog
  as $$
  select json_build_object('event', 'run', 'tenant_id', p_run.tenant_id, 'run_id', p_run.id, 'status', p_run.status,
    'attempts', p_run.attempts, 'next_plan_step', p_run.next_plan_step, 'error', p_run.error,
    'finished', runproof_private.is_terminal_status(p_run.status))::text
$$;
comment on function runproof_private.run_announcement(runproof.runs) is 'The JSON payload announcing a run''s status and progress (event run).';

create or replace function runproof_private.step_announcement(p_step runproof.trace_steps) returns text
  language sql stable
  set search_path = pg_catalog
  as $$
  select json_build_object('event', 'step', 'tenant_id', p_step.tenant_id,
    'run_id', p_step.run_id, 'trace_id', p_step.trace_id, 'step_index', p_step.step_index, 'plan_step', p_step.plan_step,
    'skill', p_step.skill, 'status', p_step.status, 'duration_ms', p_step.duration_ms, 'cost_cents', p_step.cost_cents,
    'step_hash', encode(p_step.step_hash, 'hex'))::text
$$;
comment on function runproof_private.step_announcement(runproof.trace_steps) is 'The JSON payload announcing a recorded step (event step).';

create or replace function runproof_private.step_announcements(p_step runproof.trace_steps, p_run runproof.runs,
  out channels text[], out payloads text[])
  language sql stable
  set search_path = pg_catalog
  as $$
  select array['runproof:run:' || p_step.run_id, 'runproof:run:' || p_run.id, 'runproof:tenant:' || p_run.tenant_id],
         array[runproof_private.step_announcement(p_step), runproof_private.run_announcement(p_run), runproof_private.run_announcement(p_run)]
$$;
comment on function runproof_private.step_announcements(runproof.trace_steps, runproof.runs) is
  'The announcements of a recorded step, in order: the step (runproof:run:<id>), then the run''s progress (runproof:run:<id> and runproof:tenant:<id>). The worker sends them after the step''s commit.';

create or replace function runproof_private.announce(p_channels text[], p_payloads text[]) returns void
  language sql volatile
  set search_path = pg_catalog
  as $$ select pg_notify(c, p) from unnest(p_channels, p_payloads) with ordinality as a(c, p, n) order by n $$;
comment on function runproof_private.announce(text[], text[]) is
  'Sends announcements (channel i, payload i) in order, in one transaction: the worker''s batched step announcements.';

create or replace function runproof_private.tg_runs__notify() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_payload text;
begin
  -- Progress alone (next_plan_step, cost) is a step transaction's: the worker announces it.
  if tg_op = 'UPDATE' and (new.status, new.attempts) is not distinct from (old.status, old.attempts) then
    return null;
  end if;
  v_payload := runproof_private.run_announcement(new);
  perform pg_notify('runproof:run:' || new.id, v_payload);
  perform pg_notify('runproof:tenant:' || new.tenant_id, v_payload);
  return null;
end
$$;
comment on function runproof_private.tg_runs__notify() is 'Trigger: announces a run''s creation and status changes on channels runproof:run:<id> and runproof:tenant:<id> (not its progress alone: step transactions never NOTIFY).';

create or replace trigger tg_runs__notify after insert or update on runproof.runs
  for each row execute function runproof_private.tg_runs__notify();
alter table runproof.runs enable always trigger tg_runs__notify;
insert into runproof_private.guard_descriptions (table_name, trigger_name, blocks, allows) values
  ('runs', 'tg_runs__notify', 'nothing (announces status changes)', 'everything')
on conflict (table_name, trigger_name) do update set blocks = excluded.blocks, allows = excluded.allows;
--! EndIncluded execution/notify.sql
--! Included execution/record_step.sql
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
--! EndIncluded execution/record_step.sql
--! Included execution/advance.sql
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
--! EndIncluded execution/advance.sql
--! Included ledger/runs.sql
-- The run state machine and the guards of runproof.runs: a run is never deleted, what it is
-- (tenant, agent, goal, origin, plan) never changes, its status moves only along
-- run_status_transitions, its progress only with its recorded steps, and entering a final status
-- seals it (its seal text and run root, docs/proof-format.md section 8) and freezes it.

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
     or new.trace_count is not null or new.root_hash is not null or new.seal is not null or new.started_at is not null or new.finished_at is not null then
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
  v_traces integer;
  v_open integer;
  v_last record;
  v_steps record;
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
  -- A final status must be what the steps say happened (docs/proof-format.md section 9.3, check 11).
  if runproof_private.is_terminal_status(new.status) and not runproof_private.is_terminal_status(old.status) then
    select t.status as trace_status,
           (select s.status from runproof.trace_steps s where s.tenant_id = t.tenant_id and s.trace_id = t.id
             order by s.step_index desc limit 1) as step_status
      into v_last
      from runproof.traces t where t.tenant_id = new.tenant_id and t.run_id = new.id
     order by t.attempt desc limit 1;
    if new.status = 'succeeded' and new.next_plan_step <> jsonb_array_length(new.plan -> 'steps') then
      raise exception 'run % cannot succeed: % of % plan steps succeeded', old.id, new.next_plan_step, jsonb_array_length(new.plan -> 'steps')
        using errcode = 'RPSTS', hint = 'a run succeeds when every plan step has a succeeded step';
    elsif new.status = 'succeeded' and v_last.trace_status is distinct from 'completed' then
      raise exception 'run % cannot succeed: its last attempt did not complete', old.id
        using errcode = 'RPSTS', hint = 'seal the last trace as completed first';
    elsif new.status = 'halted' and (v_last.trace_status is distinct from 'failed' or v_last.step_status is distinct from 'denied') then
      raise exception 'run % cannot halt: its last attempt did not end with a denied step', old.id
        using errcode = 'RPSTS', hint = 'a run halts when the policy denies a step (runproof_private.record_denial)';
    elsif new.status = 'failed' and v_last.trace_status is not null
          and not (v_last.trace_status = 'failed' and v_last.step_status = 'failed')
          and not (v_last.trace_status = 'aborted' and v_last.step_status is null) then
      raise exception 'run % cannot fail: its last attempt did not end with a failed step', old.id
        using errcode = 'RPSTS', hint = 'a run fails at a failed step, in planning (no attempt), or after attempts abandoned before any step';
    elsif new.status = 'cancelled' and v_last.trace_status in ('completed', 'running') then
      raise exception 'run % cannot be cancelled: its last attempt is %', old.id, v_last.trace_status
        using errcode = 'RPSTS', hint = 'seal the running attempt as aborted first (runproof_private.end_attempt)';
    end if;
  end if;
  if new.attempts <> old.attempts and not (new.attempts = old.attempts + 1 and new.status = 'running' and old.status <> 'running') then
    perform runproof_private.raise_immutable('UPDATE', 'runs', v_key, 'changes attempts',
      'attempts only grows by one, when a new attempt starts (runproof_private.start_attempt)');
  end if;
  if (new.next_plan_step, new.cost_cents) is distinct from (old.next_plan_step, old.cost_cents) then
    if old.status <> 'running' then
      perform runproof_private.raise_immutable('UPDATE', 'runs', v_key, 'changes progress outside a running attempt',
        'progress is recorded with its step by runproof_private.record_step');
    end if;
    -- Progress moves only with the steps that made it: the running attempt's last steps must be
    -- plan steps old.next_plan_step .. new.next_plan_step - 1, succeeded, in order (the worker
    -- records one at a time; a bulk load, several), and cost moves by their cost; without progress,
    -- the last step is the failed or denied one at old.next_plan_step, and cost moves by its cost.
    select count(*) as n,
           count(*) filter (where l.status = 'succeeded'
                              and l.plan_step = old.next_plan_step + greatest(new.next_plan_step - old.next_plan_step, 1) - l.rn) as ok,
           coalesce(sum(l.cost_cents), 0) as cost,
           min(l.plan_step) filter (where l.rn = 1) as last_plan_step,
           min(l.status) filter (where l.rn = 1) as last_status
      into v_last
      -- The attempt's trace first (unique by tenant, run, attempt), then a backward scan of its
      -- primary key: a join let the planner walk the steps of every trace (15 ms a step with a
      -- 1,000,000-step trace in the table, bench/FINDINGS.md).
      from (select s.plan_step, s.status, s.cost_cents, row_number() over (order by s.step_index desc) as rn
              from runproof.trace_steps s
             where s.tenant_id = old.tenant_id
               and s.trace_id = (select t.id from runproof.traces t
                                  where t.tenant_id = old.tenant_id and t.run_id = old.id and t.attempt = old.attempts)
             order by s.step_index desc
             limit greatest(new.next_plan_step - old.next_plan_step, 1)) l;
    if new.next_plan_step < old.next_plan_step
       or new.next_plan_step > old.next_plan_step
          and (v_last.n <> new.next_plan_step - old.next_plan_step or v_last.ok <> v_last.n
               or new.cost_cents <> old.cost_cents + v_last.cost)
       or new.next_plan_step = old.next_plan_step
          and (v_last.n = 0 or v_last.last_status = 'succeeded' or v_last.last_plan_step <> old.next_plan_step
               or new.cost_cents <> old.cost_cents + v_last.cost) then
      raise exception 'run % progress (plan step % to %, cost % to %) does not come with its recorded steps',
        old.id, old.next_plan_step, new.next_plan_step, old.cost_cents, new.cost_cents
        using errcode = 'RPSTS',
              detail = case when v_last.n = 0 then format('attempt %s has no step', old.attempts)
                            else format('the last step of attempt %s is plan step %s, %s', old.attempts, v_last.last_plan_step, v_last.last_status) end,
              hint = 'progress is recorded with its step by runproof_private.record_step';
    end if;
  end if;
  if old.started_at is not null and new.started_at is distinct from old.started_at
     or old.planned_at is not null and new.planned_at is distinct from old.planned_at then
    perform runproof_private.raise_immutable('UPDATE', 'runs', v_key, 'changes started_at or planned_at',
      'timestamps of what happened are set once');
  end if;

  if new.status = 'running' then
    new.started_at := coalesce(new.started_at, now());
  end if;

  -- Entering a final status seals the run (docs/proof-format.md section 8): trace_count, the seal
  -- text and the run root, computed here, never by a client. Its progress and cost must be its steps'.
  if runproof_private.is_terminal_status(new.status) then
    if new.trace_count is not null or new.root_hash is not null or new.seal is not null then
      perform runproof_private.raise_immutable('UPDATE', 'runs', v_key, 'supplies trace_count, seal or root_hash',
        'the run seal is computed by the database when the run ends');
    end if;
    select count(*), count(*) filter (where t.status = 'running') into v_traces, v_open
      from runproof.traces t where t.tenant_id = new.tenant_id and t.run_id = new.id;
    if v_open > 0 then
      raise exception 'run % still has a running trace', new.id
        using errcode = 'RPSTS', hint = 'seal the trace first (runproof_private.seal_trace)';
    end if;
    select count(*) filter (where s.status = 'succeeded') as succeeded, coalesce(sum(s.cost_cents), 0) as cost into v_steps
      from runproof.traces t join runproof.trace_steps s on s.tenant_id = t.tenant_id and s.trace_id = t.id
     where t.tenant_id = new.tenant_id and t.run_id = new.id;
    if v_steps.succeeded <> new.next_plan_step or v_steps.cost <> new.cost_cents then
      raise exception 'run % cannot be sealed: its progress (% plan steps, % cents) is not its steps'' (% succeeded, % cents)',
        new.id, new.next_plan_step, new.cost_cents, v_steps.succeeded, v_steps.cost
        using errcode = 'RPSTS', hint = 'progress is recorded with its step by runproof_private.record_step';
    end if;
    new.trace_count := v_traces;
    new.finished_at := coalesce(new.finished_at, now());
    new.updated_at := now();
    new.seal := runproof_private.run_seal_canonical(new);
    new.root_hash := sha256(new.seal);
    return new;
  elsif new.trace_count is not null or new.root_hash is not null or new.seal is not null or new.finished_at is not null then
    perform runproof_private.raise_immutable('UPDATE', 'runs', v_key, 'sets the seal of an unfinished run',
      'the run seal is computed by the database when the run ends');
  end if;

  new.updated_at := now();
  return new;
end
$$;
comment on function runproof_private.tg_runs__guard() is
  'Trigger: runs are never deleted; identity, goal and origin never change (the plan: tg_runs__plan_check); status follows the state machine; progress moves only with its recorded step; a final status seals the run (trace_count, seal, root_hash over its content, outcome, traces and incidents) and freezes it.';

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
  ('runs', 'tg_runs__guard', 'DELETE; changing tenant, agent, goal, origin, idempotency key or max_attempts; any change to a finished run; progress outside an attempt; a client-supplied seal (RPIMM); a status change outside the state machine, progress or cost that does not come with its recorded step, a seal whose progress or cost is not its steps'' (RPSTS); a move to running without a new attempt, or to a final status the steps contradict: succeeded before every plan step succeeded and the last attempt completed, halted without a denied step, failed without a failed one, cancelled after a completed attempt (RPSTS)', 'status changes along runproof_private.run_status_transitions; plan stored once while pending; progress with its step while running; the seal computed at the final status'),
  ('runs', 'tg_runs__no_truncate', 'TRUNCATE (RPIMM)', 'nothing')
on conflict (table_name, trigger_name) do update set blocks = excluded.blocks, allows = excluded.allows;
--! EndIncluded ledger/runs.sql

-- Issue 12: ledger checkpoints. Every tenant has a Merkle log (RFC 9162) of its sealed runs, one
-- leaf per run appended in the run's seal transaction; a worker signs its head as a C2SP
-- checkpoint (the key is outside the database) and anchors it outside (docs/proof-format.md 13).
create table if not exists runproof.log_leaves (
  tenant_id uuid not null,
  leaf_index bigint not null check (leaf_index >= 0),
  run_id uuid not null,
  leaf bytea not null,
  leaf_hash bytea not null check (octet_length(leaf_hash) = 32),
  primary key (tenant_id, leaf_index),
  unique (tenant_id, run_id)
);
comment on table runproof.log_leaves is 'Each tenant''s Merkle log of sealed runs (docs/proof-format.md section 13): leaf i is the i-th run the tenant sealed. Appended by the run''s seal (tg_runs__log_append), never changed.';
comment on column runproof.log_leaves.tenant_id is 'The tenant whose log this is.';
comment on column runproof.log_leaves.leaf_index is 'The leaf''s position in the tenant''s log: 0, 1, 2, ...';
comment on column runproof.log_leaves.run_id is 'The sealed run.';
comment on column runproof.log_leaves.leaf is 'The leaf''s bytes: the canonical text ["runproof.log-leaf/1", tenant, run, run root, status, finished_at].';
comment on column runproof.log_leaves.leaf_hash is 'sha256(0x00 || leaf) (RFC 9162 section 2.1.1).';
comment on constraint log_leaves_tenant_id_run_id_key on runproof.log_leaves is 'A run is logged once.';

create table if not exists runproof_private.log_nodes (
  tenant_id uuid not null,
  level smallint not null check (level between 1 and 62),
  node_index bigint not null check (node_index >= 0),
  hash bytea not null check (octet_length(hash) = 32),
  primary key (tenant_id, level, node_index)
);
comment on table runproof_private.log_nodes is 'The complete subtrees of each tenant''s log: node (level, i) is the hash of leaves i*2^level .. (i+1)*2^level - 1 (level 0 is log_leaves.leaf_hash). Written by log_append as a subtree completes, never changed: appends, roots and proofs read O(log n) of them.';
comment on column runproof_private.log_nodes.tenant_id is 'The tenant whose log this is.';
comment on column runproof_private.log_nodes.level is 'The subtree''s height: it covers 2^level leaves.';
comment on column runproof_private.log_nodes.node_index is 'Its position among the subtrees of that height.';
comment on column runproof_private.log_nodes.hash is 'sha256(0x01 || left || right).';

create table if not exists runproof.log_checkpoints (
  tenant_id uuid not null,
  tree_size bigint not null check (tree_size > 0),
  root_hash bytea not null check (octet_length(root_hash) = 32),
  note text not null,
  key_name text not null,
  verifier_key text not null,
  signed_at timestamptz not null default now(),
  primary key (tenant_id, tree_size)
);
comment on table runproof.log_checkpoints is 'The signed checkpoints of each tenant''s log (C2SP tlog-checkpoint signed notes, Ed25519; docs/proof-format.md section 14). Append-only; the signing key is never in the database.';
comment on column runproof.log_checkpoints.tenant_id is 'The tenant whose log was signed.';
comment on column runproof.log_checkpoints.tree_size is 'How many leaves the checkpoint covers.';
comment on column runproof.log_checkpoints.root_hash is 'The RFC 9162 root of the first tree_size leaves.';
comment on column runproof.log_checkpoints.note is 'The signed note, exactly as signed and anchored.';
comment on column runproof.log_checkpoints.key_name is 'The signing key''s name (the note''s signature line).';
comment on column runproof.log_checkpoints.verifier_key is 'The signing key as a C2SP verifier key (name+keyid+base64(0x01 || public key)); an auditor takes it from the operator, not from here.';
comment on column runproof.log_checkpoints.signed_at is 'When it was signed.';

create table if not exists runproof_private.log_anchor_jobs (
  tenant_id uuid not null,
  tree_size bigint not null,
  anchor text not null check (anchor ~ '^[a-z][a-z0-9_-]{0,62}$'),
  attempts integer not null default 0,
  next_attempt_at timestamptz not null default now(),
  last_error text,
  done_at timestamptz,
  primary key (tenant_id, tree_size, anchor),
  foreign key (tenant_id, tree_size) references runproof.log_checkpoints (tenant_id, tree_size)
);
create index if not exists log_anchor_jobs_due_idx on runproof_private.log_anchor_jobs (next_attempt_at) where done_at is null;
comment on table runproof_private.log_anchor_jobs is 'What each anchor still has to receive: one row per checkpoint and configured anchor, retried with backoff until it is anchored (done_at). The backlog is what has no done_at.';
comment on column runproof_private.log_anchor_jobs.tenant_id is 'The checkpoint''s tenant.';
comment on column runproof_private.log_anchor_jobs.tree_size is 'The checkpoint''s size.';
comment on column runproof_private.log_anchor_jobs.anchor is 'The anchor''s name (RUNPROOF_CHECKPOINT_ANCHORS).';
comment on column runproof_private.log_anchor_jobs.attempts is 'Failed attempts so far.';
comment on column runproof_private.log_anchor_jobs.next_attempt_at is 'When to try again.';
comment on column runproof_private.log_anchor_jobs.last_error is 'The last failure, as the anchor reported it.';
comment on column runproof_private.log_anchor_jobs.done_at is 'When it was anchored (or superseded by a later checkpoint the anchor took).';
comment on index runproof_private.log_anchor_jobs_due_idx is 'Serves picking the anchor jobs that are due.';

create table if not exists runproof.log_anchor_receipts (
  tenant_id uuid not null,
  tree_size bigint not null,
  anchor text not null,
  kind text not null check (kind in ('directory', 'witness', 'rfc3161')),
  receipt text not null,
  anchored_at timestamptz not null default now(),
  primary key (tenant_id, tree_size, anchor),
  foreign key (tenant_id, tree_size) references runproof.log_checkpoints (tenant_id, tree_size)
);
comment on table runproof.log_anchor_receipts is 'What each anchor returned for a checkpoint: the file written, the witness''s cosignature line, or the RFC 3161 timestamp token (base64 DER). Append-only.';
comment on column runproof.log_anchor_receipts.tenant_id is 'The checkpoint''s tenant.';
comment on column runproof.log_anchor_receipts.tree_size is 'The checkpoint''s size.';
comment on column runproof.log_anchor_receipts.anchor is 'The anchor''s name.';
comment on column runproof.log_anchor_receipts.kind is 'directory, witness or rfc3161.';
comment on column runproof.log_anchor_receipts.receipt is 'The receipt: a path, a C2SP cosignature line, or a base64 timestamp token.';
comment on column runproof.log_anchor_receipts.anchored_at is 'When it was recorded.';

do $$
begin
  if not exists (select 1 from pg_attribute where attrelid = 'runproof.proof'::regclass and attname = 'leaf_index') then
    alter type runproof.proof add attribute leaf_index bigint, add attribute checkpoint_size bigint,
      add attribute inclusion_proof text[], add attribute checkpoint text;
  end if;
end
$$;
comment on column runproof.proof.leaf_index is 'A sealed run''s leaf in its tenant''s log (docs/proof-format.md section 13), NULL otherwise.';
comment on column runproof.proof.checkpoint_size is 'The size of the latest checkpoint of the tenant''s log, NULL when there is none.';
comment on column runproof.proof.inclusion_proof is 'The RFC 9162 inclusion proof of the run''s leaf in that checkpoint (hex hashes, leaf upwards); NULL when the run is not checkpointed yet.';
comment on column runproof.proof.checkpoint is 'That checkpoint''s signed note.';

do $$
begin
  if to_regtype('runproof.log_status') is null then
    create type runproof.log_status as (
      tenant_id uuid, log_size bigint, checkpoint_size bigint, checkpoint text, checkpoint_signed_at timestamptz,
      key_name text, verifier_key text, not_checkpointed bigint, anchor_backlog bigint, anchor_failing bigint,
      anchor_backlog_from bigint, anchor_last_error text);
  end if;
end
$$;
comment on type runproof.log_status is 'A tenant''s Merkle log: its size, latest checkpoint and anchor backlog.';
comment on column runproof.log_status.tenant_id is 'The tenant.';
comment on column runproof.log_status.log_size is 'How many sealed runs its log holds.';
comment on column runproof.log_status.checkpoint_size is 'The size of the latest checkpoint (NULL: none yet).';
comment on column runproof.log_status.checkpoint is 'The latest checkpoint''s signed note.';
comment on column runproof.log_status.checkpoint_signed_at is 'When it was signed.';
comment on column runproof.log_status.key_name is 'The checkpoint signing key''s name.';
comment on column runproof.log_status.verifier_key is 'The signing key as a C2SP verifier key (name+keyid+base64 key); compare it with the one the operator publishes.';
comment on column runproof.log_status.not_checkpointed is 'Leaves (sealed runs) after the latest checkpoint.';
comment on column runproof.log_status.anchor_backlog is 'Checkpoint-anchor pairs not anchored yet.';
comment on column runproof.log_status.anchor_failing is 'Of those, how many failed at least once (retried with backoff).';
comment on column runproof.log_status.anchor_backlog_from is 'The smallest checkpoint size not anchored everywhere.';
comment on column runproof.log_status.anchor_last_error is 'The first pending anchor''s last error.';

--! Included log/leaf.sql
-- The bytes of a tenant's Merkle log (docs/proof-format.md section 13): a leaf commits to a sealed
-- run (tenant, run, run root, final status, seal time), hashed as RFC 9162 leaves and nodes.
-- The offline verifier (src/lib/offline-checkpoint.ts) computes the same bytes.

create or replace function runproof_private.log_leaf(p_tenant_id uuid, p_run_id uuid, p_root_hash bytea, p_status text, p_finished_at timestamptz) returns bytea
  language sql stable parallel safe
  as $$
    select convert_to(format('["runproof.log-leaf/1", "%s", "%s", "%s", %s, %s]',
      p_tenant_id, p_run_id, encode(p_root_hash, 'hex'), to_json(p_status), to_json(p_finished_at at time zone 'UTC')), 'UTF8')
  $$;
comment on function runproof_private.log_leaf(uuid, uuid, bytea, text, timestamptz) is
  'The bytes of a run''s leaf in its tenant''s log: ["runproof.log-leaf/1", tenant_id, run_id, hex(run root), status, finished_at] (docs/proof-format.md section 13). No SET clause, so that it inlines.';

create or replace function runproof_private.log_leaf_hash(p_leaf bytea) returns bytea
  language sql immutable strict parallel safe
  as $$ select sha256('\x00'::bytea || p_leaf) $$;
comment on function runproof_private.log_leaf_hash(bytea) is 'RFC 9162 leaf hash: sha256(0x00 || leaf).';

create or replace function runproof_private.log_node_hash(p_left bytea, p_right bytea) returns bytea
  language sql immutable strict parallel safe
  as $$ select sha256('\x01'::bytea || p_left || p_right) $$;
comment on function runproof_private.log_node_hash(bytea, bytea) is 'RFC 9162 interior node hash: sha256(0x01 || left || right).';

create or replace function runproof_private.log_floor_log2(p_n bigint) returns integer
  language sql immutable strict parallel safe
  as $$ select 64 - position('1' in p_n::bit(64)::text) $$;
comment on function runproof_private.log_floor_log2(bigint) is 'floor(log2 n) of a positive n, exactly (from its bits).';

create or replace function runproof_private.log_largest_power_below(p_n bigint) returns bigint
  language sql immutable strict parallel safe
  as $$ select 1::bigint << runproof_private.log_floor_log2(p_n - 1) $$;
comment on function runproof_private.log_largest_power_below(bigint) is 'RFC 9162''s k: the largest power of two smaller than n (n >= 2).';
--! EndIncluded log/leaf.sql
--! Included log/tree.sql
-- A tenant's Merkle log kept as its complete subtrees (runproof_private.log_nodes): appending a
-- leaf writes the leaf and the subtrees it completes (one on average), and any root or subtree
-- hash is read from O(log n) stored nodes; the tree is never recomputed.

create or replace function runproof_private.log_node(p_tenant_id uuid, p_level integer, p_index bigint) returns bytea
  language plpgsql stable
  set search_path = pg_catalog
  as $$
declare
  v_hash bytea;
begin
  if p_level = 0 then
    select l.leaf_hash into v_hash from runproof.log_leaves l where l.tenant_id = p_tenant_id and l.leaf_index = p_index;
  else
    select n.hash into v_hash from runproof_private.log_nodes n
     where n.tenant_id = p_tenant_id and n.level = p_level and n.node_index = p_index;
  end if;
  if v_hash is null then
    raise exception 'the log of tenant % has no node at level %, index %', p_tenant_id, p_level, p_index
      using errcode = 'RPLOG', hint = 'the log is incomplete: run runproof verify-all --against with the anchored checkpoints';
  end if;
  return v_hash;
end
$$;
comment on function runproof_private.log_node(uuid, integer, bigint) is
  'The stored hash of a complete subtree of a tenant''s log: a leaf hash at level 0, else log_nodes (RPLOG when missing).';

create or replace function runproof_private.log_subtree(p_tenant_id uuid, p_start bigint, p_size bigint) returns bytea
  language plpgsql stable
  set search_path = pg_catalog
  as $$
declare
  v_k bigint;
  v_right bytea;
  v_lefts bytea[] := '{}';
  v_start bigint := p_start;
  v_size bigint := p_size;
  i integer;
begin
  -- MTH(D[start : start + size]) (RFC 9162 2.1.1). The left part of every split is a complete,
  -- aligned subtree (stored); only the right edge is split further.
  if p_size < 1 then
    return sha256(''::bytea);
  end if;
  while v_size & (v_size - 1) <> 0 loop
    v_k := runproof_private.log_largest_power_below(v_size);
    v_lefts := v_lefts || runproof_private.log_node(p_tenant_id, runproof_private.log_floor_log2(v_k), v_start / v_k);
    v_start := v_start + v_k;
    v_size := v_size - v_k;
  end loop;
  v_right := runproof_private.log_node(p_tenant_id, runproof_private.log_floor_log2(v_size), v_start / v_size);
  for i in reverse coalesce(array_length(v_lefts, 1), 0) .. 1 loop
    v_right := runproof_private.log_node_hash(v_lefts[i], v_right);
  end loop;
  return v_right;
end
$$;
comment on function runproof_private.log_subtree(uuid, bigint, bigint) is
  'The RFC 9162 hash of leaves start .. start + size - 1 of a tenant''s log (start aligned as in the RFC''s recursion), from O(log n) stored nodes.';

create or replace function runproof_private.log_size(p_tenant_id uuid) returns bigint
  language sql stable
  set search_path = pg_catalog
  as $$
    select coalesce((select l.leaf_index + 1 from runproof.log_leaves l where l.tenant_id = p_tenant_id
                      order by l.leaf_index desc limit 1), 0)
  $$;
comment on function runproof_private.log_size(uuid) is 'How many leaves a tenant''s log holds.';

create or replace function runproof_private.log_root(p_tenant_id uuid, p_size bigint) returns bytea
  language sql stable
  set search_path = pg_catalog
  as $$ select runproof_private.log_subtree(p_tenant_id, 0, p_size) $$;
comment on function runproof_private.log_root(uuid, bigint) is 'The RFC 9162 root of the first size leaves of a tenant''s log (sha256 of nothing for size 0).';

create or replace function runproof_private.log_append(p_tenant_id uuid, p_run_id uuid, p_leaf bytea) returns bigint
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_index bigint;
  v_hash bytea := sha256('\x00'::bytea || p_leaf);
  v_i bigint;
  v_level integer := 0;
  v_sibling bytea;
begin
  -- Appends to one tenant's log are serialized by a transaction lock on the tenant (class 1262,
  -- RunProof's log); the next index is read after the lock, from the committed log.
  perform pg_advisory_xact_lock(1262, hashtext(p_tenant_id::text));
  insert into runproof.log_leaves (tenant_id, leaf_index, run_id, leaf, leaf_hash)
    select p_tenant_id, coalesce((select l.leaf_index + 1 from runproof.log_leaves l where l.tenant_id = p_tenant_id
                                   order by l.leaf_index desc limit 1), 0), p_run_id, p_leaf, v_hash
    returning leaf_index into v_index;
  -- The subtrees this leaf completes: one per trailing 1 bit of its index.
  v_i := v_index;
  while v_i & 1 = 1 loop
    if v_level = 0 then
      select l.leaf_hash into v_sibling from runproof.log_leaves l where l.tenant_id = p_tenant_id and l.leaf_index = v_i - 1;
    else
      select n.hash into v_sibling from runproof_private.log_nodes n
       where n.tenant_id = p_tenant_id and n.level = v_level and n.node_index = v_i - 1;
    end if;
    v_hash := sha256('\x01'::bytea || v_sibling || v_hash);
    v_level := v_level + 1;
    v_i := v_i >> 1;
    insert into runproof_private.log_nodes (tenant_id, level, node_index, hash) values (p_tenant_id, v_level, v_i, v_hash);
  end loop;
  return v_index;
end
$$;
comment on function runproof_private.log_append(uuid, uuid, bytea) is
  'Appends a leaf to a tenant''s log (serialized per tenant) and stores the subtrees it completes: on average one index lookup and two inserts. Returns the leaf index.';
--! EndIncluded log/tree.sql
--! Included log/append.sql
-- The seal appends the run to its tenant's log: an AFTER trigger on runs that fires once, when the
-- run's seal is set (tg_runs__guard computes it), in the same transaction. ENABLE ALWAYS, like the
-- guards: replica mode does not skip it.

create or replace function runproof_private.tg_runs__log_append() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
begin
  perform runproof_private.log_append(new.tenant_id, new.id,
    runproof_private.log_leaf(new.tenant_id, new.id, new.root_hash, new.status, new.finished_at));
  return null;
end
$$;
comment on function runproof_private.tg_runs__log_append() is
  'Trigger: when a run is sealed, appends its leaf (tenant, run, run root, status, finished_at) to its tenant''s Merkle log, in the seal''s transaction.';

create or replace trigger tg_runs__log_append after update on runproof.runs
  for each row when (old.seal is null and new.seal is not null)
  execute function runproof_private.tg_runs__log_append();
alter table runproof.runs enable always trigger tg_runs__log_append;
insert into runproof_private.guard_descriptions (table_name, trigger_name, blocks, allows) values
  ('runs', 'tg_runs__log_append', 'a sealed run missing from its tenant''s log: it appends the leaf in the seal''s transaction', 'every seal; nothing else')
on conflict (table_name, trigger_name) do update set blocks = excluded.blocks, allows = excluded.allows;
--! EndIncluded log/append.sql
--! Included log/proofs.sql
-- Inclusion and consistency proofs of a tenant's log (RFC 9162 sections 2.1.3 and 2.1.4), from
-- O(log n) stored nodes, and a run's place in its log with its proof to the latest checkpoint.
-- A tenant gets proofs of its own log only (request_tenant).

create or replace function runproof_private.log_inclusion_path(p_tenant_id uuid, p_index bigint, p_size bigint) returns bytea[]
  language plpgsql stable
  set search_path = pg_catalog
  as $$
declare
  v_path bytea[] := '{}';
  v_m bigint := p_index;
  v_start bigint := 0;
  v_n bigint := p_size;
  v_k bigint;
begin
  if p_index < 0 or p_index >= p_size then
    raise exception 'leaf % is not in a tree of size %', p_index, p_size
      using errcode = 'RPVAL', hint = 'a leaf index is from 0 to tree_size - 1';
  end if;
  -- PATH(m, D[n]) top-down; RFC 9162 lists it leaf upwards, so it is reversed at the end.
  while v_n > 1 loop
    v_k := runproof_private.log_largest_power_below(v_n);
    if v_m < v_k then
      v_path := v_path || runproof_private.log_subtree(p_tenant_id, v_start + v_k, v_n - v_k);
      v_n := v_k;
    else
      v_path := v_path || runproof_private.log_subtree(p_tenant_id, v_start, v_k);
      v_m := v_m - v_k;
      v_start := v_start + v_k;
      v_n := v_n - v_k;
    end if;
  end loop;
  return array(select v_path[i] from generate_subscripts(v_path, 1) i order by i desc);
end
$$;
comment on function runproof_private.log_inclusion_path(uuid, bigint, bigint) is
  'The RFC 9162 inclusion proof of leaf index in the first size leaves of a tenant''s log, leaf upwards.';

create or replace function runproof_private.log_consistency_path(p_tenant_id uuid, p_from bigint, p_to bigint) returns bytea[]
  language plpgsql stable
  set search_path = pg_catalog
  as $$
declare
  v_path bytea[] := '{}';
  v_m bigint := p_from;
  v_start bigint := 0;
  v_n bigint := p_to;
  v_b boolean := true;
  v_k bigint;
begin
  if p_from < 0 or p_from > p_to then
    raise exception 'no consistency proof from size % to size %', p_from, p_to
      using errcode = 'RPVAL', hint = 'from_size must be from 0 to to_size';
  end if;
  if p_from = 0 or p_from = p_to then
    return '{}';
  end if;
  -- SUBPROOF(m, D[n], true) top-down, reversed at the end.
  loop
    if v_m = v_n then
      if not v_b then
        v_path := v_path || runproof_private.log_subtree(p_tenant_id, v_start, v_n);
      end if;
      exit;
    end if;
    v_k := runproof_private.log_largest_power_below(v_n);
    if v_m <= v_k then
      v_path := v_path || runproof_private.log_subtree(p_tenant_id, v_start + v_k, v_n - v_k);
      v_n := v_k;
    else
      v_path := v_path || runproof_private.log_subtree(p_tenant_id, v_start, v_k);
      v_m := v_m - v_k;
      v_start := v_start + v_k;
      v_n := v_n - v_k;
      v_b := false;
    end if;
  end loop;
  return array(select v_path[i] from generate_subscripts(v_path, 1) i order by i desc);
end
$$;
comment on function runproof_private.log_consistency_path(uuid, bigint, bigint) is
  'The RFC 9162 consistency proof between the first from and the first to leaves of a tenant''s log.';

create or replace function runproof_private.hex_array(p bytea[]) returns text[]
  language sql immutable strict parallel safe
  as $$ select coalesce(array(select encode(x, 'hex') from unnest(p) with ordinality u(x, o) order by o), '{}') $$;
comment on function runproof_private.hex_array(bytea[]) is 'Each hash as lower-case hex, in order.';

create or replace function runproof.log_inclusion_proof(tenant_id uuid, leaf_index bigint, tree_size bigint) returns text[]
  language plpgsql stable security definer
  set search_path = pg_catalog
  as $$
declare
  v_tenant uuid := runproof_private.request_tenant(log_inclusion_proof.tenant_id);
begin
  if log_inclusion_proof.tree_size > runproof_private.log_size(v_tenant) then
    raise exception 'the log of tenant % has fewer than % leaves', v_tenant, log_inclusion_proof.tree_size
      using errcode = 'RPVAL', hint = 'ask for a size up to the latest checkpoint''s';
  end if;
  return runproof_private.hex_array(runproof_private.log_inclusion_path(v_tenant, log_inclusion_proof.leaf_index, log_inclusion_proof.tree_size));
end
$$;
comment on function runproof.log_inclusion_proof(uuid, bigint, bigint) is
  'The RFC 9162 inclusion proof (hex hashes, leaf upwards) of a leaf of the tenant''s log in its first tree_size leaves.';

create or replace function runproof.log_consistency_proof(tenant_id uuid, from_size bigint, to_size bigint) returns text[]
  language plpgsql stable security definer
  set search_path = pg_catalog
  as $$
declare
  v_tenant uuid := runproof_private.request_tenant(log_consistency_proof.tenant_id);
begin
  if log_consistency_proof.to_size > runproof_private.log_size(v_tenant) then
    raise exception 'the log of tenant % has fewer than % leaves', v_tenant, log_consistency_proof.to_size
      using errcode = 'RPVAL', hint = 'ask for sizes of checkpoints (runproof checkpoint list)';
  end if;
  return runproof_private.hex_array(runproof_private.log_consistency_path(v_tenant, log_consistency_proof.from_size, log_consistency_proof.to_size));
end
$$;
comment on function runproof.log_consistency_proof(uuid, bigint, bigint) is
  'The RFC 9162 consistency proof (hex hashes) between two sizes of the tenant''s log, e.g. two checkpoints.';

create or replace function runproof_private.run_log_proof(p_tenant_id uuid, p_run_id uuid,
  out leaf_index bigint, out checkpoint_size bigint, out inclusion_proof text[], out checkpoint text)
  language plpgsql stable security definer
  set search_path = pg_catalog
  as $$
declare
  v_tenant uuid := runproof_private.request_tenant(p_tenant_id);
begin
  select l.leaf_index into leaf_index from runproof.log_leaves l where l.tenant_id = v_tenant and l.run_id = p_run_id;
  select c.tree_size, c.note into checkpoint_size, checkpoint from runproof.log_checkpoints c
   where c.tenant_id = v_tenant order by c.tree_size desc limit 1;
  if leaf_index is not null and checkpoint_size > leaf_index then
    inclusion_proof := runproof_private.hex_array(runproof_private.log_inclusion_path(v_tenant, leaf_index, checkpoint_size));
  end if;
end
$$;
comment on function runproof_private.run_log_proof(uuid, uuid) is
  'A run''s leaf index in its tenant''s log, the latest checkpoint (size and signed note) and the run''s inclusion proof in it (NULL while the run is not checkpointed).';
--! EndIncluded log/proofs.sql
--! Included log/checkpoints.sql
-- Checkpoints of the tenants' logs and their anchors: which logs grew and need signing (the worker
-- signs outside the database, tasks/checkpoint.ts), storing a signed checkpoint (append-only, its
-- root checked against the log), the anchor jobs with their backoff, receipts, and the status.
-- The log tables are guarded like the ledger: no UPDATE, DELETE or TRUNCATE, for any role.

create or replace trigger tg_log_leaves__append_only before update or delete on runproof.log_leaves
  for each row execute function runproof_private.tg__append_only('tenant_id', 'leaf_index');
create or replace trigger tg_log_leaves__no_truncate before truncate on runproof.log_leaves
  for each statement execute function runproof_private.tg__no_truncate();
alter table runproof.log_leaves enable always trigger tg_log_leaves__append_only;
alter table runproof.log_leaves enable always trigger tg_log_leaves__no_truncate;
create or replace trigger tg_log_nodes__append_only before update or delete on runproof_private.log_nodes
  for each row execute function runproof_private.tg__append_only('tenant_id', 'level', 'node_index');
create or replace trigger tg_log_nodes__no_truncate before truncate on runproof_private.log_nodes
  for each statement execute function runproof_private.tg__no_truncate();
alter table runproof_private.log_nodes enable always trigger tg_log_nodes__append_only;
alter table runproof_private.log_nodes enable always trigger tg_log_nodes__no_truncate;
create or replace trigger tg_log_checkpoints__append_only before update or delete on runproof.log_checkpoints
  for each row execute function runproof_private.tg__append_only('tenant_id', 'tree_size');
create or replace trigger tg_log_checkpoints__no_truncate before truncate on runproof.log_checkpoints
  for each statement execute function runproof_private.tg__no_truncate();
alter table runproof.log_checkpoints enable always trigger tg_log_checkpoints__append_only;
alter table runproof.log_checkpoints enable always trigger tg_log_checkpoints__no_truncate;
create or replace trigger tg_log_anchor_receipts__append_only before update or delete on runproof.log_anchor_receipts
  for each row execute function runproof_private.tg__append_only('tenant_id', 'tree_size', 'anchor');
create or replace trigger tg_log_anchor_receipts__no_truncate before truncate on runproof.log_anchor_receipts
  for each statement execute function runproof_private.tg__no_truncate();
alter table runproof.log_anchor_receipts enable always trigger tg_log_anchor_receipts__append_only;
alter table runproof.log_anchor_receipts enable always trigger tg_log_anchor_receipts__no_truncate;
insert into runproof_private.guard_descriptions (table_name, trigger_name, blocks, allows) values
  ('log_leaves', 'tg_log_leaves__append_only', 'UPDATE, DELETE (RPIMM)', 'INSERT by the run''s seal (log_append)'),
  ('log_leaves', 'tg_log_leaves__no_truncate', 'TRUNCATE (RPIMM)', 'nothing'),
  ('log_checkpoints', 'tg_log_checkpoints__append_only', 'UPDATE, DELETE (RPIMM)', 'INSERT of a checkpoint whose root is the log''s (record_checkpoints)'),
  ('log_checkpoints', 'tg_log_checkpoints__no_truncate', 'TRUNCATE (RPIMM)', 'nothing'),
  ('log_anchor_receipts', 'tg_log_anchor_receipts__append_only', 'UPDATE, DELETE (RPIMM)', 'INSERT of an anchor''s receipt'),
  ('log_anchor_receipts', 'tg_log_anchor_receipts__no_truncate', 'TRUNCATE (RPIMM)', 'nothing')
on conflict (table_name, trigger_name) do update set blocks = excluded.blocks, allows = excluded.allows;

create or replace function runproof_private.log_heads_to_sign(p_limit integer) returns table (tenant_id uuid, tree_size bigint, root_hash bytea)
  language sql stable
  set search_path = pg_catalog
  as $$
    select h.tenant_id, h.size, runproof_private.log_root(h.tenant_id, h.size)
      from (select t.id as tenant_id, runproof_private.log_size(t.id) as size,
                   coalesce((select c.tree_size from runproof.log_checkpoints c where c.tenant_id = t.id
                              order by c.tree_size desc limit 1), 0) as signed
              from runproof.tenants t) h
     where h.size > h.signed
     order by h.tenant_id
     limit p_limit
  $$;
comment on function runproof_private.log_heads_to_sign(integer) is
  'The logs that grew since their latest checkpoint: tenant, size and RFC 9162 root to sign (tasks/checkpoint.ts).';

create or replace function runproof_private.checkpoint_body_root(p_note text) returns bytea
  language sql immutable strict parallel safe
  as $$ select decode(split_part(p_note, E'\n', 3), 'base64') $$;
comment on function runproof_private.checkpoint_body_root(text) is 'The root hash a C2SP checkpoint note states (its third line, base64).';

create or replace function runproof_private.record_checkpoints(p_tenant_ids uuid[], p_sizes bigint[], p_notes text[],
  p_key_name text, p_verifier_key text, p_anchors text[]) returns integer
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_n integer;
  v_bad record;
begin
  -- Each note must state the log's own root at its size, and its size must be new.
  select c.tenant_id, c.size into v_bad
    from unnest(p_tenant_ids, p_sizes, p_notes) c(tenant_id, size, note)
   where split_part(c.note, E'\n', 2) <> c.size::text
      or runproof_private.checkpoint_body_root(c.note) is distinct from runproof_private.log_root(c.tenant_id, c.size)
      or c.size > runproof_private.log_size(c.tenant_id)
   limit 1;
  if found then
    raise exception 'the checkpoint of tenant % at size % does not state that log''s root', v_bad.tenant_id, v_bad.size
      using errcode = 'RPLOG', hint = 'sign the heads runproof_private.log_heads_to_sign returns';
  end if;
  insert into runproof.log_checkpoints (tenant_id, tree_size, root_hash, note, key_name, verifier_key)
    select c.tenant_id, c.size, runproof_private.checkpoint_body_root(c.note), c.note, p_key_name, p_verifier_key
      from unnest(p_tenant_ids, p_sizes, p_notes) c(tenant_id, size, note)
    on conflict do nothing;
  get diagnostics v_n = row_count;
  insert into runproof_private.log_anchor_jobs (tenant_id, tree_size, anchor)
    select c.tenant_id, c.size, a.anchor
      from unnest(p_tenant_ids, p_sizes) c(tenant_id, size) cross join unnest(p_anchors) a(anchor)
    on conflict do nothing;
  return v_n;
end
$$;
comment on function runproof_private.record_checkpoints(uuid[], bigint[], text[], text, text, text[]) is
  'Stores signed checkpoints (one per tenant given; each note must state the log''s root at its size, RPLOG) and queues them for each anchor. Returns how many were new.';

create or replace function runproof_private.due_anchor_jobs(p_limit integer) returns table (
  tenant_id uuid, tree_size bigint, anchor text, attempts integer, note text)
  language sql volatile
  set search_path = pg_catalog
  as $$
    select j.tenant_id, j.tree_size, j.anchor, j.attempts, c.note
      from runproof_private.log_anchor_jobs j
      join runproof.log_checkpoints c on c.tenant_id = j.tenant_id and c.tree_size = j.tree_size
     where j.done_at is null and j.next_attempt_at <= now()
     order by j.tenant_id, j.anchor, j.tree_size
     limit p_limit
  $$;
comment on function runproof_private.due_anchor_jobs(integer) is
  'The anchor jobs that are due, each tenant''s and anchor''s in size order (a witness takes them in order).';

create or replace function runproof_private.record_anchor_receipt(p_tenant_id uuid, p_tree_size bigint, p_anchor text, p_kind text, p_receipt text) returns void
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
begin
  insert into runproof.log_anchor_receipts (tenant_id, tree_size, anchor, kind, receipt)
    values (p_tenant_id, p_tree_size, p_anchor, p_kind, p_receipt)
    on conflict do nothing;
  -- The anchor holds this checkpoint; older ones it has not taken are superseded by it.
  update runproof_private.log_anchor_jobs j set done_at = now(), last_error = null
   where j.tenant_id = p_tenant_id and j.anchor = p_anchor and j.tree_size <= p_tree_size and j.done_at is null;
end
$$;
comment on function runproof_private.record_anchor_receipt(uuid, bigint, text, text, text) is
  'Records what an anchor returned for a checkpoint, and marks it (and the older checkpoints it supersedes for that anchor) done.';

create or replace function runproof_private.record_anchor_failure(p_tenant_id uuid, p_tree_size bigint, p_anchor text, p_error text,
  p_base_ms integer, p_max_ms integer) returns timestamptz
  language sql volatile
  set search_path = pg_catalog
  as $$
    update runproof_private.log_anchor_jobs j
       set attempts = j.attempts + 1, last_error = left(p_error, 2000),
           next_attempt_at = now() + make_interval(secs => least(p_max_ms::float8, p_base_ms::float8 * power(2, least(j.attempts, 30))) / 1000)
     where j.tenant_id = p_tenant_id and j.tree_size = p_tree_size and j.anchor = p_anchor
    returning j.next_attempt_at
  $$;
comment on function runproof_private.record_anchor_failure(uuid, bigint, text, text, integer, integer) is
  'Records a failed anchor attempt and when to retry: base * 2^attempts, at most max (milliseconds). Runs never wait for anchors.';

create or replace function runproof.log_status(tenant_id uuid) returns runproof.log_status
  language plpgsql stable security definer
  set search_path = pg_catalog
  as $$
declare
  v_tenant uuid := runproof_private.request_tenant(log_status.tenant_id);
  v runproof.log_status;
begin
  v.tenant_id := v_tenant;
  v.log_size := runproof_private.log_size(v_tenant);
  select c.tree_size, c.note, c.signed_at, c.key_name, c.verifier_key
    into v.checkpoint_size, v.checkpoint, v.checkpoint_signed_at, v.key_name, v.verifier_key
    from runproof.log_checkpoints c where c.tenant_id = v_tenant order by c.tree_size desc limit 1;
  v.not_checkpointed := v.log_size - coalesce(v.checkpoint_size, 0);
  select count(*), count(*) filter (where j.attempts > 0), min(j.tree_size),
         (array_agg(j.anchor || ': ' || j.last_error order by j.tree_size) filter (where j.last_error is not null))[1]
    into v.anchor_backlog, v.anchor_failing, v.anchor_backlog_from, v.anchor_last_error
    from runproof_private.log_anchor_jobs j where j.tenant_id = v_tenant and j.done_at is null;
  return v;
end
$$;
comment on function runproof.log_status(uuid) is
  'The tenant''s log: its size, the latest checkpoint (note, key name and verifier key), how many leaves are not checkpointed yet, and the anchor backlog (checkpoints not yet anchored, how many failed, the first error).';

create or replace function runproof.tenants_log_status(t runproof.tenants) returns runproof.log_status
  language sql stable
  set search_path = pg_catalog
  as $$ select runproof.log_status(t.id) $$;
comment on function runproof.tenants_log_status(runproof.tenants) is 'The tenant''s Merkle log and its checkpoints and anchors (runproof.log_status).';

create or replace function runproof_private.anchor_problems() returns table (tenant_id uuid, reason text)
  language sql stable
  set search_path = pg_catalog
  as $$
    select j.tenant_id,
           format('anchor %s: %s checkpoint(s) not anchored after failures (sizes %s to %s); last error: %s',
                  j.anchor, count(*), min(j.tree_size), max(j.tree_size),
                  (array_agg(j.last_error order by j.tree_size desc))[1])
      from runproof_private.log_anchor_jobs j
     where j.done_at is null and j.attempts > 0
     group by j.tenant_id, j.anchor
     order by j.tenant_id, j.anchor
  $$;
comment on function runproof_private.anchor_problems() is
  'The anchor backlog that failed: per tenant and anchor, the checkpoints an anchor has not taken after at least one failure (listed by verify_all as ANCHOR_BACKLOG).';
--! EndIncluded log/checkpoints.sql
--! Included log/verify_against.sql
-- Verification of the tenants' logs against checkpoints kept outside the database (the anchors):
-- each tenant's tree is recomputed from its runs and compared with every checkpoint given, so a
-- consistent rewrite of the database (hashes, seals, log and stored checkpoints alike) is found.

create or replace function runproof_private.log_roots(p_hashes bytea[], p_sizes bigint[]) returns bytea[]
  language plpgsql immutable
  set search_path = pg_catalog
  as $$
declare
  v_stack bytea[] := '{}';
  v_top integer := 0;
  v_roots bytea[] := '{}';
  v_sizes bigint[] := array(select s from unnest(p_sizes) s order by s);
  v_j integer := 1;
  v_c bytea;
  v_m bigint;
  v_r bytea;
  v_n integer := coalesce(array_length(p_hashes, 1), 0);
  i integer;
  t integer;
begin
  -- One pass over the leaves, keeping the complete subtrees of the right edge (RFC 9162 2.1.1):
  -- the root of the first i leaves folds that stack from the right.
  while v_j <= coalesce(array_length(v_sizes, 1), 0) and v_sizes[v_j] <= 0 loop
    v_roots := v_roots || sha256(''::bytea);
    v_j := v_j + 1;
  end loop;
  for i in 1 .. v_n loop
    v_c := p_hashes[i];
    v_m := i;
    while v_m & 1 = 0 loop
      v_c := sha256('\x01'::bytea || v_stack[v_top] || v_c);
      v_top := v_top - 1;
      v_m := v_m >> 1;
    end loop;
    v_top := v_top + 1;
    v_stack[v_top] := v_c;
    while v_j <= coalesce(array_length(v_sizes, 1), 0) and v_sizes[v_j] = i loop
      v_r := v_stack[v_top];
      for t in reverse v_top - 1 .. 1 loop
        v_r := sha256('\x01'::bytea || v_stack[t] || v_r);
      end loop;
      v_roots := v_roots || v_r;
      v_j := v_j + 1;
    end loop;
  end loop;
  return v_roots;
end
$$;
comment on function runproof_private.log_roots(bytea[], bigint[]) is
  'The RFC 9162 roots of the first s leaf hashes for each size s asked (in ascending size order; sizes beyond the leaves are left out), in one pass.';

create or replace function runproof.verify_against(checkpoints text[], leaves jsonb default null) returns table (
  tenant_id uuid, status text, first_bad_leaf bigint, run_id uuid, tree_size bigint, reason text)
  -- volatile: it fills a temporary table with the checkpoints.
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_tenant uuid;
  v_ext record;
  v_hashes bytea[];
  v_stored bytea[];
  v_runs uuid[];
  v_present boolean[];
  v_indexes bigint[];
  v_n bigint;
  v_anchored bigint;
  v_sizes bigint[];
  v_roots bytea[];
  v_exp bytea[];
  v_mirror bytea[];
  v_i bigint;
  v_k integer;
  v_s0 bigint;
  v_problems integer;
  v_x record;
begin
  -- The checkpoints given: origin (ending in the tenant id), size, root. Signatures are checked by
  -- the caller (runproof verify-all --against verifies each note with the log's public key).
  create temporary table if not exists pg_temp.verify_against_input (tenant_id uuid, tree_size bigint, root_hash bytea, source text) on commit drop;
  truncate pg_temp.verify_against_input;
  insert into pg_temp.verify_against_input
    select substring(split_part(c, E'\n', 1) from '([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$')::uuid,
           split_part(c, E'\n', 2)::bigint, decode(split_part(c, E'\n', 3), 'base64'), 'given'
      from unnest(coalesce(checkpoints, '{}')) c;
  insert into pg_temp.verify_against_input
    select c.tenant_id, c.tree_size, c.root_hash, 'stored' from runproof.log_checkpoints c;

  for v_tenant in
    select x.t from (select i.tenant_id as t from pg_temp.verify_against_input i where i.source = 'given'
                     union select l.tenant_id from runproof.log_leaves l
                     union select r.tenant_id from runproof.runs r where r.seal is not null) x
     where x.t is not null order by 1
  loop
    v_problems := 0;
    -- A fork: two checkpoints of one size with different roots (given, or given and stored).
    for v_x in select i.tree_size, count(distinct i.root_hash) as roots from pg_temp.verify_against_input i
                where i.tenant_id = v_tenant group by i.tree_size having count(distinct i.root_hash) > 1 order by 1 loop
      tenant_id := v_tenant; status := 'FORK'; tree_size := v_x.tree_size; first_bad_leaf := null; run_id := null;
      reason := format('%s checkpoints of size %s with different roots: the log was forked', v_x.roots, v_x.tree_size);
      v_problems := v_problems + 1;
      return next;
    end loop;

    -- The tree recomputed from the runs, in log order; the stored leaves beside it.
    select array_agg(coalesce(runproof_private.log_leaf_hash(runproof_private.log_leaf(r.tenant_id, r.id, r.root_hash, r.status, r.finished_at)), l.leaf_hash) order by l.leaf_index),
           array_agg(l.leaf_hash order by l.leaf_index), array_agg(l.run_id order by l.leaf_index),
           array_agg(r.id is not null order by l.leaf_index), array_agg(l.leaf_index order by l.leaf_index)
      into v_hashes, v_stored, v_runs, v_present, v_indexes
      from runproof.log_leaves l
      left join runproof.runs r on r.tenant_id = l.tenant_id and r.id = l.run_id and r.seal is not null
     where l.tenant_id = v_tenant;
    v_n := coalesce(array_length(v_hashes, 1), 0);
    -- Leaves the log lost without renumbering, runs deleted under their leaves, runs rewritten under them.
    select min(o - 1) into v_i from unnest(v_indexes) with ordinality u(ix, o) where ix <> o - 1;
    if v_i is not null then
      tenant_id := v_tenant; status := 'DELETED'; first_bad_leaf := v_i; run_id := null; tree_size := null;
      reason := format('leaf %s is missing from the log', v_i);
      v_problems := v_problems + 1;
      return next;
    end if;
    select min(o - 1) into v_i from unnest(v_present) with ordinality u(p, o) where not p;
    if v_i is not null then
      tenant_id := v_tenant; status := 'DELETED'; first_bad_leaf := v_i; run_id := v_runs[v_i + 1]; tree_size := null;
      reason := format('leaf %s logs run %s, which no longer exists (or is no longer sealed)', v_i, v_runs[v_i + 1]);
      v_problems := v_problems + 1;
      return next;
    end if;
    select min(o - 1) into v_i from unnest(v_hashes, v_stored) with ordinality u(h, s, o) where h <> s;
    if v_i is not null then
      tenant_id := v_tenant; status := 'REWRITTEN'; first_bad_leaf := v_i; run_id := v_runs[v_i + 1]; tree_size := null;
      reason := format('run %s (leaf %s) is not the run that was logged: its root, status or finished_at changed', v_runs[v_i + 1], v_i);
      v_problems := v_problems + 1;
      return next;
    end if;
    -- Sealed runs the log does not hold: the seal always appends, so they were inserted around it.
    for v_x in select r.id from runproof.runs r where r.tenant_id = v_tenant and r.seal is not null
                  and not exists (select 1 from runproof.log_leaves l where l.tenant_id = r.tenant_id and l.run_id = r.id)
                order by r.finished_at, r.id loop
      tenant_id := v_tenant; status := 'INSERTED'; first_bad_leaf := null; run_id := v_x.id; tree_size := null;
      reason := format('run %s is sealed but not in its tenant''s log', v_x.id);
      v_problems := v_problems + 1;
      return next;
    end loop;

    -- Against the checkpoints given: rolled back below one, or a different tree at its size.
    select max(i.tree_size) into v_anchored from pg_temp.verify_against_input i where i.tenant_id = v_tenant and i.source = 'given';
    v_anchored := coalesce(v_anchored, 0);
    if v_n < v_anchored then
      tenant_id := v_tenant; status := 'ROLLED_BACK'; first_bad_leaf := v_n; run_id := null; tree_size := v_anchored;
      reason := format('the log holds %s leaves but a checkpoint of size %s was anchored', v_n, v_anchored);
      v_problems := v_problems + 1;
      return next;
    end if;
    select array_agg(d.tree_size order by d.tree_size), array_agg(d.root_hash order by d.tree_size) into v_sizes, v_exp
      from (select distinct on (i.tree_size) i.tree_size, i.root_hash from pg_temp.verify_against_input i
             where i.tenant_id = v_tenant and i.source = 'given' and i.tree_size <= v_n order by i.tree_size, i.root_hash) d;
    v_roots := runproof_private.log_roots(v_hashes, v_sizes);
    v_s0 := 0;
    for v_k in 1 .. coalesce(array_length(v_sizes, 1), 0) loop
      if v_roots[v_k] = v_exp[v_k] then
        v_s0 := v_sizes[v_k];
        continue;
      end if;
      -- The first checkpoint the recomputed tree disagrees with. Locate the first bad leaf with the
      -- anchored leaf hashes when given, else say between which checkpoints it is.
      tenant_id := v_tenant; tree_size := v_sizes[v_k]; run_id := null;
      v_mirror := case when leaves ? v_tenant::text
                       then array(select decode(h, 'hex') from jsonb_array_elements_text(leaves -> v_tenant::text) with ordinality e(h, o) order by o) end;
      if v_mirror is not null and array_length(v_mirror, 1) >= v_sizes[v_k] then
        select min(o - 1) into v_i from unnest(v_hashes[1:v_sizes[v_k]], v_mirror[1:v_sizes[v_k]]) with ordinality u(h, m, o) where h is distinct from m;
        first_bad_leaf := v_i;
        run_id := v_runs[v_i + 1];
        if (select array_agg(h order by h) from unnest(v_hashes[1:v_sizes[v_k]]) h)
           = (select array_agg(h order by h) from unnest(v_mirror[1:v_sizes[v_k]]) h) then
          status := 'REORDERED';
          reason := format('leaf %s (run %s) is at another place in the anchored log: the log was reordered', v_i, run_id);
        elsif v_hashes[v_i + 2] is not distinct from v_mirror[v_i + 1] and not v_hashes[v_i + 1] = any (v_mirror[1:v_sizes[v_k]]) then
          status := 'INSERTED';
          reason := format('leaf %s (run %s) was not in the anchored log: a run was inserted', v_i, run_id);
        elsif v_hashes[v_i + 1] is not distinct from v_mirror[v_i + 2] and not v_mirror[v_i + 1] = any (v_hashes) then
          status := 'DELETED'; run_id := null;
          reason := format('anchored leaf %s is missing from the log: a run was deleted', v_i);
        elsif v_hashes[v_i + 1] = any (v_mirror[1:v_sizes[v_k]]) then
          status := 'REORDERED';
          reason := format('leaf %s (run %s) is at another place in the anchored log: the log was reordered', v_i, run_id);
        else
          status := 'REWRITTEN';
          reason := format('leaf %s (run %s) differs from the anchored leaf: the run was rewritten', v_i, run_id);
        end if;
      else
        status := 'ROOT_MISMATCH'; first_bad_leaf := v_s0;
        reason := format('the tree recomputed from the runs has a different root at size %s than the anchored checkpoint: a leaf from %s to %s was rewritten, deleted, inserted or moved',
                         v_sizes[v_k], v_s0, v_sizes[v_k] - 1);
      end if;
      v_problems := v_problems + 1;
      return next;
      exit;
    end loop;

    if v_n > v_anchored then
      tenant_id := v_tenant; status := 'NOT_CHECKPOINTED'; first_bad_leaf := v_anchored; run_id := null; tree_size := v_n;
      reason := format('%s run(s) sealed after the last anchored checkpoint (leaves %s to %s) are not checkpointed yet', v_n - v_anchored, v_anchored, v_n - 1);
      return next;
    end if;
    if v_problems = 0 and v_anchored > 0 then
      tenant_id := v_tenant; status := 'CONSISTENT'; first_bad_leaf := null; run_id := null; tree_size := v_anchored;
      reason := format('the tree recomputed from the runs matches every checkpoint given, up to size %s', v_anchored);
      return next;
    end if;
  end loop;
end
$$;
comment on function runproof.verify_against(text[], jsonb) is
  'Verifies each tenant''s log against checkpoints kept outside the database (their note texts; signatures checked by the caller) and optionally the anchored leaf hashes ({tenant_id: [hex, ...]}): recomputes the tree from the runs and reports, each with its first bad leaf, FORK, DELETED, INSERTED, REWRITTEN, REORDERED, ROLLED_BACK, ROOT_MISMATCH (without leaf hashes), NOT_CHECKPOINTED (sealed after the last checkpoint) and CONSISTENT.';
--! EndIncluded log/verify_against.sql
--! Included proof/run_proof.sql
-- A run's proof (docs/proof-format.md section 9): every trace verified in attempt order, then the
-- run's attempts, progress, cost and outcome checked against its steps and its seal against the
-- root recomputed from the rows, plus the guard status of the interval in which it was recorded.

create or replace function runproof_private.run_proof_chain(p_tenant_id uuid, p_run_id uuid) returns runproof.proof
  language plpgsql stable
  set search_path = pg_catalog
  as $$
declare
  v_run runproof.runs;
  v_trace runproof.traces;
  v_c record;
  v_result runproof.proof;
  v_expected_attempt integer := 1;
  v_succeeded integer := 0;
  v_cost numeric := 0;
  v_last_trace runproof.traces;
  v_last_step text;
  v_running_attempt integer;
  v_late_running integer;
  v_plan_steps integer;
  v_now bytea;
  v_diff record;
  v_seal_traces integer;
  v_now_traces integer;
begin
  v_result.integrity_model := 'HASH_CHAIN';
  v_result.proof_format := 2;
  v_result.tenant_id := p_tenant_id;
  v_result.run_id := p_run_id;
  v_result.trace_count := 0;
  v_result.step_count := 0;
  v_result.erased_steps := 0;
  v_result.chain_length := 0;
  v_result.verified_at := clock_timestamp();

  -- Check 1: the run row.
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

  -- Checks 2 to 8: each trace, in attempt order. The first fault is kept; the rest are counted.
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
    if v_result.verification_status is null and v_running_attempt is not null then
      v_result.verification_status := 'BROKEN';
      v_result.first_bad_attempt := v_running_attempt;
      v_result.reason := format('attempt %s is still running but a later attempt exists', v_running_attempt);
    end if;
    v_expected_attempt := v_trace.attempt + 1;
    select * into v_c from runproof_private.trace_check(v_trace, v_succeeded) c;
    v_result.step_count := v_result.step_count + (v_c.proof).step_count;
    v_result.erased_steps := v_result.erased_steps + (v_c.proof).erased_steps;
    -- chain_length counts the steps verified in chain order, up to the first fault.
    if v_result.verification_status is null then
      v_result.chain_length := v_result.chain_length + (v_c.proof).chain_length;
    end if;
    if (v_c.proof).verification_status not in ('VERIFIED', 'IN_PROGRESS') and v_result.verification_status is null then
      v_result.verification_status := (v_c.proof).verification_status;
      v_result.first_bad_attempt := (v_c.proof).first_bad_attempt;
      v_result.first_bad_trace_id := (v_c.proof).first_bad_trace_id;
      v_result.first_bad_step_index := (v_c.proof).first_bad_step_index;
      v_result.reason := format('attempt %s: %s', v_trace.attempt, (v_c.proof).reason);
    end if;
    if v_trace.status = 'running' then
      v_running_attempt := v_trace.attempt;
    end if;
    v_succeeded := v_succeeded + v_c.succeeded;
    v_cost := v_cost + v_c.cost;
    v_last_trace := v_trace;
    v_last_step := v_c.last_step_status;
  end loop;

  -- The root as the rows are now (docs/proof-format.md section 8).
  v_now := runproof_private.run_seal_canonical(v_run);
  v_result.root_hash := runproof_private.hex(sha256(v_now));

  if v_result.verification_status is null and v_run.tenant_id <> p_tenant_id then
    v_result.verification_status := 'TAMPERED';
    v_result.reason := format('the run belongs to tenant %s but its traces to tenant %s', v_run.tenant_id, p_tenant_id);
  end if;
  -- Check 9: one trace per attempt.
  if v_result.verification_status is null and v_result.trace_count <> v_run.attempts then
    v_result.verification_status := 'BROKEN';
    if v_result.trace_count < v_run.attempts then
      v_result.first_bad_attempt := v_result.trace_count + 1;
      v_result.reason := format('the run made %s attempts but %s traces exist: the trace of attempt %s is missing',
        v_run.attempts, v_result.trace_count, v_result.trace_count + 1);
    else
      v_result.first_bad_attempt := v_run.attempts + 1;
      v_result.reason := format('the run made %s attempts but %s traces exist: attempt %s onwards is not one of its attempts',
        v_run.attempts, v_result.trace_count, v_run.attempts + 1);
    end if;
  end if;
  if v_result.verification_status is null and v_run.trace_count is not null and v_run.trace_count <> v_result.trace_count then
    v_result.verification_status := 'BROKEN';
    v_result.reason := format('the run''s trace_count says %s but %s traces exist', v_run.trace_count, v_result.trace_count);
  end if;
  -- Check 10: progress and cost are the steps'.
  if v_result.verification_status is null and v_run.next_plan_step <> v_succeeded then
    v_result.verification_status := 'BROKEN';
    v_result.reason := format('the run''s progress says %s plan steps succeeded but its steps show %s', v_run.next_plan_step, v_succeeded);
  end if;
  if v_result.verification_status is null and v_run.cost_cents <> v_cost then
    v_result.verification_status := 'BROKEN';
    v_result.reason := format('the run''s cost is %s cents but its steps cost %s', v_run.cost_cents, v_cost::numeric(14, 4));
  end if;
  -- Check 11: the outcome is what the steps say happened.
  if v_result.verification_status is null then
    v_plan_steps := case when jsonb_typeof(v_run.plan -> 'steps') = 'array' then jsonb_array_length(v_run.plan -> 'steps') end;
    v_result.reason := case v_run.status
      when 'succeeded' then
        case when v_succeeded <> coalesce(v_plan_steps, -1)
               then format('the run succeeded but %s of %s plan steps succeeded', v_succeeded, coalesce(v_plan_steps, 0))
             when v_last_trace.status is distinct from 'completed'
               then format('the run succeeded but its last attempt %s', coalesce('is ' || v_last_trace.status, 'does not exist')) end
      when 'halted' then
        case when v_last_trace.status is distinct from 'failed' or v_last_step is distinct from 'denied'
               then 'the run halted but its last attempt did not end with a denied step' end
      when 'failed' then
        case when v_last_trace.id is not null
              and not (v_last_trace.status = 'failed' and v_last_step = 'failed')
              and not (v_last_trace.status = 'aborted' and v_last_step is null)
               then 'the run failed but its last attempt did not end with a failed step' end
      when 'cancelled' then
        case when v_last_trace.id is not null and v_last_trace.status not in ('aborted', 'failed')
               then format('the run was cancelled but its last attempt is %s', v_last_trace.status) end
      when 'running' then
        case when v_last_trace.status is distinct from 'running'
               then 'the run is running but its last attempt is not' end
      else
        case when v_running_attempt is not null
               then format('the run is %s but attempt %s is still running', v_run.status, v_running_attempt) end
    end;
    if v_result.reason is not null then
      v_result.verification_status := 'BROKEN';
    end if;
  end if;
  -- Check 12: the seal.
  if v_result.verification_status is null then
    if not runproof_private.is_terminal_status(v_run.status) then
      if v_run.seal is not null or v_run.root_hash is not null or v_run.trace_count is not null then
        v_result.verification_status := 'TAMPERED';
        v_result.reason := 'an unfinished run carries a seal';
      end if;
    elsif v_run.seal is null or v_run.root_hash is null then
      v_result.verification_status := 'BROKEN';
      v_result.reason := format('the run is %s but has no seal', v_run.status);
    elsif v_run.root_hash <> sha256(v_run.seal) then
      v_result.verification_status := 'TAMPERED';
      v_result.reason := format('the run''s root_hash %s does not match sha256 of its seal %s',
        runproof_private.hex(v_run.root_hash), runproof_private.hex(sha256(v_run.seal)));
    elsif v_run.seal <> v_now then
      v_result.verification_status := 'TAMPERED';
      select * into v_diff from runproof_private.seal_difference(v_now, v_run.seal,
        array['format', 'tenant_id', 'run_id', 'content', 'status', 'error', 'attempts', 'next_plan_step', 'cost_cents',
              'planned_at', 'started_at', 'finished_at', 'trace seals', 'incidents']);
      v_result.reason := case
        when v_diff.element = 3 then
          'the run''s content (agent, goal, origin, plan, idempotency key, max attempts or creation time) differs from its seal'
        when v_diff.element between 4 and 11 then
          format('the run''s %s is %s but its seal says %s', v_diff.name, v_diff.now_value, v_diff.sealed_value)
        when v_diff.element = 12 then
          (select case when jsonb_array_length(a.sealed) <> jsonb_array_length(a.now)
                    then format('the run''s seal lists %s traces but %s exist', jsonb_array_length(a.sealed), jsonb_array_length(a.now))
                    else format('the seal of attempt %s differs from the one in the run''s seal',
                           (select min(k) from generate_series(1, jsonb_array_length(a.now)) k
                             where a.now -> (k - 1) is distinct from a.sealed -> (k - 1))) end
             from (select v_diff.now_value::jsonb as now, v_diff.sealed_value::jsonb as sealed) a)
        when v_diff.element = 13 then
          (select case when jsonb_array_length(a.sealed) <> jsonb_array_length(a.now)
                    then format('the run''s incidents differ from its seal: %s in the seal, %s now', jsonb_array_length(a.sealed), jsonb_array_length(a.now))
                    else format('incident %s differs from the one in the run''s seal',
                           (select i.id from runproof.incidents i where i.tenant_id = v_run.tenant_id and i.run_id = v_run.id
                             order by i.created_at, i.id offset (select min(k) - 1 from generate_series(1, jsonb_array_length(a.now)) k
                                                                  where a.now -> (k - 1) is distinct from a.sealed -> (k - 1)) limit 1)) end
             from (select v_diff.now_value::jsonb as now, v_diff.sealed_value::jsonb as sealed) a)
        when v_diff.element between 0 and 2 then 'the run''s seal is not the seal of this run'
        else 'the run''s seal is not its canonical text' end;
    end if;
  end if;
  if v_result.verification_status is null then
    v_result.verification_status := case
      when v_running_attempt is not null or not runproof_private.is_terminal_status(v_run.status) then 'IN_PROGRESS'
      else 'VERIFIED' end;
  end if;
  return v_result;
end
$$;
comment on function runproof_private.run_proof_chain(uuid, uuid) is
  'The hash-chain half of runproof.run_proof (guard_status and guard_detail left NULL): the checks of docs/proof-format.md section 9 (every trace, then the attempts, progress, cost, outcome and seal of the run).';

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
    -- Its place in the tenant's Merkle log and its inclusion proof to the latest checkpoint
    -- (docs/proof-format.md section 13).
    select l.leaf_index, l.checkpoint_size, l.inclusion_proof, l.checkpoint
      into v_result.leaf_index, v_result.checkpoint_size, v_result.inclusion_proof, v_result.checkpoint
      from runproof_private.run_log_proof(run_proof.tenant_id, run_proof.run_id) l;
  end if;
  return v_result;
end
$$;
comment on function runproof.run_proof(uuid, uuid) is
  'Verifies a run (docs/proof-format.md section 9): recomputes every hash of every trace, step, decision and payload from the stored rows, checks the attempts, progress, cost and outcome against the steps and the run seal against the root, and returns HASH_CHAIN with VERIFIED, IN_PROGRESS, TAMPERED, BROKEN or NOT_FOUND, the counts (erased steps included), the root, the first bad step and the reason; and guard_status (GUARDED, UNGUARDED, UNAUDITED) from the DDL audit over the run''s recorded lifetime (created_at .. updated_at); and the run''s leaf in its tenant''s log with its inclusion proof to the latest checkpoint.';
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
  -- Checkpoints an anchor failed to take (retried with backoff; docs/reliability.md).
  return query select a.tenant_id, null::uuid, null::uuid, 'ANCHOR_BACKLOG'::text, null::integer, null::integer, a.reason, null::text
                 from runproof_private.anchor_problems() a;
end
$$;
comment on function runproof.verify_all() is
  'Verifies every run the caller can see. Lists first one row without a run for each ledger-wide problem now (runproof_private.ledger_problems), then each run whose chain is not VERIFIED or IN_PROGRESS, or during whose recorded lifetime a guard-weakening schema change was made outside a RunProof migration (guard_status UNGUARDED), then traces and steps that no run leads to (runproof_private.orphan_rows), then the checkpoints an anchor failed to take (ANCHOR_BACKLOG). An empty result means the ledger is intact.';
--! EndIncluded proof/verify_all.sql

-- Issue 16: hints name the CLI as it is called in a clone, `npx runproof ...` (hint texts only).
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
    raise exception 'tenant_id is required' using errcode = 'RPVAL', hint = 'pass the tenant''s id (npx runproof tenant list)';
  end if;
  return p_tenant_id;
end
$$;
comment on function runproof_private.request_tenant(uuid) is
  'The tenant an operation acts for: the API key''s tenant in a GraphQL request (a different tenant_id is refused with 42501), else the tenant_id given.';
--! EndIncluded common/request.sql
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
  if runproof_private.has_invisible_chars(p_name) then
    raise exception 'tenant name % contains control, invisible or bidirectional formatting characters', runproof_private.visible(p_name)
      using errcode = 'RPVAL', hint = 'use a name of visible characters only (no control characters, zero-width characters or bidi overrides)';
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
  raise exception 'a tenant named % already exists', quote_literal(btrim(p_name)) using errcode = 'RPVAL', hint = 'pick another name, or use the existing tenant (npx runproof tenant list)';
end
$$;
comment on function runproof_private.create_tenant(text, numeric) is 'Creates a tenant with a daily budget in cents (a finite number from 0 to 9999999999.9999).';

create or replace function runproof.current_tenant() returns runproof.tenants
  language sql stable
  set search_path = pg_catalog
  as $$ select t from runproof.tenants t where t.id = runproof_private.current_tenant_id() $$;
comment on function runproof.current_tenant() is 'The tenant of the API key making the request.';
--! EndIncluded api/tenants.sql
--! Included api/agents.sql
-- Agents: created for the request's tenant, with an optional skill allow-list of registered skills.
-- Each limit of the table is checked here first, so every caller gets the limit in words (RPVAL
-- with a HINT), not the name of the constraint that would have caught it.

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
  if runproof_private.has_invisible_chars(create_agent.name) then
    raise exception 'agent name % contains control, invisible or bidirectional formatting characters', runproof_private.visible(create_agent.name)
      using errcode = 'RPVAL', hint = 'use a name of visible characters only (no control characters, zero-width characters or bidi overrides)';
  end if;
  if length(coalesce(create_agent.description, '')) > 2000 then
    raise exception 'agent description is % characters long; at most 2000 are allowed', length(create_agent.description)
      using errcode = 'RPVAL', hint = 'shorten the description to 2000 characters';
  end if;
  if create_agent.allowed_skills is not null then
    if array_position(create_agent.allowed_skills, null) is not null then
      raise exception 'allowed_skills must not contain null (element % is null)', array_position(create_agent.allowed_skills, null)
        using errcode = 'RPVAL', hint = 'list skill names only, e.g. {noop,http_call}; pass null (not [null]) to allow every skill';
    end if;
    if cardinality(create_agent.allowed_skills) > 100 then
      raise exception 'allowed_skills lists % skills; at most 100 are allowed', cardinality(create_agent.allowed_skills)
        using errcode = 'RPVAL', hint = 'list at most 100 skills, or pass null to allow every registered skill';
    end if;
  end if;
  if not exists (select 1 from runproof.tenants t where t.id = v_tenant) then
    raise exception 'tenant % not found', v_tenant using errcode = 'RPNFD', hint = 'create the tenant first (npx runproof tenant create)';
  end if;
  select string_agg(s, ', ') into v_unknown from unnest(create_agent.allowed_skills) s
   where not exists (select 1 from runproof.skills k where k.name = s);
  if v_unknown is not null then
    raise exception 'allowed_skills names unknown skills: %', v_unknown using errcode = 'RPSKL', hint = 'list skills with npx runproof skills list';
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
--! Included api/api_keys.sql
-- API keys: only the SHA-256 of a key is stored, the key is shown once; a key may carry an
-- expiry; runproof_authenticator may only map a key to its tenant (authenticate), never read the
-- table. Revoking or deleting a key (or its tenant) is announced on channel runproof:api_keys,
-- so a GraphQL server ends the key's open subscriptions at once.

create or replace function runproof_private.create_api_key(p_tenant_id uuid, p_label text default '', p_expires_at timestamptz default null)
  returns table (key_id uuid, api_key text, key_prefix text, expires_at timestamptz)
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
    raise exception 'tenant % not found', p_tenant_id using errcode = 'RPNFD', hint = 'create the tenant first (npx runproof tenant create)';
  end if;
  if length(coalesce(p_label, '')) > 200 then
    raise exception 'API key label is % characters long; at most 200 are allowed', length(p_label)
      using errcode = 'RPVAL', hint = 'use a shorter label';
  end if;
  if p_expires_at is not null and p_expires_at <= now() then
    raise exception 'API key expiry % is not in the future', p_expires_at
      using errcode = 'RPVAL', hint = 'pass a time after now, e.g. now() + interval ''30 days'' (npx runproof api-key create --expires-in 30d)';
  end if;
  insert into runproof_private.api_keys (tenant_id, key_hash, key_prefix, label, expires_at)
  values (p_tenant_id, sha256(convert_to(v_key, 'UTF8')), v_prefix, coalesce(p_label, ''), p_expires_at)
  returning id into v_id;
  key_id := v_id; api_key := v_key; key_prefix := v_prefix; expires_at := p_expires_at;
  return next;
end
$$;
comment on function runproof_private.create_api_key(uuid, text, timestamptz) is
  'Creates an API key for a tenant and returns it once; only its SHA-256 is stored. With p_expires_at, the key authenticates nothing from then on (RPKEX).';

create or replace function runproof_private.revoke_api_key(p_tenant_id uuid, p_key_id uuid) returns void
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
begin
  update runproof_private.api_keys set revoked_at = coalesce(revoked_at, now())
   where tenant_id = p_tenant_id and id = p_key_id;
  if not found then
    raise exception 'API key % of tenant % not found', p_key_id, p_tenant_id using errcode = 'RPNFD', hint = 'list keys with npx runproof api-key list';
  end if;
end
$$;
comment on function runproof_private.revoke_api_key(uuid, uuid) is 'Revokes an API key; it authenticates nothing from then on, and servers end its open subscriptions (NOTIFY runproof:api_keys).';

create or replace function runproof_private.authenticate(p_api_key text) returns uuid
  language plpgsql stable security definer
  set search_path = pg_catalog
  as $$
declare
  v record;
begin
  select k.tenant_id, k.revoked_at, k.expires_at into v from runproof_private.api_keys k
   where k.key_hash = sha256(convert_to(coalesce(p_api_key, ''), 'UTF8'));
  if not found then
    raise exception 'invalid API key' using errcode = '28000', hint = 'send Authorization: Bearer <api key>; create a key with npx runproof api-key create';
  end if;
  if v.revoked_at is not null then
    raise exception 'API key is revoked' using errcode = '28000', hint = 'create a new key with npx runproof api-key create';
  end if;
  if v.expires_at is not null and v.expires_at <= now() then
    raise exception 'API key expired at %', to_char(v.expires_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
      using errcode = 'RPKEX', hint = 'create a new key with npx runproof api-key create (--expires-in for another key that expires)';
  end if;
  return v.tenant_id;
end
$$;
comment on function runproof_private.authenticate(text) is
  'Maps an API key to its tenant by the key''s hash; raises 28000 for an unknown or revoked key, RPKEX for an expired one.';

create or replace function runproof_private.tg_api_keys__notify() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
begin
  -- Ids only: a key's hash is never sent anywhere.
  if tg_op = 'DELETE' then
    perform pg_notify('runproof:api_keys', json_build_object('event', 'deleted', 'tenant_id', old.tenant_id, 'key_id', old.id)::text);
  elsif new.revoked_at is not null and old.revoked_at is null then
    perform pg_notify('runproof:api_keys', json_build_object('event', 'revoked', 'tenant_id', new.tenant_id, 'key_id', new.id)::text);
  end if;
  return null;
end
$$;
comment on function runproof_private.tg_api_keys__notify() is
  'Trigger: announces a revoked or deleted API key (also when its tenant is deleted) on channel runproof:api_keys, with the tenant and key ids, for servers to end its subscriptions.';

create or replace trigger tg_api_keys__notify after update of revoked_at or delete on runproof_private.api_keys
  for each row execute function runproof_private.tg_api_keys__notify();
--! EndIncluded api/api_keys.sql
--! Included api/erasure.sql
-- Erasing personal data without breaking a proof: step payloads (input, output, error) are
-- deleted with their salts, and the erasure is recorded (who, when, why, which steps). Every hash
-- stays as it was, so the record still verifies, with the erased steps counted. A tenant may set a
-- payload retention; the worker's cron task erase_expired_payloads applies it.

create or replace function runproof_private.erase_steps(p_tenant_id uuid, p_steps jsonb, p_reason text, p_scope jsonb)
  returns runproof.payload_erasures
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v runproof.payload_erasures;
  v_by text;
begin
  if runproof_private.is_blank(p_reason) or length(p_reason) > 2000 then
    raise exception 'an erasure needs a reason of 1 to 2000 characters'
      using errcode = 'RPVAL', hint = 'say why, e.g. ''GDPR request 2026-117'' or ''retention''';
  end if;
  -- Who: the API key's tenant in a GraphQL request, else the database roles of the session.
  v_by := case when runproof_private.current_tenant_id() is not null
               then format('tenant %s (API request)', runproof_private.current_tenant_id())
               else format('%s (session %s)', current_user, session_user) end;
  insert into runproof.payload_erasures (tenant_id, erased_by, reason, scope, step_count)
  values (p_tenant_id, v_by, p_reason, p_scope, jsonb_array_length(p_steps))
  returning * into v;
  insert into runproof.payload_erasure_steps (tenant_id, erasure_id, run_id, trace_id, step_index)
  select p_tenant_id, v.id, (e ->> 'run_id')::uuid, (e ->> 'trace_id')::uuid, (e ->> 'step_index')::integer
    from jsonb_array_elements(p_steps) e;
  delete from runproof.step_payloads p
   using runproof.payload_erasure_steps e
   where e.tenant_id = p_tenant_id and e.erasure_id = v.id
     and p.tenant_id = e.tenant_id and p.trace_id = e.trace_id and p.step_index = e.step_index;
  return v;
end
$$;
comment on function runproof_private.erase_steps(uuid, jsonb, text, jsonb) is
  'Records an erasure of the given steps ([{run_id, trace_id, step_index}, ...]) and deletes their payloads, in one transaction. Called by erase_payloads and erase_expired_payloads.';

create or replace function runproof.erase_payloads(
  run_id uuid default null, older_than interval default null, reason text default null, tenant_id uuid default null)
  returns runproof.payload_erasures
  language plpgsql volatile security definer
  set search_path = pg_catalog
  as $$
#variable_conflict use_column
declare
  v_tenant uuid := runproof_private.request_tenant(erase_payloads.tenant_id);
  v_steps jsonb;
begin
  if (erase_payloads.run_id is null) = (erase_payloads.older_than is null) then
    raise exception 'erase_payloads needs either run_id or older_than'
      using errcode = 'RPVAL', hint = 'erase one run''s payloads (run_id), or those of the tenant''s runs that finished before now() - older_than';
  end if;
  if erase_payloads.older_than is not null and erase_payloads.older_than < interval '0' then
    raise exception 'older_than must not be negative, got %', erase_payloads.older_than
      using errcode = 'RPVAL', hint = 'pass an age, e.g. ''30 days''';
  end if;
  if erase_payloads.run_id is not null
     and not exists (select 1 from runproof.runs r where r.tenant_id = v_tenant and r.id = erase_payloads.run_id) then
    raise exception 'run % not found for tenant %', erase_payloads.run_id, v_tenant
      using errcode = 'RPNFD', hint = 'check the run id (npx runproof runs list)';
  end if;
  select coalesce(jsonb_agg(jsonb_build_object('run_id', p.run_id, 'trace_id', p.trace_id, 'step_index', p.step_index)
                            order by p.run_id, p.trace_id, p.step_index), '[]')
    into v_steps
    from runproof.runs r
    join runproof.traces t on t.tenant_id = r.tenant_id and t.run_id = r.id
    join runproof.step_payloads p on p.tenant_id = t.tenant_id and p.trace_id = t.id
   where r.tenant_id = v_tenant
     and (erase_payloads.run_id is null or r.id = erase_payloads.run_id)
     and (erase_payloads.older_than is null or r.finished_at < now() - erase_payloads.older_than);
  return runproof_private.erase_steps(v_tenant, v_steps, erase_payloads.reason,
    jsonb_strip_nulls(jsonb_build_object('run_id', erase_payloads.run_id, 'older_than', erase_payloads.older_than::text)));
end
$$;
comment on function runproof.erase_payloads(uuid, interval, text, uuid) is
  'Erases step payloads (input, output, error and their salts) of one run (run_id) or of the tenant''s runs that finished more than older_than ago, and records the erasure (who, when, why, which steps). Proofs stay VERIFIED and count the erased steps. In a GraphQL request tenant_id may be omitted: the API key decides.';

create or replace function runproof_private.set_payload_retention(p_tenant_id uuid, p_retention interval) returns runproof.tenants
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v runproof.tenants;
begin
  if p_retention is not null and p_retention <= interval '0' then
    raise exception 'payload retention must be a positive interval, got %', p_retention
      using errcode = 'RPVAL', hint = 'pass e.g. ''180 days'', or NULL to keep payloads';
  end if;
  update runproof.tenants set payload_retention = p_retention where id = p_tenant_id returning * into v;
  if not found then
    raise exception 'tenant % not found', p_tenant_id using errcode = 'RPNFD', hint = 'list tenants with npx runproof tenant list';
  end if;
  return v;
end
$$;
comment on function runproof_private.set_payload_retention(uuid, interval) is
  'Sets how long a tenant''s step payloads are kept after their run finished (NULL: kept). The erase_expired_payloads task erases what is older.';

create or replace function runproof_private.erase_expired_payloads(p_limit integer default 10000)
  returns setof runproof.payload_erasures
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_tenant record;
  v_steps jsonb;
begin
  for v_tenant in select t.id, t.payload_retention from runproof.tenants t where t.payload_retention is not null order by t.id loop
    select coalesce(jsonb_agg(x.step order by x.step ->> 'run_id', x.step ->> 'trace_id', (x.step ->> 'step_index')::integer), '[]')
      into v_steps
      from (select jsonb_build_object('run_id', p.run_id, 'trace_id', p.trace_id, 'step_index', p.step_index) as step
              from runproof.runs r
              join runproof.traces t on t.tenant_id = r.tenant_id and t.run_id = r.id
              join runproof.step_payloads p on p.tenant_id = t.tenant_id and p.trace_id = t.id
             where r.tenant_id = v_tenant.id and r.finished_at < now() - v_tenant.payload_retention
             limit p_limit) x;
    if jsonb_array_length(v_steps) > 0 then
      return next runproof_private.erase_steps(v_tenant.id, v_steps, 'retention',
        jsonb_build_object('retention', v_tenant.payload_retention::text));
    end if;
  end loop;
end
$$;
comment on function runproof_private.erase_expired_payloads(integer) is
  'Applies every tenant''s payload retention: erases (and records) the payloads of runs that finished longer ago than the retention, at most p_limit steps per tenant per call. Run by the worker''s cron task erase_expired_payloads.';
--! EndIncluded api/erasure.sql
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
    raise exception 'tenant % not found', v_tenant using errcode = 'RPNFD', hint = 'create the tenant first (npx runproof tenant create)';
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
    raise exception 'agent_id is required' using errcode = 'RPVAL', hint = 'pass one of the tenant''s agents (npx runproof agent list)';
  end if;
  -- Another tenant's agent is reported exactly like a missing one: ids do not leak across tenants.
  if not exists (select 1 from runproof.agents a where a.tenant_id = v_tenant and a.id = enqueue_run.agent_id) then
    raise exception 'agent % not found for tenant %', enqueue_run.agent_id, v_tenant
      using errcode = 'RPNFD', hint = 'pass one of the tenant''s agents (npx runproof agent list), or create one';
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
  -- The reason becomes the run's error: bounded like the other texts a tenant sends.
  if length(cancel_run.reason) > 2000 then
    raise exception 'cancel reason is % characters long; at most 2000 are allowed', length(cancel_run.reason)
      using errcode = 'RPVAL', hint = 'say briefly why the run is cancelled';
  end if;
  select r.* into v from runproof.runs r where r.tenant_id = v_tenant and r.id = cancel_run.run_id for update;
  if not found then
    raise exception 'run % not found for tenant %', cancel_run.run_id, v_tenant using errcode = 'RPNFD', hint = 'check the run id (npx runproof runs list)';
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

-- The run list (the web explorer, runs(condition: {status | agentId}, orderBy: CREATED_AT_DESC)):
-- filtered pages in keyset order straight from an index. With only (tenant_id, agent_id), the first
-- page of an agent whose 2,000 runs are the oldest of 1,000,000 scanned the created_at index for
-- 0.9 s; with these, 9 ms. They replace the two-column indexes they begin with.
create index if not exists runs_tenant_status_created_idx on runproof.runs (tenant_id, status, created_at desc, id desc);
create index if not exists runs_tenant_agent_created_idx on runproof.runs (tenant_id, agent_id, created_at desc, id desc);
comment on index runproof.runs_tenant_status_created_idx is 'Serves a tenant''s runs of one status, newest first, in keyset pages.';
comment on index runproof.runs_tenant_agent_created_idx is 'Serves a tenant''s runs of one agent, newest first, in keyset pages (and the agents foreign key).';
drop index if exists runproof.runs_tenant_status_idx;
drop index if exists runproof.runs_tenant_agent_idx;

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
alter table runproof.step_payloads enable row level security;
alter table runproof.payload_erasures enable row level security;
alter table runproof.payload_erasure_steps enable row level security;
alter table runproof.log_leaves enable row level security;
alter table runproof.log_checkpoints enable row level security;
alter table runproof.log_anchor_receipts enable row level security;
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
drop policy if exists select_own on runproof.step_payloads;
create policy select_own on runproof.step_payloads for select to runproof_tenant using (tenant_id = (select runproof_private.current_tenant_id()));
drop policy if exists select_own on runproof.payload_erasures;
create policy select_own on runproof.payload_erasures for select to runproof_tenant using (tenant_id = (select runproof_private.current_tenant_id()));
drop policy if exists select_own on runproof.payload_erasure_steps;
create policy select_own on runproof.payload_erasure_steps for select to runproof_tenant using (tenant_id = (select runproof_private.current_tenant_id()));
drop policy if exists select_own on runproof.log_leaves;
create policy select_own on runproof.log_leaves for select to runproof_tenant using (tenant_id = (select runproof_private.current_tenant_id()));
drop policy if exists select_own on runproof.log_checkpoints;
create policy select_own on runproof.log_checkpoints for select to runproof_tenant using (tenant_id = (select runproof_private.current_tenant_id()));
drop policy if exists select_own on runproof.log_anchor_receipts;
create policy select_own on runproof.log_anchor_receipts for select to runproof_tenant using (tenant_id = (select runproof_private.current_tenant_id()));

--------------------------------------------------------------------------------
-- Tenants read; every write goes through the SQL functions below
--------------------------------------------------------------------------------

grant select on runproof.tenants, runproof.agents, runproof.skills, runproof.runs, runproof.traces,
  runproof.policy_decisions, runproof.trace_steps, runproof.incidents, runproof.agent_memory,
  runproof.step_payloads, runproof.payload_erasures, runproof.payload_erasure_steps,
  runproof.log_leaves, runproof.log_checkpoints, runproof.log_anchor_receipts to runproof_tenant;

-- The API: what a GraphQL request may call.
grant execute on function
  runproof.current_tenant(),
  runproof.create_agent(text, text, text[], uuid),
  runproof.enqueue_run(uuid, uuid, text, text, jsonb, text, integer),
  runproof.cancel_run(uuid, text, uuid),
  runproof.archive_trace(uuid, uuid),
  runproof.erase_payloads(uuid, interval, text, uuid),
  runproof.verify_trace(uuid),
  runproof.run_proof(uuid, uuid),
  runproof.runs_proof(runproof.runs),
  runproof.traces_proof(runproof.traces),
  runproof.runs_root_hash(runproof.runs),
  runproof.traces_root_hash(runproof.traces),
  runproof.trace_steps_prev_hash(runproof.trace_steps),
  runproof.trace_steps_step_hash(runproof.trace_steps),
  runproof.trace_steps_input(runproof.trace_steps),
  runproof.trace_steps_output(runproof.trace_steps),
  runproof.trace_steps_error(runproof.trace_steps),
  runproof.trace_steps_erasure(runproof.trace_steps),
  runproof.runs_payload_erasures(runproof.runs),
  runproof.runs_plan_step_count(runproof.runs),
  runproof.runs_is_finished(runproof.runs),
  runproof.log_inclusion_proof(uuid, bigint, bigint),
  runproof.log_consistency_proof(uuid, bigint, bigint),
  runproof.log_status(uuid),
  runproof.tenants_log_status(runproof.tenants)
  to runproof_tenant;

-- What those call without SECURITY DEFINER: the request's tenant, hashing and verification.
grant execute on function
  runproof_private.current_tenant_id(),
  runproof_private.hex(bytea),
  runproof_private.is_terminal_status(text),
  runproof_private.genesis_hash(uuid, uuid, uuid),
  runproof_private.step_canonical(runproof.trace_steps),
  runproof_private.step_hash(bytea, bytea),
  runproof_private.decision_canonical(runproof.policy_decisions),
  runproof_private.payload_commitment(text, bytea, text),
  runproof_private.trace_canonical(runproof.traces),
  runproof_private.incident_canonical(runproof.incidents),
  runproof_private.run_canonical(runproof.runs),
  runproof_private.run_seal_canonical(runproof.runs),
  runproof_private.run_root_hash(runproof.runs),
  runproof_private.step_fault_order(),
  runproof_private.step_faults(uuid, uuid, bytea, integer, integer),
  runproof_private.step_faults_parallel(uuid, uuid, bytea, integer),
  runproof_private.seal_difference(bytea, bytea, text[]),
  runproof_private.trace_check(runproof.traces, integer),
  runproof_private.verify_trace_row(runproof.traces),
  runproof_private.run_proof_chain(uuid, uuid),
  runproof_private.guard_status(timestamptz, timestamptz),
  runproof_private.run_log_proof(uuid, uuid)
  to runproof_tenant;

-- PostGraphile's login maps an API key to its tenant, and nothing else.
grant execute on function runproof_private.authenticate(text) to runproof_authenticator;
--! EndIncluded api/access.sql
