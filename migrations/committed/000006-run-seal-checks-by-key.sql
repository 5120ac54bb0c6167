--! Previous: sha1:d82f9bae316ebd51a05f53981e23539527f5a7cb
--! Hash: sha1:3ea7df8dda797cd34cf87a0408d546dd289a6d94
--! Message: run seal and progress checks by key: no sequential scan of the steps with skewed statistics

-- The change being developed: edit sql/, include each changed file here (--!include <path under sql/>),
-- add table changes as plain SQL, and commit it with `npm run gm -- commit -m "..."` (docs/CONVENTIONS.md).

-- A run's seal counts its steps trace by trace through the primary key (a hash join over every
-- step of the table was chosen with a large trace in it).
--! Included ledger/runs.sql
-- The run state machine and the guards of runproof.runs: a run is never deleted, what it is
-- (tenant, agent, goal, origin, plan) never changes, its status moves only along
-- run_status_transitions, its progress only with its recorded steps, and entering a final status
-- seals it (its seal text and run root, docs/proof-format.md section 8) and freezes it.

-- The state machine: the only status changes a run may make.
delete from runproof_private.run_status_transitions;
insert into runproof_private.run_status_transitions (from_status, to_status, description) values
  ('pending', 'planned', 'the planner stored a valid plan'),
  ('pending', 'failed', 'planning failed'),
  ('pending', 'cancelled', 'cancelled before planning'),
  ('planned', 'running', 'an execution attempt started'),
  ('planned', 'cancelled', 'cancelled before execution'),
  ('running', 'succeeded', 'every plan step succeeded'),
  ('running', 'failed', 'a step failed permanently or attempts ran out'),
  ('running', 'halted', 'the policy denied a step'),
  ('running', 'cancelled', 'cancel_run stopped the run between steps'),
  ('running', 'retrying', 'a transient failure or a crashed worker; a new attempt will resume'),
  ('retrying', 'running', 'the next attempt started'),
  ('retrying', 'failed', 'no attempts left'),
  ('retrying', 'cancelled', 'cancelled between attempts');

create or replace function runproof_private.tg_runs__start_state() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  as $$
begin
  if new.status not in ('pending', 'planned') or new.attempts <> 0 or new.next_plan_step <> 0 or new.cost_cents <> 0
     or new.trace_count is not null or new.root_hash is not null or new.seal is not null or new.started_at is not null or new.finished_at is not null then
    raise exception 'a new run starts pending (or planned, with a plan), with no attempts, progress or seal'
      using errcode = 'RPSTS', hint = 'create runs with runproof.enqueue_run';
  end if;
  if (new.plan is null) <> (new.status = 'pending') then
    raise exception 'a new run is pending without a plan, or planned with one'
      using errcode = 'RPSTS', hint = 'create runs with runproof.enqueue_run';
  end if;
  -- Foreign keys do not fire in replica mode; this trigger always does.
  if not exists (select 1 from runproof.agents a where a.tenant_id = new.tenant_id and a.id = new.agent_id) then
    raise exception 'agent % not found for tenant %', new.agent_id, new.tenant_id
      using errcode = 'RPNFD', hint = 'create runs with runproof.enqueue_run, for one of the tenant''s agents';
  end if;
  return new;
end
$$;
comment on function runproof_private.tg_runs__start_state() is
  'Trigger: a new run starts pending (or planned with its plan), with no attempts, progress or seal, for an agent of its tenant (checked even in replica mode). Named to fire after the origin and plan checks.';

-- enable_seqscan = off, as in the per-row triggers of an append (sql/ledger/policy_decisions.sql):
-- every look-up here is by a key prefix of one run or trace, and with skewed statistics (one large
-- trace among few) the planner chose to scan all of trace_steps, on every seal and progress move.
create or replace function runproof_private.tg_runs__guard() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  set enable_seqscan = off
  as $$
declare
  v_changed text[];
  v_key text;
  v_traces integer;
  v_open integer;
  v_last record;
  v_steps record;
