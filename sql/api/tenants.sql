-- Tenants: created by the owner (CLI) with a finite daily budget; a request sees only its own.

create or replace function runproof_private.create_tenant(p_name text, p_daily_budget_cents numeric default 10000)
  returns runproof.tenants
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v runproof.tenants;
begin
  if runproof_private.is_blank(p_name) then
    raise exception 'tenant name must not be blank' using errcode = 'RPVAL', hint = 'pass a name, e.g. ''acme''';
  end if;
  if length(p_name) > 200 then
    raise exception 'tenant name is % characters long; at most 200 are allowed', length(p_name) using errcode = 'RPVAL', hint = 'use a shorter name';
  end if;
  if runproof_private.has_invisible_chars(p_name) then
    raise exception 'tenant name % contains control, invisible or bidirectional formatting characters', runproof_private.visible(p_name)
      using errcode = 'RPVAL', hint = 'use a name of visible characters only (no control characters, zero-width characters or bidi overrides)';
  end if;
  -- 'NaN' sorts above every number, so "< 0" alone let it through (and the policy never denied).
  if p_daily_budget_cents is null or p_daily_budget_cents = 'NaN'::numeric or p_daily_budget_cents < 0
     or p_daily_budget_cents >= 10000000000 then
    raise exception 'daily budget must be a number of cents from 0 to 9999999999.9999, got %', coalesce(p_daily_budget_cents::text, 'NULL')
      using errcode = 'RPVAL', hint = 'pass a budget in cents, e.g. 10000 for $100 a day';
  end if;
  insert into runproof.tenants (name, daily_budget_cents) values (btrim(p_name), p_daily_budget_cents) returning * into v;
  return v;
exception when unique_violation then
  raise exception 'a tenant named % already exists', quote_literal(btrim(p_name)) using errcode = 'RPVAL', hint = 'pick another name, or use the existing tenant (npx runproof tenant list)';
end
$$;
comment on function runproof_private.create_tenant(text, numeric) is 'Creates a tenant with a daily budget in cents (a finite number from 0 to 9999999999.9999).';

create or replace function runproof.current_tenant() returns runproof.tenants
  language sql stable
  set search_path = pg_catalog
  as $$ select t from runproof.tenants t where t.id = runproof_private.current_tenant_id() $$;
comment on function runproof.current_tenant() is 'The tenant of the API key making the request.';
