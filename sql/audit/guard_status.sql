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
    -- In a fixed order (by the text), so that verify_all and proofs list them the same way every time.
    select p from (
    select format('guard %s on %s.%s is %s', d.trigger_name, d.table_schema, d.table_name,
             case t.tgenabled when 'D' then 'DISABLED' when 'O' then 'enabled in origin mode only' when 'R' then 'enabled in replica mode only' else 'MISSING' end)
      from runproof_private.guard_descriptions d
      left join pg_trigger t on t.tgrelid = to_regclass(format('%I.%I', d.table_schema, d.table_name)) and t.tgname = d.trigger_name
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
    ) problems(p)
    order by p
  $$;
comment on function runproof_private.guard_problems() is
  'What is wrong with the guards right now, one line each, in text order: a guard trigger (of any schema in runproof_private.guard_descriptions) missing or not ENABLE ALWAYS, a foreign key disabled, row level security off, a write privilege granted to runproof_tenant, runproof_authenticator or PUBLIC. Empty when every guard is live.';

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
