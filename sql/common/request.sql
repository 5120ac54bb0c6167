-- Who a request acts for: the API key's tenant inside a GraphQL request (set by the server as
-- runproof.tenant_id), else the tenant_id an owner passes. A tenant can never act for another.

create or replace function runproof_private.current_tenant_id() returns uuid
  language sql stable parallel safe
  as $$ select nullif(current_setting('runproof.tenant_id', true), '')::uuid $$;
comment on function runproof_private.current_tenant_id() is
  'The tenant of the current request (transaction-local setting runproof.tenant_id), or NULL outside a request.';

create or replace function runproof_private.request_tenant(p_tenant_id uuid) returns uuid
  language plpgsql stable
  set search_path = pg_catalog
  as $$
declare
  v uuid := runproof_private.current_tenant_id();
begin
  if v is not null then
    if p_tenant_id is not null and p_tenant_id <> v then
      raise exception 'tenant % is not the tenant of this request', p_tenant_id
        using errcode = '42501', hint = 'omit tenant_id, or use an API key of that tenant';
    end if;
    return v;
  end if;
  -- A tenant-role session with no tenant set is an unauthenticated request, not an admin.
  if current_setting('role') = 'runproof_tenant' then
    raise exception 'this request has no tenant' using errcode = '42501', hint = 'authenticate with an API key';
  end if;
  if p_tenant_id is null then
    raise exception 'tenant_id is required' using errcode = 'RPVAL', hint = 'pass the tenant''s id (npx runproof tenant list)';
  end if;
  return p_tenant_id;
end
$$;
comment on function runproof_private.request_tenant(uuid) is
  'The tenant an operation acts for: the API key''s tenant in a GraphQL request (a different tenant_id is refused with 42501), else the tenant_id given.';
