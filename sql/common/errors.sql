-- The one immutability error (SQLSTATE RPIMM, message S6_IMMUTABILITY_VIOLATION) and the helpers
-- its callers use to name the row and the columns a refused change touched.

create or replace function runproof_private.raise_immutable(p_op text, p_table text, p_key text, p_detail text, p_hint text)
  returns void language plpgsql volatile
  as $$
begin
  raise exception 'S6_IMMUTABILITY_VIOLATION: % on runproof.% (%) is not allowed', p_op, p_table, p_key
    using errcode = 'RPIMM', detail = coalesce(p_detail, ''), hint = p_hint,
          schema = 'runproof', table = p_table;
end
$$;
comment on function runproof_private.raise_immutable(text, text, text, text, text) is
  'Raises the one immutability error (SQLSTATE RPIMM, message starting S6_IMMUTABILITY_VIOLATION) naming the table and key.';

create or replace function runproof_private.row_key(p_row jsonb, p_columns text[]) returns text
  language sql immutable parallel safe
  as $$
    select string_agg(c || '=' || coalesce(p_row ->> c, 'NULL'), ', ' order by o)
    from unnest(p_columns) with ordinality as u(c, o)
  $$;
comment on function runproof_private.row_key(jsonb, text[]) is 'Formats a row''s key columns as "col=value, ..." for error messages.';

create or replace function runproof_private.changed_columns(p_old jsonb, p_new jsonb) returns text[]
  language sql immutable parallel safe
  as $$
    select coalesce(array_agg(n.key order by n.key), '{}')
    from jsonb_each(p_new) n join jsonb_each(p_old) o using (key)
    where n.value is distinct from o.value
  $$;
comment on function runproof_private.changed_columns(jsonb, jsonb) is 'The columns an UPDATE changes, for guards and their messages.';
