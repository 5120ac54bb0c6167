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
  -- JSON-quote the value (which spells out C0 controls), then spell out the invisible characters
  -- JSON leaves as they are. (Spelling them out first had to_json escape the backslash: "\\u200b".)
  foreach c in array regexp_split_to_array(to_json(coalesce(p, ''))::text, '') loop
    if c ~ '[\u007f-\u00a0\u00ad\u061c\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u2064\u2066-\u2069\u3000\ufeff]' then
      v := v || '\u' || lpad(to_hex(ascii(c)), 4, '0');
    else
      v := v || c;
    end if;
  end loop;
  return v;
end
$$;
comment on function runproof_private.visible(text) is 'A value as error messages show it: JSON-quoted, with control, invisible and bidirectional formatting characters spelled out (\u00a0, \u200b, \u202e, ...).';

create or replace function runproof_private.reserved_origin_system_ids() returns text[]
  language sql immutable parallel safe
  as $$ select array['legacy-migration', 'legacy', 'default', 'unknown', 'none', 'null', 'undefined', 'n/a', 'na', 'tbd', 'todo', 'changeme', 'system', 'migration'] $$;
comment on function runproof_private.reserved_origin_system_ids() is
  'origin_system_id values that are rejected (compared case-insensitively): placeholders that say nothing about where a run came from. ''legacy-migration'' is the default that once rejected itself.';

create or replace function runproof_private.is_terminal_status(p_status text) returns boolean
  language sql immutable parallel safe
  as $$ select p_status in ('succeeded', 'failed', 'halted', 'cancelled') $$;
comment on function runproof_private.is_terminal_status(text) is 'Whether a run status is final (nothing about the run changes afterwards).';

create or replace function runproof_private.has_invisible_chars(p text) returns boolean
  language sql immutable parallel safe
  as $$ select p ~ '[[:cntrl:]\u0080-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff]' $$;
comment on function runproof_private.has_invisible_chars(text) is
  'Whether a text holds a control character (C0, DEL, C1), a soft hyphen, a zero-width character, a line or paragraph separator, or a bidirectional formatting character (embeddings, overrides, isolates, marks): characters that make a name look like another.';
