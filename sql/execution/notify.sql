-- Live updates: run status changes and recorded steps are announced with NOTIFY on
-- runproof:run:<run id> and runproof:tenant:<tenant id>. A lost announcement costs latency only.

create or replace function runproof_private.tg_runs__notify() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_payload text;
begin
  if tg_op = 'UPDATE' and (new.status, new.next_plan_step, new.attempts) is not distinct from (old.status, old.next_plan_step, old.attempts) then
    return null;
  end if;
  v_payload := json_build_object('event', 'run', 'tenant_id', new.tenant_id, 'run_id', new.id, 'status', new.status,
    'attempts', new.attempts, 'next_plan_step', new.next_plan_step, 'error', new.error,
    'finished', runproof_private.is_terminal_status(new.status))::text;
  perform pg_notify('runproof:run:' || new.id, v_payload);
  perform pg_notify('runproof:tenant:' || new.tenant_id, v_payload);
  return null;
end
$$;
comment on function runproof_private.tg_runs__notify() is 'Trigger: announces a run''s status and progress on channels runproof:run:<id> and runproof:tenant:<id>.';

create or replace function runproof_private.tg_trace_steps__notify() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
begin
  perform pg_notify('runproof:run:' || new.run_id, json_build_object('event', 'step', 'tenant_id', new.tenant_id,
    'run_id', new.run_id, 'trace_id', new.trace_id, 'step_index', new.step_index, 'plan_step', new.plan_step,
    'skill', new.skill, 'status', new.status, 'duration_ms', new.duration_ms, 'cost_cents', new.cost_cents,
    'step_hash', encode(new.step_hash, 'hex'))::text);
  return null;
end
$$;
comment on function runproof_private.tg_trace_steps__notify() is 'Trigger: announces each recorded step on channel runproof:run:<run id>.';

create or replace trigger tg_runs__notify after insert or update on runproof.runs
  for each row execute function runproof_private.tg_runs__notify();
create or replace trigger tg_trace_steps__notify after insert on runproof.trace_steps
  for each row execute function runproof_private.tg_trace_steps__notify();
alter table runproof.runs enable always trigger tg_runs__notify;
alter table runproof.trace_steps enable always trigger tg_trace_steps__notify;
insert into runproof_private.guard_descriptions (table_name, trigger_name, blocks, allows) values
  ('runs', 'tg_runs__notify', 'nothing (announces status changes)', 'everything'),
  ('trace_steps', 'tg_trace_steps__notify', 'nothing (announces recorded steps)', 'everything')
on conflict (table_name, trigger_name) do update set blocks = excluded.blocks, allows = excluded.allows;
