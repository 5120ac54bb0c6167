-- Verifying one trace (docs/proof-format.md section 9.2): every step's index, link, hash, policy
-- decision, payload commitments and plan order recomputed from the stored rows in one pass (large
-- traces split over parallel workers), then the trace's status and seal compared with its steps.

-- The fault classes of one step, in the order they are checked (docs/proof-format.md section 9.2,
-- checks 3 to 6): the first step with a fault is reported, with the first of its checks that fails.
create or replace function runproof_private.step_fault_order() returns text[]
  language sql immutable parallel safe
  set search_path = pg_catalog
  as $$ select array['gap', 'link', 'hash', 'decision_missing', 'decision_hash', 'decision_other',
                     'payload_input', 'payload_output', 'payload_error', 'payload_missing', 'order', 'after_end'] $$;
comment on function runproof_private.step_fault_order() is
  'The checks of one step in the order a verifier applies them: chain (gap, link, hash), policy decision (missing, hash, describes another step), payloads (input, output, error commitments; missing without an erasure), plan order, a step after a failed or denied one.';

-- A SELECT ... INTO in PL/pgSQL runs with a row limit, and Postgres never starts parallel
-- workers for a statement run with a row limit ("Workers Planned: 2, Workers Launched: 0" in
-- auto_explain), so one pass over a large trace would use one core. RETURN QUERY runs without a
-- limit. For a large trace, step_faults_parallel therefore splits the pass in two:
--   * what needs chain order (gaps, links, plan order, a step after the end): one ordered pass
--     over the primary key, cheap (no hashing);
--   * what needs no order (every hash recomputed: the step's, its decision's, its payloads'): a
--     parallel aggregate (min(...) FILTER, not WHERE, so that the planner keeps it an aggregate).
-- The first fault is the same either way: every fault is placed at its step index (a gap at the
-- missing index), and since indexes are unique and sorted, the least (index, check) over both
-- passes is the first fault of the single pass.
create or replace function runproof_private.step_faults_parallel(
  p_tenant_id uuid, p_trace_id uuid, p_genesis bytea, p_resume integer)
  returns table (step_count integer, erased integer, succeeded integer, cost numeric,
                 first_bad integer, fault text)
  language plpgsql stable
  set search_path = pg_catalog
  -- Only called for large traces, where workers always pay off: do not let stale statistics
  -- (a trace that grew since the last ANALYZE) talk the planner out of them.
  set parallel_setup_cost = 0
  set parallel_tuple_cost = 0
  set min_parallel_table_scan_size = 0
  set min_parallel_index_scan_size = 0
  -- The per-step joins below are by (tenant, trace, step_index): with stale statistics the
  -- planner picks nested loops that rescan the trace per step (quadratic: 60,000 steps took
  -- 636 s instead of 0.6 s). Hash or merge joins are right at every trace size.
  set enable_nestloop = off
  as $$
begin
  return query execute $q$
    with ordered as (
      select count(*)::integer as n,
             count(*) filter (where o.status = 'succeeded')::integer as succeeded,
             coalesce(sum(o.cost_cents), 0) as cost,
             min(case when o.step_index <> o.pos then o.pos end) as gap,
             min(case when o.step_index = o.pos and o.prev_hash is distinct from o.expected_prev then o.pos end) as link,
             min(case when o.plan_step <> o.expected_plan then o.step_index end) as plan_order,
             min(case when o.status <> 'succeeded' and not o.is_last then o.step_index end) as after_end
        from (select st.step_index, (row_number() over w - 1)::integer as pos, st.prev_hash, st.status, st.plan_step, st.cost_cents,
                     coalesce(lag(st.step_hash) over w, $3) as expected_prev,
                     $4 + (count(*) filter (where st.status = 'succeeded') over w)::integer
                        - case when st.status = 'succeeded' then 1 else 0 end as expected_plan,
                     lead(st.step_index) over w is null as is_last
                from runproof.trace_steps st
               where st.tenant_id = $1 and st.trace_id = $2
              window w as (order by st.step_index)) o
    ), hashed as (
      select count(*) filter (where p.tenant_id is null and e.tenant_id is not null)::integer as erased,
             min(st.step_index) filter (
               where st.step_hash is distinct from runproof_private.step_hash(st.prev_hash, runproof_private.step_canonical(st))) as hash,
             min(st.step_index) filter (where d.tenant_id is null) as decision_missing,
             min(st.step_index) filter (
               where d.tenant_id is not null and sha256(runproof_private.decision_canonical(d)) is distinct from st.decision_hash) as decision_hash,
             min(st.step_index) filter (
               where d.tenant_id is not null and (d.run_id, d.plan_step, d.skill, d.decision) is distinct from (st.run_id, st.plan_step, st.skill, st.policy_decision)) as decision_other,
             min(st.step_index) filter (
               where p.tenant_id is not null and runproof_private.payload_commitment('input', p.input_salt, p.input::text) is distinct from st.input_commitment) as payload_input,
             min(st.step_index) filter (
               where p.tenant_id is not null and runproof_private.payload_commitment('output', p.output_salt, p.output::text) is distinct from st.output_commitment) as payload_output,
             min(st.step_index) filter (
               where p.tenant_id is not null and runproof_private.payload_commitment('error', p.error_salt, p.error) is distinct from st.error_commitment) as payload_error,
             min(st.step_index) filter (where p.tenant_id is null and e.tenant_id is null) as payload_missing
        from runproof.trace_steps st
        left join runproof.policy_decisions d on d.tenant_id = st.tenant_id and d.trace_id = st.trace_id and d.step_index = st.step_index
        left join runproof.step_payloads p on p.tenant_id = st.tenant_id and p.trace_id = st.trace_id and p.step_index = st.step_index
        -- An erasure is recorded when both its record (who, when, why) and its step row, for this run, exist.
        left join (runproof.payload_erasure_steps e join runproof.payload_erasures pe on pe.tenant_id = e.tenant_id and pe.id = e.erasure_id)
          on e.tenant_id = st.tenant_id and e.trace_id = st.trace_id and e.step_index = st.step_index and e.run_id = st.run_id
       where st.tenant_id = $1 and st.trace_id = $2
    )
    select o.n, h.erased, o.succeeded, o.cost, f.at, f.fault
      from ordered o cross join hashed h
      left join lateral (
        select x.at, x.fault
          from unnest(array[o.gap, o.link, h.hash, h.decision_missing, h.decision_hash, h.decision_other,
                            h.payload_input, h.payload_output, h.payload_error, h.payload_missing, o.plan_order, o.after_end],
                      runproof_private.step_fault_order()) with ordinality as x(at, fault, rank)
         where x.at is not null
         order by x.at, x.rank limit 1) f on true $q$
    using p_tenant_id, p_trace_id, p_genesis, p_resume;
end
$$;
comment on function runproof_private.step_faults_parallel(uuid, uuid, bytea, integer) is
  'step_faults for large traces: what needs chain order in one ordered pass, every hash recomputed by a parallel aggregate.';

create or replace function runproof_private.step_faults(
  p_tenant_id uuid, p_trace_id uuid, p_genesis bytea, p_resume integer, p_size_hint integer)
  returns table (step_count integer, erased integer, succeeded integer, cost numeric,
                 first_bad integer, fault text)
  language plpgsql stable
  set search_path = pg_catalog
  -- As in step_faults_parallel: never nested loops for the per-step joins (stale statistics
  -- made them quadratic; 8,000 steps took 9.5 s instead of 0.12 s).
  set enable_nestloop = off
  as $$
begin
  if p_size_hint >= 50000 then
    return query select * from runproof_private.step_faults_parallel(p_tenant_id, p_trace_id, p_genesis, p_resume);
    return;
  end if;
  -- One pass: every row checked for its index, its link to the previous stored step_hash (or the
  -- genesis), its own hash recomputed from its content, its policy decision, its payloads and its
  -- place in the plan. Together these are the whole chain, without trusting any stored hash alone.
  return query
    with s as (
      select st.step_index, (row_number() over w - 1)::integer as pos, st.status, st.cost_cents,
             case
               when st.step_index <> (row_number() over w - 1) then 'gap'
               when st.prev_hash is distinct from coalesce(lag(st.step_hash) over w, p_genesis) then 'link'
               when st.step_hash is distinct from runproof_private.step_hash(st.prev_hash, runproof_private.step_canonical(st)) then 'hash'
               when d.tenant_id is null then 'decision_missing'
               when sha256(runproof_private.decision_canonical(d)) is distinct from st.decision_hash then 'decision_hash'
               when (d.run_id, d.plan_step, d.skill, d.decision) is distinct from (st.run_id, st.plan_step, st.skill, st.policy_decision) then 'decision_other'
               when p.tenant_id is not null and runproof_private.payload_commitment('input', p.input_salt, p.input::text) is distinct from st.input_commitment then 'payload_input'
               when p.tenant_id is not null and runproof_private.payload_commitment('output', p.output_salt, p.output::text) is distinct from st.output_commitment then 'payload_output'
               when p.tenant_id is not null and runproof_private.payload_commitment('error', p.error_salt, p.error) is distinct from st.error_commitment then 'payload_error'
               when p.tenant_id is null and e.tenant_id is null then 'payload_missing'
               when st.plan_step <> p_resume + (count(*) filter (where st.status = 'succeeded') over w)::integer
                                   - case when st.status = 'succeeded' then 1 else 0 end then 'order'
               when st.status <> 'succeeded' and lead(st.step_index) over w is not null then 'after_end'
             end as fault,
             p.tenant_id is null and e.tenant_id is not null as erased
        from runproof.trace_steps st
        left join runproof.policy_decisions d on d.tenant_id = st.tenant_id and d.trace_id = st.trace_id and d.step_index = st.step_index
        left join runproof.step_payloads p on p.tenant_id = st.tenant_id and p.trace_id = st.trace_id and p.step_index = st.step_index
        -- An erasure is recorded when both its record (who, when, why) and its step row, for this run, exist.
        left join (runproof.payload_erasure_steps e join runproof.payload_erasures pe on pe.tenant_id = e.tenant_id and pe.id = e.erasure_id)
          on e.tenant_id = st.tenant_id and e.trace_id = st.trace_id and e.step_index = st.step_index and e.run_id = st.run_id
       where st.tenant_id = p_tenant_id and st.trace_id = p_trace_id
      window w as (order by st.step_index)
    )
    select count(*)::integer, (count(*) filter (where s.erased))::integer,
           (count(*) filter (where s.status = 'succeeded'))::integer, coalesce(sum(s.cost_cents), 0),
           (array_agg(s.pos order by s.pos) filter (where s.fault is not null))[1],
           (array_agg(s.fault order by s.pos) filter (where s.fault is not null))[1]
      from s;
end
$$;
comment on function runproof_private.step_faults(uuid, uuid, bytea, integer, integer) is
  'The step checks of a trace (docs/proof-format.md section 9.2, checks 3 to 6): how many steps it has, how many are erased or succeeded, their cost, and its first fault (the step index, the missing index for a gap, and the check that failed), or NULL. p_resume is the number of plan steps that succeeded in earlier attempts; p_size_hint (the last index + 1) picks the parallel plan for large traces.';

create or replace function runproof_private.seal_difference(p_now bytea, p_sealed bytea, p_names text[])
  returns table (element integer, name text, now_value text, sealed_value text)
  language plpgsql immutable parallel safe
  set search_path = pg_catalog
  as $$
declare
  v_now jsonb;
  v_sealed jsonb;
begin
  begin
    v_now := convert_from(p_now, 'UTF8')::jsonb;
    v_sealed := convert_from(p_sealed, 'UTF8')::jsonb;
  exception when others then
    element := -1; name := 'text';
    return next;
    return;
  end;
  if jsonb_typeof(v_sealed) <> 'array' or jsonb_array_length(v_sealed) <> cardinality(p_names) then
    element := -1; name := 'text';
    return next;
    return;
  end if;
  return query
    select (k - 1)::integer, p_names[k], (v_now -> (k - 1)::integer)::text, (v_sealed -> (k - 1)::integer)::text
      from generate_series(1, cardinality(p_names)) k
     where (v_now -> (k - 1)::integer) is distinct from (v_sealed -> (k - 1)::integer)
     order by k limit 1;
end
$$;
comment on function runproof_private.seal_difference(bytea, bytea, text[]) is
  'The first element (0-based, with its name and both values as JSON) in which a record''s canonical text now differs from its stored seal; element -1 when the seal is not a JSON array of that record''s length.';

create or replace function runproof_private.trace_check(t runproof.traces, p_resume integer)
  returns table (proof runproof.proof, succeeded integer, cost numeric, last_step_status text)
  language plpgsql stable
  set search_path = pg_catalog
  as $$
declare
  v_genesis bytea := runproof_private.genesis_hash(t.tenant_id, t.run_id, t.id);
  v_f record;
  v_last record;
  v_root bytea;
  v_diff record;
  v_result runproof.proof;
begin
  v_result.integrity_model := 'HASH_CHAIN';
  v_result.proof_format := 2;
  v_result.tenant_id := t.tenant_id;
  v_result.run_id := t.run_id;
  v_result.trace_id := t.id;
  v_result.trace_count := 1;
  v_result.verified_at := clock_timestamp();

  -- The chain head first (it is the root, and its index says how big the trace is), then the
  -- step checks, in parallel workers when the trace is large.
  select st.step_index, st.step_hash, st.status into v_last from runproof.trace_steps st
   where st.tenant_id = t.tenant_id and st.trace_id = t.id order by st.step_index desc limit 1;
  select * into v_f
    from runproof_private.step_faults(t.tenant_id, t.id, v_genesis, p_resume, coalesce(v_last.step_index + 1, 0)) f;
  v_root := coalesce(v_last.step_hash, v_genesis);
  v_result.step_count := v_f.step_count;
  v_result.erased_steps := v_f.erased;
  v_result.root_hash := runproof_private.hex(v_root);
  v_result.chain_length := v_f.step_count;
  succeeded := v_f.succeeded;
  cost := v_f.cost;
  last_step_status := v_last.status;

  if v_f.first_bad is not null then
    declare
      v_idx integer := v_f.first_bad;
      v_row runproof.trace_steps;
      v_prev_hash bytea;
    begin
      v_result.first_bad_attempt := t.attempt;
      v_result.first_bad_trace_id := t.id;
      v_result.first_bad_step_index := v_idx;
      v_result.chain_length := v_idx;
      v_result.verification_status := case when v_f.fault in ('gap', 'decision_missing', 'payload_missing', 'order', 'after_end')
                                           then 'BROKEN' else 'TAMPERED' end;
      -- Explain the fault (a second, indexed look at the rows involved).
      select * into v_row from runproof.trace_steps s where s.tenant_id = t.tenant_id and s.trace_id = t.id and s.step_index = v_idx;
      case v_f.fault
        when 'gap' then
          v_result.reason := format('step %s is missing from the chain (the next stored step is %s)', v_idx,
            (select min(s.step_index) from runproof.trace_steps s where s.tenant_id = t.tenant_id and s.trace_id = t.id and s.step_index > v_idx));
        when 'link' then
          v_prev_hash := case when v_idx = 0 then v_genesis else
            (select s.step_hash from runproof.trace_steps s where s.tenant_id = t.tenant_id and s.trace_id = t.id and s.step_index = v_idx - 1) end;
          v_result.reason := format('step %s: prev_hash %s does not link to %s', v_idx, runproof_private.hex(v_row.prev_hash),
            case when v_idx = 0 then 'the trace''s genesis hash ' else format('the step_hash of step %s ', v_idx - 1) end
            || runproof_private.hex(v_prev_hash));
        when 'hash' then
          v_result.reason := format('step %s: stored step_hash %s does not match sha256(prev_hash || sha256(content)) = %s; its content or its hash was changed',
            v_idx, runproof_private.hex(v_row.step_hash),
            runproof_private.hex(runproof_private.step_hash(v_row.prev_hash, runproof_private.step_canonical(v_row))));
        when 'decision_missing' then
          v_result.reason := format('step %s: its policy decision is missing', v_idx);
        when 'decision_hash' then
          v_result.reason := format('step %s: its policy decision was changed: the step holds decision_hash %s, the decision hashes to %s', v_idx,
            runproof_private.hex(v_row.decision_hash),
            (select runproof_private.hex(sha256(runproof_private.decision_canonical(d))) from runproof.policy_decisions d
              where d.tenant_id = t.tenant_id and d.trace_id = t.id and d.step_index = v_idx));
        when 'decision_other' then
          v_result.reason := format('step %s: its policy decision describes another step', v_idx);
        when 'payload_input', 'payload_output', 'payload_error' then
          v_result.reason := format('step %s: its %s payload does not match the commitment its hash covers', v_idx, substr(v_f.fault, 9));
        when 'payload_missing' then
          v_result.reason := format('step %s: its payloads are missing and no erasure of them is recorded', v_idx);
        when 'order' then
          v_result.reason := format('step %s executed plan step %s, but %s plan steps had succeeded before it', v_idx, v_row.plan_step,
            p_resume + (select count(*) from runproof.trace_steps s
                         where s.tenant_id = t.tenant_id and s.trace_id = t.id and s.step_index < v_idx and s.status = 'succeeded'));
        else
          v_result.reason := format('step %s %s, but the trace goes on after it', v_idx, v_row.status);
      end case;
      proof := v_result;
      return next;
      return;
    end;
  end if;

  -- The status must be what the steps say happened (check 7).
  if t.status = 'completed' and v_last.status is distinct from 'succeeded' and v_last.status is not null
     or t.status = 'failed' and v_last.status is distinct from 'failed' and v_last.status is distinct from 'denied'
     or t.status = 'aborted' and v_last.status = 'denied' then
    v_result.verification_status := 'BROKEN';
    v_result.first_bad_attempt := t.attempt;
    v_result.first_bad_trace_id := t.id;
    v_result.reason := format('the trace is %s but its last step %s', t.status,
      case when v_last.status is null then 'does not exist' else 'is ' || v_last.status end);
  elsif t.status = 'running' then
    if t.step_count is not null or t.root_hash is not null or t.seal is not null or t.seal_hash is not null then
      v_result.verification_status := 'TAMPERED';
      v_result.first_bad_attempt := t.attempt;
      v_result.first_bad_trace_id := t.id;
      v_result.reason := 'a running trace carries a seal';
    else
      v_result.verification_status := 'IN_PROGRESS';
    end if;
  elsif t.step_count is null or t.root_hash is null or t.seal is null or t.seal_hash is null then
    v_result.verification_status := 'BROKEN';
    v_result.first_bad_attempt := t.attempt;
    v_result.first_bad_trace_id := t.id;
    v_result.reason := format('the trace is %s but has no seal', t.status);
  elsif t.step_count <> v_f.step_count then
    v_result.verification_status := 'BROKEN';
    v_result.first_bad_attempt := t.attempt;
    v_result.first_bad_trace_id := t.id;
    v_result.first_bad_step_index := least(t.step_count, v_f.step_count);
    v_result.chain_length := least(t.step_count, v_f.step_count);
    v_result.reason := case when v_f.step_count < t.step_count
      then format('the seal says %s steps but the chain has %s: step %s onwards is missing', t.step_count, v_f.step_count, v_f.step_count)
      else format('the seal says %s steps but the chain has %s: step %s onwards was added after the seal', t.step_count, v_f.step_count, t.step_count) end;
  elsif t.root_hash <> v_root then
    v_result.verification_status := 'TAMPERED';
    v_result.first_bad_attempt := t.attempt;
    v_result.first_bad_trace_id := t.id;
    v_result.reason := format('the sealed root_hash %s does not match the chain''s root %s', runproof_private.hex(t.root_hash), v_result.root_hash);
  elsif t.seal_hash <> sha256(t.seal) then
    v_result.verification_status := 'TAMPERED';
    v_result.first_bad_attempt := t.attempt;
    v_result.first_bad_trace_id := t.id;
    v_result.reason := format('the trace''s seal_hash %s does not match sha256 of its seal %s',
      runproof_private.hex(t.seal_hash), runproof_private.hex(sha256(t.seal)));
  elsif t.seal <> runproof_private.trace_canonical(t) then
    v_result.verification_status := 'TAMPERED';
    v_result.first_bad_attempt := t.attempt;
    v_result.first_bad_trace_id := t.id;
    select * into v_diff from runproof_private.seal_difference(runproof_private.trace_canonical(t), t.seal,
      array['format', 'tenant_id', 'run_id', 'trace_id', 'attempt', 'status', 'started_at', 'completed_at', 'step_count', 'root_hash', 'metadata']);
    v_result.reason := case when v_diff.element between 0 and 10
      then format('the trace''s %s is %s but its seal says %s', v_diff.name, v_diff.now_value, v_diff.sealed_value)
      else 'the trace''s seal is not its canonical text' end;
  else
    v_result.verification_status := 'VERIFIED';
  end if;
  proof := v_result;
  return next;
end
$$;
comment on function runproof_private.trace_check(runproof.traces, integer) is
  'Verifies one trace (docs/proof-format.md section 9.2, checks 3 to 8), given how many plan steps succeeded in earlier attempts; also returns how many of its steps succeeded, their cost, and the status of its last step, for the run''s checks.';

create or replace function runproof_private.verify_trace_row(t runproof.traces) returns runproof.proof
  language sql stable
  set search_path = pg_catalog
  as $$
    select (c.proof).*
      from runproof_private.trace_check(t,
             (select count(*)::integer from runproof.traces e
                join runproof.trace_steps s on s.tenant_id = e.tenant_id and s.trace_id = e.id
               where e.tenant_id = t.tenant_id and e.run_id = t.run_id and e.attempt < t.attempt and s.status = 'succeeded')) c
  $$;
comment on function runproof_private.verify_trace_row(runproof.traces) is
  'Verifies one trace row on its own: trace_check, with the plan steps that succeeded in the run''s earlier attempts as they are stored.';

create or replace function runproof.verify_trace(trace_id uuid) returns runproof.proof
  language plpgsql stable
  set search_path = pg_catalog
  as $$
declare
  v_trace runproof.traces;
  v_result runproof.proof;
  v_to timestamptz;
begin
  select * into v_trace from runproof.traces t where t.id = verify_trace.trace_id;
  if not found then
    v_result.integrity_model := 'HASH_CHAIN';
    v_result.proof_format := 2;
    v_result.verification_status := 'NOT_FOUND';
    v_result.trace_id := verify_trace.trace_id;
    v_result.trace_count := 0;
    v_result.step_count := 0;
    v_result.erased_steps := 0;
    v_result.chain_length := 0;
    v_result.reason := 'no such trace';
    v_result.verified_at := clock_timestamp();
    return v_result;
  end if;
  v_result := runproof_private.verify_trace_row(v_trace);
  -- The trace's recorded lifetime: from its start to its seal (or its last step while running).
  v_to := coalesce(v_trace.completed_at,
                   (select max(s.recorded_at) from runproof.trace_steps s where s.tenant_id = v_trace.tenant_id and s.trace_id = v_trace.id),
                   v_trace.started_at);
  select g.status, g.detail into v_result.guard_status, v_result.guard_detail
    from runproof_private.guard_status(v_trace.started_at, v_to) g;
  return v_result;
end
$$;
comment on function runproof.verify_trace(uuid) is
  'Recomputes every hash of one trace from its stored rows and checks its steps, decisions, payloads, plan order, status and seal (docs/proof-format.md section 9.2): VERIFIED, IN_PROGRESS, TAMPERED, BROKEN or NOT_FOUND, with the first bad step and the reason; and guard_status from the DDL audit over the trace''s lifetime (started_at .. its seal).';
