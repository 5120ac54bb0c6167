-- API keys: only the SHA-256 of a key is stored, the key is shown once; a key may carry an
-- expiry; runproof_authenticator may only map a key to its tenant (authenticate), never read the
-- table. Revoking or deleting a key (or its tenant) is announced on channel runproof:api_keys,
-- so a GraphQL server ends the key's open subscriptions at once.

create or replace function runproof_private.create_api_key(p_tenant_id uuid, p_label text default '', p_expires_at timestamptz default null)
  returns table (key_id uuid, api_key text, key_prefix text, expires_at timestamptz)
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
    raise exception 'tenant % not found', p_tenant_id using errcode = 'RPNFD', hint = 'create the tenant first (npx runproof tenant create)';
  end if;
  if length(coalesce(p_label, '')) > 200 then
    raise exception 'API key label is % characters long; at most 200 are allowed', length(p_label)
      using errcode = 'RPVAL', hint = 'use a shorter label';
  end if;
  if p_expires_at is not null and p_expires_at <= now() then
    raise exception 'API key expiry % is not in the future', p_expires_at
      using errcode = 'RPVAL', hint = 'pass a time after now, e.g. now() + interval ''30 days'' (npx runproof api-key create --expires-in 30d)';
  end if;
  insert into runproof_private.api_keys (tenant_id, key_hash, key_prefix, label, expires_at)
  values (p_tenant_id, sha256(convert_to(v_key, 'UTF8')), v_prefix, coalesce(p_label, ''), p_expires_at)
  returning id into v_id;
  key_id := v_id; api_key := v_key; key_prefix := v_prefix; expires_at := p_expires_at;
  return next;
end
$$;
comment on function runproof_private.create_api_key(uuid, text, timestamptz) is
  'Creates an API key for a tenant and returns it once; only its SHA-256 is stored. With p_expires_at, the key authenticates nothing from then on (RPKEX).';

create or replace function runproof_private.revoke_api_key(p_tenant_id uuid, p_key_id uuid) returns void
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
begin
  update runproof_private.api_keys set revoked_at = coalesce(revoked_at, now())
   where tenant_id = p_tenant_id and id = p_key_id;
  if not found then
    raise exception 'API key % of tenant % not found', p_key_id, p_tenant_id using errcode = 'RPNFD', hint = 'list keys with npx runproof api-key list';
  end if;
end
$$;
comment on function runproof_private.revoke_api_key(uuid, uuid) is 'Revokes an API key; it authenticates nothing from then on, and servers end its open subscriptions (NOTIFY runproof:api_keys).';

create or replace function runproof_private.authenticate(p_api_key text) returns uuid
  language plpgsql stable security definer
  set search_path = pg_catalog
  as $$
declare
  v record;
begin
  select k.tenant_id, k.revoked_at, k.expires_at into v from runproof_private.api_keys k
   where k.key_hash = sha256(convert_to(coalesce(p_api_key, ''), 'UTF8'));
  if not found then
    raise exception 'invalid API key' using errcode = '28000', hint = 'send Authorization: Bearer <api key>; create a key with npx runproof api-key create';
  end if;
  if v.revoked_at is not null then
    raise exception 'API key is revoked' using errcode = '28000', hint = 'create a new key with npx runproof api-key create';
  end if;
  if v.expires_at is not null and v.expires_at <= now() then
    raise exception 'API key expired at %', to_char(v.expires_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
      using errcode = 'RPKEX', hint = 'create a new key with npx runproof api-key create (--expires-in for another key that expires)';
  end if;
  return v.tenant_id;
end
$$;
comment on function runproof_private.authenticate(text) is
  'Maps an API key to its tenant by the key''s hash; raises 28000 for an unknown or revoked key, RPKEX for an expired one.';

create or replace function runproof_private.tg_api_keys__notify() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
begin
  -- Ids only: a key's hash is never sent anywhere.
  if tg_op = 'DELETE' then
    perform pg_notify('runproof:api_keys', json_build_object('event', 'deleted', 'tenant_id', old.tenant_id, 'key_id', old.id)::text);
  elsif new.revoked_at is not null and old.revoked_at is null then
    perform pg_notify('runproof:api_keys', json_build_object('event', 'revoked', 'tenant_id', new.tenant_id, 'key_id', new.id)::text);
  end if;
  return null;
end
$$;
comment on function runproof_private.tg_api_keys__notify() is
  'Trigger: announces a revoked or deleted API key (also when its tenant is deleted) on channel runproof:api_keys, with the tenant and key ids, for servers to end its subscriptions.';

create or replace trigger tg_api_keys__notify after update of revoked_at or delete on runproof_private.api_keys
  for each row execute function runproof_private.tg_api_keys__notify();
