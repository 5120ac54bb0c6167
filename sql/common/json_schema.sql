-- The JSON Schema subset that skills register as runproof.skills.input_schema (zod's
-- toJSONSchema output for the built-in skills): type, enum, const, anyOf/oneOf, $ref to #/$defs,
-- properties, required, additionalProperties, propertyNames, items, min/maxItems, min/maxLength,
-- pattern, minimum/maximum (and their exclusive forms), format "uri" (has a scheme). Plans are
-- checked against it when stored, so a step's bad input is refused then, not at run time.

create or replace function runproof_private.json_shown(p jsonb) returns text
  language sql immutable parallel safe
  as $$ select case when length(p::text) > 60 then left(p::text, 57) || '...' else p::text end $$;
comment on function runproof_private.json_shown(jsonb) is 'A JSON value as an error message shows it: its JSON text, cut to 60 characters.';

create or replace function runproof_private.json_type_noun(p_type text) returns text
  language sql immutable parallel safe
  as $$ select case p_type when 'integer' then 'an integer' when 'object' then 'an object' when 'array' then 'an array'
                           when 'null' then 'null' else 'a ' || p_type end $$;
comment on function runproof_private.json_type_noun(text) is 'A JSON Schema type as an error message names it: "an integer", "a string", ...';

create or replace function runproof_private.json_schema_problem(
  p_schema jsonb, p_value jsonb, p_path text default 'input', p_root jsonb default null, p_depth integer default 0)
  returns text
  language plpgsql immutable
  set search_path = pg_catalog
  as $$
declare
  v_root jsonb := coalesce(p_root, p_schema);
  v_type text := jsonb_typeof(p_value);
  v_sub jsonb;
  v_ok boolean;
  v_t text;
  v_types text[];
  v_problem text;
  v_key text;
  v_text text;
  v_num numeric;
  v_i integer;
