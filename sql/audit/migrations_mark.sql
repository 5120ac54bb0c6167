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
