-- Cancellation: a run that is not executing is cancelled at once; an executing one is asked to
-- stop, and its worker stops it between steps.

create or replace function runproof.cancel_run(run_id uuid, reason text default 'cancelled by request', tenant_id uuid default null)
  returns runproof.runs
  language plpgsql volatile security definer
  set search_path = pg_catalog
  as $$
#variable_conflict use_column
declare
  v_tenant uuid := runproof_private.request_tenant(cancel_run.tenant_id);
  v runproof.runs;
begin
  -- The reason becomes the run's error: bounded like the other texts a tenant sends.
  if length(cancel_run.reason) > 2000 then
    raise exception 'cancel reason is % characters long; at most 2000 are allowed', length(cancel_run.reason)
      using errcode = 'RPVAL', hint = 'say briefly why the run is cancelled';
  end if;
  select r.* into v from runproof.runs r where r.tenant_id = v_tenant and r.id = cancel_run.run_id for update;
  if not found then
    raise exception 'run % not found for tenant %', cancel_run.run_id, v_tenant using errcode = 'RPNFD', hint = 'check the run id (npx runproof runs list)';
  end if;
  if runproof_private.is_terminal_status(v.status) then
    raise exception 'run % is already %', v.id, v.status using errcode = 'RPSTS', hint = 'only a run that has not finished can be cancelled';
  end if;
  if v.status = 'running' then
    insert into runproof_private.cancel_requests (tenant_id, run_id, reason)
    values (v_tenant, v.id, coalesce(cancel_run.reason, 'cancelled by request'))
    on conflict do nothing;
    perform pg_notify('runproof:run:' || v.id, json_build_object('event', 'cancel_requested', 'run_id', v.id)::text);
    return v;
  end if;
  update runproof.runs r set status = 'cancelled', error = coalesce(cancel_run.reason, 'cancelled by request')
   where r.tenant_id = v_tenant and r.id = v.id returning * into v;
  delete from runproof_private.cancel_requests c where c.tenant_id = v_tenant and c.run_id = v.id;
  perform graphile_worker.remove_job('plan:' || v.id);
  perform graphile_worker.remove_job('exec:' || v.id);
  return v;
end
$$;
comment on function runproof.cancel_run(uuid, text, uuid) is
  'Cancels a run: at once if it is not executing, else the worker stops it between steps (its trace sealed as aborted).';

create or replace function runproof_private.cancel_requested(p_tenant_id uuid, p_run_id uuid) returns text
  language sql stable
  set search_path = pg_catalog
  as $$ select c.reason from runproof_private.cancel_requests c where c.tenant_id = p_tenant_id and c.run_id = p_run_id $$;
comment on function runproof_private.cancel_requested(uuid, uuid) is 'The reason a running run was asked to stop, or NULL.';
