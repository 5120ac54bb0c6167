-- Live updates: a run's status changes are announced with NOTIFY on runproof:run:<run id> and
-- runproof:tenant:<tenant id> by the transaction that makes them. A step transaction never
-- NOTIFYs (PostgreSQL serialises NOTIFYing commits cluster-wide, across the WAL flush): the
-- worker announces recorded steps after their commit, batched (src/lib/announcer.ts), with the
-- payloads runproof_private.step_announcements builds. A lost announcement costs latency only.

create or replace function runproof_private.run_announcement(p_run runproof.runs) returns text
  language sql stable
  set search_path = pg_catalog
  as $$
  select json_build_object('event', 'run', 'tenant_id', p_run.tenant_id, 'run_id', p_run.id, 'status', p_run.status,
    'attempts', p_run.attempts, 'next_plan_step', p_run.next_plan_step, 'error', p_run.error,
    'finished', runproof_private.is_terminal_status(p_run.status))::text
$$;
comment on function runproof_private.run_announcement(runproof.runs) is 'The JSON payload announcing a run''s status and progress (event run).';

create or replace function runproof_private.step_announcement(p_step runproof.trace_steps) returns text
  language sql stable
  set search_path = pg_catalog
  as $$
  select json_build_object('event', 'step', 'tenant_id', p_step.tenant_id,
    'run_id', p_step.run_id, 'trace_id', p_step.trace_id, 'step_index', p_step.step_index, 'plan_step', p_step.plan_step,
    'skill', p_step.skill, 'status', p_step.status, 'duration_ms', p_step.duration_ms, 'cost_cents', p_step.cost_cents,
    'step_hash', encode(p_step.step_hash, 'hex'))::text
$$;
comment on function runproof_private.step_announcement(runproof.trace_steps) is 'The JSON payload announcing a recorded step (event step).';

create or replace function runproof_private.step_announcements(p_step runproof.trace_steps, p_run runproof.runs,
  out channels text[], out payloads text[])
  language sql stable
  set search_path = pg_catalog
  as $$
  select array['runproof:run:' || p_step.run_id, 'runproof:run:' || p_run.id, 'runproof:tenant:' || p_run.tenant_id],
         array[runproof_private.step_announcement(p_step), runproof_private.run_announcement(p_run), runproof_private.run_announcement(p_run)]
$$;
comment on function runproof_private.step_announcements(runproof.trace_steps, runproof.runs) is
  'The announcements of a recorded step, in order: the step (runproof:run:<id>), then the run''s progress (runproof:run:<id> and runproof:tenant:<id>). The worker sends them after the step''s commit.';

create or replace function runproof_private.announce(p_channels text[], p_payloads text[]) returns void
  language sql volatile
  set search_path = pg_catalog
  as $$ select pg_notify(c, p) from unnest(p_channels, p_payloads) with ordinality as a(c, p, n) order by n $$;
comment on function runproof_private.announce(text[], text[]) is
  'Sends announcements (channel i, payload i) in order, in one transaction: the worker''s batched step announcements.';

create or replace function runproof_private.tg_runs__notify() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
declare
  v_payload text;
begin
  -- Progress alone (next_plan_step, cost) is a step transaction's: the worker announces it.
  if tg_op = 'UPDATE' and (new.status, new.attempts) is not distinct from (old.status, old.attempts) then
    return null;
  end if;
  v_payload := runproof_private.run_announcement(new);
  perform pg_notify('runproof:run:' || new.id, v_payload);
  perform pg_notify('runproof:tenant:' || new.tenant_id, v_payload);
  return null;
end
$$;
comment on function runproof_private.tg_runs__notify() is 'Trigger: announces a run''s creation and status changes on channels runproof:run:<id> and runproof:tenant:<id> (not its progress alone: step transactions never NOTIFY).';

create or replace trigger tg_runs__notify after insert or update on runproof.runs
  for each row execute function runproof_private.tg_runs__notify();
alter table runproof.runs enable always trigger tg_runs__notify;
insert into runproof_private.guard_descriptions (table_name, trigger_name, blocks, allows) values
  ('runs', 'tg_runs__notify', 'nothing (announces status changes)', 'everything')
on conflict (table_name, trigger_name) do update set blocks = excluded.blocks, allows = excluded.allows;