begin
  -- A $ref cycle that never descends into the value would recurse for ever: stop checking there.
  if p_depth > 64 or p_schema is null then
    return null;
  end if;
  if jsonb_typeof(p_schema) = 'boolean' then
    return case when p_schema = 'false'::jsonb then format('%s is not allowed', p_path) end;
  end if;
  if jsonb_typeof(p_schema) <> 'object' then
    return null;
  end if;

  if jsonb_typeof(p_schema -> '$ref') = 'string' and (p_schema ->> '$ref' = '#' or p_schema ->> '$ref' like '#/%') then
    v_sub := case when p_schema ->> '$ref' = '#' then v_root
                  else v_root #> string_to_array(substr(p_schema ->> '$ref', 3), '/') end;
    v_problem := runproof_private.json_schema_problem(v_sub, p_value, p_path, v_root, p_depth + 1);
    if v_problem is not null then
      return v_problem;
    end if;
  end if;

  foreach v_key in array array['anyOf', 'oneOf'] loop
    if jsonb_typeof(p_schema -> v_key) = 'array' then
      v_ok := false;
      for v_sub in select value from jsonb_array_elements(p_schema -> v_key) loop
        if runproof_private.json_schema_problem(v_sub, p_value, p_path, v_root, p_depth + 1) is null then
          v_ok := true;
          exit;
        end if;
      end loop;
      if not v_ok then
        return format('%s does not match any of its allowed forms, got %s', p_path, runproof_private.json_shown(p_value));
      end if;
    end if;
  end loop;

  if p_schema ? 'type' then
    v_types := case jsonb_typeof(p_schema -> 'type')
                 when 'array' then array(select jsonb_array_elements_text(p_schema -> 'type'))
                 else array[p_schema ->> 'type'] end;
    v_ok := v_type = any (v_types)
            or ('number' = any (v_types) and v_type = 'number')
            or ('integer' = any (v_types) and v_type = 'number' and (p_value #>> '{}')::numeric = trunc((p_value #>> '{}')::numeric));
    if not v_ok then
      return format('%s must be %s, got %s', p_path,
                    array_to_string(array(select runproof_private.json_type_noun(t) from unnest(v_types) t), ' or '),
                    runproof_private.json_shown(p_value));
    end if;
  end if;

  if jsonb_typeof(p_schema -> 'enum') = 'array'
     and not exists (select 1 from jsonb_array_elements(p_schema -> 'enum') e where e.value = p_value) then
    return format('%s must be one of %s, got %s', p_path,
                  (select string_agg(e.value::text, ', ') from jsonb_array_elements(p_schema -> 'enum') e),
                  runproof_private.json_shown(p_value));
  end if;
  if p_schema ? 'const' and p_schema -> 'const' <> p_value then
    return format('%s must be %s, got %s', p_path, (p_schema -> 'const')::text, runproof_private.json_shown(p_value));
  end if;

  if v_type = 'string' then
    v_text := p_value #>> '{}';
    if jsonb_typeof(p_schema -> 'minLength') = 'number' and length(v_text) < (p_schema ->> 'minLength')::numeric then
      return format('%s must be at least %s characters long, got %s', p_path, p_schema ->> 'minLength', length(v_text));
    end if;
    if jsonb_typeof(p_schema -> 'maxLength') = 'number' and length(v_text) > (p_schema ->> 'maxLength')::numeric then
      return format('%s must be at most %s characters long, got %s', p_path, p_schema ->> 'maxLength', length(v_text));
    end if;
    if jsonb_typeof(p_schema -> 'pattern') = 'string' then
      begin
        if v_text !~ (p_schema ->> 'pattern') then
          return format('%s must match the pattern %s, got %s', p_path, p_schema ->> 'pattern', runproof_private.json_shown(p_value));
        end if;
      exception when invalid_regular_expression then
        null; -- a pattern Postgres's regular expressions cannot read is not checked here (the worker checks it)
      end;
    end if;
    if p_schema ->> 'format' = 'uri' and v_text !~ '^[A-Za-z][A-Za-z0-9+.-]*:' then
      return format('%s must be a URI with a scheme (e.g. https://...), got %s', p_path, runproof_private.json_shown(p_value));
    end if;
  elsif v_type = 'number' then
    v_num := (p_value #>> '{}')::numeric;
    if jsonb_typeof(p_schema -> 'minimum') = 'number' and v_num < (p_schema ->> 'minimum')::numeric then
      return format('%s must be at least %s, got %s', p_path, p_schema ->> 'minimum', v_num);
    end if;
    if jsonb_typeof(p_schema -> 'maximum') = 'number' and v_num > (p_schema ->> 'maximum')::numeric then
      return format('%s must be at most %s, got %s', p_path, p_schema ->> 'maximum', v_num);
    end if;
    if jsonb_typeof(p_schema -> 'exclusiveMinimum') = 'number' and v_num <= (p_schema ->> 'exclusiveMinimum')::numeric then
      return format('%s must be more than %s, got %s', p_path, p_schema ->> 'exclusiveMinimum', v_num);
    end if;
    if jsonb_typeof(p_schema -> 'exclusiveMaximum') = 'number' and v_num >= (p_schema ->> 'exclusiveMaximum')::numeric then
      return format('%s must be less than %s, got %s', p_path, p_schema ->> 'exclusiveMaximum', v_num);
    end if;
  elsif v_type = 'array' then
    if jsonb_typeof(p_schema -> 'minItems') = 'number' and jsonb_array_length(p_value) < (p_schema ->> 'minItems')::numeric then
      return format('%s must have at least %s items, got %s', p_path, p_schema ->> 'minItems', jsonb_array_length(p_value));
    end if;
    if jsonb_typeof(p_schema -> 'maxItems') = 'number' and jsonb_array_length(p_value) > (p_schema ->> 'maxItems')::numeric then
      return format('%s must have at most %s items, got %s', p_path, p_schema ->> 'maxItems', jsonb_array_length(p_value));
    end if;
    if jsonb_typeof(p_schema -> 'items') in ('object', 'boolean') then
      for v_i in 0 .. jsonb_array_length(p_value) - 1 loop
        v_problem := runproof_private.json_schema_problem(p_schema -> 'items', p_value -> v_i, format('%s[%s]', p_path, v_i), v_root, p_depth + 1);
        if v_problem is not null then
          return v_problem;
        end if;
      end loop;
    end if;
  elsif v_type = 'object' then
    if jsonb_typeof(p_schema -> 'required') = 'array' then
      for v_key in select jsonb_array_elements_text(p_schema -> 'required') loop
        if not p_value ? v_key then
          return format('%s.%s is required', p_path, v_key);
        end if;
      end loop;
    end if;
    for v_key in select jsonb_object_keys(p_value) order by 1 loop
      if jsonb_typeof(p_schema -> 'propertyNames') = 'object' then
        v_problem := runproof_private.json_schema_problem(p_schema -> 'propertyNames', to_jsonb(v_key),
                                                          format('the key %s of %s', to_jsonb(v_key)::text, p_path), v_root, p_depth + 1);
        if v_problem is not null then
          return v_problem;
        end if;
      end if;
      if jsonb_typeof(p_schema -> 'properties') = 'object' and p_schema -> 'properties' ? v_key then
        v_sub := p_schema -> 'properties' -> v_key;
      elsif p_schema -> 'additionalProperties' = 'false'::jsonb then
        return format('%s has unknown key %s', p_path, quote_literal(v_key))
               || coalesce(format(' (known: %s)', (select string_agg(k, ', ' order by k) from jsonb_object_keys(p_schema -> 'properties') k)), '');
      else
        v_sub := p_schema -> 'additionalProperties';
      end if;
      v_problem := runproof_private.json_schema_problem(v_sub, p_value -> v_key, p_path || '.' || v_key, v_root, p_depth + 1);
      if v_problem is not null then
        return v_problem;
      end if;
    end loop;
  end if;
  return null;
end
$$;
comment on function runproof_private.json_schema_problem(jsonb, jsonb, text, jsonb, integer) is
  'The first way p_value breaks the JSON Schema p_schema (the subset skills register: type, enum, const, anyOf/oneOf, local $ref, properties, required, additionalProperties, propertyNames, items, min/maxItems, min/maxLength, pattern, minimum/maximum, format uri), as a sentence naming the path (p_path, e.g. input.ms); NULL when it conforms. Unknown keywords are not checked.';
