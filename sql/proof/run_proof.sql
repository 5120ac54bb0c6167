-- A run's proof (docs/proof-format.md section 9): every trace verified in attempt order, then the
-- run's attempts, progress, cost and outcome checked against its steps and its seal against the
-- root recomputed from the rows, plus the guard status of the interval in which it was recorded.

create or replace function runproof_private.run_proof_chain(p_tenant_id uuid, p_run_id uuid) returns runproof.proof
  language plpgsql stable
  set search_path = pg_catalog
  as $$
declare
  v_run runproof.runs;
  v_trace runproof.traces;
  v_c record;
  v_result runproof.proof;
  v_expected_attempt integer := 1;
  v_succeeded integer := 0;
  v_cost numeric := 0;
  v_last_trace runproof.traces;
  v_last_step text;
  v_running_attempt integer;
  v_late_running integer;
  v_plan_steps integer;
  v_now bytea;
  v_diff record;
  v_seal_traces integer;
  v_now_traces integer;
begin
  v_result.integrity_model := 'HASH_CHAIN';
  v_result.proof_format := 2;
  v_result.tenant_id := p_tenant_id;
  v_result.run_id := p_run_id;
  v_result.trace_count := 0;
  v_result.step_count := 0;
  v_result.erased_steps := 0;
  v_result.chain_length := 0;
  v_result.verified_at := clock_timestamp();

  -- Check 1: the run row.
  select * into v_run from runproof.runs r where r.id = p_run_id
   order by (r.tenant_id = p_tenant_id) desc limit 1;
  if not found then
    if exists (select 1 from runproof.traces t where t.run_id = p_run_id and t.tenant_id = p_tenant_id) then
      v_result.verification_status := 'BROKEN';
      v_result.reason := 'the run row is missing but its traces exist';
    else
      v_result.verification_status := 'NOT_FOUND';
      v_result.reason := 'no such run for this tenant';
    end if;
    return v_result;
  end if;
  if v_run.tenant_id <> p_tenant_id
     and not exists (select 1 from runproof.traces t where t.run_id = p_run_id and t.tenant_id = p_tenant_id) then
    v_result.verification_status := 'NOT_FOUND';
    v_result.reason := 'no such run for this tenant';
    return v_result;
  end if;

  -- Checks 2 to 8: each trace, in attempt order. The first fault is kept; the rest are counted.
  for v_trace in select * from runproof.traces t where t.run_id = p_run_id order by t.attempt, t.id loop
    v_result.trace_count := v_result.trace_count + 1;
    if v_result.verification_status is null and v_trace.tenant_id <> v_run.tenant_id then
      v_result.verification_status := 'TAMPERED';
      v_result.first_bad_attempt := v_trace.attempt;
      v_result.first_bad_trace_id := v_trace.id;
      v_result.reason := format('trace %s (attempt %s) belongs to tenant %s but the run to tenant %s',
        v_trace.id, v_trace.attempt, v_trace.tenant_id, v_run.tenant_id);
    end if;
    if v_result.verification_status is null and v_trace.attempt <> v_expected_attempt then
      v_result.verification_status := 'BROKEN';
      v_result.first_bad_attempt := v_expected_attempt;
      v_result.reason := case when v_trace.attempt < v_expected_attempt
        then format('attempt %s appears twice', v_trace.attempt)
        else format('the trace of attempt %s is missing', v_expected_attempt) end;
    end if;
    if v_result.verification_status is null and v_running_attempt is not null then
      v_result.verification_status := 'BROKEN';
      v_result.first_bad_attempt := v_running_attempt;
      v_result.reason := format('attempt %s is still running but a later attempt exists', v_running_attempt);
    end if;
    v_expected_attempt := v_trace.attempt + 1;
    select * into v_c from runproof_private.trace_check(v_trace, v_succeeded) c;
    v_result.step_count := v_result.step_count + (v_c.proof).step_count;
    v_result.erased_steps := v_result.erased_steps + (v_c.proof).erased_steps;
    -- chain_length counts the steps verified in chain order, up to the first fault.
    if v_result.verification_status is null then
      v_result.chain_length := v_result.chain_length + (v_c.proof).chain_length;
    end if;
    if (v_c.proof).verification_status not in ('VERIFIED', 'IN_PROGRESS') and v_result.verification_status is null then
      v_result.verification_status := (v_c.proof).verification_status;
      v_result.first_bad_attempt := (v_c.proof).first_bad_attempt;
      v_result.first_bad_trace_id := (v_c.proof).first_bad_trace_id;
      v_result.first_bad_step_index := (v_c.proof).first_bad_step_index;
      v_result.reason := format('attempt %s: %s', v_trace.attempt, (v_c.proof).reason);
    end if;
    if v_trace.status = 'running' then
      v_running_attempt := v_trace.attempt;
    end if;
    v_succeeded := v_succeeded + v_c.succeeded;
    v_cost := v_cost + v_c.cost;
    v_last_trace := v_trace;
    v_last_step := v_c.last_step_status;
  end loop;

  -- The root as the rows are now (docs/proof-format.md section 8).
  v_now := runproof_private.run_seal_canonical(v_run);
  v_result.root_hash := runproof_private.hex(sha256(v_now));

  if v_result.verification_status is null and v_run.tenant_id <> p_tenant_id then
    v_result.verification_status := 'TAMPERED';
    v_result.reason := format('the run belongs to tenant %s but its traces to tenant %s', v_run.tenant_id, p_tenant_id);
  end if;
  -- Check 9: one trace per attempt.
  if v_result.verification_status is null and v_result.trace_count <> v_run.attempts then
    v_result.verification_status := 'BROKEN';
    if v_result.trace_count < v_run.attempts then
      v_result.first_bad_attempt := v_result.trace_count + 1;
      v_result.reason := format('the run made %s attempts but %s traces exist: the trace of attempt %s is missing',
        v_run.attempts, v_result.trace_count, v_result.trace_count + 1);
    else
      v_result.first_bad_attempt := v_run.attempts + 1;
      v_result.reason := format('the run made %s attempts but %s traces exist: attempt %s onwards is not one of its attempts',
        v_run.attempts, v_result.trace_count, v_run.attempts + 1);
    end if;
  end if;
  if v_result.verification_status is null and v_run.trace_count is not null and v_run.trace_count <> v_result.trace_count then
    v_result.verification_status := 'BROKEN';
    v_result.reason := format('the run''s trace_count says %s but %s traces exist', v_run.trace_count, v_result.trace_count);
  end if;
  -- Check 10: progress and cost are the steps'.
  if v_result.verification_status is null and v_run.next_plan_step <> v_succeeded then
    v_result.verification_status := 'BROKEN';
    v_result.reason := format('the run''s progress says %s plan steps succeeded but its steps show %s', v_run.next_plan_step, v_succeeded);
  end if;
  if v_result.verification_status is null and v_run.cost_cents <> v_cost then
    v_result.verification_status := 'BROKEN';
    v_result.reason := format('the run''s cost is %s cents but its steps cost %s', v_run.cost_cents, v_cost::numeric(14, 4));
  end if;
  -- Check 11: the outcome is what the steps say happened.
  if v_result.verification_status is null then
    v_plan_steps := case when jsonb_typeof(v_run.plan -> 'steps') = 'array' then jsonb_array_length(v_run.plan -> 'steps') end;
    v_result.reason := case v_run.status
      when 'succeeded' then
        case when v_succeeded <> coalesce(v_plan_steps, -1)
               then format('the run succeeded but %s of %s plan steps succeeded', v_succeeded, coalesce(v_plan_steps, 0))
             when v_last_trace.status is distinct from 'completed'
               then format('the run succeeded but its last attempt %s', coalesce('is ' || v_last_trace.status, 'does not exist')) end
      when 'halted' then
        case when v_last_trace.status is distinct from 'failed' or v_last_step is distinct from 'denied'
               then 'the run halted but its last attempt did not end with a denied step' end
      when 'failed' then
        case when v_last_trace.id is not null
              and not (v_last_trace.status = 'failed' and v_last_step = 'failed')
              and not (v_last_trace.status = 'aborted' and v_last_step is null)
               then 'the run failed but its last attempt did not end with a failed step' end
      when 'cancelled' then
        case when v_last_trace.id is not null and v_last_trace.status not in ('aborted', 'failed')
               then format('the run was cancelled but its last attempt is %s', v_last_trace.status) end
      when 'running' then
        case when v_last_trace.status is distinct from 'running'
               then 'the run is running but its last attempt is not' end
      else
        case when v_running_attempt is not null
               then format('the run is %s but attempt %s is still running', v_run.status, v_running_attempt) end
    end;
    if v_result.reason is not null then
      v_result.verification_status := 'BROKEN';
    end if;
  end if;
  -- Check 12: the seal.
  if v_result.verification_status is null then
    if not runproof_private.is_terminal_status(v_run.status) then
      if v_run.seal is not null or v_run.root_hash is not null or v_run.trace_count is not null then
        v_result.verification_status := 'TAMPERED';
        v_result.reason := 'an unfinished run carries a seal';
      end if;
    elsif v_run.seal is null or v_run.root_hash is null then
      v_result.verification_status := 'BROKEN';
      v_result.reason := format('the run is %s but has no seal', v_run.status);
    elsif v_run.root_hash <> sha256(v_run.seal) then
      v_result.verification_status := 'TAMPERED';
      v_result.reason := format('the run''s root_hash %s does not match sha256 of its seal %s',
        runproof_private.hex(v_run.root_hash), runproof_private.hex(sha256(v_run.seal)));
    elsif v_run.seal <> v_now then
      v_result.verification_status := 'TAMPERED';
      select * into v_diff from runproof_private.seal_difference(v_now, v_run.seal,
        array['format', 'tenant_id', 'run_id', 'content', 'status', 'error', 'attempts', 'next_plan_step', 'cost_cents',
              'planned_at', 'started_at', 'finished_at', 'trace seals', 'incidents']);
      v_result.reason := case
        when v_diff.element = 3 then
          'the run''s content (agent, goal, origin, plan, idempotency key, max attempts or creation time) differs from its seal'
        when v_diff.element between 4 and 11 then
          format('the run''s %s is %s but its seal says %s', v_diff.name, v_diff.now_value, v_diff.sealed_value)
        when v_diff.element = 12 then
          (select case when jsonb_array_length(a.sealed) <> jsonb_array_length(a.now)
                    then format('the run''s seal lists %s traces but %s exist', jsonb_array_length(a.sealed), jsonb_array_length(a.now))
                    else format('the seal of attempt %s differs from the one in the run''s seal',
                           (select min(k) from generate_series(1, jsonb_array_length(a.now)) k
                             where a.now -> (k - 1) is distinct from a.sealed -> (k - 1))) end
             from (select v_diff.now_value::jsonb as now, v_diff.sealed_value::jsonb as sealed) a)
        when v_diff.element = 13 then
          (select case when jsonb_array_length(a.sealed) <> jsonb_array_length(a.now)
                    then format('the run''s incidents differ from its seal: %s in the seal, %s now', jsonb_array_length(a.sealed), jsonb_array_length(a.now))
                    else format('incident %s differs from the one in the run''s seal',
                           (select i.id from runproof.incidents i where i.tenant_id = v_run.tenant_id and i.run_id = v_run.id
                             order by i.created_at, i.id offset (select min(k) - 1 from generate_series(1, jsonb_array_length(a.now)) k
                                                                  where a.now -> (k - 1) is distinct from a.sealed -> (k - 1)) limit 1)) end
             from (select v_diff.now_value::jsonb as now, v_diff.sealed_value::jsonb as sealed) a)
        when v_diff.element between 0 and 2 then 'the run''s seal is not the seal of this run'
        else 'the run''s seal is not its canonical text' end;
    end if;
  end if;
  if v_result.verification_status is null then
    v_result.verification_status := case
      when v_running_attempt is not null or not runproof_private.is_terminal_status(v_run.status) then 'IN_PROGRESS'
      else 'VERIFIED' end;
  end if;
  return v_result;
