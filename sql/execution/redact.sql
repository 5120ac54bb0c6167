-- The database's own redaction of secrets in step input and output, a second line behind the
-- worker's (src/lib/redact.ts), applied before anything is hashed.

-- Key pattern shared with src/lib/redact.ts (SECRET_KEY_PATTERN_SOURCE); test/redact.test.ts keeps them equal.
create or replace function runproof_private.redact(p jsonb) returns jsonb
  language plpgsql immutable parallel safe
  set search_path = pg_catalog
  as $$
begin
  case jsonb_typeof(p)
    when 'object' then
      return (select coalesce(jsonb_object_agg(e.k,
                case when e.k ~* '^(?:.*authorization|(?:set[-_]?)?cookie|.*api[-_]?key|.*token|.*passw(?:or)?d|.*secret|.*private[-_]?key)$'
                     then '"[REDACTED]"'::jsonb else runproof_private.redact(e.v) end), '{}'::jsonb)
                from jsonb_each(p) e(k, v));
    when 'array' then
      return (select coalesce(jsonb_agg(runproof_private.redact(a.v) order by a.o), '[]'::jsonb)
                from jsonb_array_elements(p) with ordinality a(v, o));
    when 'string' then
      if (p #>> '{}') ~* '\m(bearer|basic)\s+[^\s"'']+' then
        return to_jsonb(regexp_replace(p #>> '{}', '\m(bearer|basic)\s+[^\s"'']+', '\1 [REDACTED]', 'gi'));
      end if;
      return p;
    else
      return p;
  end case;
end
$$;
comment on function runproof_private.redact(jsonb) is
  'Replaces secrets in step input/output before they are hashed: values of keys like authorization, api_key, token, password, secret, cookie, and Bearer/Basic credentials inside strings.';
