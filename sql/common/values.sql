-- Value helpers shared by the tables' checks and the functions: what counts as blank, how a value
-- is shown in an error, which origin ids are placeholders, which run statuses are final.
-- Applied before the tables, whose CHECK constraints call some of them.

create or replace function runproof_private.hex(b bytea) returns text
  language sql immutable strict parallel safe
  as $$ select encode(b, 'hex') $$;
comment on function runproof_private.hex(bytea) is 'Lower-case hex of a hash, the form hashes take in proofs and bundles.';

create or replace function runproof_private.is_blank(p text) returns boolean
  language sql immutable parallel safe
  as $$ select p is null or p ~ '^[\s\u00a0\u1680\u2000-\u200b\u2028\u2029\u202f\u205f\u3000\ufeff]*$' $$;
comment on function runproof_private.is_blank(text) is
  'Whether a text has no visible character: NULL, empty, or only white space (ASCII or Unicode spaces, zero-width space, BOM).';

create or replace function runproof_private.visible(p text) returns text
  language plpgsql immutable parallel safe
  set search_path = pg_catalog
  as $$
declare
  v text := '';
  c text;
begin
  -- JSON-quote the value, and spell out the invisible characters JSON leaves as they are.
  foreach c in array regexp_split_to_array(coalesce(p, ''), '') loop
    if c ~ '[\u00a0\u1680\u2000-\u200f\u2028-\u202f\u205f-\u2064\u3000\ufeff]' then
      v := v || '\u' || lpad(to_hex(ascii(c)), 4, '0');
    else
      v := v || c;
    end if;
  end loop;
  return to_json(v)::text;
end
$$;
comment on function runproof_private.visible(text) is 'A value as error messages show it: JSON-quoted, with control and invisible characters spelled out (\u00a0, \u200b, ...).';

create or replace function runproof_private.reserved_origin_system_ids() returns text[]
  language sql immutable parallel safe
  as $$ select array['legacy-migration', 'legacy', 'default', 'unknown', 'none', 'null', 'undefined', 'n/a', 'na', 'tbd', 'todo', 'changeme', 'system', 'migration'] $$;
comment on function runproof_private.reserved_origin_system_ids() is
  'origin_system_id values that are rejected (compared case-insensitively): placeholders that say nothing about where a run came from. ''legacy-migration'' is the default that once rejected itself.';

create or replace function runproof_private.is_terminal_status(p_status text) returns boolean
  language sql immutable parallel safe
  as $$ select p_status in ('succeeded', 'failed', 'halted', 'cancelled') $$;
comment on function runproof_private.is_terminal_status(text) is 'Whether a run status is final (nothing about the run changes afterwards).';
