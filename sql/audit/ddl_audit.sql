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
