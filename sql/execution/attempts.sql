-- Execution attempts: each opens a trace and every attempt ends with its trace sealed (completed,
-- failed or aborted) and the run moved on in the same transaction, with its incident.

create or replace function runproof_private.start_attempt(p_tenant_id uuid, p_run_id uuid, p_metadata jsonb default '{}')
  returns runproof.traces
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_run runproof.runs;
  v_trace runproof.traces;
begin
  update runproof.runs set status = 'running', attempts = attempts + 1
   where tenant_id = p_tenant_id and id = p_run_id and status in ('planned', 'retrying')
  returning * into v_run;
  if not found then
    if not exists (select 1 from runproof.runs where tenant_id = p_tenant_id and id = p_run_id) then
      raise exception 'run % of tenant % not found', p_run_id, p_tenant_id using errcode = 'RPNFD', hint = 'check the run and tenant ids';
    end if;
    raise exception 'run % cannot start an attempt (status %)', p_run_id,
      (select status from runproof.runs where tenant_id = p_tenant_id and id = p_run_id)
      using errcode = 'RPSTS', hint = 'only planned or retrying runs start attempts';
  end if;
  insert into runproof.traces (tenant_id, run_id, attempt, metadata)
  values (p_tenant_id, p_run_id, v_run.attempts, coalesce(p_metadata, '{}'))
  returning * into v_trace;
  return v_trace;
end
$$;
comment on function runproof_private.start_attempt(uuid, uuid, jsonb) is
  'Moves a planned or retrying run to running and opens the trace of its next attempt, in one transaction.';

create or replace function runproof_private.seal_trace(p_tenant_id uuid, p_trace_id uuid, p_status text, p_metadata jsonb default null)
  returns runproof.traces
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_trace runproof.traces;
  v_last_index integer;
  v_last_hash bytea;
begin
  if p_status is null or p_status not in ('completed', 'failed', 'aborted') then
    raise exception 'a trace is sealed as completed, failed or aborted, not %', coalesce(p_status, 'NULL')
      using errcode = 'RPVAL', hint = 'pass completed, failed or aborted';
  end if;
  select * into v_trace from runproof.traces where tenant_id = p_tenant_id and id = p_trace_id for update;
  if not found then
    raise exception 'trace % of tenant % not found', p_trace_id, p_tenant_id using errcode = 'RPNFD', hint = 'check the trace id';
  end if;
  select s.step_index, s.step_hash into v_last_index, v_last_hash
    from runproof.trace_steps s where s.tenant_id = p_tenant_id and s.trace_id = p_trace_id
   order by s.step_index desc limit 1;
  update runproof.traces
     set status = p_status,
         completed_at = clock_timestamp(),
         step_count = coalesce(v_last_index + 1, 0),
         root_hash = coalesce(v_last_hash, runproof_private.genesis_hash(tenant_id, run_id, id)),
         metadata = coalesce(p_metadata, metadata)
   where tenant_id = p_tenant_id and id = p_trace_id
  returning * into v_trace;
  return v_trace;
end
$$;
comment on function runproof_private.seal_trace(uuid, uuid, text, jsonb) is
  'Seals a running trace as completed, failed or aborted, reading step_count and root_hash off its chain.';

create or replace function runproof_private.end_attempt(
  p_tenant_id uuid, p_run_id uuid, p_trace_id uuid, p_trace_status text, p_run_status text,
  p_error text default null, p_incident_kind text default null, p_incident_details jsonb default '{}',
  p_retry_base_ms integer default 1000, p_trace_metadata jsonb default null)
  returns runproof.runs
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v runproof.runs;
  v_failed integer;
begin
  perform runproof_private.seal_trace(p_tenant_id, p_trace_id, p_trace_status, p_trace_metadata);
  if p_run_status = 'retrying' then
    -- Failed attempts count against max_attempts; crashed (aborted) ones do not.
    select count(*) into v_failed from runproof.traces t
     where t.tenant_id = p_tenant_id and t.run_id = p_run_id and t.status = 'failed';
    if v_failed >= (select r.max_attempts from runproof.runs r where r.tenant_id = p_tenant_id and r.id = p_run_id) then
      p_run_status := 'failed';
      p_error := coalesce(p_error, 'step failed') || format(' (no attempts left: %s failed)', v_failed);
      p_incident_kind := 'run_failed';
    end if;
  end if;
  -- The incident first: a final status seals the run, and its seal lists its incidents.
  if p_incident_kind is not null then
    insert into runproof.incidents (tenant_id, run_id, trace_id, kind, severity, message, details)
    values (p_tenant_id, p_run_id, p_trace_id, p_incident_kind,
            case when p_incident_kind in ('run_halted', 'budget_exceeded', 'skill_denied') then 'warning' else 'error' end,
            coalesce(p_error, p_incident_kind), coalesce(p_incident_details, '{}'));
  end if;
  update runproof.runs set status = p_run_status,
         error = case when p_run_status = 'succeeded' then null else coalesce(p_error, error) end
   where tenant_id = p_tenant_id and id = p_run_id
  returning * into v;
  if v.status = 'retrying' then
    -- Exponential backoff over the failed attempts (base, 2 x base, 4 x base ...), at most 10 minutes.
    perform runproof_private.add_run_job('execute_run', p_tenant_id, p_run_id,
      now() + make_interval(secs => least(p_retry_base_ms * 2 ^ greatest(coalesce(v_failed, 0) - 1, 0), 600000) / 1000.0));
  end if;
  delete from runproof_private.cancel_requests c where c.tenant_id = p_tenant_id and c.run_id = p_run_id and runproof_private.is_terminal_status(v.status);
  return v;
end
$$;
comment on function runproof_private.end_attempt(uuid, uuid, uuid, text, text, text, text, jsonb, integer, jsonb) is
  'Ends an attempt in one transaction: seals its trace, moves the run on (a retry is scheduled as a new job after an exponential backoff from p_retry_base_ms over the failed attempts, at most 10 minutes; no attempts left fails the run), and records the incident.';
