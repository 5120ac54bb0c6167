-- The whole ledger: every run's chain and guard status, rows no run leads to, and ledger-wide
-- problems now (a guard not live, a schema object changed outside a migration). Empty means intact.

create or replace function runproof_private.ledger_problems() returns table (reason text, guard_status text)
  language plpgsql stable
  set search_path = pg_catalog
  as $$
declare
  v_state record;
  v_problem text;
begin
  -- An audit that was installed but is not live, a guard that is not live, a schema object changed.
  select * into v_state from runproof_private.ddl_audit_state();
  if v_state.state = 'BROKEN' then
    reason := v_state.detail; guard_status := 'UNAUDITED';
    return next;
  end if;
  for v_problem in select p from runproof_private.guard_problems() p union all select d from runproof_private.schema_drift() d loop
    reason := 'now: ' || v_problem; guard_status := 'UNGUARDED';
    return next;
  end loop;
end
$$;
comment on function runproof_private.ledger_problems() is
  'The ledger-wide problems now, one row each: a DDL audit installed but not live (UNAUDITED), a guard not live or a schema object changed since the last migration (UNGUARDED). The first rows of verify_all.';

create or replace function runproof_private.orphan_rows() returns table (
  tenant_id uuid, run_id uuid, trace_id uuid, first_bad_attempt integer, first_bad_step_index integer, reason text)
  language sql stable
  set search_path = pg_catalog
  as $$
    select t.tenant_id, t.run_id, t.id, t.attempt, null::integer, 'trace has no run row'::text
      from runproof.traces t
     where not exists (select 1 from runproof.runs r where r.tenant_id = t.tenant_id and r.id = t.run_id)
    union all
    select s.tenant_id, s.run_id, s.trace_id, null::integer, min(s.step_index), 'steps have no trace row'::text
      from runproof.trace_steps s
     where not exists (select 1 from runproof.traces t where t.tenant_id = s.tenant_id and t.id = s.trace_id)
     group by s.tenant_id, s.run_id, s.trace_id
  $$;
comment on function runproof_private.orphan_rows() is
  'Rows no run leads to: traces without their run, steps without their trace (BROKEN). The last rows of verify_all.';

-- One run's verdict, in one place: verify_all() and `runproof verify-all --jobs N` (which verifies
-- batches of runs on several connections) both report what this says.
create or replace function runproof_private.run_verdict(p_tenant_id uuid, p_run_id uuid, p_audit_state text)
  returns table (trace_id uuid, verification_status text, first_bad_attempt integer, first_bad_step_index integer,
                 reason text, guard_status text, problem boolean)
  language sql stable
  set search_path = pg_catalog
  as $$
    select p.first_bad_trace_id, p.verification_status, p.first_bad_attempt, p.first_bad_step_index,
           coalesce(p.reason, g.detail),
           case when g.changes > 0 then 'UNGUARDED' when p_audit_state = 'LIVE' then 'GUARDED' else 'UNAUDITED' end,
           p.verification_status not in ('VERIFIED', 'IN_PROGRESS') or g.changes > 0
      from runproof.runs r
     cross join lateral runproof_private.run_proof_chain(r.tenant_id, r.id) p
     cross join lateral runproof_private.guard_changes(r.created_at, r.updated_at) g
     where r.tenant_id = p_tenant_id and r.id = p_run_id
  $$;
comment on function runproof_private.run_verdict(uuid, uuid, text) is
  'One run''s verdict as verify_all reports it: its chain (run_proof_chain), the guard-weakening changes made while it was recorded (guard_changes; guard_status UNGUARDED, else GUARDED when the DDL audit state p_audit_state is LIVE, else UNAUDITED), and problem: whether verify_all lists it (not VERIFIED or IN_PROGRESS, or UNGUARDED). No row when the run does not exist.';

create or replace function runproof.verify_all() returns table (
  tenant_id uuid, run_id uuid, trace_id uuid, verification_status text,
  first_bad_attempt integer, first_bad_step_index integer, reason text, guard_status text
)
  language plpgsql stable
  set search_path = pg_catalog
  as $$
declare
  v_state text := (select s.state from runproof_private.ddl_audit_state() s);
begin
  return query select null::uuid, null::uuid, null::uuid, null::text, null::integer, null::integer, l.reason, l.guard_status
                 from runproof_private.ledger_problems() l;
  -- Each run, in creation order: its chain, and the guard-weakening changes made while it was recorded.
  return query select r.tenant_id, r.id, v.trace_id, v.verification_status, v.first_bad_attempt, v.first_bad_step_index,
                      v.reason, v.guard_status
                 from runproof.runs r
                cross join lateral runproof_private.run_verdict(r.tenant_id, r.id, v_state) v
                where v.problem
                order by r.created_at, r.id;
  return query select o.tenant_id, o.run_id, o.trace_id, 'BROKEN'::text, o.first_bad_attempt, o.first_bad_step_index, o.reason, null::text
                 from runproof_private.orphan_rows() o;
  -- Checkpoints an anchor failed to take (retried with backoff; docs/reliability.md).
  return query select a.tenant_id, null::uuid, null::uuid, 'ANCHOR_BACKLOG'::text, null::integer, null::integer, a.reason, null::text
                 from runproof_private.anchor_problems() a;
end
$$;
comment on function runproof.verify_all() is
  'Verifies every run the caller can see. Lists first one row without a run for each ledger-wide problem now (runproof_private.ledger_problems), then each run whose chain is not VERIFIED or IN_PROGRESS, or during whose recorded lifetime a guard-weakening schema change was made outside a RunProof migration (guard_status UNGUARDED), then traces and steps that no run leads to (runproof_private.orphan_rows), then the checkpoints an anchor failed to take (ANCHOR_BACKLOG). An empty result means the ledger is intact.';
