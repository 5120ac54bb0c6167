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
