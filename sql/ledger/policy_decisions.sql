-- Policy decisions are append-only and taken only for the next step of a running trace. A step
-- row cannot exist without its decision row (a foreign key, and tg_trace_steps__chain in replica mode).

-- enable_seqscan = off (here and in the other per-row triggers of an append): PL/pgSQL plans
-- these look-ups once per session and keeps the plan. Planned while the tables were small or never
-- analyzed (a fresh database, a first append), PostgreSQL 15 chose sequential scans and kept them
-- while one INSERT ... SELECT grew the tables, so a set-based append was quadratic: 16,000 steps
-- took 56 s instead of 1.5 s (bench/append-scaling.ts). Each look-up is by a primary key prefix.
create or replace function runproof_private.tg_policy_decisions__check() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog
  set enable_seqscan = off
  as $$
declare
  v_next integer;
begin
  if not exists (select 1 from runproof.traces t where t.tenant_id = new.tenant_id and t.id = new.trace_id
                 and t.run_id = new.run_id and t.status = 'running') then
    raise exception 'trace % is not a running trace of run %', new.trace_id, new.run_id
      using errcode = 'RPCHN', hint = 'decide steps only for the running attempt of a run';
  end if;
  -- The newest step, from the end of the primary key (not max(), which a stale plan aggregates).
  select s.step_index + 1 into v_next from runproof.trace_steps s
   where s.tenant_id = new.tenant_id and s.trace_id = new.trace_id
   order by s.step_index desc limit 1;
  if new.step_index <> coalesce(v_next, 0) then
    raise exception 'a decision for step % of trace % is not for its next step', new.step_index, new.trace_id
      using errcode = 'RPCHN', hint = 'decide each step just before it runs';
  end if;
  return new;
end
$$;
comment on function runproof_private.tg_policy_decisions__check() is 'Trigger: a policy decision is taken only for the next step of a running trace.';

create or replace trigger tg_policy_decisions__check before insert on runproof.policy_decisions
  for each row execute function runproof_private.tg_policy_decisions__check();
create or replace trigger tg_policy_decisions__append_only before update or delete on runproof.policy_decisions
  for each row execute function runproof_private.tg__append_only('tenant_id', 'trace_id', 'step_index');
create or replace trigger tg_policy_decisions__no_truncate before truncate on runproof.policy_decisions
  for each statement execute function runproof_private.tg__no_truncate();
alter table runproof.policy_decisions enable always trigger tg_policy_decisions__check;
alter table runproof.policy_decisions enable always trigger tg_policy_decisions__append_only;
alter table runproof.policy_decisions enable always trigger tg_policy_decisions__no_truncate;
insert into runproof_private.guard_descriptions (table_name, trigger_name, blocks, allows) values
  ('policy_decisions', 'tg_policy_decisions__check', 'INSERT for a trace that is not running, or for any step but the next one (RPCHN)', 'INSERT of the decision for the next step'),
  ('policy_decisions', 'tg_policy_decisions__append_only', 'UPDATE, DELETE (RPIMM)', 'nothing'),
  ('policy_decisions', 'tg_policy_decisions__no_truncate', 'TRUNCATE (RPIMM)', 'nothing')
on conflict (table_name, trigger_name) do update set blocks = excluded.blocks, allows = excluded.allows;
