-- A run's proof: every trace verified in attempt order, the attempts complete, the run seal
-- compared with the root recomputed from the run's content and its traces, plus the guard status
-- of the interval in which the run was recorded (from the DDL audit).

create or replace function runproof_private.run_proof_chain(p_tenant_id uuid, p_run_id uuid) returns runproof.proof
  language plpgsql stable
  set search_path = pg_catalog
  as $$
declare
  v_run runproof.runs;
  v_trace runproof.traces;
  v_tp runproof.proof;
  v_result runproof.proof;
  v_roots bytea[] := '{}';
  v_expected_attempt integer := 1;
  v_in_progress boolean := false;
  v_root bytea;
begin
  v_result.integrity_model := 'HASH_CHAIN';
  v_result.tenant_id := p_tenant_id;
  v_result.run_id := p_run_id;
  v_result.trace_count := 0;
  v_result.step_count := 0;
  v_result.chain_length := 0;
  v_result.verified_at := clock_timestamp();

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
    v_expected_attempt := v_trace.attempt + 1;
    v_tp := runproof_private.verify_trace_row(v_trace);
    v_result.step_count := v_result.step_count + v_tp.step_count;
    -- chain_length counts the steps verified in chain order, up to the first fault.
    if v_result.verification_status is null then
      v_result.chain_length := v_result.chain_length + v_tp.chain_length;
    end if;
    v_roots := v_roots || decode(v_tp.root_hash, 'hex');
    if v_tp.verification_status = 'IN_PROGRESS' then
      v_in_progress := true;
    elsif v_tp.verification_status <> 'VERIFIED' and v_result.verification_status is null then
      v_result.verification_status := v_tp.verification_status;
      v_result.first_bad_attempt := v_tp.first_bad_attempt;
      v_result.first_bad_trace_id := v_tp.first_bad_trace_id;
      v_result.first_bad_step_index := v_tp.first_bad_step_index;
      v_result.reason := format('attempt %s: %s', v_trace.attempt, v_tp.reason);
    end if;
  end loop;

  v_root := runproof_private.run_root_hash(v_run.tenant_id, v_run.id, v_roots);
  v_result.root_hash := runproof_private.hex(v_root);

  if v_result.verification_status is null and v_result.trace_count < v_run.attempts then
    v_result.verification_status := 'BROKEN';
    v_result.first_bad_attempt := v_result.trace_count + 1;
    v_result.reason := format('the run made %s attempts but %s traces exist: the trace of attempt %s is missing',
      v_run.attempts, v_result.trace_count, v_result.trace_count + 1);
  end if;
  if v_result.verification_status is null and runproof_private.is_terminal_status(v_run.status) then
    if v_run.trace_count is distinct from v_result.trace_count then
      v_result.verification_status := 'BROKEN';
      v_result.first_bad_attempt := least(v_run.trace_count, v_result.trace_count) + 1;
      v_result.reason := format('the run seal says %s traces but %s exist', v_run.trace_count, v_result.trace_count);
    elsif v_run.root_hash is distinct from v_root then
      v_result.verification_status := 'TAMPERED';
      v_result.reason := format('the run''s sealed root_hash %s does not match the root recomputed from its traces %s',
        coalesce(runproof_private.hex(v_run.root_hash), 'NULL'), v_result.root_hash);
    end if;
  end if;
  if v_result.verification_status is null and v_run.tenant_id <> p_tenant_id then
    v_result.verification_status := 'TAMPERED';
    v_result.reason := format('the run belongs to tenant %s but its traces to tenant %s', v_run.tenant_id, p_tenant_id);
  end if;
  if v_result.verification_status is null then
    v_result.verification_status := case
      when v_in_progress or not runproof_private.is_terminal_status(v_run.status) then 'IN_PROGRESS'
      else 'VERIFIED' end;
  end if;
  return v_result;
end
$$;
comment on function runproof_private.run_proof_chain(uuid, uuid) is
  'The hash-chain half of runproof.run_proof (guard_status and guard_detail left NULL): recomputes every hash of every trace of a run, checks the attempts are complete and the run seal matches.';

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
  end if;
  return v_result;
end
$$;
comment on function runproof.run_proof(uuid, uuid) is
  'Recomputes every hash of every trace of a run from the stored columns, checks the attempts are complete and the run seal matches, and returns HASH_CHAIN with VERIFIED, IN_PROGRESS, TAMPERED, BROKEN or NOT_FOUND, the counts, the root, the first bad step and reason; and guard_status (GUARDED, UNGUARDED, UNAUDITED) from the DDL audit over the run''s recorded lifetime (created_at .. updated_at).';
