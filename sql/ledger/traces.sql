-- The guards of runproof.traces: a trace opens only as its run's current attempt; afterwards its
-- only changes are the seal (running -> completed | failed | aborted, checked against its chain
-- and its steps, with the seal text and hash computed here) and archival (archived_at set once).

create or replace function runproof_private.tg_traces__open() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_run record;
begin
  -- Lock the run so two attempts cannot open at once.
  select r.status, r.attempts into v_run from runproof.runs r
   where r.tenant_id = new.tenant_id and r.id = new.run_id for no key update;
  if not found then
    raise exception 'run % of tenant % not found', new.run_id, new.tenant_id
      using errcode = 'RPNFD', hint = 'open traces with runproof_private.start_attempt';
  end if;
  if v_run.status <> 'running' or new.attempt <> v_run.attempts then
    raise exception 'trace attempt % does not match run % (status %, attempts %)', new.attempt, new.run_id, v_run.status, v_run.attempts
      using errcode = 'RPSTS', hint = 'open traces with runproof_private.start_attempt';
  end if;
  if new.status <> 'running' or new.completed_at is not null or new.step_count is not null
     or new.root_hash is not null or new.archived_at is not null then
    raise exception 'a new trace starts running and unsealed'
      using errcode = 'RPSTS', hint = 'open traces with runproof_private.start_attempt';
  end if;
  if exists (select 1 from runproof.traces t where t.tenant_id = new.tenant_id and t.run_id = new.run_id and t.status = 'running') then
    raise exception 'run % already has a running trace', new.run_id
      using errcode = 'RPSTS', hint = 'seal the running trace before starting another attempt';
  end if;
  return new;
end
$$;
comment on function runproof_private.tg_traces__open() is
  'Trigger: a trace opens only as the run''s current attempt, running and unsealed, and only when no other trace of the run is running.';

create or replace function runproof_private.tg_traces__guard() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_key text;
  v_changed text[];
  v_last_index integer;
  v_last_hash bytea;
  v_last_status text;
begin
  v_key := format('tenant_id=%s, id=%s', old.tenant_id, old.id);
  if tg_op = 'DELETE' then
    perform runproof_private.raise_immutable('DELETE', 'traces', v_key, 'traces are never deleted',
      'archive the trace instead (runproof.archive_trace)');
  end if;
  v_changed := runproof_private.changed_columns(to_jsonb(old), to_jsonb(new));

  -- Archival: archived_at from NULL to a timestamp, nothing else.
  if v_changed = array['archived_at'] and old.archived_at is null and new.archived_at is not null and old.status <> 'running' then
    return new;
  end if;

  -- Completion and seal: running -> completed | failed | aborted, with the seal set once.
  if old.status = 'running' and new.status in ('completed', 'failed', 'aborted')
     and v_changed <@ array['status', 'completed_at', 'step_count', 'root_hash', 'metadata']
     and new.completed_at is not null and new.step_count is not null and new.root_hash is not null then
    select s.step_index, s.step_hash, s.status into v_last_index, v_last_hash, v_last_status
      from runproof.trace_steps s
     where s.tenant_id = old.tenant_id and s.trace_id = old.id
     order by s.step_index desc limit 1;
    if new.step_count <> coalesce(v_last_index + 1, 0)
       or new.root_hash <> coalesce(v_last_hash, runproof_private.genesis_hash(old.tenant_id, old.run_id, old.id)) then
      raise exception 'seal of trace % does not match its chain: step_count % (chain has %), root_hash % (chain root %)',
        old.id, new.step_count, coalesce(v_last_index + 1, 0), runproof_private.hex(new.root_hash),
        runproof_private.hex(coalesce(v_last_hash, runproof_private.genesis_hash(old.tenant_id, old.run_id, old.id)))
        using errcode = 'RPSEL', hint = 'seal traces with runproof_private.seal_trace, which reads the seal off the chain';
    end if;
    -- The status must be what the steps say happened (docs/proof-format.md section 9.2, check 7).
    if new.status = 'completed' and v_last_status is distinct from 'succeeded' and v_last_status is not null
       or new.status = 'failed' and v_last_status is distinct from 'failed' and v_last_status is distinct from 'denied'
       or new.status = 'aborted' and v_last_status = 'denied' then
      raise exception 'trace % cannot be sealed %: its last step %', old.id, new.status,
        coalesce(v_last_status, 'does not exist')
        using errcode = 'RPSEL', hint = 'a completed trace ends with a succeeded step, a failed one with a failed or denied step, an aborted one not with a denied step';
    end if;
    -- The seal text and its hash are the database's (docs/proof-format.md section 6).
    new.seal := runproof_private.trace_canonical(new);
    new.seal_hash := sha256(new.seal);
    return new;
  end if;

  perform runproof_private.raise_immutable('UPDATE', 'traces', v_key,
    format('status %s -> %s, changes %s', old.status, new.status, array_to_string(v_changed, ', ')),
    'a trace only changes at its seal (running -> completed|failed|aborted, setting completed_at, step_count, root_hash and optionally metadata) and at archival (archived_at NULL -> timestamp)');
  return null;
end
$$;
comment on function runproof_private.tg_traces__guard() is
  'Trigger: traces are never deleted; the only changes are the seal (running -> completed|failed|aborted with completed_at, step_count and root_hash checked against the chain, metadata optional) and archival (archived_at set once).';

create or replace trigger tg_traces__open before insert on runproof.traces
  for each row execute function runproof_private.tg_traces__open();
create or replace trigger tg_traces__guard before update or delete on runproof.traces
  for each row execute function runproof_private.tg_traces__guard();
create or replace trigger tg_traces__no_truncate before truncate on runproof.traces
  for each statement execute function runproof_private.tg__no_truncate();
alter table runproof.traces enable always trigger tg_traces__open;
alter table runproof.traces enable always trigger tg_traces__guard;
alter table runproof.traces enable always trigger tg_traces__no_truncate;
insert into runproof_private.guard_descriptions (table_name, trigger_name, blocks, allows) values
  ('traces', 'tg_traces__open', 'INSERT of a trace that is not the run''s current attempt, not running, pre-sealed, or beside another running trace (RPSTS)', 'INSERT by runproof_private.start_attempt'),
  ('traces', 'tg_traces__guard', 'DELETE; any UPDATE other than the seal or archival, a client-supplied seal text or hash (RPIMM); a seal that disagrees with the chain or whose status disagrees with the last step (RPSEL)', 'seal: running -> completed|failed|aborted with completed_at, step_count, root_hash (and metadata); archival: archived_at NULL -> timestamp on a sealed trace'),
  ('traces', 'tg_traces__no_truncate', 'TRUNCATE (RPIMM)', 'nothing')
on conflict (table_name, trigger_name) do update set blocks = excluded.blocks, allows = excluded.allows;
