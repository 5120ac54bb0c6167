-- Erasing personal data without breaking a proof: step payloads (input, output, error) are
-- deleted with their salts, and the erasure is recorded (who, when, why, which steps). Every hash
-- stays as it was, so the record still verifies, with the erased steps counted. A tenant may set a
-- payload retention; the worker's cron task erase_expired_payloads applies it.

create or replace function runproof_private.erase_steps(p_tenant_id uuid, p_steps jsonb, p_reason text, p_scope jsonb)
  returns runproof.payload_erasures
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v runproof.payload_erasures;
  v_by text;
begin
  if runproof_private.is_blank(p_reason) or length(p_reason) > 2000 then
    raise exception 'an erasure needs a reason of 1 to 2000 characters'
      using errcode = 'RPVAL', hint = 'say why, e.g. ''GDPR request 2026-117'' or ''retention''';
  end if;
  -- Who: the API key's tenant in a GraphQL request, else the database roles of the session.
  v_by := case when runproof_private.current_tenant_id() is not null
               then format('tenant %s (API request)', runproof_private.current_tenant_id())
               else format('%s (session %s)', current_user, session_user) end;
  insert into runproof.payload_erasures (tenant_id, erased_by, reason, scope, step_count)
  values (p_tenant_id, v_by, p_reason, p_scope, jsonb_array_length(p_steps))
  returning * into v;
  insert into runproof.payload_erasure_steps (tenant_id, erasure_id, run_id, trace_id, step_index)
  select p_tenant_id, v.id, (e ->> 'run_id')::uuid, (e ->> 'trace_id')::uuid, (e ->> 'step_index')::integer
    from jsonb_array_elements(p_steps) e;
  delete from runproof.step_payloads p
   using runproof.payload_erasure_steps e
   where e.tenant_id = p_tenant_id and e.erasure_id = v.id
     and p.tenant_id = e.tenant_id and p.trace_id = e.trace_id and p.step_index = e.step_index;
  return v;
end
$$;
comment on function runproof_private.erase_steps(uuid, jsonb, text, jsonb) is
  'Records an erasure of the given steps ([{run_id, trace_id, step_index}, ...]) and deletes their payloads, in one transaction. Called by erase_payloads and erase_expired_payloads.';

create or replace function runproof.erase_payloads(
  run_id uuid default null, older_than interval default null, reason text default null, tenant_id uuid default null)
  returns runproof.payload_erasures
  language plpgsql volatile security definer
  set search_path = pg_catalog
  as $$
#variable_conflict use_column
declare
  v_tenant uuid := runproof_private.request_tenant(erase_payloads.tenant_id);
  v_steps jsonb;
begin
  if (erase_payloads.run_id is null) = (erase_payloads.older_than is null) then
    raise exception 'erase_payloads needs either run_id or older_than'
      using errcode = 'RPVAL', hint = 'erase one run''s payloads (run_id), or those of the tenant''s runs that finished before now() - older_than';
  end if;
  if erase_payloads.older_than is not null and erase_payloads.older_than < interval '0' then
    raise exception 'older_than must not be negative, got %', erase_payloads.older_than
      using errcode = 'RPVAL', hint = 'pass an age, e.g. ''30 days''';
  end if;
  if erase_payloads.run_id is not null
     and not exists (select 1 from runproof.runs r where r.tenant_id = v_tenant and r.id = erase_payloads.run_id) then
    raise exception 'run % not found for tenant %', erase_payloads.run_id, v_tenant
      using errcode = 'RPNFD', hint = 'check the run id (npx runproof runs list)';
  end if;
  select coalesce(jsonb_agg(jsonb_build_object('run_id', p.run_id, 'trace_id', p.trace_id, 'step_index', p.step_index)
                            order by p.run_id, p.trace_id, p.step_index), '[]')
    into v_steps
    from runproof.runs r
    join runproof.traces t on t.tenant_id = r.tenant_id and t.run_id = r.id
    join runproof.step_payloads p on p.tenant_id = t.tenant_id and p.trace_id = t.id
   where r.tenant_id = v_tenant
     and (erase_payloads.run_id is null or r.id = erase_payloads.run_id)
     and (erase_payloads.older_than is null or r.finished_at < now() - erase_payloads.older_than);
  return runproof_private.erase_steps(v_tenant, v_steps, erase_payloads.reason,
    jsonb_strip_nulls(jsonb_build_object('run_id', erase_payloads.run_id, 'older_than', erase_payloads.older_than::text)));
end
$$;
comment on function runproof.erase_payloads(uuid, interval, text, uuid) is
  'Erases step payloads (input, output, error and their salts) of one run (run_id) or of the tenant''s runs that finished more than older_than ago, and records the erasure (who, when, why, which steps). Proofs stay VERIFIED and count the erased steps. In a GraphQL request tenant_id may be omitted: the API key decides.';

create or replace function runproof_private.set_payload_retention(p_tenant_id uuid, p_retention interval) returns runproof.tenants
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v runproof.tenants;
begin
  if p_retention is not null and p_retention <= interval '0' then
    raise exception 'payload retention must be a positive interval, got %', p_retention
      using errcode = 'RPVAL', hint = 'pass e.g. ''180 days'', or NULL to keep payloads';
  end if;
  update runproof.tenants set payload_retention = p_retention where id = p_tenant_id returning * into v;
  if not found then
    raise exception 'tenant % not found', p_tenant_id using errcode = 'RPNFD', hint = 'list tenants with npx runproof tenant list';
  end if;
  return v;
end
$$;
comment on function runproof_private.set_payload_retention(uuid, interval) is
  'Sets how long a tenant''s step payloads are kept after their run finished (NULL: kept). The erase_expired_payloads task erases what is older.';

create or replace function runproof_private.erase_expired_payloads(p_limit integer default 10000)
  returns setof runproof.payload_erasures
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_tenant record;
  v_steps jsonb;
begin
  for v_tenant in select t.id, t.payload_retention from runproof.tenants t where t.payload_retention is not null order by t.id loop
    select coalesce(jsonb_agg(x.step order by x.step ->> 'run_id', x.step ->> 'trace_id', (x.step ->> 'step_index')::integer), '[]')
      into v_steps
      from (select jsonb_build_object('run_id', p.run_id, 'trace_id', p.trace_id, 'step_index', p.step_index) as step
              from runproof.runs r
              join runproof.traces t on t.tenant_id = r.tenant_id and t.run_id = r.id
              join runproof.step_payloads p on p.tenant_id = t.tenant_id and p.trace_id = t.id
             where r.tenant_id = v_tenant.id and r.finished_at < now() - v_tenant.payload_retention
             limit p_limit) x;
    if jsonb_array_length(v_steps) > 0 then
      return next runproof_private.erase_steps(v_tenant.id, v_steps, 'retention',
        jsonb_build_object('retention', v_tenant.payload_retention::text));
    end if;
  end loop;
end
$$;
comment on function runproof_private.erase_expired_payloads(integer) is
  'Applies every tenant''s payload retention: erases (and records) the payloads of runs that finished longer ago than the retention, at most p_limit steps per tenant per call. Run by the worker''s cron task erase_expired_payloads.';
