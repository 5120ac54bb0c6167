-- API keys: only the SHA-256 of a key is stored, the key is shown once; runproof_authenticator
-- may only map a key to its tenant (authenticate), never read the table.

create or replace function runproof_private.create_api_key(p_tenant_id uuid, p_label text default '')
  returns table (key_id uuid, api_key text, key_prefix text)
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_prefix text := 'rp_' || substr(replace(gen_random_uuid()::text, '-', ''), 1, 8);
  -- Two v4 UUIDs: 244 random bits from the server's strong random source.
  v_key text := v_prefix || '_' || replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');
  v_id uuid;
begin
  if not exists (select 1 from runproof.tenants where id = p_tenant_id) then
    raise exception 'tenant % not found', p_tenant_id using errcode = 'RPNFD', hint = 'create the tenant first (runproof tenant create)';
  end if;
  insert into runproof_private.api_keys (tenant_id, key_hash, key_prefix, label)
  values (p_tenant_id, sha256(convert_to(v_key, 'UTF8')), v_prefix, coalesce(p_label, ''))
  returning id into v_id;
  key_id := v_id; api_key := v_key; key_prefix := v_prefix;
  return next;
end
$$;
comment on function runproof_private.create_api_key(uuid, text) is 'Creates an API key for a tenant and returns it once; only its SHA-256 is stored.';

create or replace function runproof_private.revoke_api_key(p_tenant_id uuid, p_key_id uuid) returns void
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
begin
  update runproof_private.api_keys set revoked_at = coalesce(revoked_at, now())
   where tenant_id = p_tenant_id and id = p_key_id;
  if not found then
    raise exception 'API key % of tenant % not found', p_key_id, p_tenant_id using errcode = 'RPNFD', hint = 'list keys with runproof api-key list';
  end if;
end
$$;
comment on function runproof_private.revoke_api_key(uuid, uuid) is 'Revokes an API key; it authenticates nothing from then on.';

create or replace function runproof_private.authenticate(p_api_key text) returns uuid
  language plpgsql stable security definer
  set search_path = pg_catalog
  as $$
declare
  v record;
begin
  select k.tenant_id, k.revoked_at into v from runproof_private.api_keys k
   where k.key_hash = sha256(convert_to(coalesce(p_api_key, ''), 'UTF8'));
  if not found then
    raise exception 'invalid API key' using errcode = '28000', hint = 'send Authorization: Bearer <api key>; create a key with runproof api-key create';
  end if;
  if v.revoked_at is not null then
    raise exception 'API key is revoked' using errcode = '28000', hint = 'create a new key with runproof api-key create';
  end if;
  return v.tenant_id;
end
$$;
comment on function runproof_private.authenticate(text) is 'Maps an API key to its tenant by the key''s hash; raises 28000 for an unknown or revoked key.';