begin
  v_key := format('tenant_id=%s, id=%s', old.tenant_id, old.id);
  if tg_op = 'DELETE' then
    perform runproof_private.raise_immutable('DELETE', 'runs', v_key, 'runs are never deleted',
      'a run is part of the ledger; archive its traces instead');
  end if;

  -- Compared column by column: the whole-row jsonb diff (changed_columns) serialises the plan twice,
  -- on every update, and record_step updates the run once per step. The diff is computed only for
  -- the messages below and for a finished run, where it decides whether the update changes anything.
  if (new.tenant_id, new.id, new.agent_id, new.goal, new.origin_system_id, new.idempotency_key, new.created_at, new.max_attempts)
     is distinct from (old.tenant_id, old.id, old.agent_id, old.goal, old.origin_system_id, old.idempotency_key, old.created_at, old.max_attempts) then
    v_changed := array_remove(runproof_private.changed_columns(to_jsonb(old), to_jsonb(new)), 'updated_at');
    perform runproof_private.raise_immutable('UPDATE', 'runs', v_key,
      'changes ' || array_to_string(v_changed, ', '),
      'tenant, agent, goal, origin_system_id, idempotency_key and max_attempts never change; enqueue a new run instead');
  end if;
  -- The plan is guarded by tg_runs__plan_check, which fires whenever an UPDATE sets it (UPDATE OF
  -- plan); an UPDATE that does not set the plan cannot change it, so it is not compared here.
  if runproof_private.is_terminal_status(old.status) then
    v_changed := array_remove(runproof_private.changed_columns(to_jsonb(old), to_jsonb(new)), 'updated_at');
  end if;
  if runproof_private.is_terminal_status(old.status) and cardinality(v_changed) = 0 then
    new.updated_at := old.updated_at;
    return new;
  end if;
  if runproof_private.is_terminal_status(old.status) then
    perform runproof_private.raise_immutable('UPDATE', 'runs', v_key,
      format('the run is %s; changes %s', old.status, array_to_string(v_changed, ', ')),
      'a finished run never changes');
  end if;

  if new.status is distinct from old.status then
    if not exists (select 1 from runproof_private.run_status_transitions
                   where from_status = old.status and to_status = new.status) then
      raise exception 'run % cannot go from % to %', old.id, old.status, new.status
        using errcode = 'RPSTS',
              detail = 'allowed from ' || old.status || ': ' || coalesce((select string_agg(to_status, ', ' order by to_status)
                         from runproof_private.run_status_transitions where from_status = old.status), '(none)'),
              hint = 'see runproof_private.run_status_transitions for the state machine';
    end if;
  end if;

  if new.status = 'running' and old.status <> 'running' and new.attempts <> old.attempts + 1 then
    raise exception 'run % can only start running with a new attempt', old.id
      using errcode = 'RPSTS', hint = 'start attempts with runproof_private.start_attempt, which opens the attempt''s trace';
  end if;
  -- A final status must be what the steps say happened (docs/proof-format.md section 9.3, check 11).
  if runproof_private.is_terminal_status(new.status) and not runproof_private.is_terminal_status(old.status) then
    select t.status as trace_status,
           (select s.status from runproof.trace_steps s where s.tenant_id = t.tenant_id and s.trace_id = t.id
             order by s.step_index desc limit 1) as step_status
      into v_last
      from runproof.traces t where t.tenant_id = new.tenant_id and t.run_id = new.id
     order by t.attempt desc limit 1;
    if new.status = 'succeeded' and new.next_plan_step <> jsonb_array_length(new.plan -> 'steps') then
      raise exception 'run % cannot succeed: % of % plan steps succeeded', old.id, new.next_plan_step, jsonb_array_length(new.plan -> 'steps')
        using errcode = 'RPSTS', hint = 'a run succeeds when every plan step has a succeeded step';
    elsif new.status = 'succeeded' and v_last.trace_status is distinct from 'completed' then
      raise exception 'run % cannot succeed: its last attempt did not complete', old.id
        using errcode = 'RPSTS', hint = 'seal the last trace as completed first';
    elsif new.status = 'halted' and (v_last.trace_status is distinct from 'failed' or v_last.step_status is distinct from 'denied') then
      raise exception 'run % cannot halt: its last attempt did not end with a denied step', old.id
        using errcode = 'RPSTS', hint = 'a run halts when the policy denies a step (runproof_private.record_denial)';
    elsif new.status = 'failed' and v_last.trace_status is not null
          and not (v_last.trace_status = 'failed' and v_last.step_status = 'failed')
          and not (v_last.trace_status = 'aborted' and v_last.step_status is null) then
      raise exception 'run % cannot fail: its last attempt did not end with a failed step', old.id
        using errcode = 'RPSTS', hint = 'a run fails at a failed step, in planning (no attempt), or after attempts abandoned before any step';
    elsif new.status = 'cancelled' and v_last.trace_status in ('completed', 'running') then
      raise exception 'run % cannot be cancelled: its last attempt is %', old.id, v_last.trace_status
        using errcode = 'RPSTS', hint = 'seal the running attempt as aborted first (runproof_private.end_attempt)';
    end if;
  end if;
  if new.attempts <> old.attempts and not (new.attempts = old.attempts + 1 and new.status = 'running' and old.status <> 'running') then
    perform runproof_private.raise_immutable('UPDATE', 'runs', v_key, 'changes attempts',
      'attempts only grows by one, when a new attempt starts (runproof_private.start_attempt)');
  end if;
  if (new.next_plan_step, new.cost_cents) is distinct from (old.next_plan_step, old.cost_cents) then
    if old.status <> 'running' then
      perform runproof_private.raise_immutable('UPDATE', 'runs', v_key, 'changes progress outside a running attempt',
        'progress is recorded with its step by runproof_private.record_step');
    end if;
    -- Progress moves only with the steps that made it: the running attempt's last steps must be
    -- plan steps old.next_plan_step .. new.next_plan_step - 1, succeeded, in order (the worker
    -- records one at a time; a bulk load, several), and cost moves by their cost; without progress,
    -- the last step is the failed or denied one at old.next_plan_step, and cost moves by its cost.
    select count(*) as n,
           count(*) filter (where l.status = 'succeeded'
                              and l.plan_step = old.next_plan_step + greatest(new.next_plan_step - old.next_plan_step, 1) - l.rn) as ok,
           coalesce(sum(l.cost_cents), 0) as cost,
           min(l.plan_step) filter (where l.rn = 1) as last_plan_step,
           min(l.status) filter (where l.rn = 1) as last_status
      into v_last
      -- The attempt's trace first (unique by tenant, run, attempt), then a backward scan of its
      -- primary key: a join let the planner walk the steps of every trace (15 ms a step with a
      -- 1,000,000-step trace in the table, bench/FINDINGS.md).
      from (select s.plan_step, s.status, s.cost_cents, row_number() over (order by s.step_index desc) as rn
              from runproof.trace_steps s
             where s.tenant_id = old.tenant_id
               and s.trace_id = (select t.id from runproof.traces t
                                  where t.tenant_id = old.tenant_id and t.run_id = old.id and t.attempt = old.attempts)
             order by s.step_index desc
             limit greatest(new.next_plan_step - old.next_plan_step, 1)) l;
    if new.next_plan_step < old.next_plan_step
       or new.next_plan_step > old.next_plan_step
          and (v_last.n <> new.next_plan_step - old.next_plan_step or v_last.ok <> v_last.n
               or new.cost_cents <> old.cost_cents + v_last.cost)
       or new.next_plan_step = old.next_plan_step
          and (v_last.n = 0 or v_last.last_status = 'succeeded' or v_last.last_plan_step <> old.next_plan_step
               or new.cost_cents <> old.cost_cents + v_last.cost) then
      raise exception 'run % progress (plan step % to %, cost % to %) does not come with its recorded steps',
        old.id, old.next_plan_step, new.next_plan_step, old.cost_cents, new.cost_cents
        using errcode = 'RPSTS',
              detail = case when v_last.n = 0 then format('attempt %s has no step', old.attempts)
                            else format('the last step of attempt %s is plan step %s, %s', old.attempts, v_last.last_plan_step, v_last.last_status) end,
              hint = 'progress is recorded with its step by runproof_private.record_step';
    end if;
  end if;
  if old.started_at is not null and new.started_at is distinct from old.started_at
     or old.planned_at is not null and new.planned_at is distinct from old.planned_at then
    perform runproof_private.raise_immutable('UPDATE', 'runs', v_key, 'changes started_at or planned_at',
      'timestamps of what happened are set once');
  end if;

  if new.status = 'running' then
    new.started_at := coalesce(new.started_at, now());
  end if;

  -- Entering a final status seals the run (docs/proof-format.md section 8): trace_count, the seal
  -- text and the run root, computed here, never by a client. Its progress and cost must be its steps'.
  if runproof_private.is_terminal_status(new.status) then
    if new.trace_count is not null or new.root_hash is not null or new.seal is not null then
      perform runproof_private.raise_immutable('UPDATE', 'runs', v_key, 'supplies trace_count, seal or root_hash',
        'the run seal is computed by the database when the run ends');
    end if;
    select count(*), count(*) filter (where t.status = 'running') into v_traces, v_open
      from runproof.traces t where t.tenant_id = new.tenant_id and t.run_id = new.id;
    if v_open > 0 then
      raise exception 'run % still has a running trace', new.id
        using errcode = 'RPSTS', hint = 'seal the trace first (runproof_private.seal_trace)';
    end if;
    -- Trace by trace, each through the steps' primary key: a join let the planner hash-join a
    -- sequential scan of every step of the table (22 ms a seal with a 100,000-step trace in it,
    -- and more with every step recorded since: bench/FINDINGS.md).
    select coalesce(sum(x.succeeded), 0) as succeeded, coalesce(sum(x.cost), 0) as cost into v_steps
      from runproof.traces t
     cross join lateral (
       select count(*) filter (where s.status = 'succeeded') as succeeded, coalesce(sum(s.cost_cents), 0) as cost
         from runproof.trace_steps s
        where s.tenant_id = t.tenant_id and s.trace_id = t.id) x
     where t.tenant_id = new.tenant_id and t.run_id = new.id;
    if v_steps.succeeded <> new.next_plan_step or v_steps.cost <> new.cost_cents then
      raise exception 'run % cannot be sealed: its progress (% plan steps, % cents) is not its steps'' (% succeeded, % cents)',
        new.id, new.next_plan_step, new.cost_cents, v_steps.succeeded, v_steps.cost
        using errcode = 'RPSTS', hint = 'progress is recorded with its step by runproof_private.record_step';
    end if;
    new.trace_count := v_traces;
    new.finished_at := coalesce(new.finished_at, now());
    new.updated_at := now();
    new.seal := runproof_private.run_seal_canonical(new);
    new.root_hash := sha256(new.seal);
    return new;
  elsif new.trace_count is not null or new.root_hash is not null or new.seal is not null or new.finished_at is not null then
    perform runproof_private.raise_immutable('UPDATE', 'runs', v_key, 'sets the seal of an unfinished run',
      'the run seal is computed by the database when the run ends');
  end if;

  new.updated_at := now();
  return new;
