-- Planning ends in one transaction either way: the plan stored (validated by tg_runs__plan_check)
-- with the run's execution job, or the run failed with its incident.

create or replace function runproof_private.store_plan(p_tenant_id uuid, p_run_id uuid, p_plan jsonb) returns runproof.runs
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v runproof.runs;
begin
  if p_plan is null then
    raise exception 'plan must not be null' using errcode = 'RPPLN', hint = 'pass {"version": 1, "steps": [...]}';
  end if;
  update runproof.runs set plan = p_plan, status = 'planned'
   where tenant_id = p_tenant_id and id = p_run_id and status = 'pending'
  returning * into v;
  if not found then
    if not exists (select 1 from runproof.runs where tenant_id = p_tenant_id and id = p_run_id) then
      raise exception 'run % of tenant % not found', p_run_id, p_tenant_id using errcode = 'RPNFD', hint = 'check the run and tenant ids';
    end if;
    raise exception 'run % is not pending', p_run_id using errcode = 'RPSTS', hint = 'a plan is stored once, while the run is pending';
  end if;
  perform runproof_private.add_run_job('execute_run', p_tenant_id, p_run_id);
  return v;
end
$$;
comment on function runproof_private.store_plan(uuid, uuid, jsonb) is 'Stores a pending run''s plan (validated by the table''s trigger) and adds its execution job, in one transaction.';

create or replace function runproof_private.fail_planning(p_tenant_id uuid, p_run_id uuid, p_error text) returns runproof.runs
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v runproof.runs;
begin
  select r.* into v from runproof.runs r where r.tenant_id = p_tenant_id and r.id = p_run_id for update;
  if not found then
    raise exception 'run % of tenant % not found', p_run_id, p_tenant_id using errcode = 'RPNFD', hint = 'check the run and tenant ids';
  end if;
  if v.status <> 'pending' then
    raise exception 'run % is not pending', p_run_id using errcode = 'RPSTS', hint = 'only a pending run can fail planning';
  end if;
  -- The incident first: failing seals the run, and its seal lists its incidents.
  insert into runproof.incidents (tenant_id, run_id, kind, severity, message, details)
  values (p_tenant_id, p_run_id, 'planning_failed', 'error', p_error, '{}');
  update runproof.runs set status = 'failed', error = p_error
   where tenant_id = p_tenant_id and id = p_run_id
  returning * into v;
  return v;
end
$$;
comment on function runproof_private.fail_planning(uuid, uuid, text) is 'Fails a run whose planning failed, with its incident, in one transaction.';
