-- The hash chain of runproof.trace_steps: the database computes decision_hash, prev_hash and
-- step_hash on insert (docs/proof-format.md section 3), appends to one trace are serialized, gaps,
-- duplicates and appends to a sealed trace are refused, and a step is never changed or removed.

-- enable_seqscan = off: see tg_policy_decisions__check (sql/ledger/policy_decisions.sql); every
-- look-up below is by a primary key.
create or replace function runproof_private.tg_trace_steps__chain() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  set enable_seqscan = off
  as $$
declare
  v_trace record;
  v_last_index integer;
  v_last_hash bytea;
  v_last_status text;
  v_expected integer;
  v_decision runproof.policy_decisions;
begin
  if new.prev_hash is not null or new.step_hash is not null or new.decision_hash is not null then
    raise exception 'decision_hash, prev_hash and step_hash are computed by the database'
      using errcode = 'RPCHN', hint = 'omit decision_hash, prev_hash and step_hash from the INSERT';
  end if;
  -- Serialize appends to one trace: the row lock is held until the transaction ends.
  select t.run_id, t.status, t.archived_at into v_trace
    from runproof.traces t where t.tenant_id = new.tenant_id and t.id = new.trace_id
    for no key update;
  if not found then
    raise exception 'trace % of tenant % not found', new.trace_id, new.tenant_id
      using errcode = 'RPNFD', hint = 'open a trace with runproof_private.start_attempt first';
  end if;
  if v_trace.status <> 'running' then
    raise exception 'trace % is sealed (%); steps cannot be appended', new.trace_id, v_trace.status
      using errcode = 'RPCHN', hint = 'a sealed trace is final; a new attempt gets a new trace';
  end if;
  if v_trace.run_id <> new.run_id then
    raise exception 'trace % belongs to run %, not %', new.trace_id, v_trace.run_id, new.run_id
      using errcode = 'RPCHN', hint = 'record the step on a trace of its own run';
  end if;
  select s.step_index, s.step_hash, s.status into v_last_index, v_last_hash, v_last_status
    from runproof.trace_steps s
   where s.tenant_id = new.tenant_id and s.trace_id = new.trace_id
   order by s.step_index desc limit 1;
  v_expected := coalesce(v_last_index + 1, 0);
  if v_last_status is not null and v_last_status <> 'succeeded' then
    raise exception 'trace % ended at step % (%): no step comes after a failed or denied one', new.trace_id, v_last_index, v_last_status
      using errcode = 'RPCHN', hint = 'end the attempt (runproof_private.end_attempt); a new attempt gets a new trace';
  end if;
  if new.step_index <> v_expected then
    raise exception '% step index %: trace % expects step %',
      case when new.step_index < v_expected then 'duplicate' else 'gap at' end, new.step_index, new.trace_id, v_expected
      using errcode = 'RPCHN', hint = 'append steps in order, 0, 1, 2, ... (runproof_private.record_step does this)';
  end if;
  -- Foreign keys do not fire under session_replication_role = replica; this trigger always does.
  select d.* into v_decision from runproof.policy_decisions d
   where d.tenant_id = new.tenant_id and d.trace_id = new.trace_id and d.step_index = new.step_index;
  if not found then
    raise exception 'step % of trace % has no policy decision', new.step_index, new.trace_id
      using errcode = 'RPCHN', hint = 'record the decision first (runproof_private.decide_step): enforcement cannot be skipped';
  end if;
  if v_decision.decision is distinct from new.policy_decision or v_decision.plan_step <> new.plan_step
     or v_decision.skill <> new.skill or v_decision.run_id <> new.run_id then
    raise exception 'step % of trace % does not match its policy decision (decision %, plan step %, skill %)',
      new.step_index, new.trace_id, v_decision.decision, v_decision.plan_step, v_decision.skill
      using errcode = 'RPCHN', hint = 'record the step that was decided, with the decision that was taken';
  end if;
  -- The decision row is covered by the step's hash (docs/proof-format.md section 4).
  new.decision_hash := sha256(runproof_private.decision_canonical(v_decision));
  new.recorded_at := clock_timestamp();
  new.prev_hash := coalesce(v_last_hash, runproof_private.genesis_hash(new.tenant_id, new.run_id, new.trace_id));
  new.step_hash := runproof_private.step_hash(new.prev_hash, runproof_private.step_canonical(new));
  return new;
end
$$;
comment on function runproof_private.tg_trace_steps__chain() is
  'Trigger: appends a step to its trace''s chain. Serializes appends per trace, rejects gaps, duplicates, appends to sealed traces, a step that does not match its policy decision and client-supplied hashes, and computes decision_hash, prev_hash and step_hash.';

create or replace trigger tg_trace_steps__chain before insert on runproof.trace_steps
  for each row execute function runproof_private.tg_trace_steps__chain();
create or replace trigger tg_trace_steps__append_only before update or delete on runproof.trace_steps
  for each row execute function runproof_private.tg__append_only('tenant_id', 'trace_id', 'step_index');
create or replace trigger tg_trace_steps__no_truncate before truncate on runproof.trace_steps
  for each statement execute function runproof_private.tg__no_truncate();
alter table runproof.trace_steps enable always trigger tg_trace_steps__chain;
alter table runproof.trace_steps enable always trigger tg_trace_steps__append_only;
alter table runproof.trace_steps enable always trigger tg_trace_steps__no_truncate;
insert into runproof_private.guard_descriptions (table_name, trigger_name, blocks, allows) values
  ('trace_steps', 'tg_trace_steps__chain', 'INSERT with client-supplied hashes, a gap or duplicate index, into a sealed or missing trace, after a failed or denied step, for another run, or without the policy decision it matches (RPCHN) - checked even in replica mode, where foreign keys are skipped', 'INSERT of the next step; computes decision_hash, prev_hash and step_hash'),
  ('trace_steps', 'tg_trace_steps__append_only', 'UPDATE, DELETE (RPIMM)', 'nothing'),
  ('trace_steps', 'tg_trace_steps__no_truncate', 'TRUNCATE (RPIMM)', 'nothing')
on conflict (table_name, trigger_name) do update set blocks = excluded.blocks, allows = excluded.allows;
