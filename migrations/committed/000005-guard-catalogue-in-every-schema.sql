--! Previous: sha1:3f587c8fe8dce3df29d1f8cee5ca4a6370db7281
--! Hash: sha1:d82f9bae316ebd51a05f53981e23539527f5a7cb
--! Message: guard catalogue in every schema with guards (runproof_private.log_nodes), guard_problems in a fixed order

-- The change being developed: edit sql/, include each changed file here (--!include <path under sql/>),
-- add table changes as plain SQL, and commit it with `npm run gm -- commit -m "..."` (docs/CONVENTIONS.md).

-- The guard catalogue covers every schema with guarded tables: runproof_private.log_nodes (the
-- log's stored subtrees) has append-only guards that guard_problems and the guards view did not see.
alter table runproof_private.guard_descriptions add column table_schema text not null default 'runproof';
comment on column runproof_private.guard_descriptions.table_schema is 'The guarded table''s schema (runproof unless said).';
comment on column runproof_private.guard_descriptions.table_name is 'The guarded table (in table_schema).';
-- The view gains a leading column, which CREATE OR REPLACE VIEW cannot add: dropped and re-made
-- (it is the owner's: nothing is granted on it).
drop view runproof_private.guards;
--! Included ledger/guards.sql
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
--! EndIncluded ledger/guards.sql
--! Included audit/guard_status.sql
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
--! EndIncluded audit/guard_status.sql
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
-- The tree's stored nodes are in the private schema (no tenant reads them directly: inclusion
-- proofs are computed from them), guarded the same way.
insert into runproof_private.guard_descriptions (table_schema, table_name, trigger_name, blocks, allows) values
  ('runproof_private', 'log_nodes', 'tg_log_nodes__append_only', 'UPDATE, DELETE (RPIMM)', 'INSERT of the subtrees a leaf completes (log_append)'),
  ('runproof_private', 'log_nodes', 'tg_log_nodes__no_truncate', 'TRUNCATE (RPIMM)', 'nothing')
on conflict (table_name, trigger_name) do update
  set table_schema = excluded.table_schema, blocks = excluded.blocks, allows = excluded.allows;

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
