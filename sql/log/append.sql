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
