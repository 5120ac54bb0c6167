-- Crash recovery: workers send heartbeats; the jobs of a worker that went silent are unlocked
-- (graphile-worker would wait 4 hours), and its run's open trace is sealed aborted, to be resumed.

create or replace function runproof_private.recover_orphan(p_tenant_id uuid, p_run_id uuid, p_worker text default null)
  returns runproof.runs
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v runproof.runs;
  v_trace uuid;
  v_stalled integer;
  c_stalled_limit constant integer := 20;
begin
  select r.* into v from runproof.runs r where r.tenant_id = p_tenant_id and r.id = p_run_id for update;
  if v.status <> 'running' then
    return v;
  end if;
  select t.id into v_trace from runproof.traces t
   where t.tenant_id = p_tenant_id and t.run_id = p_run_id and t.status = 'running';
  if v_trace is not null then
    perform runproof_private.seal_trace(p_tenant_id, v_trace, 'aborted',
      jsonb_build_object('aborted_because', 'the worker running this attempt stopped (crash or lost connection)', 'recovered_by', p_worker));
  end if;
  -- Attempts abandoned in a row without recording a single step: a run that kills its workers, or
  -- a fleet that cannot keep a worker up, would otherwise be picked up and abandoned forever.
  select count(*) into v_stalled from runproof.traces t
   where t.tenant_id = p_tenant_id and t.run_id = p_run_id and t.status = 'aborted' and t.step_count = 0
     and t.attempt > coalesce((select max(t2.attempt) from runproof.traces t2
                                where t2.tenant_id = p_tenant_id and t2.run_id = p_run_id
                                  and (t2.status <> 'aborted' or t2.step_count > 0)), 0);
  -- Each incident is written before the status change that it explains: a final status seals the
  -- run, incidents included, and nothing is added to a sealed run.
  if v_stalled >= c_stalled_limit then
    insert into runproof.incidents (tenant_id, run_id, trace_id, kind, severity, message, details)
    values (p_tenant_id, p_run_id, v_trace, 'run_failed', 'error',
            format('abandoned by its worker %s times in a row before it recorded a step; giving up', v_stalled),
            jsonb_build_object('stalled_attempts', v_stalled, 'resume_at_plan_step', v.next_plan_step, 'recovered_by', p_worker));
    update runproof.runs set status = 'failed',
           error = format('abandoned by its worker %s times in a row before it recorded a step; giving up', v_stalled)
     where tenant_id = p_tenant_id and id = p_run_id returning * into v;
    return v;
  end if;
  insert into runproof.incidents (tenant_id, run_id, trace_id, kind, severity, message, details)
  values (p_tenant_id, p_run_id, v_trace, 'worker_crashed', 'warning',
          'the attempt was abandoned by its worker; a new attempt resumes after the last succeeded step',
          jsonb_build_object('resume_at_plan_step', v.next_plan_step, 'recovered_by', p_worker));
  update runproof.runs set status = 'retrying' where tenant_id = p_tenant_id and id = p_run_id returning * into v;
  return v;
end
$$;
comment on function runproof_private.recover_orphan(uuid, uuid, text) is
  'For a run left running by a dead worker: seals its trace as aborted, moves the run to retrying and records a worker_crashed incident, in one transaction; after 20 attempts in a row abandoned before recording a step, fails the run instead (run_failed incident).';

create or replace function runproof_private.worker_heartbeat(p_process_id text, p_worker_ids text[] default '{}', p_hostname text default '', p_pid integer default null)
  returns void
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
begin
  insert into runproof_private.worker_heartbeats (worker_id, process_id, hostname, pid)
  select w, p_process_id, coalesce(p_hostname, ''), p_pid from unnest(p_worker_ids) w
  on conflict (worker_id) do update set process_id = excluded.process_id, last_seen_at = now();
  update runproof_private.worker_heartbeats set last_seen_at = now() where process_id = p_process_id;
end
$$;
comment on function runproof_private.worker_heartbeat(text, text[], text, integer) is 'Marks a worker process and its workers alive.';

create or replace function runproof_private.recover_stale_workers(p_stale_after interval default interval '10 seconds')
  returns text[]
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_ids text[];
begin
  -- A job locked longer than p_stale_after by a worker with no fresh heartbeat belongs to a dead worker.
  select array_agg(distinct j.locked_by) into v_ids
    from graphile_worker.jobs j
   where j.locked_by is not null and j.locked_at < now() - p_stale_after
     and not exists (select 1 from runproof_private.worker_heartbeats h
                      where h.worker_id = j.locked_by and h.last_seen_at >= now() - p_stale_after);
  if v_ids is not null then
    perform graphile_worker.force_unlock_workers(v_ids);
    delete from runproof_private.worker_heartbeats where worker_id = any (v_ids);
  end if;
  delete from runproof_private.worker_heartbeats where last_seen_at < now() - interval '1 hour';
  return coalesce(v_ids, '{}');
end
$$;
comment on function runproof_private.recover_stale_workers(interval) is
  'Unlocks the jobs of workers whose heartbeat is older than p_stale_after (graphile-worker would otherwise keep them locked for 4 hours) and returns their ids.';
