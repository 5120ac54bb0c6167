-- A run's plan is checked when it is stored, in SQL, whoever stores it: its shape and size, that
-- it names only registered, enabled skills, that each step's input fits its skill's registered
-- input schema, and that it holds only numbers a JavaScript number holds exactly (what the worker
-- runs is what was recorded). Once stored it never changes. A run cannot start without a valid
-- plan (the table's runs_plan_before_start).

create or replace function runproof_private.inexact_number(p jsonb, p_path text default '') returns text
  language plpgsql immutable parallel safe
  set search_path = pg_catalog
  -- float8 to text is then the shortest text that reads back as the same double.
  set extra_float_digits = 1
  as $$
declare
  v_n numeric;
  v_key text;
  v_value jsonb;
  v_i integer := 0;
  v_found text;
begin
  case jsonb_typeof(p)
    when 'number' then
      v_n := (p #>> '{}')::numeric;
      -- Outside the doubles' range (or below the smallest one), no double holds the value; inside
      -- it, the value must read back unchanged from the nearest double.
      if v_n <> 0 and (abs(v_n) < 4.9406564584124654e-324 or abs(v_n) > 1.7976931348623157e308
                       or v_n <> (v_n::float8)::text::numeric) then
        return coalesce(nullif(p_path, ''), '(the plan)') || ' = '
          || case when length(p #>> '{}') > 40 then left(p #>> '{}', 24) || format('... (%s characters)', length(p #>> '{}'))
                  else p #>> '{}' end;
      end if;
    when 'object' then
      for v_key, v_value in select e.key, e.value from jsonb_each(p) e loop
        v_found := runproof_private.inexact_number(v_value, p_path || '.' || v_key);
        if v_found is not null then
          return v_found;
        end if;
      end loop;
    when 'array' then
      for v_value in select e.value from jsonb_array_elements(p) e loop
        v_found := runproof_private.inexact_number(v_value, p_path || '[' || v_i || ']');
        if v_found is not null then
          return v_found;
        end if;
        v_i := v_i + 1;
      end loop;
    else
      null;
  end case;
  return null;
end
$$;
comment on function runproof_private.inexact_number(jsonb, text) is
  'The first number in a JSON value (as "path = number") that no IEEE 754 double holds exactly, or NULL. The worker and its skills run on JavaScript numbers: such a number would run as another value than the one recorded.';

create or replace function runproof_private.validate_plan(p_plan jsonb) returns void
  language plpgsql stable
  set search_path = pg_catalog
  as $$
declare
  v_step jsonb;
  v_i integer := 0;
  v_skill text;
  v_key text;
  v_schema jsonb;
  v_problem text;
begin
  if p_plan is null then
    return;
  end if;
  if jsonb_typeof(p_plan) <> 'object' then
    raise exception 'plan must be a JSON object, got %', jsonb_typeof(p_plan)
      using errcode = 'RPPLN', hint = 'pass {"version": 1, "steps": [{"skill": "...", "input": {...}}]}';
  end if;
  if octet_length(p_plan::text) > 1048576 then
    raise exception 'plan is % bytes; at most 1 MiB is allowed', octet_length(p_plan::text)
      using errcode = 'RPPLN', hint = 'keep large data out of the plan: have a step fetch it';
  end if;
  for v_key in select jsonb_object_keys(p_plan) loop
    if v_key not in ('version', 'planner', 'steps', 'notes') then
      raise exception 'plan has unknown key %', quote_literal(v_key)
        using errcode = 'RPPLN', hint = 'a plan has the keys version, planner, steps and notes';
    end if;
  end loop;
  if p_plan -> 'version' is distinct from '1'::jsonb then
    raise exception 'plan version must be 1'
      using errcode = 'RPPLN', hint = 'set "version": 1';
  end if;
  if p_plan ? 'planner' and jsonb_typeof(p_plan -> 'planner') <> 'string' then
    raise exception 'plan planner must be a string' using errcode = 'RPPLN', hint = 'name the planner, e.g. "builtin"';
  end if;
  if jsonb_typeof(p_plan -> 'steps') is distinct from 'array' or jsonb_array_length(p_plan -> 'steps') = 0 then
    raise exception 'plan must have a non-empty "steps" array'
      using errcode = 'RPPLN', hint = 'add at least one step: {"skill": "...", "input": {...}}';
  end if;
  if jsonb_array_length(p_plan -> 'steps') > 1000 then
    raise exception 'plan has % steps; at most 1000 are allowed', jsonb_array_length(p_plan -> 'steps')
      using errcode = 'RPPLN', hint = 'split the work into several runs';
  end if;
  for v_step in select value from jsonb_array_elements(p_plan -> 'steps') loop
    if jsonb_typeof(v_step) <> 'object' then
      raise exception 'plan step % must be an object', v_i
        using errcode = 'RPPLN', hint = 'each step is {"skill": "...", "input": {...}}';
    end if;
    for v_key in select jsonb_object_keys(v_step) loop
      if v_key not in ('skill', 'input', 'title', 'timeout_ms') then
        raise exception 'plan step % has unknown key %', v_i, quote_literal(v_key)
          using errcode = 'RPPLN', hint = 'a step has the keys skill, input, title and timeout_ms';
      end if;
    end loop;
    if jsonb_typeof(v_step -> 'skill') is distinct from 'string' then
      raise exception 'plan step % has no skill name', v_i
        using errcode = 'RPPLN', hint = 'set "skill" to a registered skill (select name from runproof.skills)';
    end if;
    v_skill := v_step ->> 'skill';
    if not exists (select 1 from runproof.skills s where s.name = v_skill and s.enabled) then
      raise exception 'plan step % names unknown skill %', v_i, quote_literal(v_skill)
        using errcode = 'RPSKL',
              detail = 'registered skills: ' || coalesce((select string_agg(name, ', ' order by name) from runproof.skills where enabled), '(none)'),
              hint = 'use a registered skill; a worker registers its skills in runproof.skills when it starts';
    end if;
    if v_step ? 'input' and jsonb_typeof(v_step -> 'input') <> 'object' then
      raise exception 'plan step % input must be an object', v_i
        using errcode = 'RPPLN', hint = 'pass the skill''s arguments as a JSON object';
    end if;
    -- Deeper input passes the jsonb parser but not the worker, which must serialise it again to
    -- record the step (found by the bad-input catalogue: the attempt failed and was retried forever).
    if v_step ? 'input' and jsonb_path_exists(v_step -> 'input', 'strict $.**{65}') then
      raise exception 'plan step % input is nested more than 64 levels deep', v_i
        using errcode = 'RPPLN', hint = 'flatten the input: at most 64 levels of objects and arrays';
    end if;
    if v_step ? 'timeout_ms' and (jsonb_typeof(v_step -> 'timeout_ms') <> 'number'
        or (v_step ->> 'timeout_ms')::numeric not between 1 and 3600000) then
      raise exception 'plan step % timeout_ms must be a number of milliseconds from 1 to 3600000', v_i
        using errcode = 'RPPLN', hint = 'omit timeout_ms to use the skill''s default';
    end if;
    -- The input the worker would pass the skill ({} when the step has none), against the schema
    -- the worker registered for it: a wait of "abc" ms is refused now, not when the run reaches it.
    select s.input_schema into v_schema from runproof.skills s where s.name = v_skill;
    v_problem := runproof_private.json_schema_problem(v_schema, coalesce(v_step -> 'input', '{}'::jsonb), 'input');
    if v_problem is not null then
      raise exception 'plan step % (%) %', v_i, v_skill, v_problem
        using errcode = 'RPPLN',
              hint = 'give the step the input its skill expects (select input_schema from runproof.skills where name = ' || quote_literal(v_skill) || ')';
    end if;
    v_i := v_i + 1;
  end loop;
  v_key := runproof_private.inexact_number(p_plan, 'plan');
  if v_key is not null then
    raise exception 'plan number % cannot be held exactly by a 64-bit float, so the skill would receive another number than the one recorded', v_key
      using errcode = 'RPPLN', hint = 'pass such numbers as strings, or round them to a value a double holds';
  end if;
end
$$;
comment on function runproof_private.validate_plan(jsonb) is
  'Raises RPPLN (malformed plan, including step input nested more than 64 levels deep or not fitting its skill''s input_schema, or a number no 64-bit float holds exactly) or RPSKL (unknown skill) unless the plan is valid and names only registered, enabled skills.';

create or replace function runproof_private.tg_runs__plan_check() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_key text;
begin
  if tg_op = 'UPDATE' then
    v_key := format('tenant_id=%s, id=%s', old.tenant_id, old.id);
    if old.plan is not null then
      if new.plan is distinct from old.plan then
        perform runproof_private.raise_immutable('UPDATE', 'runs', v_key, 'changes the stored plan',
          'a stored plan never changes; enqueue a new run with the new plan');
      end if;
      return new;
    end if;
    if new.plan is not null and old.status <> 'pending' then
      perform runproof_private.raise_immutable('UPDATE', 'runs', v_key, 'stores a plan after planning',
        'a plan can only be stored while the run is pending');
    end if;
  end if;
  if new.plan is not null then
    perform runproof_private.validate_plan(new.plan);
    new.planned_at := coalesce(new.planned_at, now());
  end if;
  return new;
end
$$;
comment on function runproof_private.tg_runs__plan_check() is
  'Trigger: validates a plan when it is stored (shape, size, registered skills) and stamps planned_at; a stored plan never changes, and none is stored after planning. Fires for INSERT and for every UPDATE that sets the plan.';

create or replace trigger tg_runs__plan_check before insert or update of plan on runproof.runs
  for each row execute function runproof_private.tg_runs__plan_check();
alter table runproof.runs enable always trigger tg_runs__plan_check;
insert into runproof_private.guard_descriptions (table_name, trigger_name, blocks, allows) values
  ('runs', 'tg_runs__plan_check', 'storing a malformed plan (RPPLN) or one naming an unregistered skill (RPSKL); changing a stored plan, or storing one after planning (RPIMM)', 'storing a valid plan once, while the run is pending')
on conflict (table_name, trigger_name) do update set blocks = excluded.blocks, allows = excluded.allows;
