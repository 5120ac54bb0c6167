-- The guard catalogue for DBAs: every guard on the ledger tables, what it blocks and allows (the
-- descriptions each table's file registers), and whether it is live right now.
-- select * from runproof_private.guards;

-- The guard catalogue also shows the foreign keys, whose internal triggers a superuser can disable
-- too (ALTER TABLE ... DISABLE TRIGGER ALL) and which do not fire in replica mode.
create or replace view runproof_private.guards as
  select * from (
    select coalesce(d.table_schema, n.nspname::text) as table_schema,
           coalesce(d.table_name, c.relname::text) as table_name,
           coalesce(d.trigger_name, tg.tgname::text) as trigger_name,
           case when tg.oid is null then 'MISSING'
                else case tg.tgenabled when 'A' then 'always' when 'O' then 'origin only' when 'R' then 'replica only' when 'D' then 'DISABLED' end
           end as enabled,
           d.blocks,
           d.allows,
           pg_get_triggerdef(tg.oid) as definition
      from runproof_private.guard_descriptions d
      -- Every trigger of the exposed schema, and those of the private schema's tables that carry
      -- guards (the log's nodes); a trigger nobody described shows with empty blocks and allows.
      full join (select t.oid, t.tgname, t.tgenabled, t.tgrelid, n.nspname, c2.relname from pg_trigger t
                  join pg_class c2 on c2.oid = t.tgrelid
                  join pg_namespace n on n.oid = c2.relnamespace
                 where not t.tgisinternal
                   and (n.nspname = 'runproof'
                        or (n.nspname, c2.relname) in (select g.table_schema, g.table_name from runproof_private.guard_descriptions g))) tg
        on tg.nspname = d.table_schema and tg.relname = d.table_name and tg.tgname = d.trigger_name
      left join pg_class c on c.oid = tg.tgrelid
      left join pg_namespace n on n.oid = c.relnamespace
    union all
    select n.nspname::text, (select r.relname::text from pg_class r where r.oid = c.conrelid), 'foreign key ' || c.conname,
           case when bool_or(t.tgenabled = 'D') then 'DISABLED' else 'origin only (foreign key)' end,
           'rows whose referenced row is missing (23503)',
           'rows whose referenced row exists; skipped in replica mode, where the guard triggers still check what matters',
           pg_get_constraintdef(c.oid)
      from pg_constraint c
      join pg_namespace n on n.oid = c.connamespace
      join pg_trigger t on t.tgconstraint = c.oid
     where n.nspname = 'runproof' and c.contype = 'f'
     group by c.oid, c.conrelid, c.conname, n.nspname
  ) g
  order by (g.trigger_name like 'foreign key %'), 1, 2, 3;
comment on view runproof_private.guards is
  'Every guard on the ledger and log tables (schema runproof, and runproof_private.log_nodes): the guard triggers (what each blocks and allows, and whether it is live: always, weakened to origin/replica only, DISABLED or MISSING), then the foreign keys and whether their internal triggers are enabled.';
