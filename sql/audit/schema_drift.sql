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
