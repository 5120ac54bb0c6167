-- The generic guards of the ledger's append-only tables: no UPDATE, DELETE or TRUNCATE, for
-- every role, owner included. Each table's own file attaches them with ENABLE ALWAYS, so
-- session_replication_role = replica does not switch them off either.

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
