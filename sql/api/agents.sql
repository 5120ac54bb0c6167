-- Agents: created for the request's tenant, with an optional skill allow-list of registered skills.
-- Each limit of the table is checked here first, so every caller gets the limit in words (RPVAL
-- with a HINT), not the name of the constraint that would have caught it.

create or replace function runproof.create_agent(name text, description text default '', allowed_skills text[] default null, tenant_id uuid default null)
  returns runproof.agents
  language plpgsql volatile security definer
  set search_path = pg_catalog
  as $$
#variable_conflict use_column
declare
  v_tenant uuid := runproof_private.request_tenant(create_agent.tenant_id);
  v runproof.agents;
  v_unknown text;
begin
  if runproof_private.is_blank(create_agent.name) then
    raise exception 'agent name must not be blank' using errcode = 'RPVAL', hint = 'pass a name, e.g. ''researcher''';
  end if;
  if length(create_agent.name) > 200 then
    raise exception 'agent name is % characters long; at most 200 are allowed', length(create_agent.name) using errcode = 'RPVAL', hint = 'use a shorter name';
  end if;
  if runproof_private.has_invisible_chars(create_agent.name) then
    raise exception 'agent name % contains control, invisible or bidirectional formatting characters', runproof_private.visible(create_agent.name)
      using errcode = 'RPVAL', hint = 'use a name of visible characters only (no control characters, zero-width characters or bidi overrides)';
  end if;
  if length(coalesce(create_agent.description, '')) > 2000 then
    raise exception 'agent description is % characters long; at most 2000 are allowed', length(create_agent.description)
      using errcode = 'RPVAL', hint = 'shorten the description to 2000 characters';
  end if;
  if create_agent.allowed_skills is not null then
    if array_position(create_agent.allowed_skills, null) is not null then
      raise exception 'allowed_skills must not contain null (element % is null)', array_position(create_agent.allowed_skills, null)
        using errcode = 'RPVAL', hint = 'list skill names only, e.g. {noop,http_call}; pass null (not [null]) to allow every skill';
    end if;
    if cardinality(create_agent.allowed_skills) > 100 then
      raise exception 'allowed_skills lists % skills; at most 100 are allowed', cardinality(create_agent.allowed_skills)
        using errcode = 'RPVAL', hint = 'list at most 100 skills, or pass null to allow every registered skill';
    end if;
  end if;
  if not exists (select 1 from runproof.tenants t where t.id = v_tenant) then
    raise exception 'tenant % not found', v_tenant using errcode = 'RPNFD', hint = 'create the tenant first (npx runproof tenant create)';
  end if;
  select string_agg(s, ', ') into v_unknown from unnest(create_agent.allowed_skills) s
   where not exists (select 1 from runproof.skills k where k.name = s);
  if v_unknown is not null then
    raise exception 'allowed_skills names unknown skills: %', v_unknown using errcode = 'RPSKL', hint = 'list skills with npx runproof skills list';
  end if;
  insert into runproof.agents (tenant_id, name, description, allowed_skills)
  values (v_tenant, btrim(create_agent.name), coalesce(create_agent.description, ''), create_agent.allowed_skills)
  returning * into v;
  return v;
exception when unique_violation then
  raise exception 'an agent named % already exists for this tenant', quote_literal(btrim(create_agent.name)) using errcode = 'RPVAL', hint = 'pick another name';
end
$$;
comment on function runproof.create_agent(text, text, text[], uuid) is
  'Creates an agent for the request''s tenant (or tenant_id from SQL). allowed_skills, if given, limits the skills its runs may call.';
