-- Incidents are append-only, belong to an existing run of their tenant, and are written in the
-- same transaction as what caused them (the execution functions).

create or replace function runproof_private.tg_incidents__check() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_status text;
begin
  -- Foreign keys do not fire in replica mode; this trigger always does.
  select r.status into v_status from runproof.runs r where r.tenant_id = new.tenant_id and r.id = new.run_id;
  if not found then
    raise exception 'run % of tenant % not found', new.run_id, new.tenant_id
      using errcode = 'RPNFD', hint = 'incidents are recorded by the worker for its own runs';
  end if;
  -- A finished run is sealed, its incidents included.
  if runproof_private.is_terminal_status(v_status) then
    raise exception 'run % is % and sealed: no incident can be added to it', new.run_id, v_status
      using errcode = 'RPSTS', hint = 'record an incident before the status change it explains';
  end if;
  return new;
end
$$;
comment on function runproof_private.tg_incidents__check() is 'Trigger: an incident belongs to an existing, unfinished run of its tenant (checked even in replica mode): a finished run is sealed with its incidents.';

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
  ('incidents', 'tg_incidents__check', 'INSERT for a run that does not exist (RPNFD), even in replica mode, or for a finished run (RPSTS)', 'INSERT for an existing, unfinished run'),
  ('incidents', 'tg_incidents__append_only', 'UPDATE, DELETE (RPIMM)', 'nothing'),
  ('incidents', 'tg_incidents__no_truncate', 'TRUNCATE (RPIMM)', 'nothing')
on conflict (table_name, trigger_name) do update set blocks = excluded.blocks, allows = excluded.allows;