end
$$;
comment on function runproof_private.tg_runs__guard() is
  'Trigger: runs are never deleted; identity, goal and origin never change (the plan: tg_runs__plan_check); status follows the state machine; progress moves only with its recorded step; a final status seals the run (trace_count, seal, root_hash over its content, outcome, traces and incidents) and freezes it.';

-- Trigger order is by name: the origin and plan checks (the commonest mistakes) report before
-- tg_runs__start_state.
create or replace trigger tg_runs__start_state before insert on runproof.runs
  for each row execute function runproof_private.tg_runs__start_state();
create or replace trigger tg_runs__guard before update or delete on runproof.runs
  for each row execute function runproof_private.tg_runs__guard();
create or replace trigger tg_runs__no_truncate before truncate on runproof.runs
  for each statement execute function runproof_private.tg__no_truncate();
alter table runproof.runs enable always trigger tg_runs__start_state;
alter table runproof.runs enable always trigger tg_runs__guard;
alter table runproof.runs enable always trigger tg_runs__no_truncate;
insert into runproof_private.guard_descriptions (table_name, trigger_name, blocks, allows) values
  ('runs', 'tg_runs__start_state', 'INSERT of a run that is not pending/planned, or already has attempts, progress or a seal (RPSTS), or whose agent is not its tenant''s (RPNFD, even in replica mode)', 'INSERT of a fresh run (runproof.enqueue_run)'),
  ('runs', 'tg_runs__guard', 'DELETE; changing tenant, agent, goal, origin, idempotency key or max_attempts; any change to a finished run; progress outside an attempt; a client-supplied seal (RPIMM); a status change outside the state machine, progress or cost that does not come with its recorded step, a seal whose progress or cost is not its steps'' (RPSTS); a move to running without a new attempt, or to a final status the steps contradict: succeeded before every plan step succeeded and the last attempt completed, halted without a denied step, failed without a failed one, cancelled after a completed attempt (RPSTS)', 'status changes along runproof_private.run_status_transitions; plan stored once while pending; progress with its step while running; the seal computed at the final status'),
  ('runs', 'tg_runs__no_truncate', 'TRUNCATE (RPIMM)', 'nothing')
on conflict (table_name, trigger_name) do update set blocks = excluded.blocks, allows = excluded.allows;
--! EndIncluded ledger/runs.sql