end
$$;
comment on function runproof_private.run_proof_chain(uuid, uuid) is
  'The hash-chain half of runproof.run_proof (guard_status and guard_detail left NULL): the checks of docs/proof-format.md section 9 (every trace, then the attempts, progress, cost, outcome and seal of the run).';

create or replace function runproof.run_proof(tenant_id uuid, run_id uuid) returns runproof.proof
  language plpgsql stable
  set search_path = pg_catalog
  as $$
declare
  v_result runproof.proof;
  v_from timestamptz;
  v_to timestamptz;
begin
  v_result := runproof_private.run_proof_chain(run_proof.tenant_id, run_proof.run_id);
  -- The run's recorded lifetime: from its creation to its last recorded change (for a finished
  -- run, updated_at is when it finished: a finished run never changes).
  select r.created_at, r.updated_at into v_from, v_to from runproof.runs r
   where r.id = run_proof.run_id order by (r.tenant_id = run_proof.tenant_id) desc limit 1;
  if found and v_result.verification_status <> 'NOT_FOUND' then
    select g.status, g.detail into v_result.guard_status, v_result.guard_detail
      from runproof_private.guard_status(v_from, v_to) g;
    -- Its place in the tenant's Merkle log and its inclusion proof to the latest checkpoint
    -- (docs/proof-format.md section 13).
    select l.leaf_index, l.checkpoint_size, l.inclusion_proof, l.checkpoint
      into v_result.leaf_index, v_result.checkpoint_size, v_result.inclusion_proof, v_result.checkpoint
      from runproof_private.run_log_proof(run_proof.tenant_id, run_proof.run_id) l;
  end if;
  return v_result;
end
$$;
comment on function runproof.run_proof(uuid, uuid) is
  'Verifies a run (docs/proof-format.md section 9): recomputes every hash of every trace, step, decision and payload from the stored rows, checks the attempts, progress, cost and outcome against the steps and the run seal against the root, and returns HASH_CHAIN with VERIFIED, IN_PROGRESS, TAMPERED, BROKEN or NOT_FOUND, the counts (erased steps included), the root, the first bad step and the reason; and guard_status (GUARDED, UNGUARDED, UNAUDITED) from the DDL audit over the run''s recorded lifetime (created_at .. updated_at); and the run''s leaf in its tenant''s log with its inclusion proof to the latest checkpoint.';
