--! Previous: sha1:a9855519390e832d3da07b51f8d814d2468488a7
--! Hash: sha1:9d18e26115bce40e08e94bc0767c6a5190bf2f13
--! Message: ddl audit

-- RunProof DDL audit, guard status in proofs, and a budget fix found by the bad-input catalogue.
--
-- 1. runproof_private.ddl_audit: an append-only record of every schema change to an object in
--    runproof or runproof_private (command tag, object identity, the statement text, who, when),
--    written by an event trigger (ENABLE ALWAYS, ddl_command_end + sql_drop). Event triggers need
--    a superuser: when the migrating role is not one, the audit is not installed (NOTICE), and
--    proofs say so (guard_status UNAUDITED).
-- 2. Proofs report on it: runproof.proof gains guard_status and guard_detail. A run is UNGUARDED
--    when a schema change that can weaken the guards was made outside a RunProof migration while
--    the run was being recorded (created_at .. updated_at), or when a guard is not live right now;
--    UNAUDITED when the audit itself is missing, disabled or replaced. verify_all lists those runs,
--    and one row without a run for each ledger-wide problem.
-- 3. create_tenant refused negative budgets but accepted 'NaN', which compares greater than every
--    number, so the budget policy never denied a step: a tenant with an unlimited budget.
-- 4. validate_plan accepted step input nested thousands of levels deep, which the worker cannot
--    serialise to record the step: now at most 64 levels (RPPLN).
-- 5. A run whose job was picked and abandoned 25 times (graphile-worker's max_attempts) hung in
--    'running' for good: jobs now allow 1000 picks, and recover_orphan fails a run after 20
--    attempts in a row abandoned before recording a step.
--
-- Idempotent: graphile-migrate re-runs current.sql on every save in `watch` mode.

--------------------------------------------------------------------------------
-- 3. Budgets are finite numbers
--------------------------------------------------------------------------------

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

alter table runproof.tenants drop constraint if exists tenants_daily_budget_cents_finite;
-- NOT VALID: checks every new or changed row without failing the migration on an old 'NaN'.
alter table runproof.tenants add constraint tenants_daily_budget_cents_finite check (daily_budget_cents <> 'NaN'::numeric) not valid;

--------------------------------------------------------------------------------
-- 4. Plan step input at most 64 levels deep
--------------------------------------------------------------------------------

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

--------------------------------------------------------------------------------
-- 5. A run its workers keep abandoning ends, instead of hanging
--------------------------------------------------------------------------------

-- Found by the crash loop (test/stress/crash-loop.test.ts): every pick of a run's job counts one
-- of graphile-worker's max_attempts (25), including the picks after a crashed worker's job was
-- unlocked. A backlogged run that was picked and killed 25 times was left 'running' for good,
-- its job failed permanently and nothing left to finish it. Now crash recovery has room (1000
-- picks), and a run that makes no progress ends: recover_orphan fails it, with an incident,
-- after 20 attempts in a row were abandoned before recording a single step.

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

--------------------------------------------------------------------------------
-- 1. The DDL audit table (append-only, like the ledger)
--------------------------------------------------------------------------------

create table if not exists runproof_private.ddl_audit (
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
create index if not exists ddl_audit_weakening_idx on runproof_private.ddl_audit (occurred_at) where guard_weakening;
comment on index runproof_private.ddl_audit_weakening_idx is 'Serves the proofs'' look-up of guard-weakening changes during a run.';
create index if not exists ddl_audit_xact_idx on runproof_private.ddl_audit (xact_id);
comment on index runproof_private.ddl_audit_xact_idx is 'Serves telling migration changes apart (same transaction as a migration row) and storing a statement once per transaction.';

-- The ledger's append-only and no-truncate guards name the table's own schema from now on
-- (their messages for runproof.* tables are unchanged).
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

drop trigger if exists tg_ddl_audit__append_only on runproof_private.ddl_audit;
create trigger tg_ddl_audit__append_only before update or delete on runproof_private.ddl_audit
  for each row execute function runproof_private.tg__append_only('id');
drop trigger if exists tg_ddl_audit__no_truncate on runproof_private.ddl_audit;
create trigger tg_ddl_audit__no_truncate before truncate on runproof_private.ddl_audit
  for each statement execute function runproof_private.tg__no_truncate();
alter table runproof_private.ddl_audit enable always trigger tg_ddl_audit__append_only;
alter table runproof_private.ddl_audit enable always trigger tg_ddl_audit__no_truncate;

--------------------------------------------------------------------------------
-- The event trigger's function, and the migration marker
--------------------------------------------------------------------------------

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

-- graphile-migrate inserts a row into graphile_migrate.migrations in the same transaction as a
-- committed migration's SQL: mark that transaction, so its schema changes count as RunProof's own.
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

create or replace function runproof_private.ddl_audit_fingerprint() returns text
  language sql stable
  set search_path = pg_catalog
  as $$
    select md5(coalesce(pg_get_functiondef(to_regprocedure('runproof_private.tg__ddl_audit()')), '-') || '|' ||
               coalesce(pg_get_functiondef(to_regprocedure('runproof_private.ddl_audit_record(text, text, text, text, text)')), '-'))
  $$;
comment on function runproof_private.ddl_audit_fingerprint() is
  'md5 of the definitions of the audit''s functions (tg__ddl_audit and ddl_audit_record): recorded at installation, compared by ddl_audit_state.';

--------------------------------------------------------------------------------
-- Install the event triggers (superuser only) and record the installation
--------------------------------------------------------------------------------

do $$
declare
  v_end oid;
  v_drop oid;
begin
  if not (select r.rolsuper from pg_roles r where r.rolname = current_user) then
    raise notice 'RunProof DDL audit not installed: event triggers need a superuser, and % is not one. Proofs will report guard_status UNAUDITED; a superuser can install it by re-running migration 000006 (see docs/reliability.md).', current_user;
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

--------------------------------------------------------------------------------
-- What the proofs read: the audit's state, the guards' state now, the changes during a run
--------------------------------------------------------------------------------

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

--------------------------------------------------------------------------------
-- 2. Proofs carry the guard status
--------------------------------------------------------------------------------

do $$
begin
  if not exists (select 1 from pg_attribute where attrelid = 'runproof.proof'::regclass and attname = 'guard_status' and not attisdropped) then
    alter type runproof.proof add attribute guard_status text;
  end if;
  if not exists (select 1 from pg_attribute where attrelid = 'runproof.proof'::regclass and attname = 'guard_detail' and not attisdropped) then
    alter type runproof.proof add attribute guard_detail text;
  end if;
end
$$;
comment on column runproof.proof.guard_status is
  'Whether the guards held while this was recorded (from the DDL audit, not from the hash chain): GUARDED; UNGUARDED (a schema change that can weaken the guards was made outside a RunProof migration while it was recorded, or a guard is not live now); UNAUDITED (the DDL audit is not installed or not live). NULL when there is nothing to assess (NOT_FOUND).';
comment on column runproof.proof.guard_detail is 'When not GUARDED: why, in words (the first such change, with its runproof_private.ddl_audit id).';

-- The chain check alone (the former run_proof), for run_proof and verify_all.
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

drop function if exists runproof.verify_all();
create function runproof.verify_all() returns table (
  tenant_id uuid, run_id uuid, trace_id uuid, verification_status text,
  first_bad_attempt integer, first_bad_step_index integer, reason text, guard_status text
)
  language plpgsql stable
  set search_path = pg_catalog
  as $$
declare
  v_run record;
  v_p runproof.proof;
  v_state record;
  v_problem text;
  v_changes record;
begin
  -- The ledger as a whole, now: an audit that was installed but is not live, a guard that is not live.
  select * into v_state from runproof_private.ddl_audit_state();
  if v_state.state = 'BROKEN' then
    tenant_id := null; run_id := null; trace_id := null; verification_status := null;
    first_bad_attempt := null; first_bad_step_index := null; reason := v_state.detail; guard_status := 'UNAUDITED';
    return next;
  end if;
  for v_problem in select p from runproof_private.guard_problems() p union all select d from runproof_private.schema_drift() d loop
    tenant_id := null; run_id := null; trace_id := null; verification_status := null;
    first_bad_attempt := null; first_bad_step_index := null; reason := 'now: ' || v_problem; guard_status := 'UNGUARDED';
    return next;
  end loop;
  -- Each run: its chain, and the guard-weakening changes made while it was recorded.
  for v_run in select r.tenant_id, r.id, r.created_at, r.updated_at from runproof.runs r order by r.created_at, r.id loop
    v_p := runproof_private.run_proof_chain(v_run.tenant_id, v_run.id);
    select * into v_changes from runproof_private.guard_changes(v_run.created_at, v_run.updated_at);
    if v_p.verification_status not in ('VERIFIED', 'IN_PROGRESS') or v_changes.changes > 0 then
      tenant_id := v_run.tenant_id; run_id := v_run.id; trace_id := v_p.first_bad_trace_id;
      verification_status := v_p.verification_status; first_bad_attempt := v_p.first_bad_attempt;
      first_bad_step_index := v_p.first_bad_step_index;
      reason := coalesce(v_p.reason, v_changes.detail);
      guard_status := case when v_changes.changes > 0 then 'UNGUARDED' when v_state.state = 'LIVE' then 'GUARDED' else 'UNAUDITED' end;
      return next;
    end if;
  end loop;
  -- Rows no run leads to: traces without their run, steps without their trace.
  return query
    select t.tenant_id, t.run_id, t.id, 'BROKEN'::text, t.attempt, null::integer, 'trace has no run row'::text, null::text
      from runproof.traces t
     where not exists (select 1 from runproof.runs r where r.tenant_id = t.tenant_id and r.id = t.run_id);
  return query
    select s.tenant_id, s.run_id, s.trace_id, 'BROKEN'::text, null::integer, min(s.step_index), 'steps have no trace row'::text, null::text
      from runproof.trace_steps s
     where not exists (select 1 from runproof.traces t where t.tenant_id = s.tenant_id and t.id = s.trace_id)
     group by s.tenant_id, s.run_id, s.trace_id;
end
$$;
comment on function runproof.verify_all() is
  'Verifies every run the caller can see. Lists each run whose chain is not VERIFIED or IN_PROGRESS, or during whose recorded lifetime a guard-weakening schema change was made outside a RunProof migration (guard_status UNGUARDED); traces and steps that no run leads to; and, first, one row without a run for each ledger-wide problem now: a guard that is not live or a schema object changed since the last migration (UNGUARDED), or a DDL audit that was installed but is not live (UNAUDITED). An empty result means the ledger is intact.';

--------------------------------------------------------------------------------
-- Grants: the tenant role reads proofs through run_proof and verify_trace
--------------------------------------------------------------------------------

revoke execute on function runproof_private.tg__ddl_audit(), runproof_private.tg_migrations__mark(),
  runproof_private.ddl_audit_record(text, text, text, text, text), runproof_private.ddl_audit_fingerprint(),
  runproof_private.schema_fingerprint(), runproof_private.schema_drift(),
  runproof_private.ddl_audit_state(), runproof_private.guard_problems(),
  runproof_private.guard_changes(timestamptz, timestamptz), runproof_private.guard_status(timestamptz, timestamptz),
  runproof_private.run_proof_chain(uuid, uuid), runproof.verify_all() from public;
grant execute on function runproof_private.guard_status(timestamptz, timestamptz),
  runproof_private.run_proof_chain(uuid, uuid) to runproof_tenant;
